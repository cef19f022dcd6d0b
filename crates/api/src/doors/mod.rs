//! The doors: each a folder of its own mapping one wire protocol onto the same services and
//! selectors. Deleting a door's folder (and its line in [`configure`]) deletes the protocol.

pub mod avito;
pub mod native;
pub mod realtime_chat;
pub mod rooms;
pub mod support;
pub mod wschat;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::error::ApiError;

/// Mounts the native door and every door switched on in `settings`, plus JSON 404/405 answers and
/// body limits.
///
/// Door 001 is never mounted here: it has no authentication and gets a listener of its own
/// (`crate::app::start`).
pub fn configure(cfg: &mut web::ServiceConfig, settings: &crate::config::Settings) {
    let max_body_bytes = settings.max_body_bytes;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(|err, _| json_error(err).into()),
    )
    .app_data(web::PathConfig::default().error_handler(|_, _| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.").into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        ApiError::bad_request(format!("Invalid query string: {err}")).into()
    }));
    cfg.service(resource("/healthz").get(healthz))
        .service(resource("/readyz").get(readyz))
        .service(resource("/metrics").get(crate::metrics::render));
    crate::openapi::configure(cfg);
    native::configure(cfg);
    if settings.door_realtime_chat {
        realtime_chat::configure(cfg);
    }
    if settings.door_rooms {
        rooms::configure(cfg);
    }
    if settings.door_wschat {
        wschat::configure(cfg);
    }
    if settings.door_support {
        support::configure(cfg);
    }
}

/// Deserializes an optional JSON integer the way JSON Schema counts integers (RFC 8259 numbers with
/// no fractional part).
///
/// `7`, `7.0` and `7e0` are all 7; `7.5`, or a number beyond `i64`, is a type error (400
/// `invalid_json`).
///
/// Use with `#[serde(default, deserialize_with = "...")]`.
pub fn integral<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) =
        <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
    else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        // Both bounds are exact in f64: -2^63 is i64::MIN, 2^63 is one past i64::MAX.
        Some(f)
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) =>
        {
            Ok(Some(f as i64))
        }
        _ => Err(D::Error::custom(format!(
            "invalid type: {number}, expected an integer"
        ))),
    }
}

fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json.",
        ),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("Request body exceeds {limit} bytes."),
        ),
        E::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("Invalid request body: {e}"),
        ),
        E::Deserialize(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("Malformed JSON: {e}"),
        ),
        other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", other.to_string()),
    }
}

/// A resource whose unsupported methods answer 405 in the native error format, with `Allow`
/// listing the methods it serves (RFC 9110 §15.5.6): `resource("/x").get(a).patch(b)`.
pub fn resource(path: &str) -> Routes {
    Routes {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

/// The routes of one path, built by [`resource`]; mounted with `cfg.service(...)`.
pub struct Routes {
    resource: actix_web::Resource,
    allow: Vec<&'static str>,
}

macro_rules! method {
    ($name:ident, $label:literal) => {
        #[doc = concat!("Serves `", $label, "` with `handler`.")]
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: actix_web::Handler<Args>,
            Args: actix_web::FromRequest + 'static,
            F::Output: actix_web::Responder + 'static,
        {
            self.resource = self.resource.route(web::$name().to(handler));
            self.allow.push($label);
            self
        }
    };
}

impl Routes {
    method!(get, "GET");
    method!(post, "POST");
    method!(patch, "PATCH");
    method!(delete, "DELETE");
}

impl actix_web::dev::HttpServiceFactory for Routes {
    #[expect(
        clippy::expect_used,
        reason = "method names are ASCII tokens, always valid header text"
    )]
    fn register(self, config: &mut actix_web::dev::AppService) {
        let allow = actix_web::http::header::HeaderValue::from_str(&self.allow.join(", "))
            .expect("method names are valid header text");
        self.resource
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move {
                    let mut response = ApiError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        "Method not allowed.",
                    )
                    .error_response();
                    response
                        .headers_mut()
                        .insert(actix_web::http::header::ALLOW, allow);
                    response
                }
            }))
            .register(config)
    }
}

/// `GET /healthz` → 200 `{"status":"ok"}` while the process serves (container health checks).
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz` → 200 `{"status":"ready"}` when PostgreSQL and Redis answer; 200
/// `{"status":"degraded","reason":"redis: <cause>"}` when only Redis does not (the instance
/// serves without it: sends are stored and answered, live delivery catches up when Redis is
/// back — taking every instance out of the load balancer would be worse); 503
/// `{"status":"unavailable","reason":"database: <cause>"}` without PostgreSQL or while shutting
/// down (load balancers stop routing here).
async fn readyz(state: web::Data<crate::state::AppState>) -> HttpResponse {
    if *state.shutdown.borrow() {
        let body = serde_json::json!({"status": "unavailable", "reason": "shutting down"});
        return HttpResponse::ServiceUnavailable().json(body);
    }
    let (database, redis) = tokio::join!(state.store.check_database(), state.store.check_redis());
    match (database, redis) {
        (Ok(()), Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        (Err(e), _) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "reason": format!("database: {e}")})),
        (Ok(()), Err(e)) => HttpResponse::Ok()
            .json(serde_json::json!({"status": "degraded", "reason": format!("redis: {e}")})),
    }
}

/// The default answer for unknown routes: 404 in the native error format.
pub async fn not_found(_req: HttpRequest) -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.").error_response()
}

/// Counts a login or registration against the per-address limit (`crate::auth::limit_auth`).
///
/// Over it: `Some` 429 with `Retry-After`, its body rendered by `body` in the door's own format
/// with `content_type`; under it: `None`.
pub async fn auth_limited(
    state: &crate::state::AppState,
    req: &HttpRequest,
    content_type: &str,
    body: impl FnOnce(&ApiError) -> String,
) -> Option<HttpResponse> {
    let error = crate::auth::limit_auth(state, req).await.err()?;
    let mut response = HttpResponse::build(error.status());
    if let Some(secs) = error.retry_after() {
        response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
    }
    Some(response.content_type(content_type).body(body(&error)))
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than `CHAT_MAX_BODY_BYTES` (the limit, bytes): each door answers 413 in its format.
    TooLarge(usize),
    /// The upload broke off or was malformed (the cause): 400.
    Broken(String),
}

/// Reads a request body of at most `CHAT_MAX_BODY_BYTES`, for the doors that parse their own
/// bodies (000, 003, 004; the JSON extractor enforces the same limit for the others).
pub async fn read_body(
    state: &crate::state::AppState,
    payload: web::Payload,
) -> Result<web::Bytes, BodyError> {
    let limit = state.settings.max_body_bytes;
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(BodyError::Broken(error.to_string())),
        Err(_) => Err(BodyError::TooLarge(limit)),
    }
}

/// A "this field is required" problem for a missing JSON field (DRF's wording).
pub fn required<T>(field: &str, value: Option<T>) -> Result<T, chat_domain::DomainError> {
    value.ok_or_else(|| chat_domain::DomainError::invalid(field, "This field is required."))
}

/// Combines several field parse results: `Ok((a, b, ...))` when all parsed, else one
/// `DomainError::Invalid` listing every bad field (so a client learns of them all at once).
macro_rules! validated {
    ($($r:ident),+ $(,)?) => {
        match ($($r,)+) {
            ($(Ok($r),)+) => Ok(($($r,)+)),
            ($($r,)+) => Err(chat_domain::DomainError::merge([$($r.err()),+].into_iter().flatten())
                .unwrap_or_else(|| chat_domain::DomainError::invalid("body", "Invalid input."))),
        }
    };
}
pub(crate) use validated;
