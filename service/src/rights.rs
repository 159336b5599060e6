//! Rights changes on signed intents, and the queries that answer who holds
//! what, each with the evidence it rests on.

use raft_store::ProposedLeaf;
use registry::intent::{IntentBody, IntentReason, SignedIntent, SignerKey, decode_public_key};
use registry::rights::{ContentTransferred, RightsReason, after_transfer};
use registry::{ApplyOutcome, EntryBody, Holder, LedgerEntry, Rejection};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, ApiResult};
use crate::propose::{MakeLeaf, Placed, Refused, receipt};
use crate::state::AppState;
use crate::views::{Evidence, LedgerReceipt};

/// The feature level that introduced `content.transferred`.
const TRANSFER_FEATURE_LEVEL: u32 = 4;

/// How many times a transfer is proposed again when the holders changed
/// between reading them and applying it.
const MAX_TRANSFER_PROPOSALS: usize = 3;

/// The checks of a signed intent that need no rights state, made before
/// proposing for a fast answer: never applied, this log, not expired now.
/// Apply makes them again against the entry's timestamp.
pub async fn precheck(state: &AppState, signed: &SignedIntent) -> ApiResult<()> {
    let key = signed.replay_key_hex();
    if state.registry.intent_applied(&key).await?.is_some() {
        return Err(ApiError::Intent {
            reason: IntentReason::Replayed.as_str().to_owned(),
            detail: format!("intent {key} was applied before"),
        });
    }
    signed.check_log(state.signer()?.origin())?;
    signed.check_expiry(OffsetDateTime::now_utc())?;
    Ok(())
}

/// Proposes the leaf `make` builds, which records `signed`. A write whose
/// outcome is unknown is looked up by the intent's replay key after a
/// linearizable read: found, it committed; not found, it never will.
pub async fn propose_intent(
    state: &AppState,
    signed: &SignedIntent,
    make: MakeLeaf,
) -> ApiResult<Result<Placed, Rejection>> {
    match state.proposer.propose_one(make).await {
        Ok(one) => match one.outcome {
            ApplyOutcome::Appended { index, tree_size } => Ok(Ok(Placed {
                index,
                tree_size: one.tree_size.unwrap_or(tree_size).max(tree_size),
                leaf: Some(one.leaf),
                proofs: one.proofs,
            })),
            ApplyOutcome::Rejected(rejection) => Ok(Err(rejection)),
            ApplyOutcome::NoLedgerChange => Err(ApiError::Internal(anyhow::anyhow!(
                "a signed intent was applied without a ledger change"
            ))),
        },
        Err(Refused::Unknown(why)) => {
            let key = signed.replay_key_hex();
            tracing::warn!(intent.sha256 = %key, reason = %why, "An intent's outcome is unknown; looking it up.");
            state.node.linearize().await?;
            match state.registry.intent_applied(&key).await? {
                Some(index) => Ok(Ok(Placed {
                    index,
                    tree_size: state.registry.tree_size().await?,
                    leaf: None,
                    proofs: None,
                })),
                None => Err(ApiError::Unavailable(
                    "the intent could not be committed; retry".into(),
                )),
            }
        }
        Err(Refused::Failed(e)) => Err(e),
    }
}

/// The 201 of `POST /v1/content/{id}/transfers`.
#[derive(Debug, Serialize)]
pub struct TransferReceipt {
    /// The content item.
    pub content_id: String,
    /// Its holders once the transfer applied.
    pub holders: Vec<Holder>,
    /// The `content.transferred` leaf, with proof.
    pub ledger: LedgerReceipt,
}

/// Moves ownership shares of `content_id` on a `transfer` intent signed by
/// every giving party. Every check apply makes is made here first; apply
/// makes them again against the log.
pub async fn transfer_content(
    state: &AppState,
    content_id: &str,
    body: &[u8],
) -> ApiResult<TransferReceipt> {
    let signed = SignedIntent::parse(body)?;
    let IntentBody::Transfer(intent) = &signed.intent().body else {
        return Err(ApiError::BadRequest(format!(
            "this endpoint takes transfer intents, not {}",
            signed.kind().as_str()
        )));
    };
    if intent.content_id != content_id {
        return Err(ApiError::BadRequest(format!(
            "the intent transfers content {}, not content {content_id}",
            intent.content_id
        )));
    }
    crate::cluster::require_feature_level(state, TRANSFER_FEATURE_LEVEL).await?;
    precheck(state, &signed).await?;
    let mut last = None;
    for _ in 0..MAX_TRANSFER_PROPOSALS {
        let holders = state
            .applied()
            .find(|| state.registry.holders(content_id, None))
            .await?
            .ok_or_else(|| refusal(RightsReason::UnknownContent, content_id))?
            .holders;
        let after =
            after_transfer(&holders, &intent.from, &intent.to).map_err(|(reason, detail)| {
                ApiError::Intent {
                    reason: reason.as_str().to_owned(),
                    detail,
                }
            })?;
        for share in &intent.to {
            match crate::parties::party(state, &share.party_id).await {
                Ok(_) => {}
                Err(ApiError::NotFound(_)) => {
                    return Err(Rejection::UnknownParty {
                        party_id: share.party_id.clone(),
                    }
                    .into());
                }
                Err(e) => return Err(e),
            }
        }
        let mut required = Vec::with_capacity(intent.from.len());
        for share in &intent.from {
            let party = crate::parties::party(state, &share.party_id).await?.party;
            required.push(SignerKey::new(
                &share.party_id,
                decode_public_key(&party.public_key)?,
            ));
        }
        signed.verify_signers(&required)?;
        let transferred = ContentTransferred {
            transferred_at: String::new(),
            content_id: content_id.to_owned(),
            holders: after.clone(),
            intent_sha256: signed.replay_key_hex(),
            signed: signed.to_envelope(),
        };
        let make: MakeLeaf = Box::new(move |at| {
            let mut transferred = transferred.clone();
            transferred.transferred_at = at.to_owned();
            ProposedLeaf::new(
                &LedgerEntry::new(EntryBody::ContentTransferred(transferred)),
                None,
            )
        });
        match propose_intent(state, &signed, make).await? {
            Ok(placed) => {
                tracing::info!(content.id = %content_id, ledger.index = placed.index, "Transferred ownership shares.");
                let ledger = receipt(state, placed).await?;
                return Ok(TransferReceipt {
                    content_id: content_id.to_owned(),
                    holders: recorded_holders(&ledger)?,
                    ledger,
                });
            }
            Err(Rejection::IntentRefused { rule, detail })
                if rule == RightsReason::HoldersChanged.as_str() =>
            {
                last = Some(ApiError::Intent {
                    reason: rule,
                    detail,
                });
            }
            Err(rejection) => return Err(rejection.into()),
        }
    }
    Err(last.unwrap_or_else(|| {
        ApiError::Unavailable("the transfer could not be committed; retry".into())
    }))
}

/// The holders a transfer receipt's leaf records: the leaf is the truth,
/// also when the receipt was found after an unknown outcome.
fn recorded_holders(ledger: &LedgerReceipt) -> ApiResult<Vec<Holder>> {
    use base64::Engine;
    let leaf = base64::prelude::BASE64_STANDARD
        .decode(&ledger.leaf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a receipt's leaf: {e}")))?;
    let leaf = String::from_utf8(leaf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a receipt's leaf: {e}")))?;
    match LedgerEntry::from_leaf(&leaf)?.body {
        EntryBody::ContentTransferred(transferred) => Ok(transferred.holders),
        _ => Err(ApiError::Internal(anyhow::anyhow!(
            "an applied transfer's intent is recorded by another kind of leaf"
        ))),
    }
}

fn refusal(reason: RightsReason, content_id: &str) -> ApiError {
    ApiError::Intent {
        reason: reason.as_str().to_owned(),
        detail: format!("content {content_id} is not registered"),
    }
}

/// The answer of `GET /v1/content/{id}/holders`.
#[derive(Debug, Serialize)]
pub struct HoldersView {
    /// The content item.
    pub content_id: String,
    /// The instant asked about, or `None` for now.
    pub at: Option<String>,
    /// Holders and shares then, in ascending party id.
    pub holders: Vec<Holder>,
    /// The registration and transfers the answer rests on, proven.
    pub evidence: Evidence,
}

/// The holders of `content_id` now or at `at`, from this node's applied
/// state (the caller chose how fresh it must be).
pub async fn holders(
    state: &AppState,
    content_id: &str,
    at: Option<OffsetDateTime>,
) -> ApiResult<HoldersView> {
    let holdings = state
        .registry
        .holders(content_id, at)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with id {content_id}")))?;
    let evidence = crate::evidence::read(state, &holdings.events, holdings.tree_size).await?;
    let at = at
        .map(|at| at.format(&Rfc3339))
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("formatting an instant: {e}")))?;
    Ok(HoldersView {
        content_id: content_id.to_owned(),
        at,
        holders: holdings.holders,
        evidence,
    })
}
