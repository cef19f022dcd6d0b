//! Opening a gateway socket: the token (in the URL, the `Authorization` header or the first
//! frame), the user it names, and where the client asks to resume (`?sync=` or the auth frame's
//! `"sync"`).

use std::time::{Duration, Instant};

use actix_ws::{Message, MessageStream};
use chat_domain::ChatId;
use chat_selectors::UserView;

use super::frames::{AuthFrame, Resume};
use crate::auth::socket_user;
use crate::error::ApiError;
use crate::state::AppState;

/// How long an unauthenticated socket may take to send its `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// A socket about to open: its user, the token's issue time (the socket is tracked with it, so
/// a later revocation closes it), and where the user's chats stood when read.
pub struct Opening {
    /// The token's user.
    pub user: UserView,
    /// The token's issue time, unix s.
    pub issued_at: i64,
    /// Each chat of the user with its `last_seq`, as read at `read_at`.
    pub chats: Vec<(ChatId, i64)>,
    /// When `chats` was read.
    pub read_at: Instant,
}

/// Checks a token and reads what the socket opens with, in one query (`socket_user`).
///
/// Errors: 401 for a bad token; a database fault keeps its own status (503/500), never "not
/// authenticated".
pub async fn authenticate(state: &AppState, token: &str) -> Result<Opening, ApiError> {
    // Waits its turn behind other handshakes rather than for a pooled connection (whose wait
    // is bounded, and shared with REST requests). The semaphore is never closed.
    let _admitted = state.handshakes.acquire().await;
    let read_at = Instant::now();
    let (start, verified) = socket_user(state, token).await?;
    Ok(Opening {
        user: start.user,
        issued_at: verified.issued_at,
        chats: start.chats,
        read_at,
    })
}

/// The query of `GET /api/v1/ws`.
#[derive(serde::Deserialize)]
pub struct ResumeQuery {
    /// `<chat_id>:<seq>,...`.
    pub sync: Option<String>,
}

/// Parses `5:17,6:0` into `[(5, 17), (6, 0)]`.
///
/// Errors: 400 naming the format.
pub fn parse_resume_query(raw: &str) -> Result<Resume, ApiError> {
    raw.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (chat, seq) = part.split_once(':').ok_or_else(bad_resume_query)?;
            let chat = chat.parse().map_err(|_| bad_resume_query())?;
            let seq = seq
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(bad_resume_query)?;
            Ok((ChatId(chat), seq))
        })
        .collect()
}

fn bad_resume_query() -> ApiError {
    ApiError::bad_request("sync must look like <chat_id>:<seq>,<chat_id>:<seq>")
}

/// Waits up to 10 s for the first frame, `{"action":"auth","token","sync"?}`, and authenticates.
///
/// Errors: 401 asking for the auth frame (timeout, not JSON, another action, no token), a bad
/// `sync` (`invalid{"chats"}`), or [`authenticate`]'s.
pub async fn first_frame_auth(
    state: &AppState,
    stream: &mut MessageStream,
) -> Result<(Opening, Resume), ApiError> {
    let unauthorized = || {
        ApiError::unauthorized(
            "Authenticate first: send {\"action\":\"auth\",\"token\":\"<access>\"}.",
        )
    };
    let text = match tokio::time::timeout(AUTH_TIMEOUT, stream.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        _ => return Err(unauthorized()),
    };
    let frame = AuthFrame::parse(&text)?.ok_or_else(unauthorized)?;
    Ok((
        authenticate(state, &frame.token).await?,
        frame.sync.unwrap_or_default(),
    ))
}
