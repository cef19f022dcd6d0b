//! A worker process: holds its share of the sockets on one thread and obeys the coordinator.
//!
//! The coordinator writes one JSON [`Command`] per line to the worker's stdin; the worker answers
//! each with exactly one JSON line on stdout. Sockets are bound round-robin to the plan's
//! source addresses (a process may hold at most 20,000 files and one source address has about
//! 28,000 ephemeral ports), and use a 4 KiB read buffer: the tungstenite default of 128 KiB per
//! connection would make the client, not the server, the bottleneck.
//!
//! This module holds the worker's state and its command loop; `plan` the plan and the commands
//! (what crosses the process boundary), `connect` opening sockets, `drive` each open socket's
//! task and its accounting, and `phases` the long commands (send, report, storm).

mod connect;
mod drive;
mod phases;
mod plan;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::stats;
use connect::connect_all;
use phases::{report, send_phase, storm};

pub use plan::{Command, Plan, SocketPlan};

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
