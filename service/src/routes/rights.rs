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
use crate::rights::{self, TransferReceipt};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/content/{content_id}/transfers",
            post(post_content_transfer),
        )
        .route("/v1/content/{content_id}/holders", get(get_content_holders))
}

/// The content id in a path, in its one spelling.
fn content_id(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(content_id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if registry::metadata::is_content_id(&content_id) {
        Ok(content_id)
    } else {
        Err(ApiError::BadRequest(format!(
            "{content_id:?} is not a content id (a lowercase hyphenated UUID)"
        )))
    }
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
    let content_id = content_id(path)?;
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
    let content_id = content_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let at = query
        .at
        .as_deref()
        .map(|at| {
            OffsetDateTime::parse(at, &Rfc3339).map_err(|e| {
                ApiError::BadRequest(format!("at={at:?} is not an RFC 3339 instant: {e}"))
            })
        })
        .transpose()?;
    let consistency = prepare_read(&state, query.consistency).await?;
    let view = rights::holders(&state, &content_id, at).await?;
    Ok((consistency, Json(view)))
}
