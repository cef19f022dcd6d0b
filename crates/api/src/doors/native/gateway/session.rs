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
use super::frames::{ClientFrame, Resume, created_frame, error_frame, shared_frame};
use super::handshake::Opening;
use super::sending::SendDone;
use crate::error::ApiError;
use crate::realtime::ordered::{Ordered, lost};
use crate::realtime::socket::{
    Direct, Flow, Outbox, PIPELINE_DEPTH, Pipeline, SocketDoor, SocketLimits, Stop,
    retry_after_secs,
};
use crate::realtime::{Connection, Event, SessionGuard, Subscription, UserRegistration};
use crate::state::AppState;

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
    /// Live messages held back while a send is in flight, at most the socket's queue length.
    pub(super) held: Vec<Arc<Event>>,
    /// The highest seq not held (the hold was full): read from PostgreSQL when released.
    pub(super) missed_upto: i64,
}

impl Followed {
    fn new(chat: ChatId, subscription: Subscription, from: i64) -> Self {
        Self {
            _subscription: subscription,
            live_from: from,
            order: Ordered::new(chat, from),
            replayed: 0,
            held: Vec::new(),
            missed_upto: 0,
        }
    }

    /// Live delivery starts after `seq` instead, if that is later (what came before is history).
    fn raise_live_from(&mut self, seq: i64) {
        self.live_from = self.live_from.max(seq);
        self.order.mark(seq);
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
    /// Sends waiting for their commit, answered in send order.
    pub(super) sends: Pipeline<SendDone>,
    /// Sends in flight per chat (kept here, not on the chat's entry: a leave and re-join while
    /// one is in flight must not reset the count).
    pub(super) sending: HashMap<ChatId, usize>,
    /// The replay the client asked for in its handshake, sent by `on_start` after `ready`.
    resume: Resume,
    /// Most live messages held back per chat while sends are in flight (the queue length).
    pub(super) hold_cap: usize,
    _registration: UserRegistration,
    _session: SessionGuard,
}

impl Gateway {
    /// Registers the socket for its user, subscribes to every chat, then reads each chat's
    /// `last_seq` (after subscribing, so what comes later arrives live) and goes online — if
    /// Redis answers; else the socket opens all the same and goes online at a later heartbeat.
    pub(super) async fn start(
        state: AppState,
        opening: Opening,
        resume: Resume,
        limits: &SocketLimits,
    ) -> Started {
        let Opening {
            user,
            issued_at,
            chats: read,
            read_at,
        } = opening;
        let (tx, rx) = mpsc::channel(limits.queue);
        let conn = state.hub.connect(user.id, tx);
        conn.repair_overflow();
        let registration = state.hub.register_user(&conn);
        let session = state.hub.track(user.id, issued_at, &conn);
        let verified = crate::auth::Verified {
            user: user.id,
            issued_at,
        };
        crate::auth::confirm_session(&state, verified).await;
        let store = &state.store;
        // One read of where the user's chats stand (with the token's check: `authenticate`),
        // then the subscriptions. What this instance heard of a chat between the two is not in
        // the socket's queue: the hub says up to which seq, and live delivery starts after it.
        // A chat whose shard this instance was not listening to at the read (or a read older
        // than what the hub remembers) is read again once it listens.
        let mut chats = HashMap::new();
        let mut reread = false;
        for (chat, last_seq) in read {
            let (subscription, seen, since) = state.hub.subscribe_seen(chat, &conn);
            reread |= since.is_none_or(|since| since > read_at);
            let live_from = last_seq.max(seen.unwrap_or(0));
            chats.insert(chat, Followed::new(chat, subscription, live_from));
        }
        reread |= read_at.elapsed() >= crate::realtime::RECENT;
        // This instance listens to those chats (and to events about the user) before anything
        // more is read: what is published from then on arrives live. A wait that runs out (a
        // slow or absent Redis) is made good by a catch-up once the subscriptions are in place.
        let live = state.hub.ready_for_chats(chats.keys().copied()).await
            & state.hub.ready_for_user(user.id).await;
        if reread {
            let mut fresh = HashMap::new();
            let mut joined = Vec::new();
            for (chat, last_seq) in user_chats(store, user.id).await? {
                let followed = match chats.remove(&chat) {
                    Some(mut followed) => {
                        followed.raise_live_from(last_seq);
                        followed
                    }
                    // Joined since the first read: followed from what is read once the
                    // instance listens to it.
                    None => {
                        joined.push(chat);
                        Followed::new(chat, state.hub.subscribe(chat, &conn), last_seq)
                    }
                };
                fresh.insert(chat, followed);
            }
            chats = fresh;
            if !joined.is_empty() {
                if !state.hub.ready_for_chats(joined.iter().copied()).await {
                    state.hub.resync_when_live(&conn, joined.iter().copied());
                }
                for chat in joined {
                    let now = chat_by_id(store, chat).await?.last_seq;
                    if let Some(followed) = chats.get_mut(&chat) {
                        followed.raise_live_from(now);
                    }
                }
            }
        }
        if !live {
            state.hub.resync_when_live(&conn, chats.keys().copied());
        }
        let presence_token = chat_services::presence::new_token(state.hub.instance());
        let ttl = limits.client_timeout.as_millis() as i64;
        let chat_ids: Vec<ChatId> = chats.keys().copied().collect();
        let presence_on = match chat_services::presence::connect(
            store,
            user.id,
            &presence_token,
            ttl,
            &chat_ids,
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
            sends: Pipeline::new(PIPELINE_DEPTH),
            sending: HashMap::new(),
            hold_cap: limits.queue,
            resume,
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
        let grace = std::time::Duration::from_millis(self.state.settings.presence_grace_ms);
        let chats = self.chats.keys().copied().collect();
        let (user, token) = (self.user.id, &self.presence_token);
        if let Err(e) = chat_services::presence::disconnect(store, user, token, grace, chats).await
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
    pub(super) async fn catch_up(
        &mut self,
        chat: ChatId,
        target: i64,
        out: &mut Outbox<'_>,
    ) -> Flow {
        match self.chats.get_mut(&chat) {
            Some(f) => {
                f.order
                    .catch_up(&self.state.store, target, |m| created_frame(chat, m), out)
                    .await
            }
            None => Ok(()),
        }
    }

    /// A live message: held while this socket has a send to its chat in flight, else
    /// delivered.
    async fn on_message_created(
        &mut self,
        event: &Arc<Event>,
        message: &MessageView,
        out: &mut Outbox<'_>,
    ) -> Flow {
        if self.hold(event, message.chat_id) {
            return Ok(());
        }
        self.deliver_live(event, message, out).await
    }

    /// Delivers a live message in seq order (see [`Ordered::live`]).
    pub(super) async fn deliver_live(
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
    type Done = SendDone;

    fn pipeline(&mut self) -> Option<&mut Pipeline<SendDone>> {
        Some(&mut self.sends)
    }

    async fn on_done(&mut self, done: SendDone, out: &mut Outbox<'_>) -> Flow {
        self.answer_send(done, out).await
    }

    /// `ready`, then the replay the handshake asked for, before any live event (those wait in
    /// the socket's queue).
    async fn on_start(&mut self, out: &mut Outbox<'_>) -> Flow {
        out.send(self.ready_frame()).await?;
        let resume = std::mem::take(&mut self.resume);
        if resume.is_empty() {
            return Ok(());
        }
        match self.sync(resume, None, out).await {
            Ok(flow) => flow,
            Err(e) => out.send(error_frame(None, &e)).await,
        }
    }

    /// A chat's next message, with no send of this socket to it in flight, goes out at once; so
    /// does nothing for a duplicate or a chat not followed. A gap, a held chat and every other
    /// event go to [`Self::on_event`].
    fn direct(&mut self, event: &Arc<Event>) -> Direct {
        let ChatEvent::MessageCreated { message, .. } = &event.chat_event else {
            return Direct::Handle;
        };
        if self.sending.contains_key(&message.chat_id) {
            return Direct::Handle;
        }
        match self.chats.get_mut(&message.chat_id) {
            None => Direct::Skip,
            Some(f) if message.seq <= f.order.delivered() => Direct::Skip,
            Some(f) if message.seq == f.order.delivered() + 1 => {
                f.order.mark(message.seq);
                Direct::Send(shared_frame(event))
            }
            Some(_) => Direct::Handle,
        }
    }

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

    async fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> Flow {
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
                    if !self.state.hub.ready_for_chats([*chat_id]).await {
                        self.state.hub.resync_when_live(&self.conn, [*chat_id]);
                    }
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
            let chats: Vec<ChatId> = self.chats.keys().copied().collect();
            chat_services::presence::connect(store, user, token, ttl, &chats).await
        };
        match kept {
            Ok(()) => self.presence_on = true,
            Err(e) => tracing::warn!(error = %e, "presence refresh failed"),
        }
        Ok(())
    }

    /// Events may have been lost (Redis was down or slow, or a burst overflowed the socket's
    /// queue): every chat is caught up to its `last_seq` from PostgreSQL, in order, without
    /// sending anything twice (a chat with a send in flight once its sends are answered, see
    /// `sending.rs`); chats the user left meanwhile are no longer followed, chats joined
    /// meanwhile are followed from their `last_seq` on (their lost `member.joined` is not
    /// replayed). Typing, read and presence events lost this way stay lost.
    async fn on_resync(&mut self, out: &mut Outbox<'_>) -> Flow {
        let chats: HashMap<ChatId, i64> = match user_chats(&self.state.store, self.user.id).await {
            Ok(chats) => chats.into_iter().collect(),
            Err(e) => return Err(lost(&e.into())),
        };
        self.chats.retain(|chat, _| chats.contains_key(chat));
        for (chat, last_seq) in chats {
            match self.chats.get_mut(&chat) {
                Some(followed) if self.sending.contains_key(&chat) => {
                    followed.missed_upto = followed.missed_upto.max(last_seq);
                }
                Some(_) => self.catch_up(chat, last_seq, out).await?,
                None => {
                    // Subscribed first, then read again: what came between arrives either way.
                    let subscription = self.state.hub.subscribe(chat, &self.conn);
                    if !self.state.hub.ready_for_chats([chat]).await {
                        self.state.hub.resync_when_live(&self.conn, [chat]);
                    }
                    self.chats
                        .insert(chat, Followed::new(chat, subscription, last_seq));
                    match chat_by_id(&self.state.store, chat).await {
                        Ok(now) => self.catch_up(chat, now.last_seq, out).await?,
                        Err(e) => return Err(lost(&e.into())),
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_end(&mut self) {
        self.end().await;
    }
}
