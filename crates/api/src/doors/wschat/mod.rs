//! Door 000, "websocket chat" (seed 000).
//!
//! Sign-up/sign-in, groups, and two WebSockets — a direct chat opened by the peer's email or
//! username, and a group chat — that replay the history oldest first and then go live.
//!
//! The original half-worked (live messages never reached the other user; any error killed the
//! process); we keep its surface and make it work (docs/doors.md, "Door 000"). Errors are plain
//! text, as the original's.
//!
//! Decisions where the seed is silent: tokens are `{"user_id","exp"}` JWTs valid
//! `CHAT_DOOR_TOKEN_TTL_SECS` (24 h; accepted by every door); connecting to a public group's
//! socket joins it; the replay is the newest 100 messages; a bad client frame gets
//! `{"error":"<reason>"}` and the socket stays open; a body over `CHAT_MAX_BODY_BYTES` is 413.

mod rest;
mod ws;

use crate::auth::TokenUserError;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::DomainError;
use chat_selectors::UserView;

use crate::auth::request_token;
use crate::error::ApiError;
use crate::state::AppState;

/// How many of the newest messages a socket replays on connect.
const REPLAY: i64 = 100;
/// The close reason when the user is not (or no longer) in the chat.
const NOT_MEMBER: &str = "not a member of this chat";

/// Mounts door 000's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes = [
        ("/auth/sign-up", web::post().to(rest::sign_up)),
        ("/auth/sign-in", web::post().to(rest::sign_in)),
        ("/group_chat", web::post().to(rest::group_chat)),
        ("/chat", web::get().to(ws::direct_socket)),
        ("/chat_group", web::get().to(ws::group_socket)),
    ];
    for (path, route) in routes {
        cfg.service(
            web::resource(path)
                .route(route)
                .default_service(web::to(|| async {
                    plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                })),
        );
    }
}

fn plain(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::plaintext())
        .body(message.to_owned())
}

/// An error answered as plain text.
#[derive(Debug)]
struct PlainError(StatusCode, String);

impl std::fmt::Display for PlainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

impl actix_web::ResponseError for PlainError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        plain(self.0, &self.1)
    }
}

impl From<ApiError> for PlainError {
    fn from(error: ApiError) -> Self {
        Self(error.status(), error.detail().to_owned())
    }
}

macro_rules! via_api_error {
    ($($t:ty),+) => {$(
        impl From<$t> for PlainError {
            fn from(error: $t) -> Self {
                ApiError::from(error).into()
            }
        }
    )+};
}
via_api_error!(DomainError, chat_services::Error);

/// The per-address login/registration limit, answered in this door's plain text.
async fn over_auth_limit(state: &AppState, req: &HttpRequest) -> Option<HttpResponse> {
    super::auth_limited(state, req, "text/plain; charset=utf-8", |_| {
        "too many requests".into()
    })
    .await
}

type PlainResult<T> = Result<T, PlainError>;

fn bad(message: &str) -> PlainError {
    PlainError(StatusCode::BAD_REQUEST, message.to_owned())
}

/// Reads and parses a JSON body. Errors: 413 over `CHAT_MAX_BODY_BYTES`, 400 otherwise.
async fn body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    payload: web::Payload,
) -> PlainResult<T> {
    let raw = super::read_body(state, payload)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge(limit) => PlainError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {limit} bytes"),
            ),
            super::BodyError::Broken(why) => bad(&format!("invalid body: {why}")),
        })?;
    serde_json::from_slice(&raw).map_err(|e| bad(&format!("invalid body: {e}")))
}

/// The bearer user (header or `?token=`) and the token's issue time. Errors: 401 `unauthorized`.
async fn current_user(req: &HttpRequest, state: &AppState) -> PlainResult<(UserView, i64)> {
    let unauthorized = || PlainError(StatusCode::UNAUTHORIZED, "unauthorized".into());
    let token = request_token(req).ok_or_else(unauthorized)?;
    let (user, verified) = match crate::auth::token_user(state, &token).await {
        Ok(found) => found,
        Err(TokenUserError::Refused(_)) => return Err(unauthorized()),
        Err(TokenUserError::Fault(e)) => return Err(e.into()),
    };
    Ok((user, verified.issued_at))
}
