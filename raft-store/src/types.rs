//! The openraft type configuration and the command type it carries.

use std::fmt;

use registry::{ApplyOutcome, EntryBody, LedgerEntry};
use serde::{Deserialize, Serialize};

/// What a client proposes through Raft: one ledger entry to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Command(pub LedgerEntry);

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.body {
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
