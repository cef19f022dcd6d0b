//! The native door's (and door 002's) HTTP error: JSON `{"detail","code"[,"fields"]}` with a 4xx
//! status, mapped in one place from the domain and infrastructure errors.
//!
//! A 5xx is logged once with its cause; the client gets no internals.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chat_domain::{DomainError, FieldErrors};
use serde::Serialize;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    fields: Option<FieldErrors>,
    retry_after: Option<u64>,
    expired: bool,
}

/// The error body every native (and door 002) route answers with, for the API document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable text.
    pub detail: String,
    /// `snake_case` code: `invalid`, `invalid_json`, `not_authenticated`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `too_large`, `unsupported_media_type`,
    /// `rate_limited`, `unavailable`, `internal`.
    pub code: String,
    /// For validation errors: field → problems.
    pub fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// For a 401 with an expired access token only: `[{"token_class":"AccessToken",
    /// "token_type":"access","message":"Token is expired"}]` (simplejwt's shape).
    pub messages: Option<Vec<TokenMessage>>,
}

/// Why a token was refused, in djangorestframework-simplejwt's shape (door 002's original).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenMessage {
    /// Always `AccessToken`.
    pub token_class: &'static str,
    /// Always `access`.
    pub token_type: &'static str,
    /// `Token is expired`.
    pub message: &'static str,
}

/// The hint an expired access token gets: the body's `messages` and RFC 6750 §3's header.
const EXPIRED: TokenMessage = TokenMessage {
    token_class: "AccessToken",
    token_type: "access",
    message: "Token is expired",
};

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a FieldErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<[TokenMessage; 1]>,
}

impl ApiError {
    /// An error with the given status, `snake_case` code and human text.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            fields: None,
            retry_after: None,
            expired: false,
        }
    }

    /// 401 `not_authenticated`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authenticated", detail)
    }

    /// 401 `not_authenticated` for a well-signed access token past its `exp`: simplejwt's detail
    /// "Given token not valid for any token type", plus `"messages":[{..."Token is expired"}]`
    /// in the body and `WWW-Authenticate: Bearer error="invalid_token", error_description="The
    /// access token expired"` (RFC 6750 §3), so a client knows to refresh rather than log in.
    pub fn token_expired() -> Self {
        Self {
            expired: true,
            ..Self::unauthorized("Given token not valid for any token type")
        }
    }

    /// Whether this is [`ApiError::token_expired`].
    pub fn is_token_expired(&self) -> bool {
        self.expired
    }

    /// 400 `invalid`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", detail)
    }

    /// 429 `rate_limited`, to be retried after `retry_after_secs` seconds.
    pub fn rate_limited(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The human-readable text.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// For a 429: seconds until the request may be retried (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The `snake_case` code (`invalid`, `forbidden`, `not_found`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 500 `internal`; the cause and the call site (where `?` met it) go to the log.
    #[track_caller]
    fn internal(cause: &dyn std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(error = %cause, at = %at, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error.",
        )
    }

    /// 503 `unavailable` with `Retry-After: 1` (a store did not answer, or a write's outcome
    /// is unknown: retrying — a send with the same `client_id` — is safe).
    #[track_caller]
    fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(error = %cause, at = %at, "storage unavailable");
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable; try again (a send with the same \
                 client_id is never stored twice).",
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                if self.expired {
                    r#"Bearer error="invalid_token", error_description="The access token expired""#
                } else {
                    "Bearer"
                },
            ));
        }
        response.json(Body {
            detail: &self.detail,
            code: self.code,
            fields: self.fields.as_ref(),
            messages: self.expired.then_some([EXPIRED]),
        })
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid(fields) => {
                let detail = fields
                    .iter()
                    .map(|(field, problems)| format!("{field}: {}", problems.join(" ")))
                    .collect::<Vec<_>>()
                    .join("; ");
                Self {
                    fields: Some(fields),
                    ..Self::new(StatusCode::BAD_REQUEST, "invalid", detail)
                }
            }
            DomainError::Unauthorized(reason) => Self::unauthorized(reason.to_string()),
            DomainError::Forbidden(reason) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", reason.to_string())
            }
            DomainError::NotFound(reason) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", reason.to_string())
            }
            DomainError::Conflict(reason) => {
                Self::new(StatusCode::CONFLICT, "conflict", reason.to_string())
            }
            DomainError::RateLimited { retry_after_secs } => Self::rate_limited(
                format!("Too many requests; retry in {retry_after_secs} s."),
                retry_after_secs,
            ),
        }
    }
}

impl From<chat_services::Error> for ApiError {
    /// Maps a service error; faults are logged with the location of the `?` that met them.
    #[track_caller]
    fn from(error: chat_services::Error) -> Self {
        use chat_services::Error as E;
        match error {
            E::Domain(e) => e.into(),
            E::Pool(_) | E::Cache(_) | E::Unavailable(_) => Self::unavailable(&error),
            E::Database(ref e) if chat_services::transient_database_fault(e) => {
                Self::unavailable(&error)
            }
            E::Database(_) | E::Internal(_) => Self::internal(&error),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
