//! Door 001, "SIMPLE HTTP CHAT" (the Avito trainee task, seed 001): five `POST` routes with JSON
//! bodies and no auth.
//!
//! Errors are `{"error": "<description>"}` with 400 (bad body or field: the text names the field
//! and the problem), 403 (author not in the chat), 404 (unknown user/chat/author, reported before
//! any problem with a name or text), 405 with `Allow: POST`, 409 (duplicate username or chat
//! name), 413 (body over `CHAT_MAX_BODY_BYTES`), 415 (not JSON), 429 with `Retry-After` (over
//! `CHAT_AVITO_RATE_PER_MIN`) — docs/doors.md, "Door 001".
//!
//! Anyone who reaches it acts as any of its users, so it is off by default
//! (`CHAT_DOOR_AVITO=true` turns it on), is served only on its own listener
//! (`CHAT_AVITO_LISTEN`, loopback by default), and is a sandbox: it creates, lists, reads and
//! writes only its own users and chats. A user or chat id of another door is answered as unknown
//! (404), its usernames are a namespace of their own (an anonymous caller takes no name from the
//! other doors), its chats take no group name of theirs. The other doors do not reach its users
//! or chats either.
//!
//! Decisions where the task is silent: usernames and chat names are free text (RFC 8266's
//! `Nickname` profile: trimmed, spaces collapsed, NFKC, no control characters; usernames 1–64
//! characters, compared case-insensitively, chat names 1–128, unique among door 001's chats); a
//! chat is a private group whose first listed user is its owner, created with at most 1000 users;
//! `/messages/get` returns every text message of the chat (not deleted ones) and `/chats/get`
//! every chat of the user, streamed page by page ([`reads`]); one limit per client address for
//! every route (`CHAT_AVITO_RATE_PER_MIN`), none per user.

mod body;
mod reads;
mod writes;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use chat_domain::DomainError;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Mounts door 001's routes (on its own listener). Another method on them is 405 with
/// `Allow: POST` (RFC 9110 §15.5.6).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        ("/users/add", web::post().to(writes::add_user)),
        ("/chats/add", web::post().to(writes::add_chat)),
        ("/messages/add", web::post().to(writes::add_message)),
        ("/chats/get", web::post().to(reads::get_chats)),
        ("/messages/get", web::post().to(reads::get_messages)),
    ] {
        cfg.service(
            web::resource(path)
                .route(handler)
                .default_service(web::to(|| async {
                    let mut response = AvitoError(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method not allowed: use POST".into(),
                        None,
                    )
                    .error_response();
                    response.headers_mut().insert(
                        ALLOW,
                        actix_web::http::header::HeaderValue::from_static("POST"),
                    );
                    response
                })),
        );
    }
}

/// Unknown routes on door 001's own listener: 404 `{"error": "not found"}`.
pub async fn not_found() -> HttpResponse {
    AvitoError(StatusCode::NOT_FOUND, "not found".into(), None).error_response()
}

/// Counts every request to door 001 against `CHAT_AVITO_RATE_PER_MIN` per client address.
///
/// The address is the peer's, or with `CHAT_TRUST_PROXY` the one the proxy reports; the count
/// holds across instances. Over it: 429 `{"error"}` with `Retry-After` (seconds until the
/// minute's window ends), nothing done.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let per_min = state.settings.avito_rate_per_min;
        let subject = format!(
            "avito:{}",
            crate::auth::client_address(state, req.request())
        );
        if let Err(error) = chat_services::rate::take(&state.store, &subject, per_min).await {
            let mut refused = AvitoError::from(error);
            if refused.0 == StatusCode::TOO_MANY_REQUESTS {
                refused.1 = format!(
                    "too many requests: door 001 takes {per_min} a minute from one address \
                     (CHAT_AVITO_RATE_PER_MIN); retry in {} s",
                    refused.2.unwrap_or(1)
                );
            }
            let response = refused.error_response().map_into_right_body();
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// An error in door 001's format: `{"error": "<description>"}`, with `Retry-After` (s) when set.
#[derive(Debug)]
struct AvitoError(StatusCode, String, Option<u64>);

impl std::fmt::Display for AvitoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl ResponseError for AvitoError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.0);
        if let Some(secs) = self.2 {
            response.insert_header((RETRY_AFTER, secs.to_string()));
        }
        response.json(json!({"error": self.1}))
    }
}

impl From<ApiError> for AvitoError {
    fn from(error: ApiError) -> Self {
        Self(
            error.status(),
            error.detail().to_owned(),
            error.retry_after(),
        )
    }
}

macro_rules! via_api_error {
    ($($t:ty),+) => {$(
        impl From<$t> for AvitoError {
            fn from(error: $t) -> Self {
                ApiError::from(error).into()
            }
        }
    )+};
}
via_api_error!(DomainError, chat_services::Error);

type AvitoResult<T> = Result<T, AvitoError>;
