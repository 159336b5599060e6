//! Rights changes on signed intents, and the queries that answer who holds
//! what, each with the evidence it rests on.

use raft_store::ProposedLeaf;
use registry::intent::{IntentBody, IntentReason, SignedIntent, SignerKey, decode_public_key};
use registry::rights::{
    ContentTransferred, LicenceGranted, LicenceRevoked, LicenceTransferred, RightsReason,
    after_transfer,
};
use registry::{ApplyOutcome, EntryBody, Holder, LedgerEntry, LicenceRecord, Rejection};
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

/// The first checks of a signed intent, made before proposing for a fast
/// answer: this log, not expired now, never applied. Apply makes them
/// again against the entry's timestamp.
///
/// Brings this node up to date first, so that the state every later
/// check reads (keys, holders, licences) includes every acknowledged
/// write: a key rotated through another node a moment ago must already
/// sign here.
pub async fn precheck(state: &AppState, signed: &SignedIntent) -> ApiResult<()> {
    signed.check_log(state.signer()?.origin())?;
    signed.check_expiry(OffsetDateTime::now_utc())?;
    state.node.linearize().await?;
    let key = signed.replay_key_hex();
    if state.registry.intent_applied(&key).await?.is_some() {
        return Err(ApiError::Intent {
            reason: IntentReason::Replayed.as_str().to_owned(),
            detail: format!("intent {key} was applied before"),
        });
    }
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
        return Err(wrong_intent(&signed, "transfer"));
    };
    if intent.content_id != content_id {
        return Err(other_target("content", &intent.content_id, content_id));
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
        let givers: Vec<String> = intent.from.iter().map(|s| s.party_id.clone()).collect();
        signed.verify_signers(&signer_keys(state, &givers).await?)?;
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
    match crate::evidence::entry_of(&ledger.leaf)?.body {
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
    let evidence = crate::evidence::read(state, holdings.events, holdings.tree_size).await?;
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

/// The current keys of `parties`, as required signers. A party that is
/// not registered cannot have signed: it is reported as missing.
async fn signer_keys(state: &AppState, parties: &[String]) -> ApiResult<Vec<SignerKey>> {
    let mut keys = Vec::with_capacity(parties.len());
    for party_id in parties {
        let Some(record) = state.registry.party(party_id).await? else {
            return Err(ApiError::Intent {
                reason: IntentReason::MissingSignature.as_str().to_owned(),
                detail: format!("party {party_id} must sign but is not registered"),
            });
        };
        keys.push(SignerKey::new(
            party_id,
            decode_public_key(&record.party.public_key)?,
        ));
    }
    Ok(keys)
}

/// The current holders of `content_id`, by party id.
async fn holder_ids(state: &AppState, content_id: &str) -> ApiResult<Vec<String>> {
    let holdings = state
        .registry
        .holders(content_id, None)
        .await?
        .ok_or_else(|| refusal(RightsReason::UnknownContent, content_id))?;
    Ok(holdings.holders.into_iter().map(|h| h.party_id).collect())
}

/// Licence `licence_id` as it stands, or the refusal that names it
/// unknown.
async fn live_licence(state: &AppState, licence_id: &str) -> ApiResult<LicenceRecord> {
    state
        .registry
        .licence(licence_id, None)
        .await?
        .map(|(record, _)| record)
        .ok_or_else(|| ApiError::Intent {
            reason: RightsReason::UnknownLicence.as_str().to_owned(),
            detail: format!("licence {licence_id} was never granted"),
        })
}

/// The 201 of a licence change: the licence and the leaf that records the
/// change, with proof.
#[derive(Debug, Serialize)]
pub struct LicenceReceipt {
    /// The licence granted, transferred or revoked.
    pub licence_id: String,
    /// The leaf, with proof.
    pub ledger: LedgerReceipt,
}

/// Applies a licence change: prechecks the intent and that `signers`
/// (party ids) signed it, proposes the leaf `make` builds, and answers
/// with its receipt. The rest of the rules (parents, scope, conflicts)
/// are the state machine's, whose refusal comes back as the answer.
async fn change_licence(
    state: &AppState,
    signed: &SignedIntent,
    signers: &[String],
    licence_id: String,
    make: MakeLeaf,
) -> ApiResult<LicenceReceipt> {
    signed.verify_signers(&signer_keys(state, signers).await?)?;
    match propose_intent(state, signed, make).await? {
        Ok(placed) => {
            tracing::info!(licence.id = %licence_id, intent = signed.kind().as_str(), ledger.index = placed.index, "Applied a licence change.");
            Ok(LicenceReceipt {
                licence_id,
                ledger: receipt(state, placed).await?,
            })
        }
        Err(rejection) => Err(rejection.into()),
    }
}

/// Parses a licence intent's body and prechecks it.
async fn licence_intent(state: &AppState, body: &[u8]) -> ApiResult<SignedIntent> {
    let signed = SignedIntent::parse(body)?;
    crate::cluster::require_feature_level(state, TRANSFER_FEATURE_LEVEL).await?;
    precheck(state, &signed).await?;
    Ok(signed)
}

pub(crate) fn wrong_intent(signed: &SignedIntent, want: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "this endpoint takes {want} intents, not {}",
        signed.kind().as_str()
    ))
}

pub(crate) fn other_target(what: &str, named: &str, path: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "the intent names {what} {named}, not the path's {path}"
    ))
}

/// `licence.grant` on content `content_id`, signed by every holder.
pub async fn grant_licence(
    state: &AppState,
    content_id: &str,
    body: &[u8],
) -> ApiResult<LicenceReceipt> {
    let signed = licence_intent(state, body).await?;
    let IntentBody::LicenceGrant(grant) = &signed.intent().body else {
        return Err(wrong_intent(&signed, "licence.grant"));
    };
    if grant.content_id != content_id {
        return Err(other_target("content", &grant.content_id, content_id));
    }
    let holders = holder_ids(state, content_id).await?;
    if holders.is_empty() {
        return Err(ApiError::Intent {
            reason: RightsReason::NoHolders.as_str().to_owned(),
            detail: format!("content {content_id} has no holders to grant a licence"),
        });
    }
    let licence_id = uuid::Uuid::now_v7().to_string();
    let make = grant_leaf(&signed, &licence_id, content_id, None);
    change_licence(state, &signed, &holders, licence_id, make).await
}

/// `licence.sublicense` of licence `parent_id`, signed by its licensee.
pub async fn sublicense(
    state: &AppState,
    parent_id: &str,
    body: &[u8],
) -> ApiResult<LicenceReceipt> {
    let signed = licence_intent(state, body).await?;
    let IntentBody::LicenceSublicense(sub) = &signed.intent().body else {
        return Err(wrong_intent(&signed, "licence.sublicense"));
    };
    if sub.parent_licence_id != parent_id {
        return Err(other_target("licence", &sub.parent_licence_id, parent_id));
    }
    let parent = live_licence(state, parent_id).await?;
    let licence_id = uuid::Uuid::now_v7().to_string();
    let make = grant_leaf(&signed, &licence_id, &parent.content_id, Some(parent_id));
    change_licence(state, &signed, &[parent.licensee], licence_id, make).await
}

/// A `licence.granted` leaf recording `signed`, or with a `parent` a
/// `licence.sublicensed` one.
fn grant_leaf(
    signed: &SignedIntent,
    licence_id: &str,
    content_id: &str,
    parent: Option<&str>,
) -> MakeLeaf {
    let granted = LicenceGranted {
        granted_at: String::new(),
        licence_id: licence_id.to_owned(),
        content_id: content_id.to_owned(),
        parent_licence_id: parent.map(str::to_owned),
        intent_sha256: signed.replay_key_hex(),
        signed: signed.to_envelope(),
    };
    Box::new(move |at| {
        let mut granted = granted.clone();
        granted.granted_at = at.to_owned();
        let body = if granted.parent_licence_id.is_some() {
            EntryBody::LicenceSublicensed(granted)
        } else {
            EntryBody::LicenceGranted(granted)
        };
        ProposedLeaf::new(&LedgerEntry::new(body), None)
    })
}

/// `licence.transfer` of licence `licence_id`, signed by its licensee and
/// every holder.
pub async fn transfer_licence(
    state: &AppState,
    licence_id: &str,
    body: &[u8],
) -> ApiResult<LicenceReceipt> {
    let signed = licence_intent(state, body).await?;
    let IntentBody::LicenceTransfer(intent) = &signed.intent().body else {
        return Err(wrong_intent(&signed, "licence.transfer"));
    };
    if intent.licence_id != licence_id {
        return Err(other_target("licence", &intent.licence_id, licence_id));
    }
    let licence = live_licence(state, licence_id).await?;
    let mut signers = holder_ids(state, &licence.content_id).await?;
    signers.push(licence.licensee);
    let transferred = LicenceTransferred {
        transferred_at: String::new(),
        licence_id: licence_id.to_owned(),
        intent_sha256: signed.replay_key_hex(),
        signed: signed.to_envelope(),
    };
    let make: MakeLeaf = Box::new(move |at| {
        let mut transferred = transferred.clone();
        transferred.transferred_at = at.to_owned();
        ProposedLeaf::new(
            &LedgerEntry::new(EntryBody::LicenceTransferred(transferred)),
            None,
        )
    });
    change_licence(state, &signed, &signers, licence_id.to_owned(), make).await
}

/// `licence.revoke` of licence `licence_id`, signed by every holder.
pub async fn revoke_licence(
    state: &AppState,
    licence_id: &str,
    body: &[u8],
) -> ApiResult<LicenceReceipt> {
    let signed = licence_intent(state, body).await?;
    let IntentBody::LicenceRevoke(intent) = &signed.intent().body else {
        return Err(wrong_intent(&signed, "licence.revoke"));
    };
    if intent.licence_id != licence_id {
        return Err(other_target("licence", &intent.licence_id, licence_id));
    }
    let licence = live_licence(state, licence_id).await?;
    let signers = holder_ids(state, &licence.content_id).await?;
    let revoked = LicenceRevoked {
        revoked_at: String::new(),
        licence_id: licence_id.to_owned(),
        intent_sha256: signed.replay_key_hex(),
        signed: signed.to_envelope(),
    };
    let make: MakeLeaf = Box::new(move |at| {
        let mut revoked = revoked.clone();
        revoked.revoked_at = at.to_owned();
        ProposedLeaf::new(&LedgerEntry::new(EntryBody::LicenceRevoked(revoked)), None)
    });
    change_licence(state, &signed, &signers, licence_id.to_owned(), make).await
}

/// A licence as the API shows it.
#[derive(Debug, Serialize)]
pub struct LicenceView {
    /// Its id.
    pub licence_id: String,
    /// The content licensed.
    pub content_id: String,
    /// For a sublicence, the licence it is carved from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_licence_id: Option<String>,
    /// Who holds it.
    pub licensee: String,
    /// Where.
    pub territories: registry::Territories,
    /// How.
    pub media: registry::Media,
    /// When: dates, start inclusive, end exclusive.
    pub term: registry::Term,
    /// Whether no one else may be licensed within its scope.
    pub exclusive: bool,
    /// Whether its licensee may sublicense.
    pub sublicensable: bool,
    /// The fee reference the parties recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_ref: Option<String>,
    /// `active`, or `revoked` (it, or a licence it descends from).
    pub status: &'static str,
    /// The leaf that granted it.
    pub granted_index: u64,
    /// The revocation that ended it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_index: Option<u64>,
}

impl From<LicenceRecord> for LicenceView {
    fn from(l: LicenceRecord) -> Self {
        Self {
            licence_id: l.licence_id,
            content_id: l.content_id,
            parent_licence_id: l.parent_licence_id,
            licensee: l.licensee,
            territories: l.scope.territories,
            media: l.scope.media,
            term: l.scope.term,
            exclusive: l.exclusive,
            sublicensable: l.sublicensable,
            fee_ref: l.fee_ref,
            status: if l.revoked_index.is_some() {
                "revoked"
            } else {
                "active"
            },
            granted_index: l.granted_index,
            revoked_index: l.revoked_index,
        }
    }
}

/// The answer of `GET /v1/licences/{id}`.
#[derive(Debug, Serialize)]
pub struct LicenceAnswer {
    /// The licence as it stood.
    pub licence: LicenceView,
    /// The instant asked about, or `None` for now.
    pub at: Option<String>,
    /// Its grant, transfers and revocation, proven.
    pub evidence: Evidence,
}

pub fn format_at(at: Option<OffsetDateTime>) -> ApiResult<Option<String>> {
    at.map(|at| at.format(&Rfc3339))
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("formatting an instant: {e}")))
}

/// Licence `licence_id` as it stood at `at` (now if `None`).
pub async fn licence(
    state: &AppState,
    licence_id: &str,
    at: Option<OffsetDateTime>,
) -> ApiResult<(LicenceRecord, LicenceAnswer)> {
    let (record, tree_size) = state
        .registry
        .licence(licence_id, at)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no licence {licence_id}")))?;
    let evidence = crate::evidence::read(state, record.events.iter().copied(), tree_size).await?;
    Ok((
        record.clone(),
        LicenceAnswer {
            licence: record.into(),
            at: format_at(at)?,
            evidence,
        },
    ))
}

/// The answer of `GET /v1/content/{id}/licences`.
#[derive(Debug, Serialize)]
pub struct LicencesAnswer {
    /// The content item.
    pub content_id: String,
    /// The instant asked about, or `None` for now.
    pub at: Option<String>,
    /// The licences and sublicences valid for the query, in the order they
    /// were granted; one page.
    pub licences: Vec<LicenceView>,
    /// The `after` for the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    /// The events of this page's licences, proven.
    pub evidence: Evidence,
}

/// What a licences query asks for.
#[derive(Debug, Default)]
pub struct LicenceQuery {
    /// The state at this instant; now if `None`.
    pub at: Option<OffsetDateTime>,
    /// Valid in this territory (ISO 3166-1 alpha-2).
    pub territory: Option<&'static str>,
    /// Valid for this medium.
    pub medium: Option<registry::Medium>,
    /// Valid on this date.
    pub date: Option<time::Date>,
    /// Licences granted after this one only (the previous page's last).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// The licences of `content_id` valid for `query`.
pub async fn content_licences(
    state: &AppState,
    content_id: &str,
    query: LicenceQuery,
) -> ApiResult<LicencesAnswer> {
    let all = state
        .registry
        .licences(content_id, query.at)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with id {content_id}")))?;
    let mut valid = all
        .licences
        .into_iter()
        .filter(|l| l.valid_for(query.territory, query.medium, query.date));
    if let Some(after) = &query.after {
        // Skip up to and including the previous page's last licence.
        for l in valid.by_ref() {
            if &l.licence_id == after {
                break;
            }
        }
    }
    let mut page: Vec<LicenceRecord> = valid.by_ref().take(query.limit).collect();
    let next_after = match valid.next() {
        Some(_) => page.last().map(|l| l.licence_id.clone()),
        None => None,
    };
    let events = page.iter().flat_map(|l| l.events.iter().copied());
    let evidence = crate::evidence::read(state, events, all.tree_size).await?;
    page.shrink_to_fit();
    Ok(LicencesAnswer {
        content_id: content_id.to_owned(),
        at: format_at(query.at)?,
        licences: page.into_iter().map(LicenceView::from).collect(),
        next_after,
        evidence,
    })
}

/// The licence as an ODRL 2.2 `Agreement` in JSON-LD: the holders who
/// granted it (or, for a sublicence, the parent's licensee) assign to the
/// licensee a permission to use the content within the licence's
/// territories, dates and media.
pub async fn odrl(state: &AppState, record: &LicenceRecord) -> ApiResult<serde_json::Value> {
    use serde_json::json;
    let granted_at = crate::evidence::stored_entry(state, record.granted_index)
        .await?
        .timestamp()
        .to_owned();
    let granted_at = OffsetDateTime::parse(&granted_at, &Rfc3339)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored timestamp: {e}")))?;
    let assigners: Vec<String> = match &record.parent_licence_id {
        Some(parent) => {
            let (parent, _) = state
                .registry
                .licence(parent, Some(granted_at))
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a parent licence vanished")))?;
            vec![parent.licensee]
        }
        None => state
            .registry
            .holders(&record.content_id, Some(granted_at))
            .await?
            .map(|h| h.holders.into_iter().map(|h| h.party_id).collect())
            .unwrap_or_default(),
    };
    let party = |id: &str| format!("urn:provreg:party:{id}");
    let target = format!("urn:provreg:content:{}", record.content_id);
    let territories = &record.scope.territories;
    let mut constraints = vec![];
    let include: Vec<&str> = territories.include().to_vec();
    if include != ["WORLD"] {
        constraints.push(
            json!({"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": include}),
        );
    }
    if !territories.exclude().is_empty() {
        constraints.push(json!({"leftOperand": "spatial", "operator": "isNoneOf", "rightOperand": territories.exclude()}));
    }
    let term = serde_json::to_value(record.scope.term)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a term: {e}")))?;
    constraints.push(json!({"leftOperand": "dateTime", "operator": "gteq",
        "rightOperand": {"@value": term["start"], "@type": "xsd:date"}}));
    constraints.push(json!({"leftOperand": "dateTime", "operator": "lt",
        "rightOperand": {"@value": term["end"], "@type": "xsd:date"}}));
    let media: Vec<&str> = record.scope.media.iter().map(|m| m.as_str()).collect();
    constraints.push(json!({"leftOperand": "media", "operator": "isAnyOf", "rightOperand": media}));
    let assigner: serde_json::Value = match assigners.as_slice() {
        [one] => json!(party(one)),
        many => json!(many.iter().map(|p| party(p)).collect::<Vec<_>>()),
    };
    let mut permission = json!({
        "target": target,
        "assigner": assigner,
        "assignee": party(&record.licensee),
        "action": "use",
        "constraint": constraints,
    });
    if let Some(revoked) = record.revoked_index {
        // A revocation ends the permission at its instant, whatever dates
        // the term names: one more dateTime bound, which ODRL combines
        // with the others.
        let revoked_at = crate::evidence::stored_entry(state, revoked)
            .await?
            .timestamp()
            .to_owned();
        if let Some(constraints) = permission["constraint"].as_array_mut() {
            constraints.push(json!({"leftOperand": "dateTime", "operator": "lt",
                "rightOperand": {"@value": revoked_at, "@type": "xsd:dateTime"}}));
        }
    }
    let mut agreement = json!({
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Agreement",
        "uid": format!("urn:provreg:licence:{}", record.licence_id),
        "assigner": permission["assigner"].clone(),
        "assignee": party(&record.licensee),
        "target": target,
        "permission": [permission],
    });
    if let Some(parent) = &record.parent_licence_id {
        agreement["inheritFrom"] = json!(format!("urn:provreg:licence:{parent}"));
    }
    if record.exclusive {
        agreement["profile"] = json!("urn:provreg:odrl:exclusive");
    }
    Ok(agreement)
}
