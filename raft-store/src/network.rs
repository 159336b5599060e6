//! Raft RPC between nodes, over a transport the service provides.
//!
//! openraft's messages never leave this crate as types: the service moves
//! opaque JSON bodies between nodes (over HTTP) and hands incoming ones to
//! [`crate::RaftNode::handle_rpc`]. This keeps the wire encoding and the
//! openraft version in one place.

use std::future::Future;
use std::io;
use std::sync::Arc;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetworkV2};
use registry::LedgerSnapshot;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{SnapshotMeta, TypeConfig, Vote};

/// The kinds of message nodes exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// Log replication and heartbeats.
    Append,
    /// Elections.
    Vote,
    /// A whole snapshot, for a follower too far behind for the log.
    Snapshot,
}

impl Rpc {
    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::Append => "append",
            Rpc::Vote => "vote",
            Rpc::Snapshot => "snapshot",
        }
    }

    /// Parses [`Rpc::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "append" => Some(Rpc::Append),
            "vote" => Some(Rpc::Vote),
            "snapshot" => Some(Rpc::Snapshot),
            _ => None,
        }
    }
}

/// Carries an encoded RPC to the node at `addr` and returns its encoded reply.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` as `rpc` to `addr`; an `Err` means the peer was not reached
    /// or did not answer.
    fn call(
        &self,
        addr: &str,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send;
}

/// The body of a snapshot RPC.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotRequest {
    pub(crate) vote: Vote,
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: LedgerSnapshot,
}

/// What a node answers: the RPC's own result, or its error, both encoded.
pub(crate) type Reply<T, E> = Result<T, E>;

/// openraft's network factory over a [`Transport`].
pub(crate) struct Network<T> {
    pub(crate) transport: Arc<T>,
}

/// A connection to one peer.
pub(crate) struct Peer<T> {
    transport: Arc<T>,
    target: u64,
    addr: String,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for Network<T> {
    type Network = Peer<T>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        Peer {
            transport: self.transport.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl<T: Transport> Peer<T> {
    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        rpc: Rpc,
        req: &Req,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = self
            .transport
            .call(&self.addr, rpc, body)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        serde_json::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

fn remote<E: std::error::Error + 'static>(target: u64, e: E) -> RPCError<TypeConfig> {
    // The peer answered but refused; to openraft that is a network-level
    // failure of this call, with the peer's reason attached.
    tracing::debug!(raft.target = target, error = %e, "Raft peer returned an error.");
    RPCError::Network(NetworkError::new(&e))
}

impl<T: Transport> RaftNetworkV2<TypeConfig> for Peer<T> {
    type SnapshotData = LedgerSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply: Reply<
            AppendEntriesResponse<TypeConfig>,
            openraft::errors::RaftError<TypeConfig>,
        > = self.send(Rpc::Append, &rpc).await?;
        reply.map_err(|e| remote(self.target, e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply: Reply<VoteResponse<TypeConfig>, openraft::errors::RaftError<TypeConfig>> =
            self.send(Rpc::Vote, &rpc).await?;
        reply.map_err(|e| remote(self.target, e))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, LedgerSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let req = SnapshotRequest {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        let reply: Reply<SnapshotResponse<TypeConfig>, openraft::errors::Fatal<TypeConfig>> =
            self.send(Rpc::Snapshot, &req).await.map_err(|e| match e {
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                other => StreamingError::Network(NetworkError::new(&other)),
            })?;
        reply.map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}
