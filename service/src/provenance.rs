//! Provenance answers: an item's history, the derived-from graph around
//! it, and what a party holds, each with the evidence it rests on.

use registry::{LedgerEntry, MAX_GRAPH_ITEMS};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};
use crate::rights::LicenceView;
use crate::state::AppState;
use crate::views::Evidence;

/// One page of a list: items after a cursor, at most a limit.
#[derive(Debug, Clone)]
pub struct Page<C> {
    /// Only items after this one (the previous page's `next_after`).
    pub after: Option<C>,
    /// At most this many.
    pub limit: usize,
}

/// Cuts one page from `items` (in cursor order); the page and the
/// `next_after` of the next page, if there is one.
fn page<T, C: PartialOrd>(
    items: Vec<T>,
    page: &Page<C>,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, Option<C>) {
    let mut rest = items.into_iter().filter(|item| {
        page.after
            .as_ref()
            .is_none_or(|after| cursor(item) > *after)
    });
    let taken: Vec<T> = rest.by_ref().take(page.limit).collect();
    let next = match rest.next() {
        Some(_) => taken.last().map(&cursor),
        None => None,
    };
    (taken, next)
}

/// One event of an item's history.
#[derive(Debug, Serialize)]
pub struct HistoryEvent {
    /// Its leaf index.
    pub index: u64,
    /// Its entry type, e.g. `content.transferred`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its timestamp.
    pub at: String,
}

/// The answer of `GET /v1/content/{id}/history`.
#[derive(Debug, Serialize)]
pub struct HistoryAnswer {
    /// The content item.
    pub content_id: String,
    /// Its events in ledger order; one page.
    pub events: Vec<HistoryEvent>,
    /// The `after` of the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
    /// This page's leaves, proven.
    pub evidence: Evidence,
}

/// Every event of `content_id`, one page of them.
pub async fn history(
    state: &AppState,
    content_id: &str,
    page_of: Page<u64>,
) -> ApiResult<HistoryAnswer> {
    let history = state
        .registry
        .history(content_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with id {content_id}")))?;
    let (indexes, next_after) = page(history.events, &page_of, |&i| i);
    let evidence = crate::evidence::read(state, &indexes, history.tree_size).await?;
    let mut events = Vec::with_capacity(indexes.len());
    for event in &evidence.events {
        let entry = decode(&event.leaf)?;
        events.push(HistoryEvent {
            index: event.index,
            kind: entry.type_name().to_owned(),
            at: entry.timestamp().to_owned(),
        });
    }
    Ok(HistoryAnswer {
        content_id: content_id.to_owned(),
        events,
        next_after,
        evidence,
    })
}

/// The entry of an evidence leaf (base64).
fn decode(leaf: &str) -> ApiResult<LedgerEntry> {
    use base64::Engine;
    let bytes = base64::prelude::BASE64_STANDARD
        .decode(leaf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("an evidence leaf: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("an evidence leaf: {e}")))?;
    Ok(LedgerEntry::from_leaf(&text)?)
}

/// One derived-from link.
#[derive(Debug, Serialize)]
pub struct LinkView {
    /// The item derived from.
    pub parent_id: String,
    /// The item derived.
    pub child_id: String,
    /// The child's registration, which records the link.
    pub ledger_index: u64,
}

/// The answer of `GET /v1/content/{id}/derivations`.
#[derive(Debug, Serialize)]
pub struct DerivationsAnswer {
    /// The content item.
    pub content_id: String,
    /// Items it derives from, transitively, nearest first.
    pub ancestors: Vec<String>,
    /// Items derived from it, transitively, nearest first.
    pub descendants: Vec<String>,
    /// Every link among them, in ledger order.
    pub links: Vec<LinkView>,
    /// Whether a walk stopped at its bound of items each way.
    pub truncated: bool,
    /// The registrations of every item in the answer, proven.
    pub evidence: Evidence,
}

/// The derived-from graph around `content_id`.
pub async fn derivations(state: &AppState, content_id: &str) -> ApiResult<DerivationsAnswer> {
    let graph = state
        .registry
        .derivations(content_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with id {content_id}")))?;
    let mut indexes: Vec<u64> = graph.registrations.values().copied().collect();
    indexes.sort_unstable();
    let evidence = crate::evidence::read(state, &indexes, graph.tree_size).await?;
    if graph.truncated {
        tracing::info!(content.id = %content_id, bound = MAX_GRAPH_ITEMS, "A derivations answer was truncated.");
    }
    Ok(DerivationsAnswer {
        content_id: content_id.to_owned(),
        ancestors: graph.ancestors,
        descendants: graph.descendants,
        links: graph
            .links
            .into_iter()
            .map(|l| LinkView {
                parent_id: l.parent_id,
                child_id: l.child_id,
                ledger_index: l.ledger_index,
            })
            .collect(),
        truncated: graph.truncated,
        evidence,
    })
}

/// One item a party holds a share of.
#[derive(Debug, Serialize)]
pub struct HoldingView {
    /// The content item.
    pub content_id: String,
    /// The party's share, in basis points.
    pub share_bp: u16,
    /// The registration or transfer that gave it this share.
    pub since_index: u64,
}

/// The answer of `GET /v1/parties/{id}/holdings`.
#[derive(Debug, Serialize)]
pub struct HoldingsAnswer {
    /// The party.
    pub party_id: String,
    /// The instant asked about, or `None` for now.
    pub at: Option<String>,
    /// What it holds, in content id order; one page.
    pub holdings: Vec<HoldingView>,
    /// The `after` of the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    /// The events that gave this page's shares, proven.
    pub evidence: Evidence,
}

/// What party `party_id` holds now or at `at`, one page of it.
pub async fn party_holdings(
    state: &AppState,
    party_id: &str,
    at: Option<OffsetDateTime>,
    page_of: Page<String>,
) -> ApiResult<HoldingsAnswer> {
    crate::parties::party(state, party_id).await?;
    let (holdings, tree_size) = state.registry.holdings_of(party_id, at).await?;
    let (holdings, next_after) = page(holdings, &page_of, |h| h.content_id.clone());
    let mut indexes: Vec<u64> = holdings.iter().map(|h| h.since_index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let evidence = crate::evidence::read(state, &indexes, tree_size).await?;
    Ok(HoldingsAnswer {
        party_id: party_id.to_owned(),
        at: crate::rights::format_at(at)?,
        holdings: holdings
            .into_iter()
            .map(|h| HoldingView {
                content_id: h.content_id,
                share_bp: h.share_bp,
                since_index: h.since_index,
            })
            .collect(),
        next_after,
        evidence,
    })
}

/// The answer of `GET /v1/parties/{id}/licences`.
#[derive(Debug, Serialize)]
pub struct PartyLicencesAnswer {
    /// The party.
    pub party_id: String,
    /// The instant asked about, or `None` for now.
    pub at: Option<String>,
    /// The licences it holds, revoked ones included, in licence id order;
    /// one page.
    pub licences: Vec<LicenceView>,
    /// The `after` of the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    /// This page's licences' events, proven.
    pub evidence: Evidence,
}

/// The licences party `party_id` holds now or held at `at`, one page.
pub async fn party_licences(
    state: &AppState,
    party_id: &str,
    at: Option<OffsetDateTime>,
    page_of: Page<String>,
) -> ApiResult<PartyLicencesAnswer> {
    crate::parties::party(state, party_id).await?;
    let (mut licences, tree_size) = state.registry.licences_of(party_id, at).await?;
    licences.sort_by(|a, b| a.licence_id.cmp(&b.licence_id));
    let (licences, next_after) = page(licences, &page_of, |l| l.licence_id.clone());
    let mut indexes: Vec<u64> = licences.iter().flat_map(|l| l.events.clone()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let evidence = crate::evidence::read(state, &indexes, tree_size).await?;
    Ok(PartyLicencesAnswer {
        party_id: party_id.to_owned(),
        at: crate::rights::format_at(at)?,
        licences: licences.into_iter().map(LicenceView::from).collect(),
        next_after,
        evidence,
    })
}
