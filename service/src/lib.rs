//! The provreg service: the HTTP API over the registry, with every write
//! going through Raft, plus the `provreg` command line.
//!
//! # Layout
//! - [`config`]: flags and environment.
//! - `identity`: the signing key and operator token in the data dir.
//! - `state`: [`AppState`], shared by handlers.
//! - `routes`: one module per resource (`content`, `log`, `health`).
//! - `connections`: the public listener's accept loop: connection caps and
//!   timeouts. `body_timeout`: slow request bodies. `multipart`: bounds on
//!   multipart framing. `limits`: upload and decode slots, decode memory,
//!   spool space, request rates.
//! - `upload`: streaming uploads to disk while hashing.
//! - `register`: from upload to ledger receipt.
//! - `batch`: registrations by hash alone, many per Raft entry.
//! - `matching`: finding registered content like an upload, through indexes.
//! - `views`: the JSON the API returns.
//! - `auth`, `error`: the operator extractor and problem+json errors.
//! - `peer`: the peer listener's authentication and the peer client.
//! - `cluster`: the operator API's work: learners, voters, status.
//! - [`verify`]: offline receipt checking for `provreg verify`.

#![warn(missing_docs)]

mod auth;
mod batch;
mod body_timeout;
mod catch_panic;
mod cluster;
pub mod config;
mod connections;
mod error;
mod evidence;
mod identity;
mod limits;
mod matching;
mod multipart;
mod parties;
mod peer;
mod propose;
mod provenance;
mod register;
mod rights;
mod routes;
mod state;
mod upload;
pub mod verify;
mod views;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use raft_store::{NodeConfig, RaftNode};
use registry::Registry;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;
pub use views::{ContentView, Evidence, EvidenceEvent, LedgerReceipt, RegistrationReceipt};

use crate::body_timeout::BodyTiming;
use crate::config::{LimitArgs, ServeArgs};
use crate::connections::ConnectionLimits;
use crate::identity::{ClusterRecord, Identity};
use crate::limits::Gates;
use crate::peer::Peers;
use crate::propose::Proposer;

/// The API with its state attached.
pub fn router(state: AppState, body_timing: BodyTiming, max_json_bytes: usize) -> Router {
    let routes = routes::router()
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    // Inside the trace layer, so a panic's 500 is traced like any answer.
    catch_panic::catch_panics(routes)
        // Upload routes lift this for their streamed bodies.
        .layer(DefaultBodyLimit::max(max_json_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            body_timeout::time_bodies(body_timing, request, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_rate,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` within `limits` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: &LimitArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let body_timing = BodyTiming {
        timeout: Duration::from_secs(limits.body_timeout),
        min_rate: limits.min_body_rate,
    };
    let connection_limits = ConnectionLimits {
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_address,
        header_read_timeout: Duration::from_secs(limits.header_read_timeout),
        idle_timeout: Duration::from_secs(limits.idle_timeout),
        max_header_bytes: limits.max_header_bytes,
    };
    connections::serve(
        listener,
        router(state, body_timing, limits.max_json_bytes),
        connection_limits,
        shutdown,
    )
    .await
    .context("serving HTTP")
}

/// Starts a node as configured and serves until `shutdown` resolves.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    args.validate()?;
    let secret = args.cluster_secret()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;

    let identity = Identity::load_or_create(&args.data_dir)?;
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
        .with_context(|| format!("binding --listen {}", args.listen))?;
    let addr = listener.local_addr()?;
    let peer_listener = match args.peer_listen {
        Some(peer_addr) => Some(
            TcpListener::bind(peer_addr)
                .await
                .with_context(|| format!("binding --peer-listen {peer_addr}"))?,
        ),
        None => None,
    };

    let record = ClusterRecord::load(&args.data_dir)?;
    let peers = Peers::new(
        args.node_id,
        &identity,
        secret.as_deref(),
        args.peer_tls_ca.as_deref(),
        args.advertise.clone(),
        args.data_dir.clone(),
        args.feature_level(),
    )?;
    let node = RaftNode::start(
        NodeConfig {
            node_id: args.node_id,
            advertise_addr: args.advertise.clone().unwrap_or_default(),
            node_key: identity.node_public_key(),
            dir: args.data_dir.join("raft"),
            snapshot_every: args.snapshot_every,
        },
        registry.clone(),
        peers.clone(),
    )
    .await
    .context("starting Raft")?;
    peers.attach(node.clone());
    let initialized = node.is_initialized().await?;
    let record = settle_cluster(&args, &peers, record, initialized)?;
    if let Some(record) = record {
        peers.adopt(record)?;
    }
    let formed = !args.join && node.initialize_single().await?;
    if formed {
        tracing::info!(node.id = args.node_id, "Formed a new single-node cluster.");
        node.wait_for_leader(Duration::from_secs(30)).await?;
    }
    if let Some(signer) = peers.signer() {
        tracing::info!(
            origin = %signer.origin(),
            verifier_key = %signer.verifier_key(),
            "Checkpoint signing key ready."
        );
    } else {
        tracing::info!(
            node.id = args.node_id,
            "Waiting to be added to a cluster (POST /v1/cluster/learners on one of its nodes)."
        );
    }

    let state = AppState {
        registry: registry.clone(),
        node: node.clone(),
        proposer: Proposer::start(node.clone(), registry.clone()),
        peers: peers.clone(),
        operator_token_digest: identity.operator_token_digest,
        parties: Arc::default(),
        gates: Arc::new(Gates::new(&args.limits, upload_dir.clone())),
        upload_dir,
        limits: media_fingerprint::Limits::default(),
        content_cache: Arc::default(),
    };
    if formed {
        // Before any other entry: the formation is the ledger's first leaf.
        cluster::record_self(&state).await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let peer_task = match peer_listener {
        Some(peer_listener) => {
            let peer_addr = peer_listener.local_addr()?;
            let mut stop = stop_rx.clone();
            let router = routes::peer::router(state.clone());
            let tls = match (&args.peer_tls_cert, &args.peer_tls_key) {
                (Some(cert), Some(key)) => Some(
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                        .await
                        .with_context(|| {
                            format!(
                                "loading --peer-tls-cert {} and --peer-tls-key {}",
                                cert.display(),
                                key.display()
                            )
                        })?,
                ),
                _ => None,
            };
            tracing::info!(%peer_addr, advertise = ?args.advertise, tls = tls.is_some(), "Peer listener ready.");
            Some(match tls {
                Some(tls) => {
                    let handle = axum_server::Handle::new();
                    let stopper = handle.clone();
                    tokio::spawn(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
                    });
                    let server = axum_server::from_tcp_rustls(peer_listener.into_std()?, tls)?
                        .handle(handle);
                    tokio::spawn(async move { server.serve(router.into_make_service()).await })
                }
                None => tokio::spawn(async move {
                    axum::serve(peer_listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|stop| *stop).await;
                        })
                        .await
                }),
            })
        }
        None => None,
    };
    let duties = tokio::spawn(leader_duties(state.clone(), stop_rx.clone()));
    let sweeper = tokio::spawn(forget_idle_clients(state.gates.clone(), stop_rx.clone()));
    let checkpoints = tokio::spawn(checkpoint_wal(registry.clone(), stop_rx));
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "Listening.");
    serve(listener, state, &args.limits, shutdown).await?;
    let _ = stop_tx.send(true);
    if let Some(task) = peer_task {
        task.await?.context("serving the peer listener")?;
    }
    duties.abort();
    sweeper.abort();
    checkpoints.abort();

    node.shutdown().await?;
    registry.close().await;
    tracing::info!("Stopped.");
    Ok(())
}

/// Decides which cluster this node belongs to, from its data dir and
/// flags, or refuses to start with the reason.
fn settle_cluster(
    args: &ServeArgs,
    peers: &Peers,
    record: Option<ClusterRecord>,
    initialized: bool,
) -> anyhow::Result<Option<ClusterRecord>> {
    let dir = args.data_dir.display();
    if let (Some(record), Some(origin)) = (&record, &args.origin)
        && *origin != record.origin
    {
        anyhow::bail!(
            "--origin {origin:?} differs from the origin {:?} this cluster was formed with; the origin never changes",
            record.origin
        );
    }
    if args.join {
        return match record {
            Some(record) if record.secret_id.as_deref() != peers.secret_id() => anyhow::bail!(
                "--join: the data dir {dir} holds the state of cluster {}, joined or formed with another cluster secret; start from an empty data dir to join another cluster",
                record.cluster_id
            ),
            Some(record) => Ok(Some(record)),
            None if initialized => anyhow::bail!(
                "--join: the data dir {dir} holds the state of a cluster this node formed on its own; start from an empty data dir to join another cluster"
            ),
            None => Ok(None),
        };
    }
    if let Some(record) = record {
        return Ok(Some(record));
    }
    let cluster_id = uuid::Uuid::now_v7().to_string();
    let origin = match (&args.origin, initialized) {
        (Some(origin), _) => origin.clone(),
        // A ledger formed before the origin was fixed at formation was
        // signed under the old default; it keeps it.
        (None, true) => "provreg.local/log".to_owned(),
        (None, false) => format!("provreg.local/{cluster_id}"),
    };
    let record = ClusterRecord {
        cluster_id,
        origin,
        secret_id: peers.secret_id().map(str::to_owned),
        admitted_by: Default::default(),
    };
    record.save(&args.data_dir)?;
    tracing::info!(cluster.id = %record.cluster_id, origin = %record.origin, "Recorded the cluster's identity.");
    Ok(Some(record))
}

/// Every minute, drops the rate limiters' memory of clients gone quiet.
async fn forget_idle_clients(gates: Arc<Gates>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => gates.forget_idle_clients(),
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Copies the SQLite WAL back into the database twice a second, off the
/// state machine's commits (see `Registry::checkpoint_wal`).
async fn checkpoint_wal(registry: Registry, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        match registry.checkpoint_wal().await {
            Ok(Some((frames, copied))) => {
                tracing::trace!(
                    wal.frames = frames,
                    wal.copied = copied,
                    "Checkpointed the WAL."
                );
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "Could not checkpoint the WAL."),
        }
    }
}

/// What a leader keeps doing: finishing any voter change a previous leader
/// left in joint consensus, so no change is left half done, and recording
/// itself in the ledger if an older build formed it.
async fn leader_duties(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = state.node.finish_joint_change().await {
            tracing::warn!(error = %e, "Could not finish a membership change left in joint consensus.");
        }
        if let Err(e) = cluster::record_self(&state).await {
            tracing::warn!(error = %e, "Could not record this node in the ledger.");
        }
        if let Err(e) = cluster::raise_levels(&state).await {
            tracing::warn!(error = %e, "Could not raise the members' recorded feature levels.");
        }
    }
}
