//! The clients of a chaos run, each a user as a real client would be:
//!
//! - every user keeps one gateway socket (`/api/v1/ws`) open, on instance A or B. It resumes from
//!   its last seq per chat (`?sync=<chat>:<seq>,...`, then `sync` again while `complete` is
//!   false) and, when the socket ends, reconnects with backoff (50 ms doubling to 2 s, ±20 %) to
//!   the other instance;
//! - a gateway sender sends on that socket (`send_message` with a `client_id`), one message at a
//!   time; a REST sender `POST`s `/api/v1/chats/{id}/messages` with a `client_id`. Either resends
//!   what was not acknowledged with the same `client_id`: after `503`/`unavailable` (waiting the
//!   server's `Retry-After`/`retry_after`), after its socket ended, after a refused connection
//!   (on the other instance), or when no answer came within [`ACK_TIMEOUT`].
//!
//! Every delivery is checked as it arrives: per chat, the socket must hand over seq `last + 1`
//! (the gateway's promise: in order, exactly once, across resumes). A seq above it is a gap, one
//! at or below it a duplicate or reordered delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How long a send waits for its answer before the client gives up on the connection and
/// resends elsewhere.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How a user sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `send_message` on its gateway socket.
    Gateway,
    /// `POST /api/v1/chats/{id}/messages`.
    Rest,
}

/// A message acknowledged to its sender.
#[derive(Debug, Clone)]
pub struct Ack {
    /// Chat and seq the server answered with.
    pub chat: i64,
    /// The stored seq.
    pub seq: i64,
    /// The send's `client_id`.
    pub client_id: String,
    /// When the ack arrived, since the run started.
    pub at: Duration,
    /// From the attempt that was answered to its answer.
    pub latency: Duration,
}

/// A send not acknowledged yet.
#[derive(Debug, Clone)]
struct Pending {
    chat: i64,
    client_id: String,
    /// The attempt on the wire (gateway) and its `request_id`.
    attempt: Option<(Instant, u64)>,
    /// Not before this (a server's retry-after).
    retry_at: Instant,
}

/// What one user has seen and done; read by the fault schedule and the final checks.
#[derive(Debug, Default)]
pub struct UserState {
    /// Per chat, the last seq delivered in order.
    pub last: HashMap<i64, i64>,
    /// Deliveries above `last + 1`.
    pub gaps: u64,
    /// Deliveries at or below `last`.
    pub repeats: u64,
    /// A few of those, for the report.
    pub samples: Vec<String>,
    /// Every acknowledged send, in order.
    pub acks: Vec<Ack>,
    /// The instance its socket is on (gateway) or its last request went to (REST).
    pub on: Option<usize>,
    /// Messages it started (acknowledged or not).
    pub started: u64,
    pending: Option<Pending>,
    next_send: Option<Instant>,
}

impl UserState {
    /// Whether a send is still waiting for its ack.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn deliver(&mut self, chat: i64, seq: i64) {
        let last = self.last.entry(chat).or_insert(0);
        if seq == *last + 1 {
            *last = seq;
        } else if seq > *last + 1 {
            self.gaps += 1;
            if self.samples.len() < 5 {
                self.samples
                    .push(format!("chat {chat}: got seq {seq} after {}", *last));
            }
            *last = seq;
        } else {
            self.repeats += 1;
            if self.samples.len() < 5 {
                self.samples
                    .push(format!("chat {chat}: got seq {seq} again (at {})", *last));
            }
        }
    }
}

/// One user of the run.
pub struct User {
    /// Index in the run (0..users).
    pub idx: usize,
    /// Its user id.
    pub id: i64,
    /// Its access token.
    pub token: String,
    /// How it sends.
    pub kind: Kind,
    /// The chats it is a member of.
    pub chats: Vec<i64>,
    /// What it saw.
    pub st: Mutex<UserState>,
}

/// What went wrong or was refused, over all clients.
#[derive(Debug, Default)]
pub struct Stats {
    /// 5xx answers other than 503, and `internal` error frames.
    pub server_errors: u64,
    /// Answers no correct server gives a correct client (4xx other than 429, unknown codes).
    pub unexpected: u64,
    /// A few of both, for the report.
    pub samples: Vec<String>,
    /// 503 / `unavailable` answers: when (since start) and how long the refused attempt took.
    pub refusals: Vec<(Duration, Duration)>,
    /// How sockets ended, by close code ("dropped" without a close frame).
    pub closes: BTreeMap<String, u64>,
    /// Sockets that reached `ready`: when (since start) and how long it took from the TCP
    /// connect.
    pub opens: Vec<(Duration, Duration)>,
}

impl Stats {
    fn sample(&mut self, text: String) {
        if self.samples.len() < 10 {
            self.samples.push(text);
        }
    }
}

/// What every client task shares.
pub struct Shared {
    /// The instances' base URLs (`http://127.0.0.1:port`).
    pub bases: [String; 2],
    /// When the run started.
    pub start: Instant,
    /// Distinguishes this run's `client_id`s.
    pub run: u32,
    /// Mean pause between one user's acknowledged send and its next, ms.
    pub interval_ms: u64,
    /// Senders start no new message once set.
    pub stop_sending: AtomicBool,
    /// Sockets close and tasks end once set.
    pub done: AtomicBool,
    /// Failures and refusals.
    pub stats: Mutex<Stats>,
    /// Every user.
    pub users: Vec<Arc<User>>,
    /// HTTP client for REST sends.
    pub http: reqwest::Client,
}

impl Shared {
    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn next_pause(&self) -> Duration {
        let ms = self.interval_ms as f64 * rand::rng().random_range(0.5..1.5);
        Duration::from_millis(ms as u64)
    }

    /// Starts a message for `user` when it has none pending and may send now.
    fn maybe_start(&self, user: &User, st: &mut UserState) {
        let now = Instant::now();
        if st.pending.is_some()
            || self.stop_sending.load(Ordering::Relaxed)
            || st.next_send.is_some_and(|t| t > now)
            || user.chats.is_empty()
        {
            return;
        }
        st.started += 1;
        let chat = user.chats[rand::rng().random_range(0..user.chats.len())];
        st.pending = Some(Pending {
            chat,
            client_id: format!("x{}-{}-{}", self.run, user.idx, st.started),
            attempt: None,
            retry_at: now,
        });
    }

    fn acked(&self, st: &mut UserState, chat: i64, seq: i64, latency: Duration) {
        if let Some(p) = st.pending.take() {
            st.acks.push(Ack {
                chat,
                seq,
                client_id: p.client_id,
                at: self.now(),
                latency,
            });
        }
        st.next_send = Some(Instant::now() + self.next_pause());
    }
}

fn backoff(failures: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << failures.min(6)).min(2000);
    Duration::from_millis((base as f64 * rand::rng().random_range(0.8..1.2)) as u64)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The gateway URL for `user` on `base`, resuming from what it has (`sync=<chat>:<seq>,...`).
fn socket_url(base: &str, user: &User) -> String {
    let st = user.st.lock().unwrap();
    let sync: Vec<String> = user
        .chats
        .iter()
        .map(|c| format!("{c}:{}", st.last.get(c).copied().unwrap_or(0)))
        .collect();
    format!(
        "{}/api/v1/ws?token={}&sync={}",
        base.replacen("http", "ws", 1),
        user.token,
        sync.join(",")
    )
}

/// Opens a gateway socket and waits for `ready` (at most 5 s). Answers the socket and how long
/// it took.
pub async fn open(base: &str, user: &User) -> Result<(Ws, Duration), String> {
    let started = Instant::now();
    let url = socket_url(base, user);
    let fut = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match v["event"].as_str() {
                        Some("ready") => return Ok(ws),
                        Some("error") => return Err(format!("refused: {text}")),
                        _ => {}
                    }
                }
                Ok(Message::Close(frame)) => {
                    return Err(format!(
                        "closed before ready: {}",
                        frame.map_or("no frame".to_owned(), |f| format!(
                            "{} {}",
                            u16::from(f.code),
                            f.reason
                        ))
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("before ready: {e}")),
            }
        }
        Err("ended before ready".to_owned())
    };
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(Ok(ws)) => Ok((ws, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no ready within 5 s".to_owned()),
    }
}

/// One user's socket for the whole run: connect, receive (and send, for a gateway sender),
/// reconnect elsewhere when it ends.
pub async fn run_socket(sh: Arc<Shared>, user: Arc<User>) {
    let mut inst = user.idx % 2;
    let mut failures = 0u32;
    let mut request_id = 0u64;
    while !sh.done.load(Ordering::Relaxed) {
        match open(&sh.bases[inst], &user).await {
            Ok((ws, took)) => {
                failures = 0;
                sh.stats.lock().unwrap().opens.push((sh.now(), took));
                user.st.lock().unwrap().on = Some(inst);
                let ended = session(&sh, &user, ws, &mut request_id).await;
                let mut st = user.st.lock().unwrap();
                if user.kind == Kind::Gateway {
                    st.on = None;
                    // What was on the wire is resent on the next socket.
                    if let Some(p) = st.pending.as_mut() {
                        p.attempt = None;
                    }
                }
                drop(st);
                *sh.stats.lock().unwrap().closes.entry(ended).or_default() += 1;
            }
            Err(e) => {
                failures += 1;
                if e.contains("1008") || e.contains("1011") || e.contains("internal") {
                    let mut stats = sh.stats.lock().unwrap();
                    stats.server_errors += 1;
                    stats.sample(format!("user {} open on {inst}: {e}", user.idx));
                }
            }
        }
        if sh.done.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(backoff(failures)).await;
        inst = 1 - inst;
    }
}

/// Drives one open socket until it ends; answers how ("1012", "dropped", "ack timeout", ...).
async fn session(sh: &Shared, user: &User, mut ws: Ws, request_id: &mut u64) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = on_frame(sh, user, &text)
                        && ws.send(Message::Text(reply.into())).await.is_err()
                    {
                        return "dropped".into();
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or("no code".to_owned(), |f| u16::from(f.code).to_string());
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return "dropped".into(),
            },
            _ = tick.tick() => {
                if sh.done.load(Ordering::Relaxed) {
                    let _ = ws.close(None).await;
                    return "client closed".into();
                }
                if user.kind != Kind::Gateway {
                    continue;
                }
                let frame = {
                    let mut st = user.st.lock().unwrap();
                    sh.maybe_start(user, &mut st);
                    let now = Instant::now();
                    match st.pending.as_mut() {
                        Some(p) if p.attempt.is_none() && p.retry_at <= now => {
                            *request_id += 1;
                            p.attempt = Some((now, *request_id));
                            Some(json!({"action": "send_message", "chat_id": p.chat,
                                "message": format!("chaos {}", p.client_id),
                                "client_id": p.client_id, "request_id": *request_id}).to_string())
                        }
                        Some(Pending { attempt: Some((at, _)), .. }) if at.elapsed() > ACK_TIMEOUT => {
                            return "ack timeout".into();
                        }
                        _ => None,
                    }
                };
                if let Some(frame) = frame
                    && ws.send(Message::Text(frame.into())).await.is_err()
                {
                    return "dropped".into();
                }
            }
        }
    }
}

/// Handles one server frame; answers a frame to send back (a `sync` continuation).
fn on_frame(sh: &Shared, user: &User, text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    let mut st = user.st.lock().unwrap();
    match v["event"].as_str()? {
        "message.created" => {
            st.deliver(v["chat_id"].as_i64()?, v["seq"].as_i64()?);
        }
        "message.sent" => {
            let (chat, seq) = (v["chat_id"].as_i64()?, v["seq"].as_i64()?);
            let rid = v["request_id"].as_u64();
            let attempt = st.pending.as_ref().and_then(|p| p.attempt);
            if let Some((at, id)) = attempt
                && rid == Some(id)
            {
                let same = v["message"]["client_id"].as_str()
                    == st.pending.as_ref().map(|p| p.client_id.as_str());
                if !same {
                    let mut stats = sh.stats.lock().unwrap();
                    stats.unexpected += 1;
                    stats.sample(format!(
                        "user {}: ack of another client_id: {text}",
                        user.idx
                    ));
                }
                sh.acked(&mut st, chat, seq, at.elapsed());
            }
            // The sender's own new message comes as this reply, in order; a duplicate's original
            // came (or comes) in the stream.
            if v["duplicate"] == false {
                st.deliver(chat, seq);
            }
        }
        "synced" if v["complete"] == false => {
            let chats: serde_json::Map<String, Value> = user
                .chats
                .iter()
                .map(|c| (c.to_string(), json!(st.last.get(c).copied().unwrap_or(0))))
                .collect();
            return Some(json!({"action": "sync", "chats": chats}).to_string());
        }
        "error" => {
            let code = v["code"].as_str().unwrap_or_default().to_owned();
            let rid = v["request_id"].as_u64();
            let attempt = st.pending.as_ref().and_then(|p| p.attempt);
            let ours = attempt.filter(|(_, id)| rid == Some(*id));
            let mut stats = sh.stats.lock().unwrap();
            match code.as_str() {
                "unavailable" | "rate_limited" => {
                    if let Some((at, _)) = ours {
                        if code == "unavailable" {
                            stats.refusals.push((sh.now(), at.elapsed()));
                        }
                        let wait = v["retry_after"].as_f64().unwrap_or(1.0).clamp(0.05, 5.0);
                        if let Some(p) = st.pending.as_mut() {
                            p.attempt = None;
                            p.retry_at = Instant::now() + Duration::from_secs_f64(wait);
                        }
                    }
                }
                "internal" => {
                    stats.server_errors += 1;
                    stats.sample(format!("user {} gateway: {text}", user.idx));
                    if ours.is_some()
                        && let Some(p) = st.pending.as_mut()
                    {
                        p.attempt = None;
                        p.retry_at = Instant::now() + Duration::from_millis(200);
                    }
                }
                _ => {
                    stats.unexpected += 1;
                    stats.sample(format!("user {} gateway: {text}", user.idx));
                    if ours.is_some() {
                        st.pending = None;
                    }
                }
            }
        }
        _ => {}
    }
    None
}

/// A REST sender for the whole run: one message at a time, resent with the same `client_id`
/// until it is acknowledged.
pub async fn run_rest(sh: Arc<Shared>, user: Arc<User>) {
    let mut inst = user.idx % 2;
    let mut failures = 0u32;
    loop {
        let next = {
            let mut st = user.st.lock().unwrap();
            sh.maybe_start(&user, &mut st);
            let wait = st
                .next_send
                .map(|t| t.saturating_duration_since(Instant::now()));
            st.pending
                .as_ref()
                .map(|p| (p.chat, p.client_id.clone()))
                .ok_or(wait)
        };
        let (chat, client_id) = match next {
            Ok(send) => send,
            Err(wait) => {
                if sh.stop_sending.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(wait.unwrap_or_default().max(Duration::from_millis(5))).await;
                continue;
            }
        };
        user.st.lock().unwrap().on = Some(inst);
        let started = Instant::now();
        let resp = sh
            .http
            .post(format!("{}/api/v1/chats/{chat}/messages", sh.bases[inst]))
            .bearer_auth(&user.token)
            .json(&json!({"text": format!("chaos {client_id}"), "client_id": client_id}))
            .timeout(ACK_TIMEOUT)
            .send()
            .await;
        let took = started.elapsed();
        let resp = match resp {
            Ok(resp) => resp,
            Err(_) => {
                // Refused, reset or no answer in time: the other instance, after a backoff.
                failures += 1;
                inst = 1 - inst;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => {
                let seq = body["seq"].as_i64().unwrap_or(0);
                let mut st = user.st.lock().unwrap();
                if body["client_id"].as_str() != Some(client_id.as_str()) {
                    let mut stats = sh.stats.lock().unwrap();
                    stats.unexpected += 1;
                    stats.sample(format!(
                        "user {} REST: ack of another client_id: {body}",
                        user.idx
                    ));
                }
                sh.acked(&mut st, body["chat_id"].as_i64().unwrap_or(chat), seq, took);
            }
            503 | 429 => {
                if status == 503 {
                    sh.stats.lock().unwrap().refusals.push((sh.now(), took));
                }
                let wait = retry_after.unwrap_or(1.0).clamp(0.05, 5.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            s if s >= 500 => {
                {
                    let mut stats = sh.stats.lock().unwrap();
                    stats.server_errors += 1;
                    stats.sample(format!("user {} REST {s}: {body}", user.idx));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            s => {
                {
                    let mut stats = sh.stats.lock().unwrap();
                    stats.unexpected += 1;
                    stats.sample(format!("user {} REST {s}: {body}", user.idx));
                }
                user.st.lock().unwrap().pending = None;
            }
        }
    }
}
