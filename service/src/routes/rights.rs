//! Ownership of content: transfers on signed intents, and who holds what.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::content::{Consistency, prepare_read};
use crate::error::{ApiError, ApiResult};
use crate::provenance::{self, Page};
use crate::rights::{self, LicenceQuery, LicenceReceipt, TransferReceipt};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/content/{content_id}/transfers",
            post(post_content_transfer),
        )
        .route("/v1/content/{content_id}/holders", get(get_content_holders))
        .route(
            "/v1/content/{content_id}/licences",
            post(post_content_licence).get(get_content_licences),
        )
        .route("/v1/licences/{licence_id}", get(get_licence))
        .route(
            "/v1/licences/{licence_id}/sublicences",
            post(post_sublicence),
        )
        .route(
            "/v1/licences/{licence_id}/transfers",
            post(post_licence_transfer),
        )
        .route(
            "/v1/licences/{licence_id}/revocations",
            post(post_licence_revocation),
        )
        .route("/v1/content/{content_id}/history", get(get_content_history))
        .route(
            "/v1/content/{content_id}/derivations",
            get(get_content_derivations),
        )
        .route(
            "/v1/content/{content_id}/provenance",
            get(get_content_provenance),
        )
        .route("/v1/parties/{party_id}/holdings", get(get_party_holdings))
        .route("/v1/parties/{party_id}/licences", get(get_party_licences))
}

/// A page's size from a query: 100 unless given, at most [`MAX_LIMIT`].
fn limit(limit: Option<usize>) -> ApiResult<usize> {
    let limit = limit.unwrap_or(100);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )))
    }
}

/// An id cursor from a query.
fn after_id(after: Option<String>) -> ApiResult<Option<String>> {
    match after {
        Some(after) if !registry::intent::is_valid_id(&after) => Err(ApiError::BadRequest(
            format!("after={after:?} is not an id (a lowercase hyphenated UUID)"),
        )),
        after => Ok(after),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    after: Option<u64>,
    limit: Option<usize>,
    #[serde(default)]
    consistency: Consistency,
}

/// Every event of an item in ledger order (registration, transfers,
/// licences, sublicences, licence transfers, revocations, registrations
/// derived from it), paginated, each leaf proven.
async fn get_content_history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_id = super::path_id(path, "content")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let page = Page {
        after: query.after,
        limit: limit(query.limit)?,
    };
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = provenance::history(&state, &content_id, page).await?;
    Ok((consistency, Json(answer)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

/// The derived-from graph around an item, transitively both ways, with
/// every item's registration proven.
async fn get_content_derivations(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_id = super::path_id(path, "content")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = provenance::derivations(&state, &content_id).await?;
    Ok((consistency, Json(answer)))
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum ProvenanceFormat {
    #[default]
    Json,
    ProvJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceQuery {
    #[serde(default)]
    format: ProvenanceFormat,
    #[serde(default)]
    consistency: Consistency,
}

/// The item's provenance as a W3C PROV-JSON document, with the
/// registrations it rests on proven; `?format=prov-json` answers the
/// document alone.
async fn get_content_provenance(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProvenanceQuery>, QueryRejection>,
) -> ApiResult<axum::response::Response> {
    let content_id = super::path_id(path, "content")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = provenance::provenance(&state, &content_id).await?;
    Ok(match query.format {
        ProvenanceFormat::Json => (consistency, Json(answer)).into_response(),
        ProvenanceFormat::ProvJson => (consistency, Json(answer.document)).into_response(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyListQuery {
    at: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    consistency: Consistency,
}

/// What a party holds now or at an instant, paginated by content id, with
/// the events that gave each share, proven.
async fn get_party_holdings(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PartyListQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let party_id = super::path_id(path, "party")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let at = instant(query.at.as_deref())?;
    let page = Page {
        after: after_id(query.after)?,
        limit: limit(query.limit)?,
    };
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = provenance::party_holdings(&state, &party_id, at, page).await?;
    Ok((consistency, Json(answer)))
}

/// The licences a party holds now or held at an instant, revoked ones
/// included, paginated by licence id, with their events, proven.
async fn get_party_licences(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PartyListQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let party_id = super::path_id(path, "party")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let at = instant(query.at.as_deref())?;
    let page = Page {
        after: after_id(query.after)?,
        limit: limit(query.limit)?,
    };
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = provenance::party_licences(&state, &party_id, at, page).await?;
    Ok((consistency, Json(answer)))
}

/// An optional RFC 3339 instant from a query.
fn instant(at: Option<&str>) -> ApiResult<Option<OffsetDateTime>> {
    at.map(|at| {
        OffsetDateTime::parse(at, &Rfc3339)
            .map_err(|e| ApiError::BadRequest(format!("at={at:?} is not an RFC 3339 instant: {e}")))
    })
    .transpose()
}

/// Grants a licence on a `licence.grant` intent signed by every holder;
/// 201 with its id and the receipt of its leaf, 409 naming a conflicting
/// licence and the overlap.
async fn post_content_licence(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<LicenceReceipt>)> {
    let body = super::json_body(&state, body)?;
    let content_id = super::path_id(path, "content")?;
    let receipt = rights::grant_licence(&state, &content_id, &body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Sublicenses part of a licence on a `licence.sublicense` intent signed by
/// its licensee.
async fn post_sublicence(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<LicenceReceipt>)> {
    let body = super::json_body(&state, body)?;
    let licence_id = super::path_id(path, "licence")?;
    let receipt = rights::sublicense(&state, &licence_id, &body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Moves a licence to another licensee on a `licence.transfer` intent
/// signed by its licensee and every holder.
async fn post_licence_transfer(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<LicenceReceipt>)> {
    let body = super::json_body(&state, body)?;
    let licence_id = super::path_id(path, "licence")?;
    let receipt = rights::transfer_licence(&state, &licence_id, &body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Revokes a licence and its sublicences on a `licence.revoke` intent
/// signed by every holder.
async fn post_licence_revocation(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<LicenceReceipt>)> {
    let body = super::json_body(&state, body)?;
    let licence_id = super::path_id(path, "licence")?;
    let receipt = rights::revoke_licence(&state, &licence_id, &body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// The largest page of licences.
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicencesQuery {
    territory: Option<String>,
    medium: Option<String>,
    date: Option<String>,
    at: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    consistency: Consistency,
}

/// The licences and sublicences of an item valid in a territory, for a
/// medium, on a date (each optional), as they stood now or at an instant,
/// with the events they rest on, proven. Public, as the ledger is.
async fn get_content_licences(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LicencesQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_id = super::path_id(path, "content")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let medium = query
        .medium
        .as_deref()
        .map(|m| {
            serde_json::from_value::<registry::Medium>(serde_json::Value::from(m))
                .map_err(|e| ApiError::BadRequest(format!("medium: {e}")))
        })
        .transpose()?;
    let limit = limit(query.limit)?;
    let after = after_id(query.after)?;
    let request = LicenceQuery {
        at: instant(query.at.as_deref())?,
        territory: query
            .territory
            .as_deref()
            .map(registry::scope::territory_code)
            .transpose()?,
        medium,
        date: query
            .date
            .as_deref()
            .map(registry::scope::parse_date)
            .transpose()?,
        after,
        limit,
    };
    let consistency = prepare_read(&state, query.consistency).await?;
    let answer = rights::content_licences(&state, &content_id, request).await?;
    Ok((consistency, Json(answer)))
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum LicenceFormat {
    #[default]
    Json,
    Odrl,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenceQueryOptions {
    at: Option<String>,
    #[serde(default)]
    format: LicenceFormat,
    #[serde(default)]
    consistency: Consistency,
}

/// One licence as it stands (or stood at an instant) with its events,
/// proven; `?format=odrl` gives it as an ODRL 2.2 Agreement in JSON-LD.
async fn get_licence(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LicenceQueryOptions>, QueryRejection>,
) -> ApiResult<axum::response::Response> {
    let licence_id = super::path_id(path, "licence")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let at = instant(query.at.as_deref())?;
    let consistency = prepare_read(&state, query.consistency).await?;
    let (record, answer) = rights::licence(&state, &licence_id, at).await?;
    if query.format == LicenceFormat::Odrl {
        let agreement = rights::odrl(&state, &record).await?;
        let mut response = (consistency, Json(agreement)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/ld+json"),
        );
        return Ok(response);
    }
    Ok((consistency, Json(answer)).into_response())
}

/// Moves ownership shares on a `transfer` intent signed by every giving
/// party; no token, the signatures are the authority. 201 with the holders
/// it leaves and the receipt of its leaf.
async fn post_content_transfer(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<TransferReceipt>)> {
    let body = super::json_body(&state, body)?;
    let content_id = super::path_id(path, "content")?;
    let receipt = rights::transfer_content(&state, &content_id, &body).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldersQuery {
    /// An RFC 3339 instant; now if absent.
    at: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// Who holds the item and in what shares, now or at an instant, with the
/// registration and transfers the answer rests on, proven against one
/// signed checkpoint. Public, as the ledger is.
async fn get_content_holders(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HoldersQuery>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_id = super::path_id(path, "content")?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let at = instant(query.at.as_deref())?;
    let consistency = prepare_read(&state, query.consistency).await?;
    let view = rights::holders(&state, &content_id, at).await?;
    Ok((consistency, Json(view)))
}
