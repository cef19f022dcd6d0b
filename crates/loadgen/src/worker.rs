//! A worker process: holds its share of the sockets on one thread and obeys the coordinator.
//!
//! The coordinator writes one JSON [`Command`] per line to the worker's stdin; the worker answers
//! each with exactly one JSON line on stdout. Sockets are bound round-robin to the plan's
//! source addresses (a process may hold at most 20,000 files and one source address has about
//! 28,000 ephemeral ports), and use a 4 KiB read buffer: the tungstenite default of 128 KiB per
//! connection would make the client, not the server, the bottleneck.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::stats;
use crate::wire::{self, Incoming, Probe, Protocol};

/// What a worker is given: where to connect and which sockets are its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// `ws://host:port`, no trailing slash.
    pub ws_base: String,
    /// The server's TCP address.
    pub server: SocketAddr,
    /// The protocol of every socket.
    pub protocol: Protocol,
    /// Local addresses to bind client sockets to, round-robin (e.g. 127.0.0.2 … 127.0.0.9).
    pub source_ips: Vec<IpAddr>,
    /// Handshakes in flight at once in this worker.
    pub connect_concurrency: usize,
    /// Distinguishes this run's `client_id`s from earlier runs'.
    pub run_id: u64,
    /// This worker's sockets.
    pub sockets: Vec<SocketPlan>,
}

/// One socket of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketPlan {
    /// Global index (unique across workers); the sender id in probes.
    pub id: u32,
    /// Access token of the socket's user.
    pub token: String,
    /// The chat it sends into (native), 0 for none.
    pub chat_id: i64,
    /// The group name (door 002's URL).
    pub group_name: String,
    /// Whether this socket sends.
    pub sender: bool,
}

/// A coordinator command (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Open every socket (native: until `ready`); answers counts and time.
    Connect,
    /// Zero the counters and histograms.
    Reset,
    /// Senders send for `secs`: `rate` messages/s in all (open loop, at most `window` unacked
    /// per socket; a send due while the window is full is counted as skipped), or, with `rate`
    /// 0, as fast as acks allow with `window` in flight per socket (closed loop). Answers after
    /// the in-flight sends are acked (or 60 s).
    Send {
        /// Messages/s for this worker; 0 for closed loop.
        rate: f64,
        /// Duration, s.
        secs: f64,
        /// Unacked sends allowed per socket.
        window: u32,
    },
    /// Counters and histograms since the last reset.
    Report,
    /// Drop every socket at once, then reconnect each resuming from the last seq it saw;
    /// answers when all have `synced` or after `timeout_secs`.
    Storm {
        /// Give up after this long, s.
        timeout_secs: f64,
    },
    /// Count sockets whose last seen seq of their chat differs from the chat's final seq.
    Verify {
        /// (chat id, the chat's final seq) pairs.
        expected: Vec<(i64, i64)>,
    },
    /// Close everything and exit.
    Quit,
}

type Ws = WebSocketStream<TcpStream>;

enum Cmd {
    Send,
}

/// Per-socket tracking that survives reconnects.
#[derive(Default)]
struct SockState {
    /// Last seq seen per chat (native).
    chat_seq: HashMap<i64, i64>,
    /// Last in-order probe counter seen per sender.
    last_from: HashMap<u32, u64>,
    /// This socket's next probe counter.
    next_n: u64,
    /// Sends not yet acked.
    inflight: u32,
    /// Got `synced` since the last storm.
    synced: bool,
    /// The socket is connected (its task runs).
    open: bool,
}

struct Sock {
    plan: SocketPlan,
    st: RefCell<SockState>,
}

/// Counters since the last reset.
struct Counters {
    deliveries: u64,
    latency: Histogram<u64>,
    in_order: HashMap<u32, u64>,
    duplicates: u64,
    out_of_order: u64,
    first_delivery_us: u64,
    last_delivery_us: u64,
    acks: u64,
    ack_latency: Histogram<u64>,
    sent: HashMap<u32, u64>,
    send_errors: u64,
    skipped: u64,
    error_frames: u64,
    closed: u64,
    first_error: Option<String>,
}

impl Counters {
    fn new() -> Self {
        Self {
            deliveries: 0,
            latency: stats::histogram(),
            in_order: HashMap::new(),
            duplicates: 0,
            out_of_order: 0,
            first_delivery_us: 0,
            last_delivery_us: 0,
            acks: 0,
            ack_latency: stats::histogram(),
            sent: HashMap::new(),
            send_errors: 0,
            skipped: 0,
            error_frames: 0,
            closed: 0,
            first_error: None,
        }
    }

    fn error(&mut self, e: impl ToString) {
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

struct Worker {
    plan: Plan,
    ws_config: WebSocketConfig,
    counters: RefCell<Counters>,
    /// Closed loop: each ack sends the next message while this is set.
    closed_loop: RefCell<bool>,
    window: RefCell<u32>,
}

/// Runs a worker on the current thread until `quit` or the end of stdin.
/// Errors: an unreadable plan file.
pub fn run(plan_path: &str) -> Result<()> {
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(plan_path).with_context(|| format!("read plan {plan_path}"))?,
    )
    .context("parse plan")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(plan))
}

async fn serve(plan: Plan) -> Result<()> {
    let worker = Rc::new(Worker {
        ws_config: WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_write_buffer_size(1 << 20),
        plan,
        counters: RefCell::new(Counters::new()),
        closed_loop: RefCell::new(false),
        window: RefCell::new(1),
    });
    let socks: Vec<Rc<Sock>> = worker
        .plan
        .sockets
        .iter()
        .map(|p| {
            Rc::new(Sock {
                plan: p.clone(),
                st: RefCell::new(SockState::default()),
            })
        })
        .collect();
    let mut conns: Vec<Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>> =
        (0..socks.len()).map(|_| None).collect();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let cmd: Command = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                reply(&mut out, json!({"error": format!("bad command: {e}")})).await?;
                continue;
            }
        };
        let answer = match cmd {
            Command::Connect => connect_all(&worker, &socks, &mut conns, false).await,
            Command::Reset => {
                *worker.counters.borrow_mut() = Counters::new();
                json!({"ok": true})
            }
            Command::Send { rate, secs, window } => {
                send_phase(&worker, &socks, &conns, rate, secs, window).await
            }
            Command::Report => report(&worker),
            Command::Storm { timeout_secs } => {
                storm(&worker, &socks, &mut conns, timeout_secs).await
            }
            Command::Verify { expected } => {
                let expected: HashMap<i64, i64> = expected.into_iter().collect();
                let mismatched = socks
                    .iter()
                    .filter(|s| {
                        let chat = s.plan.chat_id;
                        chat != 0
                            && expected.get(&chat).copied()
                                != Some(s.st.borrow().chat_seq.get(&chat).copied().unwrap_or(-1))
                    })
                    .count();
                json!({"ok": true, "mismatched": mismatched})
            }
            Command::Quit => {
                for (_, task) in conns.iter_mut().filter_map(Option::take) {
                    task.abort();
                }
                reply(&mut out, json!({"ok": true})).await?;
                return Ok(());
            }
        };
        reply(&mut out, answer).await?;
    }
    Ok(())
}

async fn reply(out: &mut tokio::io::Stdout, value: serde_json::Value) -> Result<()> {
    let mut line = value.to_string();
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

/// Opens one socket: TCP from `source`, the WebSocket handshake, and for the native gateway the
/// `ready` frame (whose chat seqs are recorded). With `resume`, the handshake carries
/// `sync=<chat>:<seq>,...` of what the socket saw before.
async fn open(worker: &Worker, sock: &Sock, source: IpAddr, resume: bool) -> Result<Ws> {
    let plan = &worker.plan;
    let tcp = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    tcp.bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    tcp.set_nodelay(true)?;
    let stream = tcp.connect(plan.server).await.context("tcp connect")?;
    let url = match plan.protocol {
        Protocol::Native => {
            let mut url = format!("{}/api/v1/ws?token={}", plan.ws_base, sock.plan.token);
            let st = sock.st.borrow();
            if resume && !st.chat_seq.is_empty() {
                let sync: Vec<String> = st
                    .chat_seq
                    .iter()
                    .map(|(c, s)| format!("{c}:{s}"))
                    .collect();
                url.push_str("&sync=");
                url.push_str(&sync.join(","));
            }
            url
        }
        Protocol::Door002 => format!(
            "{}/ws/group/{}/?token={}",
            plan.ws_base, sock.plan.group_name, sock.plan.token
        ),
    };
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(worker.ws_config))
            .await
            .context("websocket handshake")?;
    if plan.protocol == Protocol::Native {
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(text) = frame? {
                    match wire::decode(Protocol::Native, &text) {
                        Incoming::Ready(chats) => return Ok(chats),
                        Incoming::Error { detail, .. } => return Err(anyhow!("refused: {detail}")),
                        _ => {}
                    }
                }
            }
            Err(anyhow!("closed before ready"))
        })
        .await
        .map_err(|_| anyhow!("no ready within 30 s"))??;
        let mut st = sock.st.borrow_mut();
        for (chat, seq) in ready {
            // On resume, `ready` reports where live delivery starts; the replay fills up to it.
            st.chat_seq.entry(chat).or_insert(seq);
        }
    }
    Ok(ws)
}

/// Opens every socket that is not open, `connect_concurrency` at a time, retrying a failed
/// one up to 3 times. Answers `{"ok","failed","attempt_errors","elapsed_ms","first_error"}`.
async fn connect_all(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &mut [Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    resume: bool,
) -> serde_json::Value {
    let started = Instant::now();
    let ips = &worker.plan.source_ips;
    let attempt_errors = RefCell::new(0u64);
    let first_error: RefCell<Option<String>> = RefCell::new(None);
    // Sockets never opened or closed since (by the server or the network).
    for (i, conn) in conns.iter_mut().enumerate() {
        if !socks[i].st.borrow().open
            && let Some((_, task)) = conn.take()
        {
            task.abort();
        }
    }
    let todo: Vec<usize> = (0..socks.len()).filter(|&i| conns[i].is_none()).collect();
    let opened: Vec<(usize, Option<Ws>)> = futures_util::stream::iter(todo)
        .map(|i| {
            let sock = socks[i].clone();
            let source = ips[i % ips.len()];
            let attempt_errors = &attempt_errors;
            let first_error = &first_error;
            async move {
                for attempt in 0..4u64 {
                    match open(worker, &sock, source, resume).await {
                        Ok(ws) => return (i, Some(ws)),
                        Err(e) => {
                            *attempt_errors.borrow_mut() += 1;
                            first_error.borrow_mut().get_or_insert(format!("{e:#}"));
                            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                        }
                    }
                }
                (i, None)
            }
        })
        .buffer_unordered(worker.plan.connect_concurrency.max(1))
        .collect()
        .await;
    let mut failed = 0;
    let mut ok = 0;
    for (i, ws) in opened {
        match ws {
            Some(ws) => {
                ok += 1;
                socks[i].st.borrow_mut().open = true;
                let (tx, rx) = mpsc::channel(64);
                let task =
                    tokio::task::spawn_local(drive(worker.clone(), socks[i].clone(), ws, rx));
                conns[i] = Some((tx, task));
            }
            None => failed += 1,
        }
    }
    json!({
        "ok": ok,
        "failed": failed,
        "attempt_errors": *attempt_errors.borrow(),
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "first_error": first_error.borrow().clone(),
    })
}

/// Writes this socket's next probe if its window allows (it is counted as skipped otherwise).
async fn send_one(worker: &Worker, sock: &Sock, ws: &mut Ws) -> bool {
    let frame = {
        let mut st = sock.st.borrow_mut();
        if st.inflight >= *worker.window.borrow() {
            worker.counters.borrow_mut().skipped += 1;
            return false;
        }
        st.inflight += 1;
        st.next_n += 1;
        let probe = Probe {
            sender: sock.plan.id,
            n: st.next_n,
            sent_us: wire::now_us(),
        };
        wire::send_frame(
            worker.plan.protocol,
            sock.plan.chat_id,
            &probe,
            worker.plan.run_id,
        )
    };
    if let Err(e) = ws.feed(Message::text(frame)).await {
        worker.counters.borrow_mut().error(format!("write: {e}"));
        return false;
    }
    true
}

/// One socket's life: writes what the rate loop asks for, reads and accounts every frame.
async fn drive(worker: Rc<Worker>, sock: Rc<Sock>, ws: Ws, rx: mpsc::Receiver<Cmd>) {
    drive_open(&worker, &sock, ws, rx).await;
    // Closed: what it had in flight will never be acknowledged on this connection.
    let mut st = sock.st.borrow_mut();
    st.open = false;
    st.inflight = 0;
}

async fn drive_open(worker: &Worker, sock: &Sock, mut ws: Ws, mut rx: mpsc::Receiver<Cmd>) {
    let protocol = worker.plan.protocol;
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(Cmd::Send) = cmd else { break };
                send_one(worker, sock, &mut ws).await;
                while let Ok(Cmd::Send) = rx.try_recv() {
                    send_one(worker, sock, &mut ws).await;
                }
                if ws.flush().await.is_err() {
                    worker.counters.borrow_mut().closed += 1;
                    break;
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        worker.counters.borrow_mut().closed += 1;
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let now = wire::now_us();
                let acked = account(worker, sock, protocol, wire::decode(protocol, &text), now);
                if acked && *worker.closed_loop.borrow() {
                    send_one(worker, sock, &mut ws).await;
                    if ws.flush().await.is_err() {
                        worker.counters.borrow_mut().closed += 1;
                        break;
                    }
                }
            }
        }
    }
}

/// Updates the counters for one frame; `true` when it acknowledged one of this socket's sends.
fn account(worker: &Worker, sock: &Sock, protocol: Protocol, incoming: Incoming, now: u64) -> bool {
    let mut c = worker.counters.borrow_mut();
    let mut st = sock.st.borrow_mut();
    match incoming {
        Incoming::Delivered {
            chat_id,
            seq,
            probe,
        } => {
            if seq > 0 {
                let seen = st.chat_seq.entry(chat_id).or_insert(0);
                *seen = (*seen).max(seq);
            }
            let Some(p) = probe else { return false };
            c.deliveries += 1;
            stats::record(&mut c.latency, now.saturating_sub(p.sent_us));
            if c.first_delivery_us == 0 {
                c.first_delivery_us = now;
            }
            c.last_delivery_us = now;
            let last = st.last_from.entry(p.sender).or_insert(0);
            if p.n == *last + 1 {
                *last = p.n;
                *c.in_order.entry(p.sender).or_insert(0) += 1;
            } else if p.n > *last + 1 {
                *last = p.n;
                c.out_of_order += 1;
            } else {
                c.duplicates += 1;
            }
            // Door 002 has no ack: the sender's own broadcast is its proof of storage.
            if protocol == Protocol::Door002 && p.sender == sock.plan.id {
                st.inflight = st.inflight.saturating_sub(1);
                c.acks += 1;
                *c.sent.entry(p.sender).or_insert(0) += 1;
                stats::record(&mut c.ack_latency, now.saturating_sub(p.sent_us));
                return true;
            }
            false
        }
        Incoming::Acked {
            chat_id,
            seq,
            request_id,
        } => {
            let seen = st.chat_seq.entry(chat_id).or_insert(0);
            *seen = (*seen).max(seq);
            st.inflight = st.inflight.saturating_sub(1);
            c.acks += 1;
            *c.sent.entry(sock.plan.id).or_insert(0) += 1;
            if let Some(sent) = request_id {
                stats::record(&mut c.ack_latency, now.saturating_sub(sent));
            }
            true
        }
        Incoming::Error { request_id, detail } => {
            if request_id.is_some() || protocol == Protocol::Door002 {
                st.inflight = st.inflight.saturating_sub(1);
                c.send_errors += 1;
            } else {
                c.error_frames += 1;
            }
            c.error(detail);
            false
        }
        Incoming::Synced => {
            st.synced = true;
            false
        }
        Incoming::Refused(reason) => {
            c.error_frames += 1;
            c.error(reason);
            false
        }
        Incoming::Ready(_) | Incoming::Other => false,
    }
}

/// The send phase (see [`Command::Send`]).
async fn send_phase(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &[Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    rate: f64,
    secs: f64,
    window: u32,
) -> serde_json::Value {
    *worker.window.borrow_mut() = window.max(1);
    let senders: Vec<&mpsc::Sender<Cmd>> = socks
        .iter()
        .zip(conns)
        .filter(|(s, _)| s.plan.sender)
        .filter_map(|(_, c)| c.as_ref().map(|(tx, _)| tx))
        .collect();
    let started = Instant::now();
    let duration = Duration::from_secs_f64(secs);
    if senders.is_empty() {
        tokio::time::sleep(duration).await;
    } else if rate <= 0.0 {
        *worker.closed_loop.borrow_mut() = true;
        for tx in &senders {
            for _ in 0..window.max(1) {
                let _ = tx.try_send(Cmd::Send);
            }
        }
        tokio::time::sleep(duration).await;
        *worker.closed_loop.borrow_mut() = false;
    } else {
        let mut issued = 0u64;
        let mut next = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while started.elapsed() < duration {
            tick.tick().await;
            let due = (rate * started.elapsed().as_secs_f64().min(secs)) as u64;
            while issued < due {
                if senders[next % senders.len()].try_send(Cmd::Send).is_err() {
                    worker.counters.borrow_mut().skipped += 1;
                }
                next += 1;
                issued += 1;
            }
        }
    }
    let sending_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Wait for the sends in flight to be acknowledged (an overloaded server may hold many).
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(60)
        && socks.iter().any(|s| s.st.borrow().inflight > 0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let unacked: u64 = socks
        .iter()
        .map(|s| u64::from(s.st.borrow().inflight))
        .sum();
    json!({"ok": true, "sending_ms": sending_ms, "drain_ms": drain.elapsed().as_secs_f64() * 1000.0, "unacked": unacked})
}

fn report(worker: &Worker) -> serde_json::Value {
    let c = worker.counters.borrow();
    json!({
        "ok": true,
        "deliveries": c.deliveries,
        "latency": stats::encode(&c.latency),
        "in_order": c.in_order.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
        "duplicates": c.duplicates,
        "out_of_order": c.out_of_order,
        "first_delivery_us": c.first_delivery_us,
        "last_delivery_us": c.last_delivery_us,
        "acks": c.acks,
        "ack_latency": stats::encode(&c.ack_latency),
        "send_errors": c.send_errors,
        "skipped": c.skipped,
        "error_frames": c.error_frames,
        "closed": c.closed,
        "first_error": c.first_error,
        "sent": c.sent.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
    })
}

/// The reconnect storm (see [`Command::Storm`]).
async fn storm(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &mut [Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    timeout_secs: f64,
) -> serde_json::Value {
    let started = Instant::now();
    for (_, task) in conns.iter_mut().filter_map(Option::take) {
        task.abort();
    }
    // Let the aborted tasks drop their sockets (the kernel sends FIN for each).
    tokio::task::yield_now().await;
    let closed_before = worker.counters.borrow().closed;
    for s in socks {
        let mut st = s.st.borrow_mut();
        st.synced = false;
        st.inflight = 0;
        st.open = false;
    }
    let connected = connect_all(worker, socks, conns, true).await;
    let deadline = started + Duration::from_secs_f64(timeout_secs);
    let resumable = |s: &Rc<Sock>| {
        worker.plan.protocol == Protocol::Native && !s.st.borrow().chat_seq.is_empty()
    };
    while Instant::now() < deadline
        && socks
            .iter()
            .zip(conns.iter())
            .any(|(s, c)| c.is_some() && resumable(s) && !s.st.borrow().synced)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let synced = socks
        .iter()
        .filter(|s| !resumable(s) || s.st.borrow().synced)
        .count();
    json!({
        "ok": true,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "reconnected": connected["ok"],
        "failed": connected["failed"],
        "attempt_errors": connected["attempt_errors"],
        "first_error": connected["first_error"],
        "synced": synced,
        "closed_during": worker.counters.borrow().closed - closed_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_their_json_line() {
        let commands = [
            Command::Verify {
                expected: vec![(3, 17), (5, 2)],
            },
            Command::Send {
                rate: 10.0,
                secs: 1.0,
                window: 4,
            },
            Command::Storm { timeout_secs: 5.0 },
        ];
        for cmd in commands {
            let line = serde_json::to_string(&cmd).unwrap();
            let back: Command = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), line);
        }
    }
}
