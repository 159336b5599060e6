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

use raft_store::ProposedLeaf;
use registry::{
    ApplyOutcome, Approval, ClusterFormed, EntryBody, LedgerEntry, MembershipApproved, NodeAdded,
    NodeRecord, NodeRemoved, Rejection,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, ApiResult};
use crate::propose::stamp;
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
    /// Set only between nodes: the approval the operator's node signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// How long a recorded approval counts towards a change.
const APPROVAL_VALIDITY: time::Duration = time::Duration::hours(24);

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
            if let Some(recorded) = state.registry.recorded_node(req.node_id).await? {
                return Err(ApiError::Conflict(format!(
                    "node id {} was used before (by {}); node ids are never reused",
                    req.node_id, recorded.record.address
                )));
            }
            require_feature_level(state, CLUSTER_FEATURE_LEVEL).await?;
            let reply = state
                .peers
                .admit(req.node_id, &req.address, members(&view))
                .await
                .map_err(|e| {
                    ApiError::Conflict(format!("admitting node {}: {e:#}", req.node_id))
                })?;
            let record = NodeRecord {
                node_id: req.node_id,
                address: req.address.clone(),
                node_key: reply.node_key.clone(),
                checkpoint_key: reply.checkpoint_key.clone().unwrap_or_default(),
                feature_level: reply.feature_level,
            };
            append(state, move |at| {
                EntryBody::NodeAdded(NodeAdded {
                    added_at: at,
                    node: record.clone(),
                })
            })
            .await?;
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

/// Asks for a change of the voters. The change is made once the operators
/// of a majority of the current voters have each asked for it on their
/// own node: each request records that node's signed approval in the
/// ledger; the one that completes the majority makes the change (through
/// joint consensus) and answers 200; the others answer 202 with who has
/// approved so far. While there is one voter, its operator decides alone.
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
    match (via, req.approval) {
        (Via::Operator, Some(_)) => Err(ApiError::BadRequest(
            "approval is set by the node, not in the request".into(),
        )),
        (Via::Peer, None) => Err(ApiError::BadRequest(
            "a forwarded change must carry its approval".into(),
        )),
        (Via::Operator, None) => {
            let approval = approve(state, &voters).await?;
            submit(state, via, voters, approval).await
        }
        (Via::Peer, Some(approval)) => submit(state, via, voters, approval).await,
    }
}

/// This node's signed approval of changing the current voters to `to`.
async fn approve(state: &AppState, to: &BTreeSet<u64>) -> ApiResult<Approval> {
    let view = state.node.cluster();
    if view.joint {
        return Err(ApiError::Unavailable(
            "a change of the voters is under way; retry when it is done".into(),
        ));
    }
    if !view.voters.contains(&view.node_id) {
        return Err(ApiError::Conflict(format!(
            "node {} is not a voter; only voters' operators decide who votes",
            view.node_id
        )));
    }
    let cluster_id = state
        .peers
        .record()
        .map(|r| r.cluster_id)
        .ok_or_else(|| ApiError::Unavailable("this node is not in a cluster yet".into()))?;
    let mut approval = Approval {
        cluster_id,
        from_voters: view.voters.clone(),
        to_voters: to.iter().copied().collect(),
        approver: view.node_id,
        approved_at: stamp(&state.registry).await?,
        signature: String::new(),
    };
    state.peers.sign_approval(&mut approval);
    Ok(approval)
}

/// Hands an approval to the leader, or, on the leader, records it and
/// makes the change if a majority of the voters approved it.
async fn submit(
    state: &AppState,
    via: Via,
    to: BTreeSet<u64>,
    approval: Approval,
) -> ApiResult<Response> {
    if !is_leader(state) {
        let req = MembershipRequest {
            voters: to.into_iter().collect(),
            approval: Some(approval),
        };
        let body = serde_json::to_vec(&req).map_err(|e| ApiError::Internal(e.into()))?;
        return forward(state, via, reqwest::Method::POST, "membership", body).await;
    }
    let view = state.node.cluster();
    if approval.from_voters != view.voters {
        return Err(ApiError::Conflict(format!(
            "the voters changed from {:?} to {:?} since this was asked; ask again",
            approval.from_voters, view.voters
        )));
    }
    if let Some(stranger) = to
        .iter()
        .find(|id| !view.nodes.iter().any(|n| n.node_id == **id))
    {
        return Err(ApiError::Conflict(format!(
            "node {stranger} is not a member; add it as a learner first"
        )));
    }
    if to.iter().copied().collect::<Vec<_>>() == view.voters {
        return Ok(json_response(StatusCode::OK, status_json(state, None)));
    }
    require_feature_level(state, CLUSTER_FEATURE_LEVEL).await?;
    let since = (OffsetDateTime::now_utc() - APPROVAL_VALIDITY)
        .format(&Rfc3339)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let from = approval.from_voters.clone();
    let to_list = approval.to_voters.clone();
    let mut approvers = state.registry.approvers(&from, &to_list, &since).await?;
    if !approvers.contains(&approval.approver) {
        let recorded = approval.clone();
        append(state, move |at| {
            EntryBody::MembershipApproved(MembershipApproved {
                recorded_at: at,
                approval: recorded.clone(),
            })
        })
        .await?;
        approvers = state.registry.approvers(&from, &to_list, &since).await?;
    }
    approvers.retain(|id| view.voters.contains(id));
    let needed = view.voters.len() / 2 + 1;
    tracing::info!(
        voters = ?to_list,
        approver = approval.approver,
        approved_by = ?approvers,
        needed,
        "Recorded an approval of a change of the voters."
    );
    if approvers.len() < needed {
        return Ok(json_response(
            StatusCode::ACCEPTED,
            json!({
                "voters": to_list,
                "approved_by": approvers,
                "needed": needed,
            }),
        ));
    }
    state.node.change_voters(to).await?;
    tracing::info!(voters = ?to_list, approved_by = ?approvers, "Changed the voters.");
    let mut body = status_json(state, None);
    body["approved_by"] = json!(approvers);
    Ok(json_response(StatusCode::OK, body))
}

/// Removes a node from the cluster. A voter first leaves the voters, which
/// like any change of the voters needs a majority's approval (a 202 until
/// then); a learner is removed by one operator. The removal is recorded in
/// the ledger, and the id is never used again.
pub async fn remove_node(state: &AppState, via: Via, node_id: u64) -> ApiResult<Response> {
    let view = state.node.cluster();
    if via == Via::Operator && view.voters.contains(&node_id) {
        let to: BTreeSet<u64> = view
            .voters
            .iter()
            .copied()
            .filter(|v| *v != node_id)
            .collect();
        if to.is_empty() {
            return Err(ApiError::Conflict(
                "the last voter cannot be removed".into(),
            ));
        }
        let approval = approve(state, &to).await?;
        let response = submit(state, via, to, approval).await?;
        if response.status() != StatusCode::OK {
            return Ok(response);
        }
    }
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
    let view = state.node.cluster();
    if view.voters.contains(&node_id) {
        return Err(ApiError::Conflict(format!(
            "node {node_id} is a voter; a majority of the voters' operators must approve removing it"
        )));
    }
    if !view.nodes.iter().any(|n| n.node_id == node_id) {
        return Err(ApiError::NotFound(format!(
            "node {node_id} is not a member"
        )));
    }
    if state
        .registry
        .recorded_node(node_id)
        .await?
        .is_some_and(|n| !n.removed)
    {
        append(state, move |at| {
            EntryBody::NodeRemoved(NodeRemoved {
                removed_at: at,
                node_id,
            })
        })
        .await?;
    }
    state.node.remove_node(node_id).await?;
    tracing::info!(node.id = node_id, "Removed a node.");
    Ok(json_response(StatusCode::OK, status_json(state, None)))
}

/// The feature level that introduced the cluster's own entries
/// (`node.added`, `membership.approved`, ...).
const CLUSTER_FEATURE_LEVEL: u32 = 2;

/// Refuses when some voter's build may not know entry types of `level`:
/// such an entry would stop that voter.
pub(crate) async fn require_feature_level(state: &AppState, level: u32) -> ApiResult<()> {
    let view = state.node.cluster();
    let recorded = state.registry.recorded_nodes().await?;
    for voter in &view.voters {
        let known = recorded
            .iter()
            .find(|n| n.record.node_id == *voter)
            .map_or(1, |n| n.record.feature_level);
        if known < level {
            return Err(ApiError::Conflict(format!(
                "node {voter} runs a build of feature level {known}; every voter needs {level} first"
            )));
        }
    }
    Ok(())
}

/// Appends one entry built by `make` from its timestamp.
async fn append(
    state: &AppState,
    make: impl Fn(String) -> EntryBody + Send + 'static,
) -> ApiResult<u64> {
    let outcome = state
        .proposer
        .propose_one(Box::new(move |at| {
            ProposedLeaf::new(&LedgerEntry::new(make(at.to_owned())), None)
        }))
        .await?
        .outcome;
    match outcome {
        ApplyOutcome::Appended { index, .. } => Ok(index),
        ApplyOutcome::Rejected(rejection @ Rejection::TimestampRegressed { .. }) => {
            Err(rejection.into())
        }
        ApplyOutcome::Rejected(rejection) => Err(ApiError::Conflict(rejection.to_string())),
        ApplyOutcome::NoLedgerChange => Err(ApiError::Internal(anyhow::anyhow!(
            "a cluster entry was applied without a ledger change"
        ))),
    }
}

/// Records this node in the ledger if it leads and is not recorded yet:
/// as `cluster.formed` when the ledger is empty (the first leaf of every
/// new cluster), else as `node.added` (a ledger formed by an older build),
/// so that every node's keys can be learnt from the log.
pub async fn record_self(state: &AppState) -> anyhow::Result<()> {
    let node_id = state.node.node_id();
    if !is_leader(state) || state.registry.recorded_node(node_id).await?.is_some() {
        return Ok(());
    }
    let (Some(record), Some(signer)) = (state.peers.record(), state.peers.signer()) else {
        return Ok(());
    };
    let me = NodeRecord {
        node_id,
        address: state.peers.advertise.clone().unwrap_or_default(),
        node_key: state.peers.public_key().to_owned(),
        checkpoint_key: signer.verifier_key(),
        feature_level: state.peers.feature_level,
    };
    let empty = state.registry.tree_size().await? == 0;
    let cluster = record.clone();
    let index = append(state, move |at| {
        if empty {
            EntryBody::ClusterFormed(ClusterFormed {
                formed_at: at,
                cluster_id: cluster.cluster_id.clone(),
                origin: cluster.origin.clone(),
                founder: me.clone(),
            })
        } else {
            EntryBody::NodeAdded(NodeAdded {
                added_at: at,
                node: me.clone(),
            })
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("recording this node in the ledger: {e}"))?;
    tracing::info!(
        ledger.index = index,
        "Recorded this node and its keys in the ledger."
    );
    Ok(())
}

/// The feature level that introduced `node.upgraded`.
const UPGRADE_FEATURE_LEVEL: u32 = 4;

/// Raises members' recorded feature levels to what they claim, if this
/// node leads. The claims are asked of every member (voters and learners,
/// which apply every entry too) over the authenticated peer channel, and
/// `node.upgraded` is proposed only once every one of them answers with at
/// least the level that introduced it: a member whose build did not know
/// the entry type would stop at it. Each entry carries the member's own
/// signed claim, which apply checks against its recorded key.
pub async fn raise_levels(state: &AppState) -> anyhow::Result<()> {
    if !is_leader(state) {
        return Ok(());
    }
    let view = state.node.cluster();
    let recorded = state.registry.recorded_nodes().await?;
    let recorded_level = |id: u64| {
        recorded
            .iter()
            .find(|n| n.record.node_id == id && !n.removed)
            .map(|n| n.record.feature_level)
    };
    let members: Vec<u64> = view.voters.iter().chain(&view.learners).copied().collect();
    // Only when some member may be behind this node's own level: a member
    // ahead of it needs nothing this build can record.
    if members
        .iter()
        .all(|&id| recorded_level(id).is_some_and(|l| l >= state.peers.feature_level))
    {
        return Ok(());
    }
    let mut claims = Vec::with_capacity(members.len());
    for &id in &members {
        let claim = if id == state.node.node_id() {
            state.peers.level_claim()
        } else {
            let Some(addr) = view
                .nodes
                .iter()
                .find(|n| n.node_id == id)
                .map(|n| n.address.clone())
            else {
                return Ok(());
            };
            match state.peers.ask_level(id, &addr).await {
                Ok(claim) => Some(claim),
                Err(e) => {
                    tracing::debug!(node.id = id, error = %e, "A member did not say its level; trying later.");
                    None
                }
            }
        };
        match claim {
            Some(claim) if claim.feature_level >= UPGRADE_FEATURE_LEVEL => claims.push(claim),
            _ => return Ok(()),
        }
    }
    for claim in claims {
        if recorded_level(claim.node_id).is_some_and(|l| l < claim.feature_level) {
            let index = append(state, move |at| {
                EntryBody::NodeUpgraded(registry::NodeUpgraded {
                    upgraded_at: at,
                    node_id: claim.node_id,
                    feature_level: claim.feature_level,
                    signature: claim.signature.clone(),
                })
            })
            .await
            .map_err(|e| anyhow::anyhow!("recording node {}'s level: {e}", claim.node_id))?;
            tracing::info!(
                node.id = claim.node_id,
                feature_level = claim.feature_level,
                ledger.index = index,
                "Recorded a member's new feature level."
            );
        }
    }
    Ok(())
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
