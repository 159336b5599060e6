//! Liveness and Raft status.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use raft_store::NodeStatus;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/health", get(get_health))
}

/// The node's Raft status; 200 whenever the process serves requests.
async fn get_health(State(state): State<AppState>) -> Json<NodeStatus> {
    Json(state.node.status())
}
