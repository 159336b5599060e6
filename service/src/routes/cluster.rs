//! `/v1/cluster`: the operator API. Changes need this node's operator
//! token and are carried out by the leader; the status is public.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::Operator;
use crate::cluster::{self, LearnerRequest, MembershipRequest, Via};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/cluster/learners", post(post_learner))
        .route("/v1/cluster/membership", post(post_membership))
        .route("/v1/cluster/nodes/{node_id}", delete(delete_node))
        .route("/v1/cluster/status", get(get_cluster_status))
}

/// Adds a learner; 200 once it has caught up, 202 with its lag otherwise.
async fn post_learner(
    State(state): State<AppState>,
    _operator: Operator,
    body: Result<Json<LearnerRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::add_learner(&state, Via::Operator, req).await
}

/// Replaces the voters.
async fn post_membership(
    State(state): State<AppState>,
    _operator: Operator,
    body: Result<Json<MembershipRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::change_membership(&state, Via::Operator, req).await
}

/// Removes a node from the cluster.
async fn delete_node(
    State(state): State<AppState>,
    _operator: Operator,
    path: Result<Path<u64>, PathRejection>,
) -> ApiResult<Response> {
    let Path(node_id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    cluster::remove_node(&state, Via::Operator, node_id).await
}

/// Who is in the cluster, who leads, and how far each node is behind.
async fn get_cluster_status(State(state): State<AppState>) -> Json<Value> {
    Json(cluster::status(&state).await)
}
