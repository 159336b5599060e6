//! Authentication: the node operator's token, and parties' tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use registry::Registry;
use registry::party::{PartyRegistered, Role};

use crate::error::{ApiError, ApiResult};
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
    bearer_digest(headers).filter(|digest| *digest == state.operator_token_digest)
}

/// The SHA-256 of the request's bearer token, if it is the operator's or a
/// party's that this node has already looked up: those are rate-limited per
/// token. A party's first request on a node counts against its address,
/// since finding an unknown token costs a database read that an address
/// over its rate must not get for free.
pub fn known_digest(headers: &HeaderMap, state: &AppState) -> Option<[u8; 32]> {
    bearer_digest(headers)
        .filter(|digest| *digest == state.operator_token_digest || state.parties.knows(digest))
}

/// Who a request acts for: the node's operator, or a registered party
/// (found by its token's digest, which every node holds).
#[derive(Debug, Clone)]
pub enum Actor {
    /// The node operator's token.
    Operator,
    /// A party's token.
    Party(Arc<PartyRegistered>),
}

impl Actor {
    /// The name registrations record as their registrant.
    pub fn registrant(&self) -> &str {
        match self {
            Actor::Operator => "operator",
            Actor::Party(party) => &party.party_id,
        }
    }

    /// Refuses (403) a party without `role`; the operator may do anything
    /// a role allows.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        match self {
            Actor::Operator => Ok(()),
            Actor::Party(party) if party.has(role) => Ok(()),
            Actor::Party(party) => Err(ApiError::Forbidden(format!(
                "party {} does not have the {} role",
                party.party_id,
                role.as_str()
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(digest) = bearer_digest(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        if digest == state.operator_token_digest {
            return Ok(Actor::Operator);
        }
        // The party may be registered but not yet applied here.
        state
            .applied()
            .find(|| state.parties.by_token(&state.registry, &digest))
            .await?
            .map(Actor::Party)
            .ok_or(ApiError::Unauthorized)
    }
}

/// Parties by their token's digest, as far as this node has looked them
/// up. A party's record and token never change once applied, so what is
/// found here stays true; a token not found is looked up again next time,
/// after a linearizable read, so a party registered through another node a
/// moment ago is found.
#[derive(Debug, Default)]
pub struct PartyTokens {
    known: Mutex<HashMap<[u8; 32], Arc<PartyRegistered>>>,
}

impl PartyTokens {
    /// Whether the token with this digest is a party's found before.
    pub fn knows(&self, digest: &[u8; 32]) -> bool {
        self.known
            .lock()
            .is_ok_and(|known| known.contains_key(digest))
    }

    async fn by_token(
        &self,
        registry: &Registry,
        digest: &[u8; 32],
    ) -> ApiResult<Option<Arc<PartyRegistered>>> {
        if let Some(party) = self.known.lock().ok().and_then(|k| k.get(digest).cloned()) {
            return Ok(Some(party));
        }
        let Some(record) = registry.party_by_token(&hex::encode(digest)).await? else {
            return Ok(None);
        };
        let party = Arc::new(record.party);
        if let Ok(mut known) = self.known.lock() {
            known.insert(*digest, party.clone());
        }
        Ok(Some(party))
    }
}

/// The SHA-256 of the request's bearer token, whoever it belongs to.
fn bearer_digest(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme name is case-insensitive (RFC 9110 section 11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token_digest(token.trim()))
}
