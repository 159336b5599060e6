//! The one error type of the registry crate.

/// Everything that can go wrong in the registry.
///
/// Variants are split by who is at fault: the caller (`Invalid*`, `NotFound`,
/// `OutOfRange`), the stored data (`Corrupt`), or the environment (`Database`,
/// `Crypto`). The service maps them to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The caller supplied a value that breaks a documented rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field, as the caller named it.
        field: &'static str,
        /// Why it was refused, in words a user can act on.
        reason: String,
    },
    /// A position in the log is outside what the log holds.
    #[error("{0}")]
    OutOfRange(String),
    /// Nothing is stored under the given key.
    #[error("{0} not found")]
    NotFound(String),
    /// Stored data does not decode or does not add up; this is a bug or
    /// tampering, never a user error.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A proposed leaf has an entry version or type this build does not
    /// know. Applying it anyway, or rejecting it, could make this replica
    /// diverge from one whose build knows it, so the node must stop.
    #[error(
        "unsupported ledger entry: {0}; upgrade this node's provreg before it applies the log further"
    )]
    UnsupportedEntry(String),
    /// A signed intent was refused. `reason` is the stable, machine-readable
    /// why (its [`as_str`](crate::intent::IntentReason::as_str) is meant for
    /// a problem `type`); `detail` names the member or signer at fault.
    #[error("intent refused ({reason}): {detail}")]
    Intent {
        /// Which rule the intent broke.
        reason: crate::intent::IntentReason,
        /// What exactly was wrong, in words a client can act on.
        detail: String,
    },
    /// A signing key could not be used.
    #[error("key error: {0}")]
    Crypto(String),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl RegistryError {
    pub(crate) fn intent(reason: crate::intent::IntentReason, detail: impl Into<String>) -> Self {
        Self::Intent {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Result with [`RegistryError`] as the default error.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
