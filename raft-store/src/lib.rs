//! openraft glue for provreg: everything Raft needs to replicate the ledger.
//!
//! The Raft log lives in raft-log (fsynced before openraft counts an entry as
//! stored); committed entries are applied to the [`registry`] by the state
//! machine, one database transaction per batch together with the last
//! applied log id; snapshots are the ledger's leaves in a file, streamed
//! between nodes in chunks. openraft's types stay
//! inside this crate: the service sees [`RaftNode`] and opaque RPC bodies.
//!
//! # Layout
//! - `types`: the openraft type configuration and [`Command`].
//! - `codec`: how values are framed in raft-log.
//! - [`log_store`]: the durable Raft log.
//! - [`state_machine`]: applying to the registry.
//! - [`snapshot`]: snapshot files, built, sent and installed in pieces.
//! - `network`: RPC encoding over a service-provided [`Transport`].
//! - `node`: [`RaftNode`], the handle the service uses.
//! - `merge`: the leader's group commit of commands from every node.
//! - `error`: [`StoreError`].

#![warn(missing_docs)]

mod codec;
mod error;
pub mod log_store;
mod merge;
mod network;
mod node;
pub mod snapshot;
pub mod state_machine;
mod types;

pub use error::{Result, StoreError};
pub use network::{BoxFuture, MAX_RPC_BYTES, Rpc, Transport};
pub use node::{
    ClusterView, LearnerProgress, MAX_CLOCK_SKEW, MAX_COMMAND_BYTES, MemberView, NodeConfig,
    NodeStatus, RaftNode, Written,
};
pub use types::{Command, PeerNode, ProposedLeaf, TypeConfig};
