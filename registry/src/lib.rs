//! The provreg domain: what the ledger records and how it is kept.
//!
//! The ledger is an append-only log of [`LedgerEntry`] leaves under an
//! RFC 9162 Merkle tree. Its tree heads are published as C2SP checkpoints
//! signed by the node. Everything is persisted through sqlx, in SQLite by
//! default or PostgreSQL. This crate knows nothing of HTTP or of Raft: the
//! Raft state machine (raft-store) drives [`ApplyTx`], and the service reads.
//!
//! # Layout
//! - [`entry`]: ledger entries, their versioned leaf encoding, apply outcomes.
//! - [`metadata`]: validation and canonical forms of registrant metadata.
//! - [`party`]: parties, their roles, keys and identifiers.
//! - [`merkle`]: RFC 9162 hashing, proofs and their verification.
//! - [`checkpoint`]: signed checkpoints and the node's signing key.
//! - [`intent`]: signed intents (key rotation, transfers, licences): strict
//!   parsing, the canonical signed message, signer verification.
//! - [`scope`]: licence scope (territories, media, term) and its overlap
//!   and containment arithmetic.
//! - `store`: all SQL; the [`Registry`] handle and the apply transaction.
//! - `error`: [`RegistryError`].

#![warn(missing_docs)]

pub mod checkpoint;
pub mod entry;
mod error;
pub mod intent;
pub mod merkle;
pub mod metadata;
pub mod party;
pub mod rights;
pub mod scope;
mod store;

pub use entry::{
    ApplyOutcome, Approval, ClaimedIscc, ClusterFormed, ContentClaim, ContentRegistration,
    EntryBody, FEATURE_LEVEL, FingerprintedBy, Holder, IsccCodes, LedgerEntry, MembershipApproved,
    Metadata, NodeAdded, NodeRecord, NodeRemoved, NodeUpgraded, Prints, Rejection,
    is_lower_hex_sha256, level_claim_message,
};
pub use error::{RegistryError, Result};
pub use intent::{IntentKind, IntentReason, SignedIntent, SignerKey};
pub use scope::{Media, Medium, Scope, Term, Territories, TerritorySet};
pub use store::{
    ApplyTx, Beside, ClaimRecord, CodeKind, CodeMatch, ContentRecord, Derivation, Derivations,
    History, Holdings, LicenceRecord, Licences, MAX_GRAPH_ITEMS, MAX_INDEXED_DISTANCE,
    PartyHolding, PartyRecord, RaftMarks, RecordedNode, Registry, SNAPSHOT_PAGE, SnapshotLeaf,
    StoredEntry, is_sampled, validate_claimed_iscc, verify_approval, voters_key,
};
