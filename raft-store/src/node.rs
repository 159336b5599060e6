//! A running Raft node: the one place the service talks to consensus.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, Raft, ServerState};
use registry::{ApplyOutcome, LedgerEntry, Registry};
use serde::Serialize;

use crate::log_store::LogStore;
use crate::network::{Network, Rpc, SnapshotRequest, Transport};
use crate::state_machine::StateMachine;
use crate::types::{Command, TypeConfig};
use crate::{Result, StoreError};

/// How to run this node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id, unique in the cluster.
    pub node_id: u64,
    /// The base address peers reach this node at.
    pub advertise_addr: String,
    /// Directory for the Raft log and snapshot.
    pub dir: PathBuf,
}

/// A handle on the running node. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<TypeConfig, StateMachine>,
    config: Arc<NodeConfig>,
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

fn raft_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Raft(e.to_string())
}

impl RaftNode {
    /// Opens the log in `config.dir`, recovers the state machine from
    /// `registry` and starts Raft. Entries committed but not yet applied
    /// before a crash are applied again from the log.
    pub async fn start<T: Transport>(
        config: NodeConfig,
        registry: Registry,
        transport: Arc<T>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let log = LogStore::open(&config.dir.join("log"))?;
        let sm = StateMachine::new(registry, config.dir.join("snapshot.json"));
        let raft_config = openraft::Config {
            cluster_name: "provreg".into(),
            heartbeat_interval: 250,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network { transport },
            log,
            sm,
        )
        .await
        .map_err(raft_err)?;
        Ok(Self {
            raft,
            config: Arc::new(config),
        })
    }

    /// Makes this node a one-member cluster if it has never been part of one.
    /// Returns whether it did; a node with existing state is left alone.
    pub async fn initialize_single(&self) -> Result<bool> {
        if self.raft.is_initialized().await.map_err(raft_err)? {
            return Ok(false);
        }
        let members = BTreeMap::from([(
            self.config.node_id,
            BasicNode {
                addr: self.config.advertise_addr.clone(),
            },
        )]);
        self.raft.initialize(members).await.map_err(raft_err)?;
        Ok(true)
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

    /// Proposes `entry`, with the JSON of the fingerprints to store beside
    /// it, and waits until it is committed and applied. The outcome is what
    /// the state machine decided, identical on every node.
    pub async fn propose(
        &self,
        entry: LedgerEntry,
        prints: Option<String>,
    ) -> Result<ApplyOutcome> {
        match self.raft.client_write(Command { entry, prints }).await {
            Ok(response) => Ok(response.data),
            Err(e) => match e.forward_to_leader() {
                Some(forward) => Err(StoreError::NotLeader {
                    leader_id: forward.leader_id,
                    leader_addr: forward.leader_node.as_ref().map(|n| n.addr.clone()),
                }),
                None => Err(raft_err(e)),
            },
        }
    }

    /// Handles an RPC from a peer: decodes `body`, hands it to Raft, encodes
    /// the reply. The reply carries Raft's own errors; an `Err` here means
    /// the message itself was bad.
    pub async fn handle_rpc(&self, rpc: Rpc, body: &[u8]) -> Result<Vec<u8>> {
        fn decode<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T> {
            serde_json::from_slice(body).map_err(|e| StoreError::BadMessage(e.to_string()))
        }
        let reply = match rpc {
            Rpc::Append => serde_json::to_vec(&self.raft.append_entries(decode(body)?).await),
            Rpc::Vote => serde_json::to_vec(&self.raft.vote(decode(body)?).await),
            Rpc::Snapshot => {
                let req: SnapshotRequest = decode(body)?;
                let snapshot = openraft::alias::SnapshotOf::<TypeConfig, registry::LedgerSnapshot> {
                    meta: req.meta,
                    snapshot: req.data,
                };
                serde_json::to_vec(&self.raft.install_full_snapshot(req.vote, snapshot).await)
            }
        };
        reply.map_err(|e| StoreError::Io(std::io::Error::other(e)))
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
