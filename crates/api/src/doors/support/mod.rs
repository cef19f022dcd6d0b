//! Door 003, the support chat microservice (seed 003): `POST /v1/auth/` and the JSON-RPC style
//! WebSocket `/v1/ws/` (docs/doors.md, "Door 003").
//!
//! A customer talks to "support"; operators (role `operator` or `admin`, made with `chat-server
//! create-operator <username>`) answer. Every customer has one support chat in the shared core.
//!
//! Frames: `{"method","params":[...],"id"}` in, `{"error","result","id"}` out. Error codes:
//! 1 "Incorrect argument." (wrong params, also invalid JSON), 2 "Unknown method.", 3 "Not
//! authorized." (before `message.auth`, or a method of the other role), 4 "Too many requests."
//! (over the per-user send limit; our addition). A message:
//! `{"message_id","message_text","invader_name","is_from_support","created","user_id"}` —
//! `invader_name` the operator's name ("" for the customer), `created` unix seconds, `user_id`
//! the customer (our addition: an unbound operator needs it to answer).
//!
//! Decisions: a socket not authenticated 10 s after opening is closed at the next heartbeat; history is the newest 200 text messages;
//! a sender is not pushed its own message (it has the reply); join lines are not shown; tokens
//! live `CHAT_DOOR_TOKEN_TTL_SECS`; an auth body over `CHAT_MAX_BODY_BYTES` is 413 (empty, like
//! the route's other refusals); a frame over the socket's rate limit gets code 4.

mod socket;
use socket::*;

use crate::auth::TokenUserError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::CloseCode;
use chat_domain::{ChatId, MessageKind, MessageText, UserId};
use chat_selectors::{ChatEvent, MessageView, UserView, text_messages, user_by_id};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::realtime::socket::{Flow, Outbox, SocketDoor, SocketLimits, Stop, drive, upgrade};
use crate::realtime::{Connection, Event, FrameKind, SessionGuard, Subscription, SupportWatch};
use crate::state::AppState;

/// How long a socket may stay unauthenticated.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How many of the newest messages `message.auth` returns.
const HISTORY: i64 = 200;

/// Mounts door 003's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/auth/")
            .route(web::post().to(auth))
            .default_service(web::to(not_found)),
    )
    .service(web::resource("/v1/ws/").route(web::get().to(socket)));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// `POST /v1/auth/ {"user_name","password"}` → 200 `{"error":null,"result":{"token"},"id":<user id>}`;
/// the right shape with wrong credentials → 403, empty; anything else → 404, empty.
async fn auth(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Over the limit: 429 with an empty body, like the route's other refusals.
    if let Some(refused) =
        crate::doors::auth_limited(&state, &req, "text/plain", |_| String::new()).await
    {
        return Ok(refused);
    }
    let raw = match crate::doors::read_body(&state, payload).await {
        Ok(raw) => raw,
        Err(crate::doors::BodyError::TooLarge(_)) => {
            return Ok(HttpResponse::PayloadTooLarge().finish());
        }
        Err(crate::doors::BodyError::Broken(_)) => return Ok(HttpResponse::NotFound().finish()),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let (Some(name), Some(password)) = (
        body.get("user_name").and_then(Value::as_str),
        body.get("password").and_then(Value::as_str),
    ) else {
        return Ok(HttpResponse::NotFound().finish());
    };
    match chat_services::authenticate(&state.store, name, password, state.settings.bcrypt_cost)
        .await
    {
        Ok(logged_in) => {
            let user = logged_in.user.id;
            let token = state.jwt.issue_door(user, logged_in.tokens_not_before);
            Ok(HttpResponse::Ok()
                .json(json!({"error": null, "result": {"token": token}, "id": user})))
        }
        Err(chat_services::Error::Domain(_)) => Ok(HttpResponse::Forbidden().finish()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/ws/`: the support socket; authenticate with `message.auth` first.
async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (response, session, stream) = upgrade(&req, body)?;
    let state = state.get_ref().clone();
    let limits = SocketLimits::new(&state);
    let (tx, rx) = mpsc::channel(limits.queue);
    // The user is unknown until `message.auth`; this door needs no per-user delivery, so the
    // hub connection is not keyed by user.
    let conn = state.hub.connect(UserId(0), tx);
    let door = SupportSocket {
        state,
        conn: conn.clone(),
        opened: Instant::now(),
        sent: std::collections::VecDeque::new(),
        session: None,
    };
    actix_web::rt::spawn(drive(session, stream, conn, rx, door, limits).in_current_span());
    Ok(response)
}

/// What an authenticated socket is.
struct Authenticated {
    user: UserView,
    operator: bool,
    /// The customer whose chat this socket follows (the customer's own; a bound operator's).
    customer: Option<UserId>,
    /// The chat and highest seq the `message.auth` history held.
    replayed: Option<(ChatId, i64)>,
    _subscription: Option<Subscription>,
    _watch: Option<SupportWatch>,
    _session: SessionGuard,
}
