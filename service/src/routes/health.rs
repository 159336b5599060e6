//! Liveness and Raft status.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use raft_store::NodeStatus;
use serde::Serialize;

use crate::limits::Load;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/health", get(get_health))
}

/// The node's Raft status and its load; 200 whenever the process serves
/// requests.
async fn get_health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        node: state.node.status(),
        load: state.gates.load(),
    })
}

#[derive(Serialize)]
struct Health {
    #[serde(flatten)]
    node: NodeStatus,
    /// What the node is working on now.
    load: Load,
}
