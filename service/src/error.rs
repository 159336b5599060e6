//! `ApiError`: every error the API returns, as RFC 9457 problem+json.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use raft_store::StoreError;
use registry::{RegistryError, Rejection};
use serde_json::json;

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong credentials.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The credentials are valid but do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A signed intent broke one of the rules of docs/SIGNING.md;
    /// `reason` names it (`bad-signature`, `expired`, ...) and is the
    /// problem type's last part.
    #[error("{detail}")]
    Intent {
        /// The rule, as `registry::intent::IntentReason::as_str` names it.
        reason: String,
        /// What exactly.
        detail: String,
    },
    /// The request is malformed; the detail says how.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing at that address.
    #[error("{0}")]
    NotFound(String),
    /// The endpoint exists but not for this method.
    #[error("this endpoint does not support this method")]
    MethodNotAllowed,
    /// The bytes are registered already.
    #[error("this file is already registered as {content_id}")]
    Duplicate {
        /// The existing registration.
        content_id: String,
    },
    /// The upload exceeds the configured limit.
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request body is not in a form this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request conflicts with the cluster's state.
    #[error("{0}")]
    Conflict(String),
    /// A licence would conflict with an existing one; the problem names it
    /// and the overlap.
    #[error("the licence would conflict with licence {}", .0.licence_id)]
    LicenceConflict(Box<registry::rights::Conflict>),
    /// The node cannot take the request now, but may soon (no leader, an
    /// expired lease, a leadership transfer); clients retry after a pause.
    #[error("{0}")]
    Unavailable(String),
    /// The client sent its request body too slowly or stopped sending it.
    #[error("{0}")]
    RequestTimeout(String),
    /// The file cannot be processed within this node's bounds (it would
    /// decode to more memory or take longer than allowed).
    #[error("{0}")]
    Unprocessable(String),
    /// The node is at one of its capacity bounds; the client retries after
    /// `retry_after` seconds.
    #[error("{detail}")]
    Busy {
        /// Which bound, in words.
        detail: String,
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// The client exceeded its request rate.
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until the next request is allowed.
        retry_after: u64,
    },
    /// Anything else; logged in full, reported generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Intent { reason, .. } => refusal_status(reason),
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Duplicate { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict(_) | Self::LicenceConflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type, a stable identifier clients can switch on.
    fn problem_type(&self) -> std::borrow::Cow<'static, str> {
        if let Self::Intent { reason, .. } = self {
            return format!("urn:provreg:problem:{reason}").into();
        }
        match self {
            Self::Unauthorized => "urn:provreg:problem:unauthorized",
            Self::Forbidden(_) => "urn:provreg:problem:forbidden",
            Self::BadRequest(_) => "urn:provreg:problem:bad-request",
            Self::NotFound(_) => "urn:provreg:problem:not-found",
            Self::MethodNotAllowed => "urn:provreg:problem:method-not-allowed",
            Self::Duplicate { .. } => "urn:provreg:problem:duplicate-content",
            Self::TooLarge { .. } => "urn:provreg:problem:upload-too-large",
            Self::UnsupportedMediaType(_) => "urn:provreg:problem:unsupported-media-type",
            Self::Conflict(_) => "urn:provreg:problem:conflict",
            Self::LicenceConflict(_) => "urn:provreg:problem:licence-conflict",
            Self::Unavailable(_) => "urn:provreg:problem:unavailable",
            Self::RequestTimeout(_) => "urn:provreg:problem:request-timeout",
            Self::Unprocessable(_) => "urn:provreg:problem:unprocessable-media",
            Self::Busy { .. } => "urn:provreg:problem:overloaded",
            Self::RateLimited { .. } => "urn:provreg:problem:rate-limited",
            Self::Internal(_) | Self::Intent { .. } => "urn:provreg:problem:internal",
        }
        .into()
    }
}

impl ApiError {
    /// The RFC 9457 problem document for this error. An internal error is
    /// logged here, in full, and described to the client generically.
    pub fn problem(&self) -> serde_json::Value {
        let status = self.status();
        let detail = match self {
            Self::Internal(e) => {
                // Logged once, here, with the full chain; the client gets
                // nothing that could leak internals.
                tracing::error!(error = ?e, "Request failed with an internal error.");
                "the server failed to handle this request; the operator can find details in its log"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({
            "type": self.problem_type(),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        if let Self::Duplicate { content_id } = self {
            body["content_id"] = json!(content_id);
        }
        if let Self::LicenceConflict(conflict) = self {
            body["conflict"] = json!(conflict);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = self.problem();
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match &self {
            // Elections take one to two seconds.
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Busy { retry_after, .. } | Self::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::RequestTimeout(_) => {
                // The body was cut off midway; the connection cannot carry
                // another request.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The status of a refused intent, by its reason: every reason is
/// classified here, so a new one cannot fall to a default unnoticed.
fn refusal_status(reason: &str) -> StatusCode {
    use registry::IntentReason as I;
    use registry::rights::RightsReason as R;
    if let Some(reason) = I::from_name(reason) {
        return match reason {
            I::MalformedIntent | I::UnknownType | I::MalformedSignature | I::UnbalancedShares => {
                StatusCode::BAD_REQUEST
            }
            I::WrongLog | I::Expired | I::ExpiryTooFar => StatusCode::UNPROCESSABLE_ENTITY,
            I::MissingSignature | I::UnexpectedSigner | I::DuplicateSignature | I::BadSignature => {
                StatusCode::FORBIDDEN
            }
            I::Replayed => StatusCode::CONFLICT,
        };
    }
    match R::from_name(reason) {
        Some(R::UnknownContent | R::UnknownLicence) => StatusCode::NOT_FOUND,
        Some(
            R::NotAHolder
            | R::InsufficientShare
            | R::TooManyHolders
            | R::HoldersChanged
            | R::NoHolders
            | R::LicenceRevoked
            | R::NotSublicensable
            | R::ScopeExceeded
            | R::ExclusivityExceeded
            | R::SameLicensee,
        ) => StatusCode::CONFLICT,
        // Rules named by apply outside these vocabularies: the proposer
        // sent a leaf it should not have, a bad request at worst.
        None => StatusCode::BAD_REQUEST,
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { .. } | RegistryError::OutOfRange(_) => {
                Self::BadRequest(e.to_string())
            }
            RegistryError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            RegistryError::Intent { reason, detail } => Self::Intent {
                reason: reason.as_str().to_owned(),
                detail,
            },
            other => Self::Internal(other.into()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotLeader { .. }
            | StoreError::NoLeader(_)
            | StoreError::Unavailable { .. }
            | StoreError::ClockSkew { .. }
            | StoreError::OutcomeUnknown(_) => Self::Unavailable(e.to_string()),
            StoreError::Membership(reason) => Self::Conflict(reason),
            StoreError::CommandTooLarge { .. } => Self::BadRequest(e.to_string()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::DuplicateContent { content_id } => Self::Duplicate { content_id },
            Rejection::LicenceConflict(conflict) => Self::LicenceConflict(conflict),
            Rejection::UnknownDerivedFrom { .. } => Self::BadRequest(r.to_string()),
            // Named by a registration's holders; a key rotation's own party
            // is looked up (404) before it is proposed.
            Rejection::UnknownParty { .. } => Self::BadRequest(r.to_string()),
            Rejection::IntentRefused { rule, detail } => Self::Intent {
                reason: rule,
                detail,
            },
            // The proposer stamps entries anew and retries; one that still
            // arrives here lost every retry to faster writers.
            Rejection::TimestampRegressed { .. } | Rejection::ClaimNotReferenced { .. } => {
                Self::Unavailable(r.to_string())
            }
            // The service names only claims it found.
            Rejection::UnknownClaim { .. } => Self::Internal(anyhow::anyhow!(r)),
            Rejection::ClusterAlreadyFormed
            | Rejection::NodeIdReused { .. }
            | Rejection::UnknownNode { .. }
            | Rejection::InvalidApproval { .. }
            | Rejection::PartyKeyTaken { .. } => Self::Conflict(r.to_string()),
            Rejection::MalformedEntry { .. } | Rejection::ApplyFailed { .. } => {
                Self::Internal(anyhow::anyhow!(r))
            }
            // The service computes both itself; a mismatch is a bug.
            Rejection::PrintsMismatch { .. } | Rejection::InvalidFingerprint { .. } => {
                Self::Internal(anyhow::anyhow!(r))
            }
            // Ids are fresh UUIDv7s; a clash means a bug, not bad input.
            Rejection::ContentIdTaken { .. } | Rejection::PartyIdTaken { .. } => {
                Self::Internal(anyhow::anyhow!(r))
            }
        }
    }
}

/// The first error of type `T` in `error`'s chain of causes.
pub fn cause<'e, T: std::error::Error + 'static>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;
