//! The gateway WebSocket `GET /api/v1/ws`: one socket per client carrying every chat the user is
//! in (docs/native-api.md, "The gateway WebSocket").
//!
//! Delivery guarantee: per chat, the socket sends `message.created` events in `seq` order, each
//! exactly once. `ready` reports, per chat, the `last_seq` at which live delivery started
//! (`live_from`); everything after it arrives live. The socket remembers the last seq it
//! delivered per chat: a live event at or below it is a duplicate and dropped, one beyond the next
//! expected seq means events were missed (published out of order, or before the socket
//! subscribed) and the gap is filled from PostgreSQL first.
//!
//! Resume: the messages up to `live_from` that the client lacks are replayed by `sync`. Asked for
//! in the handshake (`?sync=<chat>:<seq>,...` or the auth frame's `"sync"`), the replay comes
//! before any live event, so the client sees one ordered stream. Asked later, it replays only what
//! this socket has not sent yet, live or in an earlier replay (never anything twice on one
//! socket, whatever seq the client names; history again is `retrieve_message`). A replay sends at most
//! [`SYNC_MAX`] messages; `synced` says `"complete": false` when the client should continue.

mod actions;
mod frames;
mod handshake;
mod sending;
mod session;

use std::sync::Arc;
use tracing::Instrument;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::MessageStream;
use tokio::sync::mpsc;

pub use actions::SYNC_MAX;
use frames::error_frame;
pub use frames::event_frame;
use handshake::{ResumeQuery, authenticate, first_frame_auth, parse_resume_query};
use session::Gateway;

use crate::auth::request_token;
use crate::error::{ApiError, ApiResult};
use crate::realtime::socket::{Session, SocketLimits, drive, refusal_code, reject, upgrade};
use crate::realtime::{Connection, Event};
use crate::state::AppState;

/// `GET /api/v1/ws[?token=<access>][&sync=<chat_id>:<seq>,...]`.
///
/// With a token (query or `Authorization: Bearer`) the socket is live when the handshake completes;
/// without one the first frame must be `{"action":"auth","token":...,"sync"?:{...}}` within 10 s.
/// Either way the first server frame is `ready`, followed by the requested replay and `synced`.
pub async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let resume = web::Query::<ResumeQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().sync)
        .map(|raw| parse_resume_query(&raw))
        .transpose()?
        .unwrap_or_default();
    let (response, session, stream) = upgrade(&req, body)?;
    let state = state.get_ref().clone();
    let limits = SocketLimits::new(&state);
    match request_token(&req) {
        Some(token) => match authenticate(&state, &token).await {
            // Subscribed before the 101 goes out: nothing sent after the handshake is missed.
            Ok(opening) => {
                let started = Gateway::start(state, opening, resume, &limits).await;
                actix_web::rt::spawn(run(session, stream, started, limits).in_current_span());
            }
            Err(e) => {
                actix_web::rt::spawn(refuse(session, e, limits).in_current_span());
            }
        },
        None => {
            actix_web::rt::spawn(
                async move {
                    let mut stream = stream.max_frame_size(limits.max_frame_bytes);
                    // Boxed, as everything before the session proper: the socket's task keeps
                    // only what the session needs for its whole life.
                    let auth = Box::pin(first_frame_auth(&state, &mut stream));
                    match auth.await {
                        Ok((opening, resume)) => {
                            let start = Box::pin(Gateway::start(state, opening, resume, &limits));
                            let started = start.await;
                            run(session, stream, started, limits).await;
                        }
                        Err(e) => {
                            let refusal = Box::pin(refuse(session, e, limits));
                            refusal.await;
                        }
                    }
                }
                .in_current_span(),
            );
        }
    }
    Ok(response)
}

/// Refuses a session before it starts: the error frame, then 1008 (or 1011 for a fault).
async fn refuse(session: Session, error: ApiError, limits: SocketLimits) {
    let error = if error.is_token_expired() {
        ApiError::unauthorized(
            "Token is expired: get a new one (POST /api/v1/auth/login/refresh/) and reconnect.",
        )
    } else {
        error
    };
    let code = refusal_code(error.status());
    let reason = error.detail().to_owned();
    reject(session, error_frame(None, &error), code, reason, limits).await;
}

/// A session that started, or why it could not.
type Started = Result<(Gateway, Arc<Connection>, mpsc::Receiver<Arc<Event>>), ApiError>;

async fn run(session: Session, stream: MessageStream, started: Started, limits: SocketLimits) {
    match started {
        // The greeting (`ready`, the replay asked for) is the door's `on_start`.
        Ok((gateway, conn, events)) => drive(session, stream, conn, events, gateway, limits).await,
        Err(e) => {
            let refusal = Box::pin(refuse(session, e, limits));
            refusal.await;
        }
    }
}
