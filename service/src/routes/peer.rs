//! `/v1/raft`: the peer listener's routes. Everything but admission is
//! behind [`peer::authenticate`]: signed by a member, answered signed.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use raft_store::{ClusterView, Rpc};

use crate::cluster::{self, LearnerRequest, MembershipRequest, Via};
use crate::error::{ApiError, ApiResult};
use crate::peer;
use crate::state::AppState;

/// The peer listener's router.
pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route("/v1/raft/{rpc}", post(post_rpc))
        .route("/v1/raft/cluster/learners", post(post_learner))
        .route("/v1/raft/cluster/membership", post(post_membership))
        .route("/v1/raft/cluster/nodes/{node_id}", delete(delete_node))
        .route("/v1/raft/cluster/status", get(get_leader_view))
        .route("/v1/raft/node/level", get(get_level))
        .fallback(|| async { ApiError::NotFound("no such peer endpoint".into()) })
        // The extractors' default of 2 MB is below a command's bound; the
        // authentication layer has read the body within the same bound.
        .layer(axum::extract::DefaultBodyLimit::max(
            raft_store::MAX_RPC_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.peers.clone(),
            peer::authenticate,
        ))
        .with_state(state.clone());
    Router::new()
        .route("/v1/raft/admit", post(peer::post_admission))
        .with_state(state.peers.clone())
        .merge(authenticated)
}

/// This node's signed claim of its feature level, for the leader that
/// records members' levels.
async fn get_level(State(state): State<AppState>) -> ApiResult<Json<peer::LevelClaim>> {
    state
        .peers
        .level_claim()
        .map(Json)
        .ok_or_else(|| ApiError::Unavailable("this node belongs to no cluster yet".into()))
}

/// A Raft message, a forwarded write or a read-index request.
async fn post_rpc(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Ok(Path(name)) = path else {
        return ApiError::NotFound("no such RPC".into()).into_response();
    };
    let Some(rpc) = Rpc::parse(&name) else {
        return ApiError::NotFound(format!("no RPC named {name:?}")).into_response();
    };
    match state.node.handle_rpc(rpc, &body).await {
        Ok(reply) => (StatusCode::OK, reply).into_response(),
        Err(e @ raft_store::StoreError::BadMessage(_)) => {
            ApiError::BadRequest(e.to_string()).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn post_learner(
    State(state): State<AppState>,
    body: Result<Json<LearnerRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::add_learner(&state, Via::Peer, req).await
}

async fn post_membership(
    State(state): State<AppState>,
    body: Result<Json<MembershipRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::change_membership(&state, Via::Peer, req).await
}

async fn delete_node(
    State(state): State<AppState>,
    path: Result<Path<u64>, PathRejection>,
) -> ApiResult<Response> {
    let Path(node_id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::remove_node(&state, Via::Peer, node_id).await
}

/// This node's view with replication progress, for followers' status.
async fn get_leader_view(State(state): State<AppState>) -> Json<ClusterView> {
    Json(state.node.cluster())
}
