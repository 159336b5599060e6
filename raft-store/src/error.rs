//! The one error type of the raft-store crate.

use std::io;

/// What can go wrong running the Raft node.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Raft log or snapshot files failed.
    #[error("raft storage: {0}")]
    Io(#[from] io::Error),
    /// This node is not the leader; writes go to the leader.
    #[error("this node is not the leader{}", leader_hint(.leader_id, .leader_addr))]
    NotLeader {
        /// The leader's node id, if known.
        leader_id: Option<u64>,
        /// The leader's address, if known.
        leader_addr: Option<String>,
    },
    /// The cluster cannot take this request now, though it may soon: the
    /// leader's lease expired, leadership is moving, or no quorum answers.
    #[error("{reason}")]
    Unavailable {
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// A write was sent but its fate is not known: it may have committed or
    /// may still commit. Resolve it by looking up what it would have made.
    #[error("the write's outcome is unknown: {0}")]
    OutcomeUnknown(String),
    /// The leader refused a command stamped too far from its own clock.
    #[error(
        "the entry's timestamp {entry} is more than {max_skew_ms} ms from the leader's clock ({leader})"
    )]
    ClockSkew {
        /// The entry's timestamp.
        entry: String,
        /// The leader's time.
        leader: String,
        /// The bound.
        max_skew_ms: u64,
    },
    /// A command over [`crate::MAX_COMMAND_BYTES`]; nothing was proposed.
    #[error("a command of {len} bytes is over the bound of {max} bytes")]
    CommandTooLarge {
        /// Its payload size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A membership change was refused; the membership is unchanged.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// No leader was elected in time.
    #[error("no leader elected within {0:?}")]
    NoLeader(std::time::Duration),
    /// An RPC body from a peer did not decode.
    #[error("malformed raft message: {0}")]
    BadMessage(String),
    /// Raft stopped or hit an error it cannot recover from.
    #[error("raft: {0}")]
    Raft(String),
}

fn leader_hint(id: &Option<u64>, addr: &Option<String>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!(" (leader is node {id} at {addr})"),
        (Some(id), None) => format!(" (leader is node {id})"),
        _ => String::new(),
    }
}

/// Result with [`StoreError`] as the default error.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Written by hand because [`io::Error`] is not `Clone`: a clone of an I/O
/// error keeps its kind and message. One failed command can be the answer
/// to several writers whose leaves it carried.
impl Clone for StoreError {
    fn clone(&self) -> Self {
        match self {
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
            Self::NotLeader {
                leader_id,
                leader_addr,
            } => Self::NotLeader {
                leader_id: *leader_id,
                leader_addr: leader_addr.clone(),
            },
            Self::Unavailable { reason } => Self::Unavailable {
                reason: reason.clone(),
            },
            Self::OutcomeUnknown(why) => Self::OutcomeUnknown(why.clone()),
            Self::ClockSkew {
                entry,
                leader,
                max_skew_ms,
            } => Self::ClockSkew {
                entry: entry.clone(),
                leader: leader.clone(),
                max_skew_ms: *max_skew_ms,
            },
            Self::CommandTooLarge { len, max } => Self::CommandTooLarge {
                len: *len,
                max: *max,
            },
            Self::Membership(why) => Self::Membership(why.clone()),
            Self::NoLeader(after) => Self::NoLeader(*after),
            Self::BadMessage(why) => Self::BadMessage(why.clone()),
            Self::Raft(why) => Self::Raft(why.clone()),
        }
    }
}
