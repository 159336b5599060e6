//! A running Raft node: the one place the service talks to consensus.
//!
//! Writes may arrive at any node. [`RaftNode::write`] proposes on this node
//! when it leads and otherwise forwards the command to the leader over the
//! [`Transport`], following leader changes a few hops; either way it
//! returns only once this node has applied the entry, so the caller can read
//! what it wrote. Reads of the latest state call [`RaftNode::linearize`]
//! first: a lease read on the leader, a read index fetched from the leader
//! (one request for every reader waiting at the time) on a follower.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardReason, LinearizableReadError, RaftError};
use openraft::{ChangeMembers, Precondition, Raft, ReadPolicy, ServerState};
use registry::{ApplyOutcome, LedgerEntry, Registry};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

use crate::log_store::LogStore;
use crate::merge::Merger;
use crate::network::{ChunkHeader, ChunkReply, Network, Rpc, Transport, unframe};
use crate::snapshot::{self, SnapshotFile};
use crate::state_machine::StateMachine;
use crate::types::{Command, PeerNode, ProposedLeaf, TypeConfig};
use crate::{Result, StoreError};

/// How far a leaf's timestamp may be from the leader's clock when the
/// leader receives it. Proposers stamp entries just before proposing, so a
/// larger gap means a wrong clock, and time in the ledger must be trustworthy.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The largest Raft command accepted, in payload bytes (leaves and prints).
/// Every replica holds a command in memory while it is replicated and
/// applied, and raft-log frames records up to 256 MiB; 16 MiB keeps a
/// command's cost bounded on every node.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024 * 1024;

/// How many times a write follows a leader change before giving up.
const MAX_HOPS: usize = 4;

/// How long a write waits for this node to apply an entry the leader has
/// committed, and a read for the state its read index asks for.
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// How to run this node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id, unique in the cluster and never reused.
    pub node_id: u64,
    /// The URL peers reach this node's peer listener at.
    pub advertise_addr: String,
    /// This node's public key (standard base64 of the raw Ed25519 key).
    pub node_key: String,
    /// Directory for the Raft log and snapshot.
    pub dir: PathBuf,
    /// Build a snapshot after this many applied entries; the log before it
    /// is then purged, keeping a tenth of this much.
    pub snapshot_every: u64,
}

/// A handle on the running node. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<TypeConfig, StateMachine>,
    config: Arc<NodeConfig>,
    transport: Arc<dyn Transport>,
    reads: Arc<Mutex<ReadBatch>>,
    merger: Merger,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

/// A summary of the node's Raft state, for health checks.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// This node's id.
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    /// The current leader, if known.
    pub leader_id: Option<u64>,
    /// The current term.
    pub term: u64,
    /// Index of the last entry in the log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the registry.
    pub last_applied_index: Option<u64>,
}

/// The membership as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    /// This node's id.
    pub node_id: u64,
    /// The leader, if known.
    pub leader_id: Option<u64>,
    /// The current term.
    pub term: u64,
    /// Voters of the effective membership (of every config while a change
    /// is in joint consensus).
    pub voters: Vec<u64>,
    /// Members that receive the log but do not vote.
    pub learners: Vec<u64>,
    /// Whether a voter change is half way (joint consensus).
    pub joint: bool,
    /// Every member.
    pub nodes: Vec<MemberView>,
    /// The last log index on this node.
    pub last_log_index: Option<u64>,
}

/// One member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// Its id.
    pub node_id: u64,
    /// Its peer URL.
    pub address: String,
    /// Its node key.
    pub node_key: Option<String>,
    /// The last log index the leader knows it holds (only the leader knows).
    pub matched_index: Option<u64>,
    /// How far it is behind the leader's log (only the leader knows).
    pub lag: Option<u64>,
}

/// A write that committed and was applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The Raft log index of the entry.
    pub log_index: u64,
    /// What applying each leaf did, in order, identical on every replica.
    pub outcomes: Vec<ApplyOutcome>,
}

/// How an added learner stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerProgress {
    /// Whether it caught up with the leader's log within the wait.
    pub caught_up: bool,
    /// The last index it is known to hold.
    pub matched_index: Option<u64>,
    /// Entries it is behind.
    pub lag: u64,
}

/// The leader's answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WriteReply {
    pub(crate) log_index: u64,
    pub(crate) outcomes: Vec<ApplyOutcome>,
}

/// Why the leader did not take a forwarded write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WriteRefused {
    /// Raft refused it (not the leader, entry discarded, ...).
    Raft(ClientWriteError<TypeConfig>),
    /// Its timestamp is too far from the leader's clock.
    ClockSkew { entry: String, leader: String },
    /// Raft on the leader has stopped.
    Stopped(String),
}

impl From<RaftError<TypeConfig, ClientWriteError<TypeConfig>>> for WriteRefused {
    fn from(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Self {
        match e {
            RaftError::APIError(e) => Self::Raft(e),
            RaftError::Fatal(f) => Self::Stopped(f.to_string()),
        }
    }
}

/// The leader's answer to a read-index request.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum ReadRefused {
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    Unavailable(String),
}

/// Readers waiting for a read index from the leader.
#[derive(Default)]
struct ReadBatch {
    /// Whether a task is fetching read indexes now.
    running: bool,
    /// Readers that arrived since the current fetch was sent; they are
    /// served by the next fetch, which starts after they arrived.
    waiting: Vec<oneshot::Sender<Result<u64, String>>>,
}

fn raft_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Raft(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(std::io::Error::other(e)))
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| StoreError::BadMessage(e.to_string()))
}

fn forward_reason(reason: ForwardReason) -> Option<StoreError> {
    match reason {
        ForwardReason::NotLeader => None,
        ForwardReason::LeaseExpired => Some(StoreError::Unavailable {
            reason: "the leader's lease has expired: it cannot confirm that it still leads".into(),
        }),
        ForwardReason::LeadershipTransfer => Some(StoreError::Unavailable {
            reason: "leadership is being transferred to another node".into(),
        }),
    }
}

impl RaftNode {
    /// Opens the log in `config.dir`, recovers the state machine from
    /// `registry` and starts Raft. Entries committed but not yet applied
    /// before a crash are applied again from the log.
    pub async fn start(
        config: NodeConfig,
        registry: Registry,
        transport: Arc<dyn Transport>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        // Snapshots interrupted by a crash leave temporary files behind;
        // none is ever read. The whole-ledger JSON snapshot of older builds
        // is superseded by snapshot.jsonl.
        remove_matching(&config.dir, "snapshot.", ".tmp")?;
        remove_matching(&config.dir, "incoming.", ".tmp")?;
        remove_matching(&config.dir, "snapshot.json", "snapshot.json")?;
        let log = LogStore::open(&config.dir.join("log"))?;
        let sm = StateMachine::new(registry, config.dir.join("snapshot.jsonl"));
        let raft_config = openraft::Config {
            cluster_name: "provreg".into(),
            // openraft's leader lease is election_timeout_max, and a
            // follower stands for election only once the lease and its own
            // timeout have both passed without a heartbeat: these give a
            // new leader 1 to 2 s after the old one stops, and 2.5 s with
            // one failed election, well inside the 5 s a client may wait.
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.snapshot_every / 10,
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network {
                transport: transport.clone(),
            },
            log,
            sm,
        )
        .await
        .map_err(raft_err)?;
        Ok(Self {
            merger: Merger::start(raft.clone()),
            raft,
            config: Arc::new(config),
            transport,
            reads: Arc::default(),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    /// Whether this node has ever been part of a cluster: formed one, or
    /// received a log from one.
    pub async fn is_initialized(&self) -> Result<bool> {
        self.raft.is_initialized().await.map_err(raft_err)
    }

    /// Makes this node a one-member cluster if it has never been part of
    /// one. Returns whether it did; a node with existing state is left
    /// alone.
    pub async fn initialize_single(&self) -> Result<bool> {
        if self.is_initialized().await? {
            return Ok(false);
        }
        let members = BTreeMap::from([(self.config.node_id, self.own_node())]);
        self.raft.initialize(members).await.map_err(raft_err)?;
        Ok(true)
    }

    fn own_node(&self) -> PeerNode {
        PeerNode {
            addr: self.config.advertise_addr.clone(),
            node_key: Some(self.config.node_key.clone()),
        }
    }

    /// Waits until some node leads, so writes can be accepted.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is elected")
            .await
            .map_err(|_| StoreError::NoLeader(timeout))?;
        metrics.current_leader.ok_or(StoreError::NoLeader(timeout))
    }

    /// The leader and its peer URL, waiting up to `timeout` for one.
    async fn leader(&self, timeout: Duration) -> Result<(u64, String)> {
        let id = self.wait_for_leader(timeout).await?;
        let m = self.raft.metrics().borrow_watched().clone();
        let addr = m
            .membership_config
            .get_node(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| StoreError::Unavailable {
                reason: format!("the leader, node {id}, is not in this node's membership yet"),
            })?;
        Ok((id, addr))
    }

    /// Proposes `command` through the leader, wherever it is, and waits
    /// until this node has applied it. The outcome is what the state
    /// machine decided, identical on every node.
    ///
    /// A [`StoreError::OutcomeUnknown`] means the command may or may not
    /// have committed: look up what it would have made before retrying.
    pub async fn write(&self, command: Command) -> Result<Written> {
        let len = command.payload_len();
        if len > MAX_COMMAND_BYTES {
            return Err(StoreError::CommandTooLarge {
                len,
                max: MAX_COMMAND_BYTES,
            });
        }
        let mut target: Option<(u64, String)> = None;
        for _hop in 0..MAX_HOPS {
            let reply = match &target {
                None => self.propose_here(command.clone()).await,
                Some((id, addr)) => match self.forward_write(*id, addr, &command).await {
                    Ok(reply) => reply,
                    Err(ForwardFailure::NotSent(e)) => {
                        tracing::debug!(raft.leader = id, error = %e, "Leader unreachable; looking for another.");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        target = self.next_target().await?;
                        continue;
                    }
                    Err(ForwardFailure::Unknown(e)) => {
                        return Err(StoreError::OutcomeUnknown(format!(
                            "the leader, node {id}, did not answer: {e}"
                        )));
                    }
                },
            };
            match reply {
                Ok(reply) => {
                    self.wait_applied(reply.log_index, APPLY_WAIT).await?;
                    return Ok(Written {
                        log_index: reply.log_index,
                        outcomes: reply.outcomes,
                    });
                }
                Err(WriteRefused::Raft(ClientWriteError::ForwardToLeader(forward))) => {
                    if let Some(e) = forward_reason(forward.reason) {
                        return Err(e);
                    }
                    target = match (forward.leader_id, forward.leader_node) {
                        (Some(id), _) if id == self.config.node_id => None,
                        (Some(id), Some(node)) => Some((id, node.addr)),
                        _ => self.next_target().await?,
                    };
                }
                Err(WriteRefused::Raft(ClientWriteError::LogEntryDiscarded(_))) => {
                    return Err(StoreError::OutcomeUnknown(
                        "the entry was discarded when leadership changed; another leader may still commit it".into(),
                    ));
                }
                Err(WriteRefused::Raft(other)) => return Err(raft_err(other)),
                Err(WriteRefused::ClockSkew { entry, leader }) => {
                    return Err(StoreError::ClockSkew {
                        entry,
                        leader,
                        max_skew_ms: MAX_CLOCK_SKEW.as_millis() as u64,
                    });
                }
                Err(WriteRefused::Stopped(e)) => return Err(StoreError::Raft(e)),
            }
        }
        Err(StoreError::Unavailable {
            reason: format!("leadership kept moving across {MAX_HOPS} attempts"),
        })
    }

    /// Where to send a write next: nowhere (here) if this node leads, else
    /// the leader, waiting briefly for an election.
    async fn next_target(&self) -> Result<Option<(u64, String)>> {
        let (id, addr) =
            self.leader(Duration::from_secs(5))
                .await
                .map_err(|_| StoreError::Unavailable {
                    reason: "no leader is known; the cluster may lack a quorum".into(),
                })?;
        Ok((id != self.config.node_id).then_some((id, addr)))
    }

    async fn forward_write(
        &self,
        target: u64,
        addr: &str,
        command: &Command,
    ) -> Result<Result<WriteReply, WriteRefused>, ForwardFailure> {
        let body =
            serde_json::to_vec(command).map_err(|e| ForwardFailure::NotSent(e.to_string()))?;
        match self
            .transport
            .call(target, addr.to_owned(), Rpc::Write, body)
            .await
        {
            Ok(reply) => {
                serde_json::from_slice(&reply).map_err(|e| ForwardFailure::Unknown(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(ForwardFailure::NotSent(e.to_string()))
            }
            Err(e) => Err(ForwardFailure::Unknown(e.to_string())),
        }
    }

    /// Proposes on this node, which must lead; the leader's own checks
    /// (the clock bound) run first, then the command joins the next merged
    /// entry (see `merge`).
    async fn propose_here(&self, command: Command) -> Result<WriteReply, WriteRefused> {
        if command.payload_len() > MAX_COMMAND_BYTES {
            return Err(WriteRefused::Stopped(format!(
                "a command of {} bytes is over the bound of {MAX_COMMAND_BYTES}",
                command.payload_len()
            )));
        }
        if self.raft.is_leader() {
            if let Some(refused) = check_clock(&command, OffsetDateTime::now_utc()) {
                return Err(refused);
            }
            return self.merger.propose(command).await;
        }
        // Not the leader (as far as this node knows): Raft says where it
        // is, or, if this node has just been elected, takes the command.
        let response = self.raft.client_write(command).await?;
        Ok(WriteReply {
            log_index: response.log_id.index,
            outcomes: response.data,
        })
    }

    /// Waits until this node has applied the log up to `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "the entry is applied here")
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Unavailable {
                reason: format!(
                    "this node has not applied log index {index} within {timeout:?}; it may be catching up"
                ),
            })
    }

    /// Makes this node's state at least as new as any write acknowledged
    /// before the call, so that a read that follows is linearizable.
    pub async fn linearize(&self) -> Result<()> {
        if self.raft.is_leader() {
            match self.leader_read_index().await {
                Ok(index) => return self.wait_applied(index, APPLY_WAIT).await,
                // Lost leadership meanwhile: ask whoever leads now.
                Err(ReadRefused::NotLeader { .. }) => {}
                Err(ReadRefused::Unavailable(reason)) => {
                    return Err(StoreError::Unavailable { reason });
                }
            }
        }
        let index = self.batched_read_index().await?;
        self.wait_applied(index, APPLY_WAIT).await
    }

    /// On the leader: the log index a linearizable read must wait for. A
    /// lease read when the lease holds (no round trip), else a read index
    /// confirmed by a quorum.
    async fn leader_read_index(&self) -> Result<u64, ReadRefused> {
        let mut last = None;
        for policy in [ReadPolicy::LeaseRead, ReadPolicy::ReadIndex] {
            match self.raft.ensure_linearizable(policy).await {
                Ok(read) => return Ok(read.index()),
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f)))
                    if f.reason == ForwardReason::NotLeader =>
                {
                    return Err(ReadRefused::NotLeader {
                        leader_id: f.leader_id,
                        leader_addr: f.leader_node.map(|n| n.addr),
                    });
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(ReadRefused::Unavailable(format!(
            "the leader cannot confirm its leadership: {}",
            last.unwrap_or_default()
        )))
    }

    /// On a follower: a read index from the leader, shared by every reader
    /// that arrived before the request was sent.
    async fn batched_read_index(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = self
                .reads
                .lock()
                .map_err(|_| raft_err("the read batch lock is poisoned"))?;
            batch.waiting.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            let node = self.clone();
            tokio::spawn(async move { node.drive_reads().await });
        }
        rx.await
            .map_err(|_| raft_err("the read index task stopped"))?
            .map_err(|reason| StoreError::Unavailable { reason })
    }

    async fn drive_reads(&self) {
        loop {
            let batch = {
                let Ok(mut batch) = self.reads.lock() else {
                    return;
                };
                if batch.waiting.is_empty() {
                    batch.running = false;
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            let result = self.remote_read_index().await;
            for waiter in batch {
                // A reader that gave up has dropped its receiver.
                let _ = waiter.send(result.clone());
            }
        }
    }

    async fn remote_read_index(&self) -> Result<u64, String> {
        let mut target = self
            .leader(Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        for _hop in 0..MAX_HOPS {
            let (id, addr) = target;
            let reply = if id == self.config.node_id {
                self.leader_read_index().await
            } else {
                let body = self
                    .transport
                    .call(id, addr, Rpc::ReadIndex, Vec::new())
                    .await
                    .map_err(|e| format!("the leader, node {id}, did not answer: {e}"))?;
                serde_json::from_slice(&body).map_err(|e| e.to_string())?
            };
            match reply {
                Ok(index) => return Ok(index),
                Err(ReadRefused::NotLeader {
                    leader_id: Some(id),
                    leader_addr: Some(addr),
                }) => target = (id, addr),
                Err(ReadRefused::NotLeader { .. }) => {
                    target = self
                        .leader(Duration::from_secs(5))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Err(ReadRefused::Unavailable(reason)) => return Err(reason),
            }
        }
        Err(format!("leadership kept moving across {MAX_HOPS} attempts"))
    }

    /// Handles an RPC from a peer: decodes `body`, hands it to Raft, encodes
    /// the reply. The reply carries Raft's own errors; an `Err` here means
    /// the message itself was bad.
    pub async fn handle_rpc(&self, rpc: Rpc, body: &[u8]) -> Result<Vec<u8>> {
        match rpc {
            Rpc::Append => encode(&self.raft.append_entries(decode(body)?).await),
            Rpc::Vote => encode(&self.raft.vote(decode(body)?).await),
            Rpc::Snapshot => {
                let (header, chunk) = unframe(body)
                    .ok_or_else(|| StoreError::BadMessage("not a snapshot chunk".into()))?;
                encode(&self.receive_chunk(header, chunk).await?)
            }
            Rpc::Write => encode(&self.propose_here(decode(body)?).await),
            Rpc::ReadIndex => encode(&self.leader_read_index().await),
        }
    }

    /// Takes one chunk of a snapshot from the leader into a file of its
    /// own, and installs the snapshot after the last chunk. Only one chunk
    /// is in memory at a time.
    async fn receive_chunk(&self, header: ChunkHeader, chunk: &[u8]) -> Result<ChunkReply> {
        use std::io::Write;
        if header.transfer.is_empty()
            || header.transfer.len() > 64
            || !header.transfer.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::BadMessage(
                "snapshot transfer id must be hexadecimal".into(),
            ));
        }
        let path = self
            .config
            .dir
            .join(format!("incoming.{}.tmp", header.transfer));
        let mut file = if header.offset == 0 {
            self.check_snapshot(&header.vote, &header.meta)?;
            // A transfer the leader gave up on is never resumed.
            remove_matching(&self.config.dir, "incoming.", ".tmp")?;
            std::fs::File::create(&path)?
        } else {
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|_| {
                    StoreError::BadMessage(format!(
                        "no snapshot transfer {} under way",
                        header.transfer
                    ))
                })?;
            if file.metadata()?.len() != header.offset {
                return Err(StoreError::BadMessage(format!(
                    "snapshot chunk at offset {} is out of order",
                    header.offset
                )));
            }
            file
        };
        file.write_all(chunk)?;
        if !header.done {
            return Ok(Ok(None));
        }
        // Installing makes its own durable copy; this one only has to be
        // complete when it is read back.
        file.flush()?;
        drop(file);
        let mut data = SnapshotFile::open(&path)?;
        if let Err(e) = snapshot::check(&mut data, &header.meta) {
            std::fs::remove_file(&path)?;
            return Err(StoreError::BadMessage(format!("snapshot refused: {e}")));
        }
        let snapshot = openraft::alias::SnapshotOf::<TypeConfig, SnapshotFile> {
            meta: header.meta,
            snapshot: data,
        };
        let result = self.raft.install_full_snapshot(header.vote, snapshot).await;
        std::fs::remove_file(&path)?;
        Ok(result.map(Some).map_err(|e| e.to_string()))
    }

    /// Refuses a snapshot that openraft would panic on before any of it is
    /// stored: one without a last log id, one whose last log id is beyond
    /// the sender's vote, and one that contradicts what this node has
    /// committed. Leaves that do not decode are refused once the file is
    /// complete ([`snapshot::check`]). Nothing is changed by a refusal.
    fn check_snapshot(
        &self,
        vote: &crate::types::Vote,
        meta: &crate::types::SnapshotMeta,
    ) -> Result<()> {
        use openraft::vote::RaftLeaderId;
        let bad = |why: String| Err(StoreError::BadMessage(format!("snapshot refused: {why}")));
        let Some(last) = meta.last_log_id else {
            return bad("it has no last log id".into());
        };
        if *last.committed_leader_id() > vote.leader_id().to_committed() {
            return bad(format!(
                "its last log id {last} is beyond the sender's vote {vote}"
            ));
        }
        let m = self.raft.metrics().borrow_watched().clone();
        if let Some(committed) = m.local_committed
            && last > committed
            && last.index <= committed.index
        {
            return bad(format!(
                "its last log id {last} contradicts the committed log id {committed} here"
            ));
        }
        Ok(())
    }

    /// The membership as this node knows it, with replication progress when
    /// this node leads.
    pub fn cluster(&self) -> ClusterView {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let last = m.last_log_index.unwrap_or(0);
        let replication = m.replication.as_ref();
        let nodes = membership
            .nodes()
            .map(|(id, node)| {
                let matched = if *id == self.config.node_id && m.state == ServerState::Leader {
                    m.last_log_index
                } else {
                    replication.and_then(|r| r.get(id).cloned().flatten().map(|l| l.index))
                };
                MemberView {
                    node_id: *id,
                    address: node.addr.clone(),
                    node_key: node.node_key.clone(),
                    matched_index: matched,
                    lag: replication.map(|_| last.saturating_sub(matched.unwrap_or(0))),
                }
            })
            .collect();
        ClusterView {
            node_id: self.config.node_id,
            leader_id: m.current_leader,
            term: m.current_term,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            joint: membership.get_joint_config().len() > 1,
            nodes,
            last_log_index: m.last_log_index,
        }
    }

    /// The node key of member `id` in this node's latest membership, which
    /// may not be committed yet: a node removed from it is refused at once.
    pub fn member_key(&self, id: u64) -> Option<String> {
        let m = self.raft.metrics().borrow_watched().clone();
        m.membership_config
            .get_node(&id)
            .and_then(|n| n.node_key.clone())
    }

    /// Whether node `id` was ever admitted by this node's membership
    /// history as far as the log still holds it.
    pub fn is_member(&self, id: u64) -> bool {
        let m = self.raft.metrics().borrow_watched().clone();
        m.membership_config.get_node(&id).is_some()
    }

    /// Adds node `id` as a learner (this node must lead) and waits up to
    /// `wait` for it to catch up. Adding a member again with the same node
    /// record is harmless; with another record it is refused.
    pub async fn add_learner(
        &self,
        id: u64,
        node: PeerNode,
        wait: Duration,
    ) -> Result<LearnerProgress> {
        self.require_leader()?;
        let m = self.raft.metrics().borrow_watched().clone();
        if let Some(existing) = m.membership_config.get_node(&id)
            && *existing != node
        {
            return Err(StoreError::Membership(format!(
                "node {id} is a member already, at {} with another key or address",
                existing.addr
            )));
        }
        self.raft
            .add_learner(id, node, false)
            .await
            .map_err(|e| self.map_change_error(e))?;
        let caught_up = self
            .raft
            .wait(Some(wait))
            .metrics(
                |m| {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .map(|l| l.index);
                    matched.is_some() && matched >= m.last_log_index
                },
                "the learner has caught up",
            )
            .await
            .is_ok();
        let view = self.cluster();
        let member = view.nodes.iter().find(|n| n.node_id == id);
        Ok(LearnerProgress {
            caught_up,
            matched_index: member.and_then(|n| n.matched_index),
            lag: member.and_then(|n| n.lag).unwrap_or(0),
        })
    }

    /// Replaces the voters with `voters` (this node must lead), through
    /// joint consensus; members dropped from the voters stay learners.
    /// Refused if the membership changed since `observed` was read, so
    /// concurrent changes are serialised rather than overwritten.
    pub async fn change_voters(&self, voters: BTreeSet<u64>) -> Result<()> {
        self.require_leader()?;
        let observed = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let precondition = Precondition::LastMembershipLogId {
            last_membership_log_id: *observed.log_id(),
        };
        self.raft
            .change_membership_if(
                ChangeMembers::ReplaceAllVoters(voters),
                true,
                [precondition],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.map_change_error(e))
    }

    /// Removes node `id` from the cluster (this node must lead): a voter is
    /// first removed from the voters, through joint consensus; then the
    /// node is dropped, and every peer refuses it from then on.
    pub async fn remove_node(&self, id: u64) -> Result<()> {
        self.require_leader()?;
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(StoreError::Membership(format!("node {id} is not a member")));
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.contains(&id) {
            let rest: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != id).collect();
            if rest.is_empty() {
                return Err(StoreError::Membership(
                    "the last voter cannot be removed".into(),
                ));
            }
            self.raft
                .change_membership(ChangeMembers::ReplaceAllVoters(rest), false)
                .await
                .map_err(|e| self.map_change_error(e))?;
        } else {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.map_change_error(e))?;
        }
        Ok(())
    }

    /// Finishes a voter change left in joint consensus (its leader died
    /// between the two steps): proposes the last config of the joint one.
    /// Does nothing unless this node leads a joint membership.
    pub async fn finish_joint_change(&self) -> Result<bool> {
        let m = self.raft.metrics().borrow_watched().clone();
        let configs = m.membership_config.membership().get_joint_config().clone();
        if m.state != ServerState::Leader || configs.len() < 2 {
            return Ok(false);
        }
        let Some(last) = configs.last().cloned() else {
            return Ok(false);
        };
        tracing::info!(voters = ?last, "Finishing a membership change left in joint consensus.");
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(last), true)
            .await
            .map_err(|e| self.map_change_error(e))?;
        Ok(true)
    }

    fn require_leader(&self) -> Result<()> {
        if self.raft.is_leader() {
            return Ok(());
        }
        let m = self.raft.metrics().borrow_watched().clone();
        let leader_addr = m
            .current_leader
            .and_then(|id| m.membership_config.get_node(&id).map(|n| n.addr.clone()));
        Err(StoreError::NotLeader {
            leader_id: m.current_leader,
            leader_addr,
        })
    }

    fn map_change_error(
        &self,
        e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> StoreError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => forward_reason(f.reason)
                .unwrap_or(StoreError::NotLeader {
                    leader_id: f.leader_id,
                    leader_addr: f.leader_node.map(|n| n.addr),
                }),
            RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => {
                StoreError::OutcomeUnknown(
                    "the membership entry was discarded when leadership changed".into(),
                )
            }
            RaftError::APIError(other) => StoreError::Membership(other.to_string()),
            RaftError::Fatal(f) => raft_err(f),
        }
    }

    /// The node's Raft state now.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        NodeStatus {
            node_id: self.config.node_id,
            state: state.to_owned(),
            leader_id: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.as_ref().map(|id| id.index),
        }
    }

    /// Stops Raft. Durable state is already on disk; this only ends tasks.
    pub async fn shutdown(&self) -> Result<()> {
        self.raft.shutdown().await.map_err(raft_err)
    }
}

/// Removes the files in `dir` whose names start with `prefix` and end
/// with `suffix`.
fn remove_matching(dir: &std::path::Path, prefix: &str, suffix: &str) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Why a forwarded write got no reply.
enum ForwardFailure {
    /// The request never left: safe to send again.
    NotSent(String),
    /// The request may have arrived.
    Unknown(String),
}

/// The leader's clock check: `None` when the command's timestamp is within
/// [`MAX_CLOCK_SKEW`] of `now` (or cannot be read, which apply rejects).
fn check_clock(command: &Command, now: OffsetDateTime) -> Option<WriteRefused> {
    command.leaves.iter().find_map(|proposed| {
        let (text, at) = stamp_of(proposed)?;
        let skew = (at - now).unsigned_abs();
        (skew > MAX_CLOCK_SKEW).then(|| WriteRefused::ClockSkew {
            entry: text,
            leader: now.format(&Rfc3339).unwrap_or_default(),
        })
    })
}

/// The timestamp a proposed leaf is stamped with, as written and as read;
/// `None` when the leaf or its timestamp does not parse, which apply
/// rejects.
pub(crate) fn stamp_of(proposed: &ProposedLeaf) -> Option<(String, OffsetDateTime)> {
    let Ok(Ok(entry)) = LedgerEntry::decode_proposed(&proposed.leaf) else {
        return None;
    };
    let at = OffsetDateTime::parse(entry.timestamp(), &Rfc3339).ok()?;
    Some((entry.timestamp().to_owned(), at))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A command of one registration stamped `at`; `n` makes its content
    /// id and SHA-256 its own.
    pub(crate) fn command(at: &str, n: u64) -> Command {
        let mut hasher = media_fingerprint::StreamHasher::new();
        hasher.update(&n.to_be_bytes());
        let exact = hasher.finish().unwrap();
        let leaf = format!(
            r#"{{"v":1,"type":"content.registered","content_id":"0192f0c1-0000-7000-8000-{n:012}","registered_at":"{at}","registrant":"operator","media_kind":"other","size":8,"sha256":"{}","iscc":{{"instance":"{}","data":"{}"}},"metadata":{{}}}}"#,
            exact
                .sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            exact.instance_code,
            exact.data_code,
        );
        Command {
            leaves: vec![crate::types::ProposedLeaf {
                leaf,
                prints: None,
                token_sha256: None,
            }],
        }
    }

    fn command_at(at: &str) -> Command {
        command(at, 0)
    }

    async fn single_node(dir: &std::path::Path) -> (RaftNode, Registry) {
        let url = format!("sqlite://{}/registry.db?mode=rwc", dir.display());
        let registry = Registry::connect(&url).await.unwrap();
        let node = RaftNode::start(
            NodeConfig {
                node_id: 1,
                advertise_addr: "http://127.0.0.1:1".into(),
                node_key: String::new(),
                dir: dir.join("raft"),
                snapshot_every: 5000,
            },
            registry.clone(),
            Arc::new(NoPeers),
        )
        .await
        .unwrap();
        node.initialize_single().await.unwrap();
        node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        node.wait_applied(1, Duration::from_secs(10)).await.unwrap();
        (node, registry)
    }

    /// A transport for a node with no peers.
    struct NoPeers;

    impl Transport for NoPeers {
        fn call(
            &self,
            _target: u64,
            _addr: String,
            _rpc: Rpc,
            _body: Vec<u8>,
        ) -> crate::BoxFuture<'_, std::io::Result<Vec<u8>>> {
            Box::pin(async { Err(std::io::Error::other("no peers")) })
        }
    }

    fn bump_terms(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "term" {
                        *v = serde_json::json!(99);
                    } else {
                        bump_terms(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(bump_terms),
            _ => {}
        }
    }

    /// Snapshots that openraft would panic on, or whose leaves would stop
    /// the state machine, are refused as bad messages and change nothing.
    #[tokio::test]
    async fn bad_snapshots_are_refused_before_install() {
        let dir = tempfile::tempdir().unwrap();
        let (node, _) = single_node(dir.path()).await;
        let m = node.raft.metrics().borrow_watched().clone();
        let applied = m.last_applied.unwrap();
        let request = |last_log_id, leaves: Vec<&str>, offset: u64| {
            let meta = crate::types::SnapshotMeta {
                last_log_id,
                last_membership: (*m.membership_config).clone(),
            };
            let mut data = serde_json::to_string(&meta).unwrap() + "\n";
            for leaf in leaves {
                data += &(serde_json::to_string(&registry::SnapshotLeaf {
                    leaf: leaf.to_owned(),
                    prints: None,
                    token_sha256: None,
                })
                .unwrap()
                    + "\n");
            }
            let header = ChunkHeader {
                vote: m.vote,
                meta,
                transfer: "ab12".into(),
                offset,
                done: true,
            };
            crate::network::frame(&header, data.as_bytes()).unwrap()
        };
        let mut beyond = serde_json::to_value(applied).unwrap();
        bump_terms(&mut beyond);
        let beyond = serde_json::from_value(beyond).unwrap();
        let ahead = openraft::LogId {
            index: applied.index + 5,
            ..applied
        };
        for (body, why) in [
            (b"garbage".to_vec(), "not a snapshot chunk"),
            (request(None, vec![], 0), "no last log id"),
            (request(Some(beyond), vec![], 0), "beyond the sender's vote"),
            (request(Some(ahead), vec!["not a leaf"], 0), "leaf 0"),
            (request(Some(ahead), vec![], 10), "no snapshot transfer"),
        ] {
            match node.handle_rpc(Rpc::Snapshot, &body).await {
                Err(StoreError::BadMessage(message)) => {
                    assert!(message.contains(why), "{message}")
                }
                other => panic!(
                    "{why}: {:?}",
                    other.map(|b| String::from_utf8_lossy(&b).into_owned())
                ),
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("raft"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("incoming."))
            .collect();
        assert!(leftovers.is_empty(), "a refused snapshot leaves no file");
        assert_eq!(node.status().state, "leader", "the node is still running");
        node.shutdown().await.unwrap();
    }

    /// Commands proposed while an entry is under way share the next entry,
    /// and each proposer gets the outcome of its own leaves.
    #[tokio::test]
    async fn concurrent_commands_share_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (node, registry) = single_node(dir.path()).await;
        let at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
            .format(&Rfc3339)
            .unwrap();
        const WRITERS: u64 = 16;
        let writes: Vec<_> = (0..WRITERS)
            .map(|n| {
                let node = node.clone();
                let command = command(&at, n);
                tokio::spawn(async move {
                    let leaf = command.leaves[0].leaf.clone();
                    (leaf, node.write(command).await.unwrap())
                })
            })
            .collect();
        let mut entries = BTreeSet::new();
        for write in writes {
            let (leaf, written) = write.await.unwrap();
            entries.insert(written.log_index);
            let [ApplyOutcome::Appended { index, .. }] = written.outcomes[..] else {
                panic!("one leaf, appended: {:?}", written.outcomes);
            };
            let stored = registry.entry(index).await.unwrap().unwrap();
            assert_eq!(stored.leaf, leaf, "a writer is told where its own leaf is");
        }
        assert!(
            entries.len() < WRITERS as usize,
            "{WRITERS} commands in {} entries",
            entries.len()
        );
        assert_eq!(registry.tree_size().await.unwrap(), WRITERS);
        node.shutdown().await.unwrap();
    }

    /// The leader takes entries stamped within 2 s of its clock, either
    /// way, and refuses the rest.
    #[test]
    fn clock_bound() {
        let now = OffsetDateTime::parse("2026-12-04T10:00:00Z", &Rfc3339).unwrap();
        for ok in [
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:00:02Z",
            "2026-12-04T09:59:58Z",
        ] {
            assert!(check_clock(&command_at(ok), now).is_none(), "{ok}");
        }
        for bad in [
            "2026-12-04T10:00:03Z",
            "2026-12-04T09:59:57Z",
            "2025-12-04T10:00:00Z",
        ] {
            assert!(
                matches!(
                    check_clock(&command_at(bad), now),
                    Some(WriteRefused::ClockSkew { .. })
                ),
                "{bad}"
            );
        }
    }
}
