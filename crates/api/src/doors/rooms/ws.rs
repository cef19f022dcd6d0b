//! Door 004's WebSocket `/ws?token=<jwt>`. A socket is in at most one room at a time.
//! Client frames `{"type":"join"|"leave"|"message","content":"<string>"}`; every server frame is
//! `{"username","text","timestamp"}` (RFC 3339): messages carry their author, room events the
//! username `system` (stored as system lines), errors the username `error` (sent to the sender
//! only, never stored). Invalid JSON, a non-string `content` or a frame over 16 KiB close the
//! socket, as the original did.
//!
//! `join` takes rooms (group chats) only. The "joined"/"leaved" lines are stored like messages,
//! so they count toward the user's send limit (`CHAT_RATE_SEND_PER_MIN`): over it, a join is
//! refused (`too many requests, retry in N s`) and a leave happens without its line.

use crate::auth::TokenUserError;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::CloseCode;
use chat_domain::{ChatId, MessageText};
use chat_selectors::{ChatEvent, MessageView, UserView, require_member};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::text_error;
use crate::error::ApiError;
use crate::realtime::socket::{
    Flow, Outbox, SocketDoor, SocketLimits, Stop, drive, retry_after_secs, upgrade,
};
use crate::realtime::{Connection, Event, FrameKind, SessionGuard, Subscription};
use crate::state::AppState;

/// The original pinged every ~54 s and dropped a peer silent for 60 s.
const PING_EVERY: Duration = Duration::from_secs(54);
const READ_DEADLINE: Duration = Duration::from_secs(60);

/// `GET /ws?token=<jwt>` (or the raw token in `Authorization`). A missing or bad token is
/// answered 401 `invalid token` before the upgrade, as the original did.
pub async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let token = crate::auth::request_token(&req).or_else(|| {
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    });
    let refused = || Ok(text_error(StatusCode::UNAUTHORIZED, "invalid token"));
    let Some(token) = token else {
        return refused();
    };
    let (user, verified) = match crate::auth::token_user(&state, &token).await {
        Ok(found) => found,
        Err(TokenUserError::Refused(_)) => return refused(),
        Err(TokenUserError::Fault(e)) => return Err(e.into()),
    };
    let Ok((response, session, stream)) = upgrade(&req, body) else {
        return Ok(text_error(
            StatusCode::BAD_REQUEST,
            "bad websocket handshake",
        ));
    };
    let state = state.get_ref().clone();
    let limits = SocketLimits {
        max_frame_bytes: state.settings.rooms_max_frame_bytes,
        heartbeat: PING_EVERY,
        client_timeout: READ_DEADLINE,
        ..SocketLimits::new(&state)
    };
    let (tx, rx) = mpsc::channel(limits.queue);
    let conn = state.hub.connect(user.id, tx);
    let tracked = state.hub.track(user.id, verified.issued_at, &conn);
    crate::auth::confirm_session(&state, verified).await;
    let door = RoomSocket {
        state,
        user,
        conn: conn.clone(),
        room: None,
        _session: tracked,
    };
    actix_web::rt::spawn(drive(session, stream, conn, rx, door, limits).in_current_span());
    Ok(response)
}

struct RoomSocket {
    state: AppState,
    user: UserView,
    conn: Arc<Connection>,
    room: Option<(ChatId, Subscription)>,
    _session: SessionGuard,
}

fn frame(username: &str, text: &str, at: DateTime<Utc>) -> String {
    json!({"username": username, "text": text, "timestamp": at.to_rfc3339_opts(SecondsFormat::Secs, true)})
        .to_string()
}

/// A message as door 004 shows it: its author, or `system` for room lines.
fn message_frame(message: &MessageView) -> String {
    let author = message
        .author
        .as_ref()
        .map_or("system", |a| a.username.as_str());
    frame(author, &message.text, message.created_at)
}

impl RoomSocket {
    async fn error(&self, out: &mut Outbox<'_>, text: &str) -> Flow {
        out.send(frame("error", text, Utc::now())).await
    }

    /// Leaves the current room: this socket stops receiving it, then the others get
    /// "<name> leaved the room" (stored, within the user's send limit; over it, not stored).
    async fn leave_room(&mut self) -> bool {
        let Some((room, subscription)) = self.room.take() else {
            return false;
        };
        drop(subscription);
        if chat_services::take_send_quota(&self.state.store, self.user.id)
            .await
            .is_err()
        {
            return true;
        }
        let line = format!("{} leaved the room", self.user.username);
        if let Err(e) = chat_services::post_system_line(&self.state.store, room, &line).await {
            tracing::warn!(error = %e, chat.id = %room, "room leave line not stored");
        }
        true
    }

    async fn join(&mut self, content: &str, out: &mut Outbox<'_>) -> Flow {
        let Ok(room) = content.trim().parse::<i64>().map(ChatId) else {
            return self.error(out, "room id must be number").await;
        };
        if self
            .room
            .as_ref()
            .is_some_and(|(current, _)| *current == room)
        {
            return self.error(out, "already in room").await;
        }
        // As the original: whatever comes of the join, the current room is left first.
        self.leave_room().await;
        // Rooms only: a direct or support chat's id is no room, whoever is in it.
        if let Err(super::RoomsError(_, why)) = super::room(&self.state, room.0).await {
            return self.error(out, &why).await;
        }
        match require_member(&self.state.store, room, self.user.id).await {
            Ok(_) => {}
            Err(chat_selectors::Error::Domain(_)) => {
                return self.error(out, "user not a member of room").await;
            }
            Err(e) => return self.error(out, ApiError::from(e).detail()).await,
        }
        // The join line is stored like a message: over the send limit, no join.
        if let Err(e) = chat_services::take_send_quota(&self.state.store, self.user.id).await {
            let wait = match e {
                chat_services::Error::Domain(chat_domain::DomainError::RateLimited {
                    retry_after_secs,
                }) => retry_after_secs,
                _ => 1,
            };
            return self
                .error(out, &format!("too many requests, retry in {wait} s"))
                .await;
        }
        // Subscribed first, so the joiner gets its own "joined" line like everyone else.
        self.room = Some((room, self.state.hub.subscribe(room, &self.conn)));
        self.state.hub.ready_for_chats([room]).await;
        let line = format!("{} joined the room", self.user.username);
        if let Err(e) = chat_services::post_system_line(&self.state.store, room, &line).await {
            return self.error(out, ApiError::from(e).detail()).await;
        }
        Ok(())
    }

    async fn message(&mut self, content: &str, out: &mut Outbox<'_>) -> Flow {
        let Some((room, _)) = &self.room else {
            return self.error(out, "not connected to any room").await;
        };
        let room = *room;
        if content.trim().is_empty() {
            return self.error(out, "can not send empty message").await;
        }
        let max = self.state.settings.rooms_max_message_bytes;
        if content.len() > max {
            return self
                .error(out, &format!("message should be less {max} symbols long"))
                .await;
        }
        let text = match MessageText::parse(content, self.state.settings.max_message_chars) {
            Ok(text) => text,
            Err(e) => return self.error(out, ApiError::from(e).detail()).await,
        };
        // Everyone in the room, the sender included, gets it through the bus.
        match chat_services::send_message(&self.state.store, self.user.id, room, &text, None).await
        {
            Ok(_) => Ok(()),
            Err(e) => self.error(out, ApiError::from(e).detail()).await,
        }
    }
}

impl SocketDoor for RoomSocket {
    const NAME: &'static str = "door_004";
    type Done = ();

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let invalid = || Err(Stop::close(CloseCode::Unsupported, "invalid data"));
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return invalid();
        };
        let content = match frame.get("content") {
            None | Some(Value::Null) => "",
            Some(Value::String(content)) => content.as_str(),
            Some(_) => return invalid(),
        };
        let kind = match frame.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind.as_str()),
            Some(_) => return invalid(),
        };
        match kind {
            Some("join") => self.join(content, out).await,
            Some("leave") => {
                if self.leave_room().await {
                    out.send(frame_system("you leaved the room")).await
                } else {
                    self.error(out, "not connected to any room").await
                }
            }
            Some("message") => self.message(content, out).await,
            _ => self.error(out, "invalid operation").await,
        }
    }

    async fn on_binary(&mut self, _out: &mut Outbox<'_>) -> Flow {
        Err(Stop::close(CloseCode::Unsupported, "invalid data"))
    }

    async fn on_flood(&mut self, retry_after: Duration, out: &mut Outbox<'_>) -> Flow {
        let secs = retry_after_secs(retry_after);
        self.error(out, &format!("too many frames, retry in {secs} s"))
            .await
    }

    async fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> Flow {
        let current = self.room.as_ref().map(|(room, _)| *room);
        match &event.chat_event {
            ChatEvent::MessageCreated {
                chat_id, message, ..
            } if Some(*chat_id) == current => {
                let frame = event.frame(FrameKind::Rooms, |_| Some(message_frame(message)));
                match frame {
                    Some(frame) => out.send(frame).await,
                    None => Ok(()),
                }
            }
            // Removed from the room (or it was deleted) while in it: out of it, without a line.
            ChatEvent::MemberLeft { chat_id, user, .. }
                if Some(*chat_id) == current && user.id == self.user.id =>
            {
                self.room = None;
                out.send(frame_system("you leaved the room")).await
            }
            ChatEvent::ChatDeleted { chat_id } if Some(*chat_id) == current => {
                self.room = None;
                out.send(frame_system("you leaved the room")).await
            }
            _ => Ok(()),
        }
    }

    async fn on_end(&mut self) {
        // A disconnect while in a room tells the room, as the original did.
        self.leave_room().await;
    }
}

fn frame_system(text: &str) -> String {
    frame("system", text, Utc::now())
}
