//! `/v1/parties`: registering and showing parties.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use registry::party::Role;

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::parties::{self, CreatedParty, NewParty, PartyView, RotatedKey};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/parties", post(post_party))
        .route("/v1/parties/{party_id}", get(get_party))
        .route("/v1/parties/{party_id}/keys", post(post_party_key))
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

/// Replaces a party's key on a `key.rotate` intent signed by its current
/// key and the new one; no token, the signatures are the authority.
async fn post_party_key(
    State(state): State<AppState>,
    Path(party_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<RotatedKey>> {
    let body = super::json_body(&state, body)?;
    super::check_id(&party_id, "party")?;
    Ok(Json(parties::rotate_key(&state, &party_id, &body).await?))
}

/// A party and its current key; public, as the ledger is.
async fn get_party(
    State(state): State<AppState>,
    Path(party_id): Path<String>,
) -> ApiResult<Json<PartyView>> {
    super::check_id(&party_id, "party")?;
    Ok(Json(parties::party(&state, &party_id).await?))
}
