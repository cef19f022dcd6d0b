//! Door 004, "chat-server" (Go, chi; seed 004): REST at the root path and the WebSocket `/ws`.
//!
//! The auth header is the raw token (`Authorization: <jwt>`, no `Bearer`); tokens carry
//! `{"user_id","exp"}` and live `CHAT_DOOR_TOKEN_TTL_SECS` (24 h, as the original); errors are
//! plain text `<message>\n` with the original texts and status codes (docs/doors.md, "Door 004"),
//! 413 `request body too large` over `CHAT_MAX_BODY_BYTES`. Rooms are groups in the shared core.

mod rest;
use rest::*;

mod ws;

use crate::auth::TokenUserError;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{ChatId, ChatKind, Email, GroupName, Password, Title, UserId, Username};
use chat_domain::{ConflictReason, DomainError, ForbiddenReason, NotFoundReason};
use chat_selectors::{UserView, chat_by_id, credentials_by_login, user_by_id};
use chat_services::Error::Domain;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Mounts door 004's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes = [
        ("/register", web::post().to(register)),
        ("/login", web::put().to(login)),
        ("/profile", web::get().to(profile)),
        ("/change-name", web::put().to(change_name)),
        ("/create-room", web::post().to(create_room)),
        ("/join", web::put().to(join)),
        ("/invite", web::put().to(invite)),
        ("/ws", web::get().to(ws::socket)),
    ];
    for (path, route) in routes {
        cfg.service(
            web::resource(path)
                .route(route)
                .default_service(web::to(|| async {
                    text_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                })),
        );
    }
}

/// An error as the original answered it: plain text, the message and a newline.
#[derive(Debug)]
pub struct RoomsError(StatusCode, String);

impl RoomsError {
    fn new(status: StatusCode, message: &str) -> Self {
        Self(status, message.to_owned())
    }
}

fn text_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::plaintext())
        .body(format!("{message}\n"))
}

impl std::fmt::Display for RoomsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

impl actix_web::ResponseError for RoomsError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        text_error(self.0, &self.1)
    }
}

/// Infrastructure faults: a 5xx with a short text (logged once by `ApiError`).
impl From<chat_services::Error> for RoomsError {
    fn from(error: chat_services::Error) -> Self {
        let error = ApiError::from(error);
        Self(error.status(), error.detail().to_owned())
    }
}

/// The per-address login/registration limit, answered as the original would have: 429, plain text.
async fn over_auth_limit(state: &AppState, req: &HttpRequest) -> Option<HttpResponse> {
    super::auth_limited(state, req, "text/plain; charset=utf-8", |_| {
        "too many requests\n".into()
    })
    .await
}

type RoomsResult<T> = Result<T, RoomsError>;

fn bad(message: &str) -> RoomsError {
    RoomsError::new(StatusCode::BAD_REQUEST, message)
}

fn unauthorized(message: &str) -> RoomsError {
    RoomsError::new(StatusCode::UNAUTHORIZED, message)
}

/// Reads and parses a JSON body. Errors: 413 `request body too large` over
/// `CHAT_MAX_BODY_BYTES`, 400 `invalid data`.
async fn body<T: DeserializeOwned>(state: &AppState, payload: web::Payload) -> RoomsResult<T> {
    let raw = super::read_body(state, payload)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge(_) => {
                RoomsError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            }
            super::BodyError::Broken(_) => bad("invalid data"),
        })?;
    serde_json::from_slice(&raw).map_err(|_| bad("invalid data"))
}

/// A present, non-empty field. Errors: 400 `missing fields`.
fn field<T>(value: Option<T>) -> RoomsResult<T> {
    value.ok_or_else(|| bad("missing fields"))
}

/// The user of the raw-token `Authorization` header. Errors: 401 `authorization failed`.
async fn current_user(req: &HttpRequest, state: &AppState) -> RoomsResult<UserView> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .ok_or_else(|| unauthorized("authorization failed"))?;
    match crate::auth::token_user(state, token).await {
        Ok((user, _)) => Ok(user),
        Err(TokenUserError::Refused(_)) => Err(unauthorized("authorization failed")),
        Err(TokenUserError::Fault(e)) => Err(RoomsError(e.status(), e.detail().to_owned())),
    }
}

/// Door 004's names: 3–20 bytes of ASCII letters, digits and `_`.
fn valid_name(name: &str) -> bool {
    (3..=20).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const NAME_RULE: &str =
    "name must be 3-20 characters long and contain only letters, numbers or underscores";

/// A username by door 004's rule and the domain's. A reserved name or a lookalike of one
/// (`system`, `error`, `systern`) is `taken`: 409 with that text (the original's wording for a
/// name in use).
fn username(name: &str, taken: &str) -> RoomsResult<Username> {
    if !valid_name(name) {
        return Err(bad(NAME_RULE));
    }
    Username::parse(name).map_err(|e| match e {
        DomainError::Conflict(ConflictReason::NameReserved) => {
            RoomsError::new(StatusCode::CONFLICT, taken)
        }
        _ => bad(NAME_RULE),
    })
}

const TAKEN_AT_SIGN_UP: &str = "user with same name or email already exists";
const NAME_TAKEN: &str = "user with same name already exists";

fn profile_json(user: &UserView) -> serde_json::Value {
    json!({"id": user.id, "username": user.username, "email": user.email, "created-at": user.created_at})
}
