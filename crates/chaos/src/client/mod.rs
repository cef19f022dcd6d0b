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
//!
//! This module holds what the clients share with the fault schedule and the checks (users, their
//! state, the run's counters); `socket` is the gateway client, `rest` the REST sender.

mod rest;
mod socket;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;

pub use rest::run_rest;
pub use socket::{open, run_socket};

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

/// Locks `mutex`, also when a client task panicked while holding it.
///
/// What it guards (counters, acks, seqs) stays readable, and the run goes on to its checks and
/// to stopping its PostgreSQL, Redis and instances; a panic here would leave PostgreSQL (which
/// `pg_ctl` runs detached) behind. The task's own panic is printed where it happened.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn backoff(failures: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << failures.min(6)).min(2000);
    Duration::from_millis((base as f64 * rand::rng().random_range(0.8..1.2)) as u64)
}
