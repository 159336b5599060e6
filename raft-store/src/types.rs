//! The openraft type configuration and the command type it carries.

use std::fmt;

use registry::{ApplyOutcome, EntryBody, LedgerEntry};
use serde::{Deserialize, Serialize};

/// What a client proposes through Raft: one ledger entry to append, and the
/// JSON of the fingerprints to store beside it (see [`registry::Prints`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The entry; its leaf is produced when it is applied.
    pub entry: LedgerEntry,
    /// The fingerprints the entry's `prints_sha256` commits to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prints: Option<String>,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry.body {
            EntryBody::ContentRegistered(reg) => write!(f, "register content {}", reg.content_id),
        }
    }
}

openraft::declare_raft_types!(
    /// provreg's openraft types: ledger commands in, apply outcomes out,
    /// nodes addressed by their HTTP base address.
    pub TypeConfig:
        D = Command,
        R = ApplyOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
pub(crate) type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub(crate) type Snapshot = openraft::alias::SnapshotOf<TypeConfig, registry::LedgerSnapshot>;
