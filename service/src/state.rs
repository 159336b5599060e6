//! Shared state handed to every handler.

use std::path::PathBuf;
use std::sync::Arc;

use raft_store::RaftNode;
use registry::Registry;
use registry::checkpoint::LogSigner;

/// What handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Reads of the ledger and content.
    pub registry: Registry,
    /// Writes go through Raft.
    pub node: RaftNode,
    /// Signs checkpoints.
    pub signer: Arc<LogSigner>,
    /// SHA-256 of the operator token.
    pub operator_token_digest: [u8; 32],
    /// Where uploads are spooled while they are hashed.
    pub upload_dir: PathBuf,
    /// Largest accepted upload.
    pub max_upload_bytes: u64,
    /// Decoding limits for fingerprinting.
    pub limits: media_fingerprint::Limits,
}
