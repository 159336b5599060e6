//! Raft RPC between nodes, over a transport the service provides.
//!
//! openraft's messages never leave this crate as types: the service moves
//! opaque JSON bodies between nodes (over HTTP) and hands incoming ones to
//! [`crate::RaftNode::handle_rpc`]. This keeps the wire encoding and the
//! openraft version in one place.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::snapshot::SnapshotFile;
use openraft::RaftNetworkV2;
use openraft::entry::RaftEntry;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::snapshot::CHUNK_BYTES;
use crate::types::{PeerNode, SnapshotMeta, TypeConfig, Vote};

/// The kinds of message nodes exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// Log replication and heartbeats.
    Append,
    /// Elections.
    Vote,
    /// A whole snapshot, for a follower too far behind for the log.
    Snapshot,
    /// A command a follower forwards to the leader to propose.
    Write,
    /// A follower asking the leader for a read index.
    ReadIndex,
}

impl Rpc {
    /// Every kind, for routing.
    pub const ALL: [Rpc; 5] = [
        Rpc::Append,
        Rpc::Vote,
        Rpc::Snapshot,
        Rpc::Write,
        Rpc::ReadIndex,
    ];

    /// The name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::Append => "append",
            Rpc::Vote => "vote",
            Rpc::Snapshot => "snapshot",
            Rpc::Write => "write",
            Rpc::ReadIndex => "read-index",
        }
    }

    /// Parses [`Rpc::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rpc| rpc.as_str() == name)
    }
}

/// A boxed future, so that [`Transport`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries an encoded RPC to a peer and returns its encoded reply.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` as `rpc` to node `target` at `addr`. An `Err` of kind
    /// `ConnectionRefused` means the request never reached the peer; any
    /// other `Err` means it may have been received and acted on.
    fn call(
        &self,
        target: u64,
        addr: String,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> BoxFuture<'_, io::Result<Vec<u8>>>;
}

/// What precedes each chunk of a snapshot: which transfer it belongs to
/// and where the chunk goes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChunkHeader {
    /// The sending leader's vote.
    pub(crate) vote: Vote,
    /// What the snapshot covers.
    pub(crate) meta: SnapshotMeta,
    /// Identifies one transfer: hexadecimal, chosen by the sender.
    pub(crate) transfer: String,
    /// Where the chunk starts in the snapshot file.
    pub(crate) offset: u64,
    /// Whether this is the last chunk.
    pub(crate) done: bool,
}

/// The receiver's answer to a chunk: the installed snapshot's response
/// after the last one, nothing before it, or why it was refused.
pub(crate) type ChunkReply = Result<Option<SnapshotResponse<TypeConfig>>, String>;

/// A chunk on the wire: a 4-byte big-endian header length, the header as
/// JSON, then the chunk's bytes as they are.
pub(crate) fn frame(header: &ChunkHeader, chunk: &[u8]) -> io::Result<Vec<u8>> {
    let head = serde_json::to_vec(header).map_err(io::Error::other)?;
    let len = u32::try_from(head.len()).map_err(io::Error::other)?;
    let mut body = Vec::with_capacity(4 + head.len() + chunk.len());
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(&head);
    body.extend_from_slice(chunk);
    Ok(body)
}

/// Splits a framed chunk; `None` if it is not one.
pub(crate) fn unframe(body: &[u8]) -> Option<(ChunkHeader, &[u8])> {
    let len = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let head = body.get(4..4 + len)?;
    let header = serde_json::from_slice(head).ok()?;
    Some((header, &body[4 + len..]))
}

/// What a node answers: the RPC's own result, or its error, both encoded.
pub(crate) type Reply<T, E> = Result<T, E>;

/// openraft's network factory over a [`Transport`].
pub(crate) struct Network {
    pub(crate) transport: Arc<dyn Transport>,
}

/// A connection to one peer.
pub(crate) struct Peer {
    transport: Arc<dyn Transport>,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> Self::Network {
        Peer {
            transport: self.transport.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl Peer {
    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        rpc: Rpc,
        req: &Req,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send_bytes(rpc, body).await
    }

    async fn send_bytes<Resp: DeserializeOwned>(
        &self,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let reply = self
            .transport
            .call(self.target, self.addr.clone(), rpc, body)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        serde_json::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

/// The largest body a peer accepts: a command of [`crate::MAX_COMMAND_BYTES`]
/// JSON-encoded in a forwarded write or an append, with room to spare.
pub const MAX_RPC_BYTES: usize = 64 * 1024 * 1024;

/// Appends larger than this are sent as several requests.
const APPEND_PART_BYTES: usize = 8 * 1024 * 1024;

impl Peer {
    async fn append_bytes(
        &self,
        body: Vec<u8>,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let reply: Reply<
            AppendEntriesResponse<TypeConfig>,
            openraft::errors::RaftError<TypeConfig>,
        > = self.send_bytes(Rpc::Append, body).await?;
        reply.map_err(|e| remote(self.target, e))
    }
}

fn remote<E: std::error::Error + 'static>(target: u64, e: E) -> RPCError<TypeConfig> {
    // The peer answered but refused; to openraft that is a network-level
    // failure of this call, with the peer's reason attached.
    tracing::debug!(raft.target = target, error = %e, "Raft peer returned an error.");
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let body =
            serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if body.len() <= APPEND_PART_BYTES || rpc.entries.len() <= 1 {
            return self.append_bytes(body).await;
        }
        // Too large for one request (a lagging follower is sent up to
        // openraft's max_payload_entries commands, each up to 16 MiB): send
        // it as consecutive requests, each starting where the last ended.
        // The receiver applies up to `leader_commit` only as far as the
        // entries it holds, so every part may carry it.
        let AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        } = rpc;
        let mut prev = prev_log_id;
        let mut part = Vec::new();
        let mut bytes = 0;
        let mut entries = entries.into_iter().peekable();
        while let Some(entry) = entries.next() {
            bytes += serde_json::to_vec(&entry)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?
                .len();
            part.push(entry);
            let full = entries.peek().is_none_or(|next| {
                serde_json::to_vec(next).map_or(true, |next| bytes + next.len() > APPEND_PART_BYTES)
            });
            if !full {
                continue;
            }
            let last = part.last().map(RaftEntry::log_id);
            let request = AppendEntriesRequest::<TypeConfig> {
                vote,
                prev_log_id: prev,
                entries: std::mem::take(&mut part),
                leader_commit,
            };
            let body = serde_json::to_vec(&request)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            match self.append_bytes(body).await? {
                AppendEntriesResponse::Success if entries.peek().is_some() => {
                    prev = last;
                    bytes = 0;
                }
                other => return Ok(other),
            }
        }
        Ok(AppendEntriesResponse::Success)
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
        snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let network = |e: io::Error| StreamingError::Network(NetworkError::new(&e));
        static TRANSFERS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let transfer = format!("{nanos:x}{:x}", TRANSFERS.fetch_add(1, Ordering::Relaxed));
        let meta = snapshot.meta;
        let mut file = snapshot.snapshot;
        let mut offset = 0u64;
        loop {
            // One chunk in memory at a time, on either side.
            let chunk = file.chunk(offset).map_err(network)?;
            let done = chunk.len() < CHUNK_BYTES;
            let header = ChunkHeader {
                vote,
                meta: meta.clone(),
                transfer: transfer.clone(),
                offset,
                done,
            };
            let body = frame(&header, &chunk).map_err(network)?;
            let reply: ChunkReply =
                self.send_bytes(Rpc::Snapshot, body)
                    .await
                    .map_err(|e| match e {
                        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                        other => StreamingError::Network(NetworkError::new(&other)),
                    })?;
            match reply {
                Ok(Some(response)) if done => return Ok(response),
                Ok(None) if !done => offset += chunk.len() as u64,
                Ok(_) => {
                    return Err(network(io::Error::other(
                        "the peer answered a snapshot chunk out of turn",
                    )));
                }
                Err(reason) => return Err(network(io::Error::other(reason))),
            }
        }
    }
}
