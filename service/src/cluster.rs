//! Running the cluster: adding learners, changing voters, removing nodes,
//! and its status. Every change is made by the leader; a node that is not
//! the leader forwards the operator's request to it over the peer listener.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raft_store::{ClusterView, PeerNode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long adding a learner waits for it to catch up before answering
/// 202 with its lag.
const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

/// `POST /v1/cluster/learners`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerRequest {
    /// The new node's `--node-id`.
    pub node_id: u64,
    /// The new node's `--advertise` URL.
    pub address: String,
}

/// `POST /v1/cluster/membership`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    /// The voters the cluster should have.
    pub voters: Vec<u64>,
}

/// Who asked: an operator on this node, or a peer forwarding an operator's
/// request (which must not be forwarded again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// This node's operator.
    Operator,
    /// Another node, forwarding.
    Peer,
}

fn is_leader(state: &AppState) -> bool {
    state.node.status().state == "leader"
}

/// Sends an operator request on to the leader's peer listener and relays
/// its answer as it is.
async fn forward(
    state: &AppState,
    via: Via,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> ApiResult<Response> {
    if via == Via::Peer {
        return Err(ApiError::Unavailable(
            "this node is no longer the leader; retry".into(),
        ));
    }
    let view = state.node.cluster();
    let leader = view
        .leader_id
        .and_then(|id| view.nodes.iter().find(|n| n.node_id == id))
        .ok_or_else(|| ApiError::Unavailable("no leader is known now; retry".into()))?;
    let (status, bytes) = state
        .peers
        .send(
            leader.node_id,
            &leader.address,
            method,
            &format!("/v1/raft/cluster/{path}"),
            body,
            CATCH_UP_WAIT + Duration::from_secs(30),
        )
        .await
        .map_err(|e| {
            ApiError::Unavailable(format!(
                "the leader, node {}, did not answer: {e}",
                leader.node_id
            ))
        })?;
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        bytes,
    )
        .into_response())
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn members(view: &ClusterView) -> BTreeMap<u64, PeerNode> {
    view.nodes
        .iter()
        .map(|n| {
            (
                n.node_id,
                PeerNode {
                    addr: n.address.clone(),
                    node_key: n.node_key.clone(),
                },
            )
        })
        .collect()
}

/// Adds a learner: admits the node with the cluster secret, learns its
/// node key, adds it to the membership and waits for it to catch up.
pub async fn add_learner(state: &AppState, via: Via, req: LearnerRequest) -> ApiResult<Response> {
    if req.node_id == 0 {
        return Err(ApiError::BadRequest("node_id must be 1 or more".into()));
    }
    crate::config::validate_advertise(&req.address)
        .map_err(|e| ApiError::BadRequest(format!("address: {e:#}")))?;
    if !is_leader(state) {
        let body = serde_json::to_vec(&req).map_err(|e| ApiError::Internal(e.into()))?;
        return forward(state, via, reqwest::Method::POST, "learners", body).await;
    }
    let view = state.node.cluster();
    let existing = view.nodes.iter().find(|n| n.node_id == req.node_id);
    let node_key = match existing {
        Some(member) if member.address != req.address => {
            return Err(ApiError::Conflict(format!(
                "node {} is a member already, at {}",
                req.node_id, member.address
            )));
        }
        Some(member) => member.node_key.clone(),
        None => {
            let reply = state
                .peers
                .admit(req.node_id, &req.address, members(&view))
                .await
                .map_err(|e| {
                    ApiError::Conflict(format!("admitting node {}: {e:#}", req.node_id))
                })?;
            Some(reply.node_key)
        }
    };
    let node = PeerNode {
        addr: req.address.clone(),
        node_key,
    };
    let progress = state
        .node
        .add_learner(req.node_id, node, CATCH_UP_WAIT)
        .await?;
    tracing::info!(
        node.id = req.node_id,
        address = %req.address,
        caught_up = progress.caught_up,
        "Added a learner."
    );
    let status = if progress.caught_up {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_response(
        status,
        json!({
            "node_id": req.node_id,
            "address": req.address,
            "matched_index": progress.matched_index,
            "lag": progress.lag,
            "caught_up": progress.caught_up,
        }),
    ))
}

/// Replaces the voters, through joint consensus.
pub async fn change_membership(
    state: &AppState,
    via: Via,
    req: MembershipRequest,
) -> ApiResult<Response> {
    let voters: BTreeSet<u64> = req.voters.iter().copied().collect();
    if voters.is_empty() {
        return Err(ApiError::BadRequest(
            "voters must name at least one node".into(),
        ));
    }
    if voters.len() != req.voters.len() {
        return Err(ApiError::BadRequest("voters names a node twice".into()));
    }
    if !is_leader(state) {
        let body = serde_json::to_vec(&req).map_err(|e| ApiError::Internal(e.into()))?;
        return forward(state, via, reqwest::Method::POST, "membership", body).await;
    }
    let view = state.node.cluster();
    if let Some(stranger) = voters
        .iter()
        .find(|id| !view.nodes.iter().any(|n| n.node_id == **id))
    {
        return Err(ApiError::Conflict(format!(
            "node {stranger} is not a member; add it as a learner first"
        )));
    }
    state.node.change_voters(voters.clone()).await?;
    tracing::info!(voters = ?voters, "Changed the voters.");
    Ok(json_response(StatusCode::OK, status_json(state, None)))
}

/// Removes a node from the cluster.
pub async fn remove_node(state: &AppState, via: Via, node_id: u64) -> ApiResult<Response> {
    if !is_leader(state) {
        return forward(
            state,
            via,
            reqwest::Method::DELETE,
            &format!("nodes/{node_id}"),
            Vec::new(),
        )
        .await;
    }
    if node_id == state.node.node_id() {
        return Err(ApiError::Conflict(
            "the leader cannot remove itself; remove it through another node after a leadership change".into(),
        ));
    }
    state.node.remove_node(node_id).await?;
    tracing::info!(node.id = node_id, "Removed a node.");
    Ok(json_response(StatusCode::OK, status_json(state, None)))
}

/// The cluster's status as the operator API shows it. Replication
/// progress comes from the leader's view when it is given.
pub fn status_json(state: &AppState, leader_view: Option<&ClusterView>) -> Value {
    let view = state.node.cluster();
    let progress = leader_view.unwrap_or(&view);
    let nodes: Vec<Value> = view
        .nodes
        .iter()
        .map(|n| {
            let theirs = progress.nodes.iter().find(|p| p.node_id == n.node_id);
            json!({
                "node_id": n.node_id,
                "address": n.address,
                "matched_index": theirs.and_then(|p| p.matched_index),
                "lag": theirs.and_then(|p| p.lag),
            })
        })
        .collect();
    json!({
        "cluster_id": state.peers.record().map(|r| r.cluster_id),
        "node_id": view.node_id,
        "leader_id": view.leader_id,
        "term": view.term,
        "voters": view.voters,
        "learners": view.learners,
        "nodes": nodes,
    })
}

/// The status, with replication progress fetched from the leader when
/// this node does not lead (only the leader tracks it).
pub async fn status(state: &AppState) -> Value {
    let view = state.node.cluster();
    let leader = view
        .leader_id
        .filter(|id| *id != view.node_id)
        .and_then(|id| view.nodes.iter().find(|n| n.node_id == id));
    let Some(leader) = leader else {
        return status_json(state, None);
    };
    let fetched = state
        .peers
        .send(
            leader.node_id,
            &leader.address,
            reqwest::Method::GET,
            "/v1/raft/cluster/status",
            Vec::new(),
            Duration::from_secs(2),
        )
        .await;
    match fetched {
        Ok((status, bytes)) if status.is_success() => {
            match serde_json::from_slice::<ClusterView>(&bytes) {
                Ok(leader_view) => status_json(state, Some(&leader_view)),
                Err(_) => status_json(state, None),
            }
        }
        _ => status_json(state, None),
    }
}
