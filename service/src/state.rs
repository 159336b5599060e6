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
    /// Answers of `GET /v1/content/{id}` already given.
    pub content_cache: Arc<crate::views::ContentCache>,
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

/// Lookups of applied records (registrations, claims, parties). An applied
/// record never changes and only committed entries are applied, so one
/// found here is final. A miss may be committed but not yet applied here:
/// it is looked for again once this node has caught up with every
/// acknowledged write (a linearizable read), at most once per lookup.
pub struct Applied<'a> {
    state: &'a AppState,
    caught_up: bool,
}

impl AppState {
    /// A lookup of applied records; see [`Applied`].
    pub fn applied(&self) -> Applied<'_> {
        Applied {
            state: self,
            caught_up: false,
        }
    }
}

impl Applied<'_> {
    /// What `find` finds here, or else after catching up.
    pub async fn find<T, E, Fut>(&mut self, find: impl Fn() -> Fut) -> ApiResult<Option<T>>
    where
        Fut: std::future::Future<Output = Result<Option<T>, E>>,
        ApiError: From<E>,
    {
        if let Some(found) = find().await? {
            return Ok(Some(found));
        }
        if self.caught_up {
            return Ok(None);
        }
        self.state.node.linearize().await?;
        self.caught_up = true;
        Ok(find().await?)
    }
}
