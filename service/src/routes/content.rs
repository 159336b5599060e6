//! `/v1/content`: registering and looking up files.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use registry::party::Role;

use crate::auth::{Actor, Operator};
use crate::error::{ApiError, ApiResult};
use crate::limits::Caller;
use crate::matching::{self, MatchResponse};
use crate::state::AppState;
use crate::views::{self, RegistrationReceipt};
use crate::{batch, register, upload};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/content",
            // Uploads are streamed to disk and bounded by the configured
            // limit, not by axum's in-memory default.
            post(post_content)
                .layer(DefaultBodyLimit::disable())
                .get(find_content),
        )
        .route(
            "/v1/content/match",
            post(match_content).layer(DefaultBodyLimit::disable()),
        )
        // Bounded by --max-json-bytes; 1,000 items with metadata fit well
        // within the default 16 MiB.
        .route("/v1/content/batch", post(post_content_batch))
        .route("/v1/content/{content_id}", get(get_content))
}

/// Registers a file; 201 with the receipt, 409 if the bytes are registered.
/// The operator's token, or a token of a party with the broadcaster role.
async fn post_content(
    State(state): State<AppState>,
    actor: Result<Actor, ApiError>,
    request: Request,
) -> ApiResult<(StatusCode, Json<RegistrationReceipt>)> {
    let actor = match actor.and_then(|a| a.require(Role::Broadcaster).map(|()| a)) {
        Ok(actor) => actor,
        Err(refused) => {
            upload::discard(request).await;
            return Err(refused);
        }
    };
    let received = upload::receive(&state, request, Caller::Operator).await?;
    let receipt = register::register(&state, received, &actor).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Registers up to 1,000 files by their hashes alone; 200 with one result
/// per item, in order.
async fn post_content_batch(
    State(state): State<AppState>,
    actor: Actor,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<batch::BatchResponse>> {
    actor.require(Role::Broadcaster)?;
    let body = super::json_body(&state, body)?;
    let items = batch::parse_items(&body)?;
    Ok(Json(batch::register_batch(&state, items, &actor).await?))
}

/// Registered content that is the same as or similar to the uploaded file,
/// best first. Same upload forms as `post_content`; nothing is stored.
async fn match_content(
    State(state): State<AppState>,
    operator: Result<Operator, ApiError>,
    request: Request,
) -> ApiResult<Json<MatchResponse>> {
    // Open to anyone, but strangers draw on the smaller pools.
    let caller = match operator {
        Ok(Operator) => Caller::Operator,
        Err(_) => Caller::Public,
    };
    let received = upload::receive(&state, request, caller).await?;
    Ok(Json(
        matching::find_matches(&state, received, caller).await?,
    ))
}

/// How fresh a lookup of the latest state must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Consistency {
    /// Reflects every write acknowledged before the read (the default).
    #[default]
    Linearizable,
    /// This node's state now, which may lag the leader.
    Local,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadOptions {
    #[serde(default)]
    consistency: Consistency,
}

impl Consistency {
    /// The header that says which kind of read an answer is.
    pub(super) fn header(self) -> [(HeaderName, &'static str); 1] {
        let kind = match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Local => "local",
        };
        [(HeaderName::from_static("provreg-consistency"), kind)]
    }
}

/// Brings this node up to date for a linearizable read, and says in a
/// header which kind of read the answer is.
pub(super) async fn prepare_read(
    state: &AppState,
    consistency: Consistency,
) -> ApiResult<[(HeaderName, &'static str); 1]> {
    if consistency == Consistency::Linearizable {
        state.node.linearize().await?;
    }
    Ok(consistency.header())
}

/// One registration by id.
async fn get_content(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadOptions>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let Path(content_id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(options) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id = content_id.to_ascii_lowercase();
    if !registry::metadata::is_content_id(&id) {
        return Err(ApiError::BadRequest(format!(
            "{content_id:?} is not a content id"
        )));
    }
    // A registration or claim never changes once applied, and only
    // committed entries are applied: one found here is the latest state,
    // with no round trip to the leader. Only a miss needs one, as the entry
    // may be committed but not yet applied here.
    let kind = options.consistency.header();
    if let Some(json) = state.content_cache.get(&id) {
        return Ok(json_answer(kind, json));
    }
    if options.consistency == Consistency::Linearizable
        && let Some(content) = views::content_by_id(&state.registry, &id).await?
    {
        return Ok(json_answer(kind, keep(&state, &content)?));
    }
    prepare_read(&state, options.consistency).await?;
    let content = views::content_by_id(&state.registry, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with id {id}")))?;
    Ok(json_answer(kind, keep(&state, &content)?))
}

/// The JSON of `content`, kept for the next lookup of its id.
fn keep(state: &AppState, content: &views::ContentView) -> ApiResult<Bytes> {
    state
        .content_cache
        .keep(content)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding a content view: {e}")))
}

/// A 200 with a JSON body already encoded, saying which kind of read it is.
fn json_answer(
    consistency: [(HeaderName, &'static str); 1],
    json: Bytes,
) -> axum::response::Response {
    (
        consistency,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindContent {
    sha256: String,
    #[serde(default)]
    consistency: Consistency,
}

/// The registration of the file with this SHA-256.
async fn find_content(
    State(state): State<AppState>,
    query: Result<Query<FindContent>, QueryRejection>,
) -> ApiResult<impl IntoResponse> {
    let Query(FindContent {
        sha256,
        consistency,
    }) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let sha256 = sha256.to_ascii_lowercase();
    if !registry::is_lower_hex_sha256(&sha256) {
        return Err(ApiError::BadRequest(
            "sha256 must be 64 hexadecimal digits".into(),
        ));
    }
    // A registration of these bytes is final (a claim is not: an upload of
    // the bytes may have committed since), so one found here needs no
    // round trip to the leader; see `get_content`.
    if consistency == Consistency::Linearizable
        && let Some(record) = state.registry.content_by_sha256(&sha256).await?
    {
        let content = views::ContentView::new(record.registration, record.ledger_index);
        return Ok((Consistency::Linearizable.header(), Json(content)));
    }
    let consistency = prepare_read(&state, consistency).await?;
    let content = views::content_by_sha256(&state.registry, &sha256)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no content with sha256 {sha256}")))?;
    Ok((consistency, Json(content)))
}
