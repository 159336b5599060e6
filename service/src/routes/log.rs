//! `/v1/log`: the public, verifiable view of the ledger.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use registry::LedgerEntry;
use registry::merkle::encode_hash;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const TEXT: [(axum::http::HeaderName, &str); 1] = [(CONTENT_TYPE, "text/plain; charset=utf-8")];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/log/checkpoint", get(get_checkpoint))
        .route("/v1/log/key", get(get_key))
        .route("/v1/log/entries/{index}", get(get_entry))
        .route("/v1/log/proof/inclusion", get(get_inclusion_proof))
        .route("/v1/log/proof/consistency", get(get_consistency_proof))
}

/// The current tree head as a signed C2SP checkpoint.
async fn get_checkpoint(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let head = state.registry.tree_head(None).await?;
    Ok((TEXT, state.signer()?.sign_checkpoint(&head)?))
}

/// The note verifier key that checkpoints are signed with.
async fn get_key(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    Ok((TEXT, format!("{}\n", state.signer()?.verifier_key())))
}

#[derive(Serialize)]
struct EntryView {
    index: u64,
    leaf: String,
    entry: LedgerEntry,
}

/// One leaf, as bytes and decoded.
async fn get_entry(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<EntryView>> {
    let Path(raw) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let index: u64 = raw.parse().map_err(|_| {
        ApiError::BadRequest(format!("index {raw:?} is not a non-negative integer"))
    })?;
    let stored = state
        .registry
        .entry(index)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the log has no entry {index}")))?;
    Ok(Json(EntryView {
        index,
        leaf: BASE64_STANDARD.encode(stored.leaf.as_bytes()),
        entry: stored.entry,
    }))
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

#[derive(Serialize)]
struct InclusionProof {
    index: u64,
    tree_size: u64,
    root_hash: String,
    hashes: Vec<String>,
}

/// RFC 9162 inclusion proof of leaf `index` in the tree of `tree_size`.
async fn get_inclusion_proof(
    State(state): State<AppState>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> ApiResult<Json<InclusionProof>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (root, proof) = state.registry.inclusion_proof(q.index, q.tree_size).await?;
    Ok(Json(InclusionProof {
        index: q.index,
        tree_size: q.tree_size,
        root_hash: encode_hash(&root),
        hashes: proof.iter().map(encode_hash).collect(),
    }))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

#[derive(Serialize)]
struct ConsistencyProof {
    from: u64,
    to: u64,
    root_hash: String,
    hashes: Vec<String>,
}

/// RFC 9162 consistency proof from the tree of `from` leaves to that of `to`.
async fn get_consistency_proof(
    State(state): State<AppState>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> ApiResult<Json<ConsistencyProof>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (root, proof) = state.registry.consistency_proof(q.from, q.to).await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        root_hash: encode_hash(&root),
        hashes: proof.iter().map(encode_hash).collect(),
    }))
}
