//! THE mapping from failures to HTTP responses: domain errors, bad input
//! caught by extractors, unknown routes. Every error a client can see is
//! built here, in the envelope of CONTRACT section 1.

use std::time::Duration;

use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use p_chat_domain::DomainError;
use p_chat_domain::error::ValidationError;

use super::MAX_BODY_BYTES;
use super::envelope::{Failure, Rejected};

/// `WWW-Authenticate` challenge when no credentials were sent (RFC 6750 §3).
const CHALLENGE: &str = r#"Bearer realm="p-chat""#;
/// `WWW-Authenticate` challenge when the credentials sent are no good.
const CHALLENGE_INVALID: &str = r#"Bearer realm="p-chat", error="invalid_token""#;

/// `Retry-After` of a connection cap: when a count will drop cannot be known;
/// a client should not hammer, and one of its own sockets may close soon.
const CONNECTION_CAP_RETRY_AFTER_SECONDS: u64 = 10;

/// Every way a request can fail, as seen by the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A `/session/*` authentication failure, answered `401 {}` as the seed specifies.
    #[error("session authentication failed")]
    SessionRejected,
    /// No bearer token on an endpoint that needs one.
    #[error("missing bearer token")]
    MissingToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("malformed Authorization header")]
    MalformedToken,
    /// The body or query could not be read as the endpoint expects.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not `application/json`.
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// A cap on open connections (WebSocket sockets per user or
    /// unauthenticated sockets per IP) is reached.
    #[error("too many open connections")]
    TooManyConnections,
    /// No route matches the path.
    #[error("not found")]
    NotFound,
    /// The path exists but not with this method; `allow` lists the methods
    /// it has (the `Allow` header a 405 must carry, RFC 9110 §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The resource's methods, comma-separated.
        allow: HeaderValue,
    },
}

impl ApiError {
    /// For `/session/*` handlers: an authentication failure becomes the seed's
    /// bare `401 {}`; anything else keeps its envelope.
    pub fn session(error: DomainError) -> Self {
        match error {
            DomainError::Unauthorized => Self::SessionRejected,
            other => Self::Domain(other),
        }
    }

    /// The error code and message a client is shown for a domain error
    /// (also in WebSocket `error` frames).
    pub fn describe(error: &DomainError) -> (&'static str, String) {
        match error {
            DomainError::Unauthorized => (
                "invalid_token",
                "the access token is invalid, expired or revoked".into(),
            ),
            other => Self::Domain(other.clone()).code_and_message(),
        }
    }

    fn code_and_message(&self) -> (&'static str, String) {
        match self {
            Self::Domain(DomainError::Invalid(error)) => (error.code(), error.to_string()),
            Self::Domain(DomainError::Conflict(error)) => (error.code(), error.to_string()),
            Self::Domain(DomainError::Unauthorized) => (
                "invalid_token",
                "the access token is invalid, expired or revoked".into(),
            ),
            Self::Domain(DomainError::Refused(refusal)) => (refusal.code(), refusal.to_string()),
            Self::Domain(DomainError::Forbidden) => {
                ("forbidden", "you are not allowed to do this here".into())
            }
            Self::Domain(DomainError::NotFound(missing)) => {
                (missing.code(), format!("no such {missing}"))
            }
            Self::Domain(DomainError::ResyncRequired) => {
                ("resync_required", DomainError::ResyncRequired.to_string())
            }
            Self::Domain(DomainError::Unavailable(_)) => (
                "service_unavailable",
                "the database is unavailable; try again shortly".into(),
            ),
            Self::Domain(DomainError::RateLimited { retry_after }) => (
                "rate_limited",
                format!(
                    "too many requests; retry in {} seconds",
                    retry_after_seconds(*retry_after)
                ),
            ),
            Self::Domain(DomainError::Internal(_)) => {
                ("internal_error", "something went wrong on our side".into())
            }
            Self::SessionRejected => ("unauthorized", self.to_string()),
            Self::MissingToken => (
                "missing_token",
                "this endpoint needs an Authorization: Bearer <access_token> header".into(),
            ),
            Self::MalformedToken => (
                "invalid_token",
                "the Authorization header must be: Bearer <access_token>".into(),
            ),
            Self::BadRequest { code, message } => (code, message.clone()),
            Self::PayloadTooLarge => (
                "payload_too_large",
                format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
            ),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                "the request body must be JSON (Content-Type: application/json)".into(),
            ),
            Self::TooManyConnections => (
                "too_many_connections",
                "too many open connections; close one and retry".into(),
            ),
            Self::NotFound => ("not_found", "no such resource".into()),
            Self::MethodNotAllowed { .. } => {
                ("method_not_allowed", "method not allowed here".into())
            }
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Domain(error.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Domain(DomainError::Invalid(_)) | Self::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Domain(DomainError::Unauthorized)
            | Self::SessionRejected
            | Self::MissingToken
            | Self::MalformedToken => StatusCode::UNAUTHORIZED,
            Self::Domain(DomainError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Domain(DomainError::Forbidden | DomainError::Refused(_)) => StatusCode::FORBIDDEN,
            Self::Domain(DomainError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Domain(DomainError::ResyncRequired) => StatusCode::GONE,
            Self::Domain(DomainError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Domain(DomainError::RateLimited { .. }) | Self::TooManyConnections => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Domain(DomainError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Domain(DomainError::Internal(detail)) => {
                tracing::error!(%detail, "internal error");
            }
            Self::Domain(DomainError::Unavailable(detail)) => {
                tracing::warn!(%detail, "dependency unavailable");
            }
            _ => {}
        }
        if let Self::SessionRejected = self {
            return HttpResponse::build(status).json(Rejected {});
        }
        let mut response = HttpResponse::build(status);
        match self {
            Self::MissingToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                ));
            }
            Self::MalformedToken | Self::Domain(DomainError::Unauthorized) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE_INVALID),
                ));
            }
            Self::Domain(DomainError::Unavailable(_)) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            Self::Domain(DomainError::RateLimited { retry_after }) => {
                response.insert_header((
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_seconds(*retry_after)),
                ));
            }
            Self::TooManyConnections => {
                response.insert_header((
                    header::RETRY_AFTER,
                    HeaderValue::from(CONNECTION_CAP_RETRY_AFTER_SECONDS),
                ));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.clone()));
            }
            _ => {}
        }
        let (code, message) = self.code_and_message();
        response.json(Failure::new(code, message))
    }
}

/// `Retry-After` in whole seconds (RFC 9110 §10.2.3): rounded up, and at
/// least 1, so that a client retrying when told is let through.
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

/// The JSON extractor's settings: the body limit, and its failures mapped
/// to 400, 413 and 415 in the envelope.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|error, _request| json_error(error).into())
}

/// The query-string extractor's settings: failures become 400 in the envelope.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _request: &HttpRequest| {
        ApiError::BadRequest {
            code: "invalid_query",
            message: error.to_string(),
        }
        .into()
    })
}

/// The path extractor's settings: a path segment that cannot be what the
/// route expects (an id that is not a UUID) names nothing: 404.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into())
}

/// Maps a JSON body failure to its status and code.
pub fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Overflow { .. }
        | JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        JsonPayloadError::Deserialize(error) if error.is_data() => ApiError::BadRequest {
            code: "invalid_body",
            message: error.to_string(),
        },
        JsonPayloadError::Deserialize(error) => ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid JSON: {error}"),
        },
        other => ApiError::BadRequest {
            code: "invalid_body",
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn rate_limited_is_429_with_retry_after_and_the_envelope() {
        let error = ApiError::session(DomainError::RateLimited {
            retry_after: Duration::from_millis(89_500),
        });
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("90"))
        );
        assert_eq!(error.code_and_message().0, "rate_limited");
    }
}
