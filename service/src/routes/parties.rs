//! `/v1/parties`: registering and showing parties.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use registry::party::Role;

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::parties::{self, CreatedParty, NewParty, PartyView};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/parties", post(post_party))
        .route("/v1/parties/{party_id}", get(get_party))
}

/// Registers a party; 201 with its id and its token, shown this once. The
/// operator's token, or a token of a party with the operator role.
async fn post_party(
    State(state): State<AppState>,
    actor: Actor,
    body: Result<Json<NewParty>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedParty>)> {
    actor.require(Role::Operator)?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let created = parties::create_party(&state, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A party and its current key; public, as the ledger is.
async fn get_party(
    State(state): State<AppState>,
    Path(party_id): Path<String>,
) -> ApiResult<Json<PartyView>> {
    if !registry::intent::is_valid_id(&party_id) {
        return Err(ApiError::BadRequest(format!(
            "{party_id:?} is not a party id (a lowercase hyphenated UUID)"
        )));
    }
    Ok(Json(parties::party(&state, &party_id).await?))
}
