//! Door 000's two WebSockets: a direct chat (by the peer's email or username) and a group chat;
//! each replays the newest messages oldest first, then goes live.

use std::sync::Arc;
use tracing::Instrument;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use chat_domain::{ChatId, ChatKind, DomainError, MessageText};
use chat_selectors::{
    ChatEvent, HistoryCursor, MessageView, UserView, chat_by_id, credentials_by_login,
    is_member_now, membership, message_history,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::error::ApiError;
use crate::realtime::ordered::{Ordered, lost};
use crate::realtime::socket::{
    Flow, Outbox, SocketDoor, SocketLimits, Stop, drive, retry_after_secs, upgrade,
};
use crate::realtime::{Connection, Event, FrameKind, SessionGuard, Subscription};
use crate::state::AppState;

#[derive(Deserialize)]
struct PeerQuery {
    email: Option<String>,
    username: Option<String>,
}

/// `GET /chat?email=<peer email>&token=<jwt>` (or `username=`): the direct chat with that user,
/// opened or created; history, then live. Refusals before the upgrade: 401, 404 `user not found`,
/// 400 for yourself.
pub(super) async fn direct_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> PlainResult<HttpResponse> {
    let (me, issued_at) = current_user(&req, &state).await?;
    let query = web::Query::<PeerQuery>::from_query(req.query_string())
        .map_err(|_| bad("email or username is required"))?;
    let query = query.into_inner();
    let login = query
        .email
        .or(query.username)
        .ok_or_else(|| bad("email or username is required"))?;
    let peer = credentials_by_login(&state.store, &login)
        .await?
        .ok_or_else(|| PlainError(StatusCode::NOT_FOUND, "user not found".into()))?
        .user;
    if peer.id == me.id {
        return Err(bad("you cannot open a chat with yourself"));
    }
    // Writes only once the handshake is known to be good.
    let (response, session, stream) = upgrade(&req, body)?;
    match chat_services::open_direct_chat(&state.store, me.id, peer.id).await {
        Ok((chat, _)) => start(&state, session, stream, (me, issued_at), chat.id),
        Err(e) => refuse(session, &state, e.into()),
    }
    Ok(response)
}

#[derive(Deserialize)]
struct GroupQuery {
    #[serde(rename = "idGroup")]
    id_group: Option<String>,
}

/// `GET /chat_group?idGroup=<id>&token=<jwt>`: a group's socket; connecting joins a public group.
/// Refusals before the upgrade: 401, 404 `group not found`, 403 for a private group one is not in.
pub(super) async fn group_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> PlainResult<HttpResponse> {
    let (me, issued_at) = current_user(&req, &state).await?;
    let query = web::Query::<GroupQuery>::from_query(req.query_string())
        .map_err(|_| bad("idGroup is required"))?;
    let not_found = || PlainError(StatusCode::NOT_FOUND, "group not found".into());
    let id: i64 = query
        .into_inner()
        .id_group
        .and_then(|id| id.parse().ok())
        .ok_or_else(not_found)?;
    let group = match chat_by_id(&state.store, ChatId(id)).await {
        Ok(group) if group.kind == ChatKind::Group => group,
        Ok(_) | Err(chat_selectors::Error::Domain(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let member = membership(&state.store, group.id, me.id).await?.is_some();
    if !member && group.is_private {
        return Err(PlainError(
            StatusCode::FORBIDDEN,
            "not a member of this group".into(),
        ));
    }
    // Writes (joining) only once the handshake is known to be good.
    let (response, session, stream) = upgrade(&req, body)?;
    let joined = match member {
        true => Ok(()),
        false => match chat_services::join_group(&state.store, me.id, group.id).await {
            // Joined meanwhile by another socket of the same user (seen before or inside the
            // join's transaction): fine.
            Err(chat_services::Error::Domain(DomainError::Conflict(
                chat_domain::ConflictReason::AlreadyMember
                | chat_domain::ConflictReason::UserAlreadyMember,
            ))) => Ok(()),
            other => other,
        },
    };
    match joined {
        Ok(()) => start(&state, session, stream, (me, issued_at), group.id),
        Err(e) => refuse(session, &state, e.into()),
    }
    Ok(response)
}

/// Closes an accepted socket whose chat could not be opened (a fault: 1013 when transient, else 1011).
fn refuse(mut session: crate::realtime::socket::Session, state: &AppState, error: ApiError) {
    let reason = lost(&error).into_close();
    let limits = SocketLimits::new(state);
    actix_web::rt::spawn(
        async move {
            let _ = tokio::time::timeout(limits.write_timeout, session.close(reason)).await;
        }
        .in_current_span(),
    );
}

/// Subscribes (before the 101 goes out), then replays and goes live in the session task.
/// `user` comes with the issue time of the token it connected with (for revocation).
fn start(
    state: &AppState,
    mut session: crate::realtime::socket::Session,
    stream: actix_ws::MessageStream,
    (user, issued_at): (UserView, i64),
    chat: ChatId,
) {
    let limits = SocketLimits::new(state);
    let (tx, rx) = mpsc::channel(limits.queue);
    let conn = state.hub.connect(user.id, tx);
    conn.repair_overflow();
    let subscription = state.hub.subscribe(chat, &conn);
    let tracked = state.hub.track(user.id, issued_at, &conn);
    let state = state.clone();
    let verified = crate::auth::Verified {
        user: user.id,
        issued_at,
    };
    actix_web::rt::spawn(
        async move {
            // Boxed: the opening's futures live only while it runs, not in the socket's task.
            let opening = Box::pin(open(
                &state,
                &conn,
                &mut session,
                &limits,
                chat,
                user.id,
                verified,
            ));
            let Some(order) = opening.await else {
                return;
            };
            let door = ChatSocket {
                state,
                user,
                order,
                _subscription: subscription,
                _session: tracked,
                _conn: conn.clone(),
            };
            drive(session, stream, conn, rx, door, limits).await;
        }
        .in_current_span(),
    );
}

/// The session's opening: confirms the token, waits until the instance listens to the chat,
/// checks the membership once more (removed between
/// the check and the subscription? then not at all: closed 1008), and sends the chat's recent
/// history, oldest first. Returns where the socket stands in the chat, or `None` when the
/// session ended (closed, or the client left).
async fn open(
    state: &AppState,
    conn: &Arc<Connection>,
    session: &mut crate::realtime::socket::Session,
    limits: &SocketLimits,
    chat: ChatId,
    user: chat_domain::UserId,
    verified: crate::auth::Verified,
) -> Option<Ordered> {
    crate::auth::confirm_session(state, verified).await;
    // The history is read once this instance listens to the chat: what comes after it arrives
    // live. A wait that runs out is made good by a catch-up once the subscription is in place.
    if !state.hub.ready_for_chats([chat]).await {
        state.hub.resync_when_live(conn, [chat]);
    }
    match is_member_now(&state.store, chat, user).await {
        Ok(true) => {}
        Ok(false) => {
            let reason = CloseReason {
                code: CloseCode::Policy,
                description: Some(NOT_MEMBER.into()),
            };
            let _ = session.close(Some(reason)).await;
            return None;
        }
        Err(e) => {
            let reason = lost(&e.into()).into_close();
            let _ = session.close(reason).await;
            return None;
        }
    }
    // The history up to now, oldest first; live events at or below it are then dropped.
    let page = match message_history(&state.store, chat, HistoryCursor::Latest, REPLAY).await {
        Ok(page) => page,
        Err(e) => {
            let reason = lost(&e.into()).into_close();
            let _ = session.close(reason).await;
            return None;
        }
    };
    let mut order = Ordered::new(chat, page.messages.first().map_or(0, |m| m.seq - 1));
    let mut out = Outbox::new(session, limits);
    for message in &page.messages {
        if !message.deleted && out.send(frame(message)).await.is_err() {
            return None;
        }
        order.mark(message.seq);
    }
    Some(order)
}

/// A message as door 000 shows it: `{"id","date":"YYYY-MM-DD HH:MM:SS","username","message"}`.
fn frame(message: &MessageView) -> String {
    let author = message
        .author
        .as_ref()
        .map_or("system", |a| a.username.as_str());
    json!({
        "id": message.id,
        "date": message.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "username": author,
        "message": message.text,
    })
    .to_string()
}

struct ChatSocket {
    state: AppState,
    user: UserView,
    order: Ordered,
    _subscription: Subscription,
    _session: SessionGuard,
    _conn: Arc<Connection>,
}

impl ChatSocket {
    fn chat(&self) -> ChatId {
        self.order.chat()
    }

    async fn error(&self, out: &mut Outbox<'_>, reason: &str) -> Flow {
        out.send(json!({"error": reason}).to_string()).await
    }
}

impl SocketDoor for ChatSocket {
    const NAME: &'static str = "door_000";
    type Done = ();

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return self
                .error(out, "invalid JSON: send {\"message\":\"<text>\"}")
                .await;
        };
        let Some(text) = frame.get("message").and_then(Value::as_str) else {
            return self.error(out, "\"message\" must be a string").await;
        };
        let text = match MessageText::parse(text, self.state.settings.max_message_chars) {
            Ok(text) => text,
            Err(e) => return self.error(out, ApiError::from(e).detail()).await,
        };
        // Delivered to both sides (the sender included) through the bus.
        match chat_services::send_message(&self.state.store, self.user.id, self.chat(), &text, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => self.error(out, ApiError::from(e).detail()).await,
        }
    }

    async fn on_binary(&mut self, out: &mut Outbox<'_>) -> Flow {
        self.error(out, "binary frames are not supported").await
    }

    /// Catches the chat up from PostgreSQL (events were lost: Redis, or a burst past the
    /// queue); a lost `member.left` or `chat.deleted` is noticed here too.
    async fn on_resync(&mut self, out: &mut Outbox<'_>) -> Flow {
        match is_member_now(&self.state.store, self.chat(), self.user.id).await {
            Ok(true) => {}
            Ok(false) => return Err(Stop::close(CloseCode::Policy, NOT_MEMBER)),
            Err(e) => return Err(lost(&e.into())),
        }
        let last_seq = match chat_by_id(&self.state.store, self.chat()).await {
            Ok(chat) => chat.last_seq,
            Err(e) => return Err(lost(&e.into())),
        };
        self.order
            .catch_up(&self.state.store, last_seq, frame, out)
            .await
    }

    async fn on_flood(&mut self, retry_after: std::time::Duration, out: &mut Outbox<'_>) -> Flow {
        let secs = retry_after_secs(retry_after);
        self.error(out, &format!("too many frames, retry in {secs} s"))
            .await
    }

    async fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> Flow {
        match &event.chat_event {
            // Left, removed, or the chat deleted: this socket is done.
            ChatEvent::MemberLeft { user, .. } if user.id == self.user.id => {
                Err(Stop::close(CloseCode::Policy, NOT_MEMBER))
            }
            ChatEvent::ChatDeleted { .. } => {
                Err(Stop::close(CloseCode::Policy, "the chat was deleted"))
            }
            ChatEvent::MessageCreated { message, .. } => {
                let shared = || {
                    event
                        .frame(FrameKind::WsChat, |_| Some(frame(message)))
                        .unwrap_or_default()
                };
                self.order
                    .live(&self.state.store, message, shared, frame, out)
                    .await
            }
            _ => Ok(()),
        }
    }
}
