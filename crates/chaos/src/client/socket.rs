//! The gateway client: one socket per user that resumes, reconnects and, for a gateway sender,
//! sends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{ACK_TIMEOUT, Kind, Pending, Shared, User, backoff, lock};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The gateway URL for `user` on `base`, resuming from what it has (`sync=<chat>:<seq>,...`).
fn socket_url(base: &str, user: &User) -> String {
    let st = lock(&user.st);
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
                lock(&sh.stats).opens.push((sh.now(), took));
                lock(&user.st).on = Some(inst);
                let ended = session(&sh, &user, ws, &mut request_id).await;
                let mut st = lock(&user.st);
                if user.kind == Kind::Gateway {
                    st.on = None;
                    // What was on the wire is resent on the next socket.
                    if let Some(p) = st.pending.as_mut() {
                        p.attempt = None;
                    }
                }
                drop(st);
                *lock(&sh.stats).closes.entry(ended).or_default() += 1;
            }
            Err(e) => {
                failures += 1;
                if e.contains("1008") || e.contains("1011") || e.contains("internal") {
                    let mut stats = lock(&sh.stats);
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
                    let mut st = lock(&user.st);
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
    let mut st = lock(&user.st);
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
                    let mut stats = lock(&sh.stats);
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
            let mut stats = lock(&sh.stats);
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
