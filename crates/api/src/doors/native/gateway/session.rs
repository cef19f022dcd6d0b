//! One gateway session: the chats it follows, live delivery in seq order, and the socket loop's
//! callbacks ([`SocketDoor`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use chat_domain::ChatId;
use chat_selectors::{
    ChatEvent, MessageView, UserBrief, UserView, chat_by_id, is_member_now, user_chats,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Started;
use super::frames::{ClientFrame, created_frame, error_frame, shared_frame};
use crate::error::ApiError;
use crate::realtime::ordered::{Ordered, lost};
use crate::realtime::socket::{Flow, Outbox, SocketDoor, SocketLimits, Stop, retry_after_secs};
use crate::realtime::{Connection, Event, SessionGuard, Subscription, UserRegistration};
use crate::state::AppState;

/// How long a send waits for the messages before its own to reach the socket's queue (they were
/// published before the send was answered) before reading the rest from PostgreSQL.
const OWN_SEND_WAIT: Duration = Duration::from_millis(200);

/// One chat as this socket follows it.
pub(super) struct Followed {
    _subscription: Subscription,
    /// Live delivery started after this seq (reported in `ready`, or the seq before joining).
    pub(super) live_from: i64,
    /// What has been delivered live (from `live_from` on); never moves back.
    pub(super) order: Ordered,
    /// The highest seq (≤ `live_from`) a replay of this socket has sent: a later `sync` starts
    /// after it, so nothing is sent twice on one socket, whatever seq the client names.
    pub(super) replayed: i64,
}

impl Followed {
    fn new(chat: ChatId, subscription: Subscription, from: i64) -> Self {
        Self {
            _subscription: subscription,
            live_from: from,
            order: Ordered::new(chat, from),
            replayed: 0,
        }
    }
}

/// A gateway session.
pub(super) struct Gateway {
    pub(super) state: AppState,
    pub(super) user: UserView,
    conn: Arc<Connection>,
    pub(super) chats: HashMap<ChatId, Followed>,
    presence_token: String,
    /// Whether the presence entry is in Redis (it is retried on each heartbeat while Redis
    /// does not answer: presence degrades, the socket does not).
    presence_on: bool,
    _registration: UserRegistration,
    _session: SessionGuard,
}

impl Gateway {
    /// Registers the socket for its user, subscribes to every chat, then reads each chat's
    /// `last_seq` (after subscribing, so what comes later arrives live) and goes online — if
    /// Redis answers; else the socket opens all the same and goes online at a later heartbeat.
    pub(super) async fn start(
        state: AppState,
        user: UserView,
        issued_at: i64,
        limits: &SocketLimits,
    ) -> Started {
        let (tx, rx) = mpsc::channel(limits.queue);
        let conn = state.hub.connect(user.id, tx);
        let registration = state.hub.register_user(&conn);
        let session = state.hub.track(user.id, issued_at, &conn);
        let verified = crate::auth::Verified {
            user: user.id,
            issued_at,
        };
        crate::auth::confirm_session(&state, verified).await;
        let store = &state.store;
        let mut subscriptions: HashMap<ChatId, Subscription> = user_chats(store, user.id)
            .await?
            .into_iter()
            .map(|(chat, _)| (chat, state.hub.subscribe(chat, &conn)))
            .collect();
        let mut chats = HashMap::new();
        for (chat, last_seq) in user_chats(store, user.id).await? {
            let subscription = subscriptions
                .remove(&chat)
                .unwrap_or_else(|| state.hub.subscribe(chat, &conn));
            chats.insert(chat, Followed::new(chat, subscription, last_seq));
        }
        let presence_token = chat_services::presence::new_token(state.hub.instance());
        let ttl = limits.client_timeout.as_millis() as i64;
        let presence_on = match chat_services::presence::connect(
            store,
            user.id,
            &presence_token,
            ttl,
        )
        .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "presence not recorded; retried at the next heartbeat");
                false
            }
        };
        let gateway = Gateway {
            state,
            user,
            conn: conn.clone(),
            chats,
            presence_token,
            presence_on,
            _registration: registration,
            _session: session,
        };
        Ok((gateway, conn, rx))
    }

    pub(super) fn ready_frame(&self) -> String {
        let chats: serde_json::Map<String, Value> = self
            .chats
            .iter()
            .map(|(id, f)| (id.to_string(), json!(f.live_from)))
            .collect();
        json!({
            "event": "ready",
            "user": {"id": self.user.id, "username": self.user.username},
            "chats": chats,
        })
        .to_string()
    }

    pub(super) async fn end(&mut self) {
        let store = &self.state.store;
        if !self.presence_on {
            return;
        }
        if let Err(e) =
            chat_services::presence::disconnect(store, self.user.id, &self.presence_token).await
        {
            tracing::warn!(error = %e, "presence disconnect failed; the entry expires by itself");
        }
    }

    pub(super) fn brief(&self) -> UserBrief {
        UserBrief {
            id: self.user.id,
            username: self.user.username.clone(),
        }
    }

    /// Sends chat `chat`'s messages after its delivered mark up to `target`, in order.
    async fn catch_up(&mut self, chat: ChatId, target: i64, out: &mut Outbox<'_>) -> Flow {
        match self.chats.get_mut(&chat) {
            Some(f) => {
                f.order
                    .catch_up(&self.state.store, target, |m| created_frame(chat, m), out)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Delivers chat `chat`'s messages before `seq` (this socket's own new message). They were
    /// published before the send was answered, so they are normally already in, or about to
    /// reach, this socket's queue: take events from the queue (delivering each, whatever its
    /// chat) for up to [`OWN_SEND_WAIT`]; only what is still missing then is read from
    /// PostgreSQL. This keeps a busy chat's sends from costing a history query each. While Redis
    /// is down (no event can come) it reads PostgreSQL without waiting.
    /// An event of `chat` at or past `seq` (possible only when publishes raced) is not delivered
    /// here: it is returned, to be handled after the reply.
    pub(super) async fn deliver_before(
        &mut self,
        chat: ChatId,
        seq: i64,
        out: &mut Outbox<'_>,
    ) -> Result<Option<Arc<Event>>, Stop> {
        // While Redis is down nothing arrives live: read from PostgreSQL at once.
        let wait = if self.state.store.redis_health().is_up() {
            OWN_SEND_WAIT
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut deferred = None;
        while tokio::time::Instant::now() < deadline
            && self
                .chats
                .get(&chat)
                .is_some_and(|f| f.order.delivered() < seq - 1)
        {
            let Some(event) = out.next_event(deadline).await else {
                break;
            };
            if let ChatEvent::MessageCreated { message, .. } = &event.chat_event
                && message.chat_id == chat
                && message.seq >= seq
            {
                deferred = Some(event);
                break;
            }
            self.on_event(&event, out).await?;
        }
        self.catch_up(chat, seq - 1, out).await?;
        Ok(deferred)
    }

    pub(super) async fn on_message_created(
        &mut self,
        event: &Event,
        message: &MessageView,
        out: &mut Outbox<'_>,
    ) -> Flow {
        let chat = message.chat_id;
        match self.chats.get_mut(&chat) {
            Some(f) => {
                let frame = || shared_frame(event);
                f.order
                    .live(
                        &self.state.store,
                        message,
                        frame,
                        |m| created_frame(chat, m),
                        out,
                    )
                    .await
            }
            None => Ok(()),
        }
    }

    /// Whether the user is a member of `chat` now, from PostgreSQL. A fault ends the session
    /// (1013 when transient, else 1011): guessing could leak a chat or drop one silently.
    async fn member_now(&self, chat: ChatId) -> Result<bool, Stop> {
        is_member_now(&self.state.store, chat, self.user.id)
            .await
            .map_err(|e| lost(&e.into()))
    }
}

impl SocketDoor for Gateway {
    const NAME: &'static str = "gateway";

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let frame: Value = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                let e = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("Invalid JSON: {e}"),
                );
                return out.send(error_frame(None, &e)).await;
            }
        };
        let request_id = frame.get("request_id").cloned();
        let acted = match ClientFrame::parse(frame, |chat| self.member_chat(chat)) {
            Ok(frame) => self.act(frame, request_id.as_ref(), out).await,
            Err(e) => Err(e),
        };
        match acted {
            Ok(flow) => flow,
            Err(e) => out.send(error_frame(request_id.as_ref(), &e)).await,
        }
    }

    async fn on_binary(&mut self, out: &mut Outbox<'_>) -> Flow {
        let e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported",
            "Binary frames are not supported: send JSON text frames.",
        );
        out.send(error_frame(None, &e)).await
    }

    async fn on_flood(&mut self, retry_after: Duration, out: &mut Outbox<'_>) -> Flow {
        let secs = retry_after_secs(retry_after);
        let e = ApiError::rate_limited(
            format!("Too many frames: this frame was not handled; retry in {secs} s."),
            secs,
        );
        out.send(error_frame(None, &e)).await
    }

    async fn on_event(&mut self, event: &Event, out: &mut Outbox<'_>) -> Flow {
        match &event.chat_event {
            ChatEvent::MessageCreated { message, .. } => {
                self.on_message_created(event, message, out).await
            }
            ChatEvent::MemberJoined {
                chat_id,
                user,
                since_seq,
                ..
            } => {
                out.send(shared_frame(event)).await?;
                // Membership events may arrive out of order (a removal and a re-add racing):
                // follow only what PostgreSQL says now.
                if user.id == self.user.id
                    && !self.chats.contains_key(chat_id)
                    && self.member_now(*chat_id).await?
                {
                    // Events of the chat dispatched before this subscription existed (the join
                    // line, at least) were not queued for this socket: fetch them.
                    let subscription = self.state.hub.subscribe(*chat_id, &self.conn);
                    self.chats
                        .insert(*chat_id, Followed::new(*chat_id, subscription, *since_seq));
                    match chat_by_id(&self.state.store, *chat_id).await {
                        Ok(chat) => self.catch_up(*chat_id, chat.last_seq, out).await?,
                        Err(e) => return Err(lost(&e.into())),
                    }
                }
                Ok(())
            }
            ChatEvent::MemberLeft { chat_id, user, .. } => {
                out.send(shared_frame(event)).await?;
                if user.id == self.user.id
                    && self.chats.contains_key(chat_id)
                    && !self.member_now(*chat_id).await?
                {
                    self.chats.remove(chat_id);
                }
                Ok(())
            }
            ChatEvent::ChatDeleted { chat_id } => {
                out.send(shared_frame(event)).await?;
                self.chats.remove(chat_id);
                Ok(())
            }
            _ => out.send(shared_frame(event)).await,
        }
    }

    async fn on_heartbeat(&mut self) -> Flow {
        let ttl = SocketLimits::new(&self.state).client_timeout.as_millis() as i64;
        let (store, user, token) = (&self.state.store, self.user.id, &self.presence_token);
        let kept = if self.presence_on {
            chat_services::presence::refresh(store, user, token, ttl).await
        } else {
            chat_services::presence::connect(store, user, token, ttl).await
        };
        match kept {
            Ok(()) => self.presence_on = true,
            Err(e) => tracing::warn!(error = %e, "presence refresh failed"),
        }
        Ok(())
    }

    /// Events may have been lost (Redis was down or slow): every chat is caught up to its
    /// `last_seq` from PostgreSQL, in order, without sending anything twice.
    async fn on_resync(&mut self, out: &mut Outbox<'_>) -> Flow {
        let chats = match user_chats(&self.state.store, self.user.id).await {
            Ok(chats) => chats,
            Err(e) => return Err(lost(&e.into())),
        };
        for (chat, last_seq) in chats {
            if self.chats.contains_key(&chat) {
                self.catch_up(chat, last_seq, out).await?;
            }
        }
        Ok(())
    }

    async fn on_end(&mut self) {
        self.end().await;
    }
}
