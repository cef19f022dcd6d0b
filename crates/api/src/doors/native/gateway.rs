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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{Message, MessageStream, Session};
use chat_domain::{ChatId, ClientId, MessageText};
use chat_selectors::{
    ChatEvent, HistoryCursor, MessageView, UserBrief, UserView, chat_by_id, is_member_now,
    member_ids, message_history, presence::online_users, user_by_id, user_chats,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::auth::{authorize, request_token};
use crate::error::{ApiError, ApiResult};
use crate::realtime::ordered::{Ordered, REPLAY_PAGE, lost};
use crate::realtime::socket::{
    Flow, Outbox, SocketDoor, SocketLimits, Stop, drive, refusal_code, reject, retry_after_secs,
    upgrade,
};
use crate::realtime::{Connection, Event, FrameKind, SessionGuard, Subscription, UserRegistration};
use crate::state::AppState;

/// How long an unauthenticated socket may take to send its `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a typing indicator lasts, ms.
const TYPING_MS: u64 = 6_000;

/// How long a send waits for the messages before its own to reach the socket's queue (they were
/// published before the send was answered) before reading the rest from PostgreSQL.
const OWN_SEND_WAIT: Duration = Duration::from_millis(200);
/// Most messages one `sync` replays (the rest follows on the next `sync`), so a long absence
/// cannot hold the socket's event queue past its limit.
pub const SYNC_MAX: i64 = 1_000;

/// Per-chat seqs a client asks to resume from.
type Resume = Vec<(ChatId, i64)>;

/// `GET /api/v1/ws[?token=<access>][&sync=<chat_id>:<seq>,...]`. With a token (query or
/// `Authorization: Bearer`) the socket is live when the handshake completes; without one the
/// first frame must be `{"action":"auth","token":...,"sync"?:{...}}` within 10 s. Either way the
/// first server frame is `ready`, followed by the requested replay and `synced`.
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
            Ok((user, issued_at)) => {
                let started = Gateway::start(state, user, issued_at, &limits).await;
                actix_web::rt::spawn(
                    run(session, stream, started, resume, limits).in_current_span(),
                );
            }
            Err(e) => {
                actix_web::rt::spawn(refuse(session, e, limits).in_current_span());
            }
        },
        None => {
            actix_web::rt::spawn(
                async move {
                    let mut stream = stream.max_frame_size(limits.max_frame_bytes);
                    match first_frame_auth(&state, &mut stream).await {
                        Ok(((user, issued_at), resume)) => {
                            let started = Gateway::start(state, user, issued_at, &limits).await;
                            run(session, stream, started, resume, limits).await;
                        }
                        Err(e) => refuse(session, e, limits).await,
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

/// The user of a token and the token's issue time (the socket is tracked with it, so a later
/// revocation closes it).
async fn authenticate(state: &AppState, token: &str) -> Result<(UserView, i64), ApiError> {
    let verified = authorize(state, token).await?;
    Ok((
        user_by_id(&state.store, verified.user).await?,
        verified.issued_at,
    ))
}

#[derive(serde::Deserialize)]
struct ResumeQuery {
    sync: Option<String>,
}

/// `5:17,6:0` → `[(5, 17), (6, 0)]`. Errors: 400 naming the format.
fn parse_resume_query(raw: &str) -> Result<Resume, ApiError> {
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

/// `{"<chat_id>": <seq>, ...}` → pairs. Errors: `invalid{"chats"}`.
fn parse_resume_object(value: Option<&Value>) -> Result<Resume, ApiError> {
    let Some(wanted) = value.and_then(Value::as_object) else {
        return Err(invalid("chats", "Must be an object of chat_id: last_seq."));
    };
    wanted
        .iter()
        .map(|(id, seq)| {
            let chat = id
                .parse::<i64>()
                .map(ChatId)
                .map_err(|_| invalid("chats", "Keys must be chat ids."))?;
            let seq = seq
                .as_i64()
                .filter(|s| *s >= 0)
                .ok_or_else(|| invalid("chats", "Values must be seqs (integers >= 0)."))?;
            Ok((chat, seq))
        })
        .collect()
}

async fn first_frame_auth(
    state: &AppState,
    stream: &mut MessageStream,
) -> Result<((UserView, i64), Resume), ApiError> {
    let unauthorized = || {
        ApiError::unauthorized(
            "Authenticate first: send {\"action\":\"auth\",\"token\":\"<access>\"}.",
        )
    };
    let frame = match tokio::time::timeout(AUTH_TIMEOUT, stream.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        _ => return Err(unauthorized()),
    };
    let frame: Value = serde_json::from_str(&frame).map_err(|_| unauthorized())?;
    match (
        frame.get("action").and_then(Value::as_str),
        frame.get("token").and_then(Value::as_str),
    ) {
        (Some("auth"), Some(token)) => {
            let resume = match frame.get("sync") {
                None | Some(Value::Null) => Vec::new(),
                sync => parse_resume_object(sync)?,
            };
            Ok((authenticate(state, token).await?, resume))
        }
        _ => Err(unauthorized()),
    }
}

type Started = Result<(Gateway, Arc<Connection>, mpsc::Receiver<Arc<Event>>), ApiError>;

async fn run(
    mut session: Session,
    stream: MessageStream,
    started: Started,
    resume: Resume,
    limits: SocketLimits,
) {
    let (mut gateway, conn, events) = match started {
        Ok(started) => started,
        Err(e) => return refuse(session, e, limits).await,
    };
    let ready = gateway.ready_frame();
    let mut out = Outbox::new(&mut session, &limits);
    let mut greeted = out.send(ready).await;
    if greeted.is_ok() && !resume.is_empty() {
        // The replay goes out before any live event (those wait in the socket's queue).
        // Boxed: the replay's future lives only while it runs, not in every idle socket's task.
        greeted = match Box::pin(gateway.sync(resume, None, &mut out)).await {
            Ok(flow) => flow,
            Err(e) => out.send(error_frame(None, &e)).await,
        };
    }
    if greeted.is_err() {
        Box::pin(gateway.end()).await;
        return;
    }
    drive(session, stream, conn, events, gateway, limits).await;
}

/// One chat as this socket follows it.
struct Followed {
    _subscription: Subscription,
    /// Live delivery started after this seq (reported in `ready`, or the seq before joining).
    live_from: i64,
    /// What has been delivered live (from `live_from` on); never moves back.
    order: Ordered,
    /// The highest seq (≤ `live_from`) a replay of this socket has sent: a later `sync` starts
    /// after it, so nothing is sent twice on one socket, whatever seq the client names.
    replayed: i64,
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
struct Gateway {
    state: AppState,
    user: UserView,
    conn: Arc<Connection>,
    chats: HashMap<ChatId, Followed>,
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
    async fn start(
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

    fn ready_frame(&self) -> String {
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

    async fn end(&mut self) {
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

    fn brief(&self) -> UserBrief {
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
    async fn deliver_before(
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

    async fn on_message_created(
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

    async fn act(
        &mut self,
        frame: &Value,
        request_id: Option<&Value>,
        out: &mut Outbox<'_>,
    ) -> Result<Flow, ApiError> {
        let action = frame.get("action").and_then(Value::as_str);
        Ok(match action {
            Some("send_message") => {
                let chat = self.member_chat(frame)?;
                let max = self.state.settings.max_message_chars;
                let text = MessageText::parse(str_field(frame, "message")?, max)?;
                let client_id = match frame.get("client_id") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(id)) => Some(ClientId::parse(id)?),
                    Some(_) => return Err(invalid("client_id", "Must be a string.")),
                };
                let sent = chat_services::send_message(
                    &self.state.store,
                    self.user.id,
                    chat,
                    &text,
                    client_id.as_ref(),
                )
                .await?;
                let seq = sent.message.seq;
                let mut deferred = None;
                if sent.created {
                    // This socket receives its own message as the reply, in order, instead of
                    // again as message.created: first everything before it.
                    match self.deliver_before(chat, seq, out).await {
                        Ok(event) => deferred = event,
                        Err(stop) => return Ok(Err(stop)),
                    }
                    if let Some(followed) = self.chats.get_mut(&chat) {
                        followed.order.mark(seq);
                    }
                }
                let reply = with_request_id(
                    json!({"event": "message.sent", "chat_id": chat, "seq": seq,
                           "message": sent.message, "duplicate": !sent.created}),
                    request_id,
                );
                match (out.send(reply).await, deferred) {
                    (Ok(()), Some(event)) => self.on_event(&event, out).await,
                    (flow, _) => flow,
                }
            }
            Some("retrieve_message") => {
                let chat = self.member_chat(frame)?;
                let number = opt_i64(frame, "number")?.unwrap_or(50);
                if !(1..=200).contains(&number) {
                    return Err(invalid("number", "Must be from 1 to 200."));
                }
                let cursor = match opt_i64(frame, "before")? {
                    Some(before) => HistoryCursor::Before(before),
                    None => HistoryCursor::Latest,
                };
                let page = message_history(&self.state.store, chat, cursor, number).await?;
                let reply = with_request_id(
                    json!({"event": "messages", "chat_id": chat, "messages": page.messages, "has_more": page.has_more}),
                    request_id,
                );
                out.send(reply).await
            }
            Some("sync") => {
                let wanted = parse_resume_object(frame.get("chats"))?;
                self.sync(wanted, request_id, out).await?
            }
            Some("typing") => {
                let chat = self.member_chat(frame)?;
                // Published at most once per user and chat every 2 s; acknowledged every time.
                chat_services::presence::typing(&self.state.store, chat, self.brief(), TYPING_MS)
                    .await;
                out.send(ack(request_id, "typing")).await
            }
            Some("read") => {
                let chat = self.member_chat(frame)?;
                let seq = opt_i64(frame, "seq")?
                    .ok_or_else(|| invalid("seq", "This field is required."))?;
                chat_services::mark_read(&self.state.store, self.user.id, chat, seq).await?;
                out.send(ack(request_id, "read")).await
            }
            Some("presence") => {
                let chat = self.member_chat(frame)?;
                let members = member_ids(&self.state.store, chat).await?;
                let online = online_users(&self.state.store, &members).await?;
                out.send(with_request_id(
                    json!({"event": "online", "chat_id": chat, "user_ids": online}),
                    request_id,
                ))
                .await
            }
            Some("ping") => {
                out.send(with_request_id(json!({"event": "pong"}), request_id))
                    .await
            }
            Some("auth") => return Err(ApiError::bad_request("Already authenticated.")),
            Some(other) => {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "unknown_action",
                    format!(
                        "Unknown action {other:?}: use send_message, retrieve_message, sync, typing, read, presence or ping."
                    ),
                ));
            }
            None => return Err(invalid("action", "Must be a string.")),
        })
    }

    /// Replays, per requested chat, the messages after the client's seq (or after what an earlier
    /// replay of this socket sent, if later) up to the chat's `live_from` (what this socket did
    /// not send live), at most [`SYNC_MAX`] in all, then answers
    /// `{"event":"synced","chats":{"<chat_id>": <seq the client now has>},"complete"}`. Moves no
    /// delivery mark: nothing is ever sent twice. Errors (before anything is sent): a chat the
    /// user is not in (`forbidden`), a seq beyond the chat's `last_seq` (`invalid`).
    async fn sync(
        &mut self,
        wanted: Resume,
        request_id: Option<&Value>,
        out: &mut Outbox<'_>,
    ) -> Result<Flow, ApiError> {
        for (chat, seq) in &wanted {
            if !self.chats.contains_key(chat) {
                return Err(forbidden_chat());
            }
            let last_seq = chat_by_id(&self.state.store, *chat).await?.last_seq;
            if *seq > last_seq {
                return Err(invalid(
                    "chats",
                    &format!("seq {seq} of chat {chat} is beyond its last_seq {last_seq}."),
                ));
            }
        }
        let mut budget = SYNC_MAX;
        let mut complete = true;
        let mut synced = serde_json::Map::new();
        for (chat, seq) in wanted {
            let Some((upto, replayed)) = self.chats.get(&chat).map(|f| (f.live_from, f.replayed))
            else {
                continue;
            };
            let mut at = seq.max(replayed);
            while at < upto && budget > 0 {
                let limit = REPLAY_PAGE.min(upto - at).min(budget);
                let page =
                    match message_history(&self.state.store, chat, HistoryCursor::After(at), limit)
                        .await
                    {
                        Ok(page) => page,
                        Err(e) => return Ok(Err(lost(&e.into()))),
                    };
                if page.messages.is_empty() {
                    at = upto;
                    break;
                }
                for message in page.messages.iter().filter(|m| m.seq <= upto) {
                    if let Err(stop) = out.send(created_frame(chat, message)).await {
                        return Ok(Err(stop));
                    }
                    at = message.seq;
                    budget -= 1;
                }
                if let Some(followed) = self.chats.get_mut(&chat) {
                    followed.replayed = followed.replayed.max(at);
                }
            }
            // Caught up to live_from: the client now has all this socket delivered, too.
            let reached = if at >= upto {
                self.chats.get(&chat).map_or(at, |f| f.order.delivered())
            } else {
                at
            };
            complete &= at >= upto;
            synced.insert(chat.to_string(), json!(reached));
        }
        let reply = json!({"event": "synced", "chats": synced, "complete": complete});
        Ok(out.send(with_request_id(reply, request_id)).await)
    }

    /// Whether the user is a member of `chat` now, from PostgreSQL. A fault ends the session
    /// (1013 when transient, else 1011): guessing could leak a chat or drop one silently.
    async fn member_now(&self, chat: ChatId) -> Result<bool, Stop> {
        is_member_now(&self.state.store, chat, self.user.id)
            .await
            .map_err(|e| lost(&e.into()))
    }

    fn member_chat(&self, frame: &Value) -> Result<ChatId, ApiError> {
        let chat = ChatId(
            opt_i64(frame, "chat_id")?
                .ok_or_else(|| invalid("chat_id", "This field is required."))?,
        );
        if self.chats.contains_key(&chat) {
            Ok(chat)
        } else {
            Err(forbidden_chat())
        }
    }
}

impl SocketDoor for Gateway {
    const NAME: &'static str = "gateway";

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let frame: Value = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                let e = ApiError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("Invalid JSON: {e}"),
                );
                return out.send(error_frame(None, &e)).await;
            }
        };
        let request_id = frame.get("request_id").cloned();
        match self.act(&frame, request_id.as_ref(), out).await {
            Ok(flow) => flow,
            Err(e) => out.send(error_frame(request_id.as_ref(), &e)).await,
        }
    }

    async fn on_binary(&mut self, out: &mut Outbox<'_>) -> Flow {
        let e = ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
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

/// The gateway frame of a bus event, rendered once for every gateway socket: the event's own
/// JSON (`{"event":"message.created","chat_id",...}`), with the message's `seq` repeated at the
/// top for message events.
fn shared_frame(event: &Event) -> bytestring::ByteString {
    event
        .frame(FrameKind::Gateway, event_frame)
        .unwrap_or_default()
}

/// A message event as the gateway sends it: the bus event with the message's `seq` repeated at
/// the top (docs/native-api.md, "Server → client events").
#[derive(serde::Serialize)]
struct MessageEventFrame<'a> {
    event: &'static str,
    chat_id: ChatId,
    seq: i64,
    message: &'a MessageView,
}

/// The gateway frame of `event` (`None` if it cannot be serialized). Message events become
/// `{"event","chat_id","seq","message"}`, everything else is the bus event as it is. Written
/// straight from the event, with no intermediate `serde_json::Value` (it is rendered once per
/// event and process, on the fan-out path; see `benches/frames.rs`).
pub fn event_frame(event: &ChatEvent) -> Option<String> {
    let (name, chat_id, message) = match event {
        ChatEvent::MessageCreated {
            chat_id, message, ..
        } => ("message.created", chat_id, message),
        ChatEvent::MessageUpdated { chat_id, message } => ("message.updated", chat_id, message),
        ChatEvent::MessageDeleted { chat_id, message } => ("message.deleted", chat_id, message),
        other => return serde_json::to_string(other).ok(),
    };
    serde_json::to_string(&MessageEventFrame {
        event: name,
        chat_id: *chat_id,
        seq: message.seq,
        message,
    })
    .ok()
}

/// A replayed message, in the same shape as a live `message.created`.
fn created_frame(chat: ChatId, message: &MessageView) -> String {
    json!({"event": "message.created", "chat_id": chat, "seq": message.seq, "message": message})
        .to_string()
}

fn with_request_id(mut value: Value, request_id: Option<&Value>) -> String {
    if let Some(id) = request_id {
        value["request_id"] = id.clone();
    }
    value.to_string()
}

fn ack(request_id: Option<&Value>, action: &str) -> String {
    with_request_id(json!({"event": "ack", "action": action}), request_id)
}

/// `{"event":"error","request_id"?,"code","detail"}`.
/// `{"event":"error","request_id"?,"code","detail","retry_after"?}` (`retry_after` in seconds,
/// when over a rate limit).
fn error_frame(request_id: Option<&Value>, error: &ApiError) -> String {
    let mut frame = json!({"event": "error", "code": error.code(), "detail": error.detail()});
    if let Some(secs) = error.retry_after() {
        frame["retry_after"] = json!(secs);
    }
    with_request_id(frame, request_id)
}

fn invalid(field: &str, problem: &str) -> ApiError {
    chat_domain::DomainError::invalid(field, problem).into()
}

fn forbidden_chat() -> ApiError {
    chat_domain::DomainError::Forbidden("You are not a member of this chat.".into()).into()
}

fn str_field<'a>(frame: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    frame
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(field, "Must be a string."))
}

fn opt_i64(frame: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match frame.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(field, "Must be an integer.")),
    }
}
