//! The provreg service: the HTTP API over the registry, with every write
//! going through Raft, plus the `provreg` command line.
//!
//! # Layout
//! - [`config`]: flags and environment.
//! - `identity`: the signing key and operator token in the data dir.
//! - `state`: [`AppState`], shared by handlers.
//! - `routes`: one module per resource (`content`, `log`, `health`).
//! - `upload`: streaming uploads to disk while hashing.
//! - `register`: from upload to ledger receipt.
//! - `matching`: finding registered content like an upload, through indexes.
//! - `views`: the JSON the API returns.
//! - `auth`, `error`: the operator extractor and problem+json errors.
//! - `transport`: Raft RPC between nodes.
//! - [`verify`]: offline receipt checking for `provreg verify`.

#![warn(missing_docs)]

mod auth;
pub mod config;
mod error;
mod identity;
mod matching;
mod register;
mod routes;
mod state;
mod transport;
mod upload;
pub mod verify;
mod views;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use raft_store::{NodeConfig, RaftNode};
use registry::Registry;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;
pub use views::{ContentView, LedgerReceipt, RegistrationReceipt};

use crate::config::ServeArgs;
use crate::identity::Identity;
use crate::transport::NoPeers;

/// The API with its state attached.
pub fn router(state: AppState) -> Router {
    routes::router()
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
}

/// Starts a node as configured and serves until `shutdown` resolves.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;

    let identity = Identity::load_or_create(&args.data_dir, &args.origin)?;
    tracing::info!(
        path = %identity.key_path.display(),
        verifier_key = %identity.signer.verifier_key(),
        "Checkpoint signing key ready."
    );
    tracing::info!(
        path = %identity.token_path.display(),
        "Operator token ready; writes need `Authorization: Bearer <token>`."
    );

    // Leftovers of uploads interrupted by a crash are never needed again.
    let upload_dir = args.data_dir.join("uploads");
    if upload_dir.exists() {
        std::fs::remove_dir_all(&upload_dir)
            .with_context(|| format!("clearing {}", upload_dir.display()))?;
    }
    std::fs::create_dir_all(&upload_dir)?;

    let registry = Registry::connect(&args.database_url())
        .await
        .context("opening the registry database")?;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;

    let node = RaftNode::start(
        NodeConfig {
            node_id: args.node_id,
            advertise_addr: format!("http://{addr}"),
            dir: args.data_dir.join("raft"),
        },
        registry.clone(),
        Arc::new(NoPeers),
    )
    .await
    .context("starting Raft")?;
    if node.initialize_single().await? {
        tracing::info!(
            node.id = args.node_id,
            "Initialised a new single-node cluster."
        );
    }
    node.wait_for_leader(Duration::from_secs(30)).await?;

    let state = AppState {
        registry: registry.clone(),
        node: node.clone(),
        signer: Arc::new(identity.signer),
        operator_token_digest: identity.operator_token_digest,
        upload_dir,
        max_upload_bytes: args.max_upload_bytes,
        limits: media_fingerprint::Limits::default(),
    };
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "Listening.");
    serve(listener, state, shutdown).await?;

    node.shutdown().await?;
    registry.close().await;
    tracing::info!("Stopped.");
    Ok(())
}
