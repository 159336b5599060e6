//! HTTP routes, one module per resource, merged in [`router`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

mod cluster;
mod content;
mod health;
mod log;
mod parties;
pub mod peer;
mod rights;

/// Every route of the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(content::router())
        .merge(log::router())
        .merge(health::router())
        .merge(cluster::router())
        .merge(parties::router())
        .merge(rights::router())
}

/// A JSON request body read whole: over `--max-json-bytes` it is a 413
/// naming the limit.
fn json_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            limit: state.gates.max_json_bytes(),
        },
        _ => ApiError::BadRequest(format!("reading the request body failed: {rejection}")),
    })
}

/// An id from a path, checked by [`check_id`].
fn path_id(path: Result<Path<String>, PathRejection>, what: &str) -> ApiResult<String> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    check_id(&id, what)?;
    Ok(id)
}

/// A content, party or licence id must be in its one spelling, a lowercase
/// hyphenated UUID; else a 400 naming `what` it should have been.
fn check_id(id: &str, what: &str) -> ApiResult<()> {
    if registry::intent::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{id:?} is not a {what} id (a lowercase hyphenated UUID)"
        )))
    }
}
