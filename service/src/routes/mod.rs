//! HTTP routes, one module per resource, merged in [`router`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
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
