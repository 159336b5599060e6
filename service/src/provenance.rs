//! Provenance answers: an item's history, the derived-from graph around
//! it, and what a party holds, each with the evidence it rests on.

use registry::MAX_GRAPH_ITEMS;
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
    let evidence = crate::evidence::read(state, indexes, history.tree_size).await?;
    let mut events = Vec::with_capacity(evidence.events.len());
    for event in &evidence.events {
        let entry = crate::evidence::entry_of(&event.leaf)?;
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
    let indexes = graph.registrations.values().copied();
    let evidence = crate::evidence::read(state, indexes, graph.tree_size).await?;
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
    let indexes = holdings.iter().map(|h| h.since_index);
    let evidence = crate::evidence::read(state, indexes, tree_size).await?;
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
    let indexes = licences.iter().flat_map(|l| l.events.iter().copied());
    let evidence = crate::evidence::read(state, indexes, tree_size).await?;
    Ok(PartyLicencesAnswer {
        party_id: party_id.to_owned(),
        at: crate::rights::format_at(at)?,
        licences: licences.into_iter().map(LicenceView::from).collect(),
        next_after,
        evidence,
    })
}

/// The answer of `GET /v1/content/{id}/provenance`: the W3C PROV-JSON
/// document and the registrations it rests on, proven. With
/// `?format=prov-json` the document alone is the answer.
#[derive(Debug, Serialize)]
pub struct ProvenanceAnswer {
    /// The content item.
    pub content_id: String,
    /// The PROV-JSON document.
    pub document: serde_json::Value,
    /// The registrations of every entity in it, proven.
    pub evidence: Evidence,
}

/// The provenance of `content_id` as a W3C PROV-JSON document:
///
/// - an entity per item in its derived-from graph (`content:<id>`), with
///   its title, SHA-256 and registration's ledger index;
/// - an activity per registration (`entry:<index>`), which generated the
///   item (`wasGeneratedBy`) at the registration's time;
/// - `wasDerivedFrom` for every link, through the child's registration;
/// - an agent per registrant and holder (`party:<id>`, or `provreg:operator`
///   for the node operator), and the registry node that recorded each
///   registration (`provreg:registry`), which acted on behalf of the
///   registrant (`actedOnBehalfOf`);
/// - `wasAttributedTo` from the item to each of its current holders.
pub async fn provenance(state: &AppState, content_id: &str) -> ApiResult<ProvenanceAnswer> {
    use serde_json::{Map, Value, json};
    let graph = derivations(state, content_id).await?;
    let mut entities = Map::new();
    let mut activities = Map::new();
    let mut agents = Map::new();
    let mut generated = Map::new();
    let mut derived = Map::new();
    let mut attributed = Map::new();
    let mut delegated = Map::new();
    let mut registered_by = std::collections::BTreeMap::new();
    let registry_agent = "provreg:registry";
    agents.insert(
        registry_agent.into(),
        json!({"prov:type": {"$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME"},
            "prov:label": "the provreg registry"}),
    );
    for event in &graph.evidence.events {
        let entry = crate::evidence::entry_of(&event.leaf)?;
        let (id, sha256, metadata, registrant) = match &entry.body {
            registry::EntryBody::ContentRegistered(r) => {
                (&r.content_id, &r.sha256, &r.metadata, &r.registrant)
            }
            registry::EntryBody::ContentClaimed(c) => {
                (&c.content_id, &c.sha256, &c.metadata, &c.registrant)
            }
            _ => continue,
        };
        let entity = format!("content:{id}");
        let activity = format!("entry:{}", event.index);
        let mut attributes = json!({
            "provreg:sha256": sha256,
            "provreg:ledgerIndex": {"$": event.index.to_string(), "type": "xsd:long"},
        });
        if let Some(title) = &metadata.title {
            attributes["prov:label"] = json!(title);
        }
        entities.insert(entity.clone(), attributes);
        activities.insert(
            activity.clone(),
            json!({"prov:startTime": entry.timestamp(), "prov:endTime": entry.timestamp(),
                "prov:type": {"$": format!("provreg:{}", entry.type_name()), "type": "prov:QUALIFIED_NAME"},
                "provreg:ledgerIndex": {"$": event.index.to_string(), "type": "xsd:long"}}),
        );
        generated.insert(
            format!("_:gen{}", event.index),
            json!({"prov:entity": entity, "prov:activity": activity, "prov:time": entry.timestamp()}),
        );
        let agent = party_agent(state, registrant, &mut agents).await?;
        delegated.insert(
            format!("_:del{}", event.index),
            json!({"prov:delegate": registry_agent, "prov:responsible": agent, "prov:activity": activity}),
        );
        registered_by.insert(id.clone(), activity);
    }
    for (n, link) in graph.links.iter().enumerate() {
        let mut relation = json!({
            "prov:generatedEntity": format!("content:{}", link.child_id),
            "prov:usedEntity": format!("content:{}", link.parent_id),
        });
        if let Some(activity) = registered_by.get(&link.child_id) {
            relation["prov:activity"] = json!(activity);
        }
        derived.insert(format!("_:der{n}"), relation);
    }
    let holders = state
        .registry
        .holders(content_id, None)
        .await?
        .map(|h| h.holders)
        .unwrap_or_default();
    for (n, holder) in holders.iter().enumerate() {
        let agent = party_agent(state, &holder.party_id, &mut agents).await?;
        attributed.insert(
            format!("_:att{n}"),
            json!({"prov:entity": format!("content:{content_id}"), "prov:agent": agent,
                "provreg:shareBp": {"$": holder.share_bp.to_string(), "type": "xsd:int"}}),
        );
    }
    let mut document = json!({
        "prefix": {
            "provreg": "urn:provreg:",
            "content": "urn:provreg:content:",
            "party": "urn:provreg:party:",
            "entry": "urn:provreg:entry:",
        },
        "entity": entities,
        "activity": activities,
        "agent": agents,
        "wasGeneratedBy": generated,
        "actedOnBehalfOf": delegated,
    });
    for (name, relations) in [("wasDerivedFrom", derived), ("wasAttributedTo", attributed)] {
        if !relations.is_empty() {
            document[name] = Value::Object(relations);
        }
    }
    Ok(ProvenanceAnswer {
        content_id: content_id.to_owned(),
        document,
        evidence: graph.evidence,
    })
}

/// The agent of registrant or holder `who` (a party id, or `operator`),
/// added to `agents` with its name; its qualified name.
async fn party_agent(
    state: &AppState,
    who: &str,
    agents: &mut serde_json::Map<String, serde_json::Value>,
) -> ApiResult<String> {
    use serde_json::json;
    if !registry::intent::is_valid_id(who) {
        let id = "provreg:operator".to_owned();
        agents.entry(id.clone()).or_insert_with(|| {
            json!({"prov:type": {"$": "prov:Organization", "type": "prov:QUALIFIED_NAME"},
                "prov:label": "the operator of the registering node"})
        });
        return Ok(id);
    }
    let id = format!("party:{who}");
    if !agents.contains_key(&id) {
        let name = state
            .registry
            .party(who)
            .await?
            .map(|p| p.party.name)
            .unwrap_or_default();
        agents.insert(
            id.clone(),
            json!({"prov:type": {"$": "prov:Organization", "type": "prov:QUALIFIED_NAME"},
                "prov:label": name}),
        );
    }
    Ok(id)
}
