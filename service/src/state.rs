//! Shared state handed to every handler.

use std::path::PathBuf;
use std::sync::Arc;

use raft_store::RaftNode;
use registry::Registry;
use registry::checkpoint::LogSigner;

use crate::error::{ApiError, ApiResult};
use crate::limits::Gates;
use crate::peer::Peers;
use crate::propose::Proposer;

/// What handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Reads of the ledger and content.
    pub registry: Registry,
    /// Writes go through Raft.
    pub node: RaftNode,
    /// Ledger writes, gathered into commands (group commit).
    pub proposer: Proposer,
    /// Node-to-node traffic, the cluster record and the checkpoint signer.
    pub peers: Arc<Peers>,
    /// SHA-256 of the operator token.
    pub operator_token_digest: [u8; 32],
    /// Parties' tokens looked up so far.
    pub parties: Arc<crate::auth::PartyTokens>,
    /// Where uploads are spooled while they are hashed.
    pub upload_dir: PathBuf,
    /// Upload and decode slots, decode memory, spool space and rates.
    pub gates: Arc<Gates>,
    /// Decoding limits for fingerprinting.
    pub limits: media_fingerprint::Limits,
}

impl AppState {
    /// The checkpoint signer; a node waiting to join a cluster has none yet.
    pub fn signer(&self) -> ApiResult<Arc<LogSigner>> {
        self.peers.signer().ok_or_else(|| {
            ApiError::Unavailable(
                "this node has not been admitted to a cluster yet, so it has no log to sign".into(),
            )
        })
    }
}
