//! `POST /v1/content/batch`: registrations by hash alone, for registrants
//! that fingerprint their files themselves.
//!
//! Each valid item becomes a `content.claimed` leaf; all of a request's
//! leaves travel in one Raft command and are applied in one transaction,
//! each accepted or rejected on its own. A claim says
//! `"fingerprinted_by": "registrant"` and is not a lock: the same bytes can
//! still be registered by upload, and that registration names the claim.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use raft_store::ProposedLeaf;
use registry::{
    ApplyOutcome, ClaimedIscc, ContentClaim, EntryBody, FingerprintedBy, LedgerEntry, Metadata,
    Rejection,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{ApiError, ApiResult};
use crate::propose::{CommandProofs, MakeLeaf, Refused};
use crate::state::AppState;
use crate::views::{ContentView, LedgerReceipt, RegistrationReceipt};

/// Most items in one request.
pub const MAX_ITEMS: usize = 1000;

/// The feature level that introduced `content.claimed`: no voter may meet
/// a claim before its build knows it.
const CLAIM_FEATURE_LEVEL: u32 = 2;

/// One item of the request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    sha256: String,
    size: u64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    iscc: Option<ClaimedIscc>,
    /// Read with [`registry::metadata::from_json`], which is stricter
    /// than `Metadata`'s own `Deserialize` (an object, each scheme once).
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
}

/// One item's result, in request order.
#[derive(Debug, Serialize)]
pub struct ItemResult {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<RegistrationReceipt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<Value>,
}

impl ItemResult {
    fn problem(error: &ApiError) -> Self {
        Self {
            status: error.status().as_u16(),
            receipt: None,
            problem: Some(error.problem()),
        }
    }
}

/// The 200 body.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    results: Vec<ItemResult>,
}

/// Checks one item and builds its claim; the error is the item's 400.
fn claim_of(raw: &RawValue, registrant: &crate::auth::Actor) -> ApiResult<ContentClaim> {
    let item: Item =
        serde_json::from_str(raw.get()).map_err(|e| ApiError::BadRequest(format!("item: {e}")))?;
    let sha256 = item.sha256.to_ascii_lowercase();
    if !registry::is_lower_hex_sha256(&sha256) {
        return Err(ApiError::BadRequest(
            "sha256 must be 64 hexadecimal digits".into(),
        ));
    }
    if let Some(media_type) = &item.media_type {
        let valid = media_type.len() <= 255
            && media_type.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && media_type
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"/!#$&-^_.+".contains(&c))
            });
        if !valid {
            return Err(ApiError::BadRequest(format!(
                "media_type {media_type:?} is not a media type such as audio/flac"
            )));
        }
    }
    let iscc = item.iscc.unwrap_or_default();
    registry::validate_claimed_iscc(&iscc)?;
    let mut metadata = match &item.metadata {
        Some(raw) => registry::metadata::from_json(raw.get().as_bytes())?,
        None => Metadata::default(),
    };
    crate::register::first_holders(&mut metadata, registrant);
    Ok(ContentClaim {
        content_id: uuid::Uuid::now_v7().to_string(),
        // Stamped by the proposer.
        claimed_at: String::new(),
        registrant: registrant.registrant().to_owned(),
        fingerprinted_by: FingerprintedBy::Registrant,
        sha256,
        size: item.size,
        media_type: item.media_type.map(|t| t.to_ascii_lowercase()),
        iscc,
        metadata,
    })
}

/// Registers every valid item; answers each in request order.
pub async fn register_batch(
    state: &AppState,
    items: Vec<Box<RawValue>>,
    registrant: &crate::auth::Actor,
) -> ApiResult<BatchResponse> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "a batch holds 1 to {MAX_ITEMS} items, this one {}",
            items.len()
        )));
    }
    crate::cluster::require_feature_level(state, CLAIM_FEATURE_LEVEL).await?;
    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(items.len());
    let mut claims: Vec<(usize, ContentClaim)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (position, raw) in items.into_iter().enumerate() {
        let checked = match claim_of(&raw, registrant) {
            Ok(claim) => {
                match crate::register::require_parents(state, &claim.metadata.derived_from).await {
                    Ok(()) => crate::register::require_holders(state, &claim.metadata.holders)
                        .await
                        .map(|()| claim),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match checked {
            Ok(claim) => {
                if let Some(first) = seen.get(&claim.sha256) {
                    results.push(Some(ItemResult::problem(&ApiError::Conflict(format!(
                        "item {first} of this batch has the same sha256"
                    )))));
                    continue;
                }
                seen.insert(claim.sha256.clone(), position);
                claims.push((position, claim));
                results.push(None);
            }
            Err(e) => results.push(Some(ItemResult::problem(&e))),
        }
    }
    // Bytes registered or claimed already: one lookup for the batch.
    let hashes: Vec<String> = claims.iter().map(|(_, c)| c.sha256.clone()).collect();
    let holders = state.registry.holders_by_sha256(&hashes).await?;
    claims.retain(|(position, claim)| match holders.get(&claim.sha256) {
        Some(content_id) => {
            results[*position] = Some(ItemResult::problem(&ApiError::Duplicate {
                content_id: content_id.clone(),
            }));
            false
        }
        None => true,
    });
    if !claims.is_empty() {
        let (outcomes, proven) = propose(state, &mut claims).await?;
        let appended: Vec<u64> = outcomes
            .iter()
            .filter_map(|(o, _)| match o {
                ApplyOutcome::Appended { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        // One checkpoint and one read of the proof hashes for the batch:
        // the proposer's, read for the whole command, unless it has none.
        let proven = match proven {
            Some(proven) if appended.iter().all(|&i| proven.proof(i).is_some()) => Some(proven),
            _ => match outcomes
                .iter()
                .filter_map(|(o, _)| match o {
                    ApplyOutcome::Appended { tree_size, .. } => Some(*tree_size),
                    _ => None,
                })
                .max()
            {
                Some(size) => Some(Arc::new(
                    CommandProofs::read(&state.registry, &appended, size).await?,
                )),
                None => None,
            },
        };
        let note = match &proven {
            Some(proven) => Some(state.signer()?.sign_checkpoint(&proven.head)?),
            None => None,
        };
        for ((position, claim), (outcome, leaf)) in claims.into_iter().zip(outcomes) {
            results[position] = Some(match outcome {
                ApplyOutcome::Appended { index, .. } => {
                    let (Some(proven), Some(note)) = (&proven, &note) else {
                        return Err(ApiError::Internal(anyhow::anyhow!(
                            "an appended claim without a tree size"
                        )));
                    };
                    let proof = proven.proof(index).ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("no proof for leaf {index}"))
                    })?;
                    let leaf = match leaf {
                        Some(leaf) => leaf,
                        None => crate::evidence::stored_leaf(state, index).await?,
                    };
                    ItemResult {
                        status: StatusCode::CREATED.as_u16(),
                        receipt: Some(RegistrationReceipt {
                            content: ContentView::from_claim(claim, index),
                            ledger: LedgerReceipt::new(
                                index,
                                proven.head.size,
                                proven.head.root,
                                proof,
                                &leaf,
                                note.clone(),
                            ),
                        }),
                        problem: None,
                    }
                }
                ApplyOutcome::Rejected(rejection) => ItemResult::problem(&rejection.into()),
                ApplyOutcome::NoLedgerChange => ItemResult::problem(&ApiError::Internal(
                    anyhow::anyhow!("a claim was applied without a ledger change"),
                )),
            });
        }
    }
    let results = results
        .into_iter()
        .map(|r| r.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a batch item got no result"))))
        .collect::<ApiResult<Vec<_>>>()?;
    tracing::info!(
        batch.items = results.len(),
        batch.registered = results.iter().filter(|r| r.status == 201).count(),
        "Registered a batch of claims."
    );
    Ok(BatchResponse { results })
}

/// The outcome of each claim, with its leaf text when this call proposed it,
/// and the proposer's proofs of the command when it read them.
type Outcomes = (
    Vec<(ApplyOutcome, Option<String>)>,
    Option<Arc<CommandProofs>>,
);

/// Proposes the claims together (the proposer stamps them), and settles an
/// unknown outcome with a linearizable lookup of their ids.
async fn propose(state: &AppState, claims: &mut [(usize, ContentClaim)]) -> ApiResult<Outcomes> {
    for _ in 0..MAX_PROPOSALS {
        let makers = claims
            .iter()
            .map(|(_, claim)| {
                let unstamped = claim.clone();
                let make: MakeLeaf = Box::new(move |at| {
                    let mut claim = unstamped.clone();
                    claim.claimed_at = at.to_owned();
                    ProposedLeaf::new(&LedgerEntry::new(EntryBody::ContentClaimed(claim)), None)
                });
                make
            })
            .collect();
        match state.proposer.propose(makers).await {
            Ok(proposed) => {
                for (_, claim) in claims.iter_mut() {
                    claim.claimed_at = proposed.at.clone();
                }
                let outcomes = proposed
                    .outcomes
                    .into_iter()
                    .zip(proposed.leaves.into_iter().map(Some))
                    .collect();
                return Ok((outcomes, proposed.proofs));
            }
            Err(Refused::Unknown(why)) => {
                tracing::warn!(reason = %why, "A batch's outcome is unknown; looking it up.");
                state.node.linearize().await?;
                let mut outcomes = Vec::with_capacity(claims.len());
                let mut any = false;
                for (_, claim) in claims.iter_mut() {
                    match state.registry.claim(&claim.content_id).await? {
                        Some(found) => {
                            any = true;
                            outcomes.push((
                                ApplyOutcome::Appended {
                                    index: found.ledger_index,
                                    tree_size: found.ledger_index + 1,
                                },
                                None,
                            ));
                            *claim = found.claim;
                        }
                        None => {
                            let rejection = duplicate_of(state, claim).await?;
                            outcomes.push((ApplyOutcome::Rejected(rejection), None));
                        }
                    }
                }
                if any {
                    return Ok((outcomes, None));
                }
                // Nothing of it committed, and now it never will: again.
            }
            Err(Refused::Failed(e)) => return Err(e),
        }
    }
    Err(ApiError::Unavailable(
        "the batch could not be committed; retry".into(),
    ))
}

/// How many times a batch whose outcome was unknown, and which the lookup
/// showed did not commit, is proposed again.
const MAX_PROPOSALS: usize = 4;

/// Why a claim of a committed batch is not in the ledger: its bytes were
/// registered or claimed first.
async fn duplicate_of(state: &AppState, claim: &ContentClaim) -> ApiResult<Rejection> {
    let found = crate::views::content_by_sha256(&state.registry, &claim.sha256).await?;
    Ok(Rejection::DuplicateContent {
        content_id: found.map_or_else(|| claim.content_id.clone(), |c| c.content_id),
    })
}

/// The request's items, each as sent (so that its metadata is read with
/// the same rules as an upload's); a body that is not a JSON array is
/// refused whole.
pub fn parse_items(body: &[u8]) -> ApiResult<Vec<Box<RawValue>>> {
    serde_json::from_slice::<Vec<Box<RawValue>>>(body).map_err(|e| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => ApiError::BadRequest("the body must be a JSON array of items".into()),
            Err(_) => ApiError::BadRequest(format!("the body is not JSON: {e}")),
        }
    })
}
