//! Authentication of writes.

use axum::extract::FromRequestParts;
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
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme name is case-insensitive (RFC 9110 section 11.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthorized)?;
        if token_digest(token) == state.operator_token_digest {
            Ok(Operator)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
