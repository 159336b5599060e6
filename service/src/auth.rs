//! Authentication of writes.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::identity::token_digest;
use crate::state::AppState;

/// Proof that the request carries the operator token. Taking this extractor
/// in a handler makes the route operator-only; it runs before the body is
/// read, so an unauthenticated upload is refused without being stored.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        operator_digest(&parts.headers, state)
            .map(|_| Operator)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The SHA-256 of the request's bearer token, if it is the operator's.
pub fn operator_digest(headers: &HeaderMap, state: &AppState) -> Option<[u8; 32]> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme name is case-insensitive (RFC 9110 section 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token_digest(token.trim()))
        .filter(|digest| *digest == state.operator_token_digest)
}
