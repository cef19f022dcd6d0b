//! Door 002's WebSockets. A refused socket gets `{"action":"disconect","message":"<reason>"}`
//! (sic) and a 1008 close; bad frames get `{"action":"error","message":"<reason>"}` and the socket
//! stays open (docs/doors.md decision: the original crashed on invalid JSON).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::CloseCode;
use chat_domain::{ChatId, MessageText};
use chat_selectors::{
    ChatEvent, ChatView, HistoryCursor, MessagePage, MessageView, UserView, chat_by_id,
    group_by_name, is_member_now, message_history, require_friend, require_member,
    user_by_username,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{broadcast_frame, direct_json, message_json};
use crate::auth::request_token;
use crate::error::{ApiError, ApiResult};
use crate::realtime::ordered::{Ordered, lost};
use crate::realtime::socket::{
    Flow, Outbox, PIPELINE_DEPTH, Pipeline, SocketDoor, SocketLimits, Stop, drive, refusal_code,
    reject, retry_after_secs, upgrade,
};
use crate::realtime::{Event, FrameKind};
use crate::state::AppState;

/// `retrieve_message`'s default `number` (seed 002) and our upper bound.
const DEFAULT_NUMBER: i64 = 10;
const MAX_NUMBER: i64 = 100;

fn disconnect_frame(reason: &str) -> String {
    json!({"action": "disconect", "message": reason}).to_string()
}

/// Sends the disconnect frame and ends the session with 1008.
async fn disconnect(out: &mut Outbox<'_>, reason: &str) -> Flow {
    out.send(disconnect_frame(reason)).await?;
    Err(Stop::close(CloseCode::Policy, reason))
}

/// Sends an error frame; the socket stays open. (A socket with sends in flight answers through
/// [`ChatSocket::refuse`], so that errors keep the order of the frames.)
async fn error(out: &mut Outbox<'_>, reason: &str) -> Flow {
    out.send(json!({"action": "error", "message": reason}).to_string())
        .await
}

/// The text a client sees for a failed use case (infrastructure faults are logged, not shown).
fn reason<E: Into<ApiError>>(error: E) -> String {
    error.into().detail().to_owned()
}

/// Why a socket is refused: the text of the `disconect` frame, and the close code (1008, or
/// 1011 when a fault kept the server from deciding).
struct Refusal {
    why: String,
    code: CloseCode,
}

fn refusal<E: Into<ApiError>>(error: E) -> Refusal {
    let error = error.into();
    Refusal {
        why: error.detail().to_owned(),
        code: refusal_code(error.status()),
    }
}

/// The user of the socket's token and the token's issue time (for revocation).
async fn authenticate(state: &AppState, token: Option<String>) -> Result<(UserView, i64), Refusal> {
    let token = token.ok_or_else(|| Refusal {
        why: "Anonymous users may not connect: pass ?token=<access>.".into(),
        code: CloseCode::Policy,
    })?;
    let (user, verified) = crate::auth::token_user(state, &token)
        .await
        .map_err(refusal)?;
    Ok((user, verified.issued_at))
}

/// What an accepted socket opens: its user (with the token's issue time), the chat, and for a
/// direct chat the peer.
struct Opened {
    user: (UserView, i64),
    chat: ChatView,
    peer: Option<UserView>,
    /// When the chat (and its `last_seq`) was read.
    read_at: std::time::Instant,
}

/// Starts the session of an accepted socket, or sends the refusal and closes. The hub
/// subscription is taken here, before the handler returns the 101 response, so a client whose
/// handshake completed is already receiving: nothing sent after that can miss it.
fn start(
    state: &AppState,
    socket: crate::realtime::socket::Session,
    stream: actix_ws::MessageStream,
    opened: Result<Opened, Refusal>,
) {
    let limits = SocketLimits::new(state);
    match opened {
        Err(Refusal { why, code }) => {
            actix_web::rt::spawn(
                async move { reject(socket, disconnect_frame(&why), code, why.clone(), limits).await }
                    .in_current_span(),
            );
        }
        Ok(Opened {
            user: (user, issued_at),
            chat,
            peer,
            read_at,
        }) => {
            let (chat_id, last_seq) = (chat.id, chat.last_seq);
            let (tx, rx) = mpsc::channel(limits.queue);
            let conn = state.hub.connect(user.id, tx);
            conn.repair_overflow();
            let (subscription, seen, since) = state.hub.subscribe_seen(chat.id, &conn);
            // Not heard since before the chat was read: what was published in between reached
            // nobody here, so the socket catches up once the instance listens. Heard, but a
            // message came in between (`seen`): it catches up at once.
            let heard = since.is_some_and(|since| since <= read_at);
            let session = state.hub.track(user.id, issued_at, &conn);
            let verified = crate::auth::Verified {
                user: user.id,
                issued_at,
            };
            let confirm = state.clone();
            let door = ChatSocket {
                state: state.clone(),
                user,
                chat,
                peer,
                sends: Pipeline::new(PIPELINE_DEPTH),
                order: Ordered::new(chat_id, last_seq),
            };
            if !heard {
                state.hub.resync_when_live(&conn, [chat_id]);
            } else if seen.is_some_and(|seq| seq > last_seq) {
                conn.raise(crate::realtime::Signal::Resync);
            }
            actix_web::rt::spawn(
                async move {
                    let _tracked = (subscription, session);
                    // Boxed: its future is not kept in the socket's task for its whole life.
                    let confirmed = Box::pin(crate::auth::confirm_session(&confirm, verified));
                    confirmed.await;
                    drive(socket, stream, conn, rx, door, limits).await;
                }
                .in_current_span(),
            );
        }
    }
}

/// `GET /ws/group/{name}/?token=<access>`: a member's socket on a group.
pub async fn group_socket(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (response, session, stream) = upgrade(&req, body)?;
    let opened = async {
        let user = authenticate(&state, request_token(&req)).await?;
        let read_at = std::time::Instant::now();
        let chat = group_by_name(&state.store, &path).await.map_err(refusal)?;
        require_member(&state.store, chat.id, user.0.id)
            .await
            .map_err(refusal)?;
        Ok(Opened {
            user,
            chat,
            peer: None,
            read_at,
        })
    };
    let opened = opened.await;
    let chat = opened.as_ref().ok().map(|o| o.chat.id);
    start(&state, session, stream, opened);
    // The 101 goes out once this instance listens to the chat.
    state.hub.ready_for_chats(chat).await;
    Ok(response)
}

/// `GET /ws/user/{username}/?token=<access>`: the direct chat with a user in your friend list
/// (created on first use).
pub async fn user_socket(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (response, session, stream) = upgrade(&req, body)?;
    let opened = async {
        let user = authenticate(&state, request_token(&req)).await?;
        let read_at = std::time::Instant::now();
        let peer = user_by_username(&state.store, &path)
            .await
            .map_err(refusal)?;
        require_friend(&state.store, user.0.id, peer.id)
            .await
            .map_err(refusal)?;
        let (chat, _) = chat_services::open_direct_chat(&state.store, user.0.id, peer.id)
            .await
            .map_err(refusal)?;
        Ok(Opened {
            user,
            chat,
            peer: Some(peer),
            read_at,
        })
    };
    let opened = opened.await;
    let chat = opened.as_ref().ok().map(|o| o.chat.id);
    start(&state, session, stream, opened);
    // The 101 goes out once this instance listens to the chat.
    state.hub.ready_for_chats(chat).await;
    Ok(response)
}

/// One door-002 socket: a group (`peer: None`) or a direct chat with `peer`.
struct ChatSocket {
    state: AppState,
    user: UserView,
    chat: ChatView,
    peer: Option<UserView>,
    /// Sends waiting for their commit: each yields the refusal to report, if any.
    sends: Pipeline<Option<String>>,
    /// The chat's messages delivered so far, in seq order: a gap (a burst past the queue, or a
    /// message between the handshake's read and the subscription) is filled from PostgreSQL.
    order: Ordered,
}

impl ChatSocket {
    fn chat_id(&self) -> ChatId {
        self.chat.id
    }

    /// Hands the message to the writer and returns: the socket reads its next frame while the
    /// commit is pending. The broadcast (sender included) arrives through the bus like everyone
    /// else's; a refusal is answered with an error frame, in send order.
    async fn send_message(&mut self, frame: &Value, out: &mut Outbox<'_>) -> Flow {
        let Some(text) = frame.get("message").and_then(Value::as_str) else {
            return self
                .refuse(out, "\"message\" must be a string.".into())
                .await;
        };
        let text = match MessageText::parse(text, self.state.settings.max_message_chars) {
            Ok(text) => text,
            Err(e) => return self.refuse(out, reason(e)).await,
        };
        let pending =
            chat_services::queue_send(&self.state.store, self.user.id, self.chat_id(), &text, None)
                .await;
        self.sends
            .push(async move { pending.outcome().await.err().map(reason) });
        Ok(())
    }

    async fn retrieve_message(&self, frame: &Value, out: &mut Outbox<'_>) -> Flow {
        let number = match frame.get("number") {
            None | Some(Value::Null) => DEFAULT_NUMBER,
            Some(n) => match n.as_i64() {
                Some(n) if (1..=MAX_NUMBER).contains(&n) => n,
                _ => {
                    let problem = format!("\"number\" must be an integer from 1 to {MAX_NUMBER}.");
                    return error(out, &problem).await;
                }
            },
        };
        let store = &self.state.store;
        let page = match require_member(store, self.chat_id(), self.user.id).await {
            Ok(_) => message_history(store, self.chat_id(), HistoryCursor::Latest, number).await,
            Err(e) => Err(e),
        };
        match page {
            Ok(page) => out.send(self.retrieve_frame(page).to_string()).await,
            Err(e) => error(out, &reason(e)).await,
        }
    }

    /// An error frame for a refused frame, after the answers of the sends before it: at once
    /// when none is in flight, else queued behind them.
    async fn refuse(&mut self, out: &mut Outbox<'_>, why: String) -> Flow {
        if self.sends.is_empty() {
            error(out, &why).await
        } else {
            self.sends.push(std::future::ready(Some(why)));
            Ok(())
        }
    }

    /// Newest first, as the original returned them.
    fn retrieve_frame(&self, page: MessagePage) -> Value {
        let messages: Vec<Value> = page
            .messages
            .iter()
            .rev()
            .map(|m| match &self.peer {
                None => message_json(m),
                Some(peer) => direct_json(m, &self.user, peer),
            })
            .collect();
        let meta = json!({"number_msgs": messages.len(), "has_more": page.has_more});
        match self.peer {
            None => json!({
                "action": "retrieve_message",
                "data": {"messages": messages, "meta": meta},
                "to_user": self.user.username,
            }),
            Some(_) => json!({"messages": messages, "meta": meta}),
        }
    }
}

impl SocketDoor for ChatSocket {
    const NAME: &'static str = "door_002";
    type Done = Option<String>;

    fn pipeline(&mut self) -> Option<&mut Pipeline<Self::Done>> {
        Some(&mut self.sends)
    }

    async fn on_done(&mut self, refused: Option<String>, out: &mut Outbox<'_>) -> Flow {
        match refused {
            Some(why) => error(out, &why).await,
            None => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let frame: Value = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => return self.refuse(out, format!("Invalid JSON: {e}")).await,
        };
        match frame.get("action").and_then(Value::as_str) {
            Some("send_message") => self.send_message(&frame, out).await,
            Some("retrieve_message") => self.retrieve_message(&frame, out).await,
            Some(other) => {
                let problem = format!(
                    "Unknown action {other:?}: use \"send_message\" or \"retrieve_message\"."
                );
                self.refuse(out, problem).await
            }
            None => {
                self.refuse(out, "\"action\" must be a string.".into())
                    .await
            }
        }
    }

    /// Catches the chat up from PostgreSQL (events were lost: Redis, or a burst past the
    /// queue); a lost removal or deletion is noticed here too.
    async fn on_resync(&mut self, out: &mut Outbox<'_>) -> Flow {
        let store = &self.state.store;
        match is_member_now(store, self.chat_id(), self.user.id).await {
            Ok(true) => {}
            Ok(false) => return disconnect(out, "You are no longer a member of this chat.").await,
            Err(e) => return Err(lost(&e.into())),
        }
        let last_seq = match chat_by_id(store, self.chat_id()).await {
            Ok(chat) => chat.last_seq,
            Err(e) => return Err(lost(&e.into())),
        };
        let (user, peer) = (&self.user, &self.peer);
        let render = |m: &MessageView| broadcast_frame(m, user, peer);
        self.order.catch_up(store, last_seq, render, out).await
    }

    async fn on_binary(&mut self, out: &mut Outbox<'_>) -> Flow {
        error(
            out,
            "Binary frames are not supported: send JSON text frames.",
        )
        .await
    }

    async fn on_flood(&mut self, retry_after: std::time::Duration, out: &mut Outbox<'_>) -> Flow {
        let secs = retry_after_secs(retry_after);
        error(
            out,
            &format!("Too many frames: this one was not handled; retry in {secs} s."),
        )
        .await
    }

    async fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> Flow {
        match &event.chat_event {
            ChatEvent::MessageCreated { message, .. } => {
                let (user, peer) = (&self.user, &self.peer);
                let shared = || {
                    let frame = match peer {
                        None => event.frame(FrameKind::Door002Group, |_| {
                            Some(broadcast_frame(message, user, peer))
                        }),
                        Some(_) => event.frame(FrameKind::Door002Direct, |_| {
                            Some(broadcast_frame(message, user, peer))
                        }),
                    };
                    frame.unwrap_or_default()
                };
                let render = |m: &MessageView| broadcast_frame(m, user, peer);
                self.order
                    .live(&self.state.store, message, shared, render, out)
                    .await
            }
            ChatEvent::MemberLeft { user, .. } if user.id == self.user.id => {
                disconnect(out, "You are no longer a member of this group.").await
            }
            ChatEvent::ChatDeleted { .. } => disconnect(out, "This group was deleted.").await,
            _ => Ok(()),
        }
    }
}
