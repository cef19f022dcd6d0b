//! What a chaos run measured per fault, the final checks against PostgreSQL and the clients'
//! streams, and the report (one line per fault and per check, then `chaos: PASS|FAIL ...`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::client::Shared;
use crate::env::{Instance, Pg};

/// The faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL of instance 0 (A) or 1 (B), restarted 1 s later.
    Kill(usize),
    /// SIGTERM of an instance (graceful: its sockets get 1012), restarted once it exited.
    Terminate(usize),
    /// Redis SIGKILLed and started again at once.
    RedisRestart,
    /// PostgreSQL stopped with `-m immediate`, started again after `--pg-down-secs`.
    PgRestart,
    /// Redis SIGKILLed and started again after `--outage-secs`.
    RedisOutage,
}

impl FaultKind {
    fn name(self) -> String {
        let inst = |i: usize| if i == 0 { "A" } else { "B" };
        match self {
            Self::Kill(i) => format!("kill -9 {}", inst(i)),
            Self::Terminate(i) => format!("SIGTERM {}", inst(i)),
            Self::RedisRestart => "Redis kill+restart".into(),
            Self::PgRestart => "PostgreSQL immediate stop+start".into(),
            Self::RedisOutage => "Redis outage".into(),
        }
    }

    /// Whether recovery counts from the fault's end (PostgreSQL's return) rather than its start.
    fn counts_from_return(self) -> bool {
        self == Self::PgRestart
    }
}

/// One injected fault and what the clients saw.
#[derive(Debug)]
pub struct Fault {
    kind: FaultKind,
    /// When it began and ended (the part was back), since the run started.
    at: Duration,
    /// When the faulty part was back.
    pub ended: Duration,
    /// Users whose connection it hit (an instance's users; everyone for Redis and PostgreSQL).
    affected: Vec<usize>,
    notes: Vec<String>,
    probes: Vec<Duration>,
    probe_errors: Vec<String>,
    /// After Redis returned: until every socket had every message stored before.
    pub converged: Option<Duration>,
    /// Per affected user: from the fault (its end for PostgreSQL) to its next ack.
    recovery: Vec<Duration>,
    /// Users with no ack after the fault within 15 s.
    not_recovered: usize,
    /// Send→ack of the attempts answered while the fault lasted.
    during: Vec<Duration>,
    /// Of those, the ones over 100 ms: (answered at, since the fault began; send→ack).
    slow: Vec<(Duration, Duration, &'static str)>,
    /// 503/`unavailable` answers while it lasted and how long each took.
    refusals: Vec<Duration>,
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The `p`-th percentile (0..=100) of `values`, `None` when empty.
fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    Some(v[rank.min(v.len() - 1)])
}

fn fmt_ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{} ms", ms(d)))
}

impl Fault {
    /// A fault starting now (`at`) that hits `affected`.
    pub fn new(kind: FaultKind, at: Duration, affected: Vec<usize>) -> Self {
        Self {
            kind,
            at,
            ended: at,
            affected,
            notes: Vec::new(),
            probes: Vec::new(),
            probe_errors: Vec::new(),
            converged: None,
            recovery: Vec::new(),
            not_recovered: 0,
            during: Vec::new(),
            slow: Vec::new(),
            refusals: Vec::new(),
        }
    }

    /// Adds a remark to its line.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// A fresh socket opened during the fault reached `ready` after `took`.
    pub fn probe_opened(&mut self, took: Duration) {
        self.probes.push(took);
    }

    /// A fresh socket opened during the fault did not reach `ready`.
    pub fn probe_failed(&mut self, error: String) {
        self.probe_errors.push(error);
    }

    fn since(&self) -> Duration {
        if self.kind.counts_from_return() {
            self.ended
        } else {
            self.at
        }
    }

    /// Whether every affected user has an ack after the fault.
    pub fn all_acked_again(&self, sh: &Shared) -> bool {
        let since = self.since();
        self.affected.iter().all(|&i| {
            let st = sh.users[i].st.lock().unwrap();
            st.acks.last().is_some_and(|a| a.at > since)
        })
    }

    /// Reads recovery, send→ack and refusals from the clients.
    pub fn measure(&mut self, sh: &Shared) {
        let since = self.since();
        for &i in &self.affected {
            let st = sh.users[i].st.lock().unwrap();
            match st.acks.iter().find(|a| a.at > since) {
                Some(a) => self.recovery.push(a.at - since),
                None => self.not_recovered += 1,
            }
        }
        for user in &sh.users {
            let st = user.st.lock().unwrap();
            for a in st
                .acks
                .iter()
                .filter(|a| a.at >= self.at && a.at <= self.ended)
            {
                self.during.push(a.latency);
                if a.latency > Duration::from_millis(100) {
                    self.slow.push((
                        a.at - self.at,
                        a.latency,
                        if user.kind == crate::client::Kind::Rest {
                            "rest"
                        } else {
                            "gateway"
                        },
                    ));
                }
            }
        }
        self.slow.sort_unstable();
        let stats = sh.stats.lock().unwrap();
        self.refusals = stats
            .refusals
            .iter()
            .filter(|(t, _)| *t >= self.at && *t <= self.ended + Duration::from_millis(100))
            .map(|(_, took)| *took)
            .collect();
    }

    /// The report line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "fault {} at {:.1} s ({} ms): {} affected users acked again after median {}, max {}{}",
            self.kind.name(),
            self.at.as_secs_f64(),
            ms(self.ended - self.at),
            self.affected.len(),
            fmt_ms(percentile(&self.recovery, 50.0)),
            fmt_ms(percentile(&self.recovery, 100.0)),
            if self.kind.counts_from_return() {
                " (from its return)"
            } else {
                ""
            },
        );
        if self.not_recovered > 0 {
            line.push_str(&format!(", {} NOT within 15 s", self.not_recovered));
        }
        if !self.during.is_empty() {
            line.push_str(&format!(
                "; during it {} acks, send→ack p50 {} p99 {} ({} over 100 ms)",
                self.during.len(),
                fmt_ms(percentile(&self.during, 50.0)),
                fmt_ms(percentile(&self.during, 99.0)),
                self.slow.len()
            ));
        }
        if !self.refusals.is_empty() {
            line.push_str(&format!(
                "; {} refused with 503/unavailable, p99 {}",
                self.refusals.len(),
                fmt_ms(percentile(&self.refusals, 99.0))
            ));
        }
        if !self.probes.is_empty() || !self.probe_errors.is_empty() {
            let took: Vec<String> = self.probes.iter().map(|d| ms(*d).to_string()).collect();
            line.push_str(&format!(
                "; new sockets ready in [{}] ms{}",
                took.join(", "),
                if self.probe_errors.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} failed: {:?}",
                        self.probe_errors.len(),
                        self.probe_errors
                    )
                }
            ));
        }
        if matches!(self.kind, FaultKind::RedisOutage | FaultKind::RedisRestart) {
            line.push_str(&format!(
                "; every socket had every message {} after Redis returned",
                self.converged
                    .map_or("NOT within 10 s".into(), |d| format!("{} ms", ms(d)))
            ));
        }
        for note in &self.notes {
            line.push_str("; ");
            line.push_str(note);
        }
        line
    }

    fn json(&self) -> Value {
        json!({
            "fault": self.kind.name(),
            "at_ms": ms(self.at),
            "lasted_ms": ms(self.ended - self.at),
            "affected": self.affected.len(),
            "recovery_median_ms": percentile(&self.recovery, 50.0).map(ms),
            "recovery_max_ms": percentile(&self.recovery, 100.0).map(ms),
            "not_recovered": self.not_recovered,
            "acks_during": self.during.len(),
            "slow_acks_during": self.slow.iter().map(|(at, took, by)| json!({"at_ms": ms(*at), "ack_ms": ms(*took), "by": by})).collect::<Vec<_>>(),
            "ack_p99_during_ms": percentile(&self.during, 99.0).map(ms),
            "refusals": self.refusals.len(),
            "refusal_p99_ms": percentile(&self.refusals, 99.0).map(ms),
            "new_socket_ready_ms": self.probes.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "new_socket_failures": self.probe_errors,
            "converged_ms": self.converged.map(ms),
        })
    }
}

/// The final checks; every count must be 0 (and `settled` true) for the run to pass.
#[derive(Debug, Default)]
pub struct Checks {
    /// Acknowledged sends.
    pub acked: usize,
    /// Acknowledged, but no row with that author and client_id.
    pub acked_missing: usize,
    /// Acknowledged with a chat/seq other than the stored row's.
    pub acked_moved: usize,
    /// Rows beyond the first per (author, client_id).
    pub duplicate_rows: usize,
    /// Seqs missing from a chat's 1..=last_seq (or `last_seq` not the highest seq).
    pub seq_holes: usize,
    /// Deliveries above the next expected seq, over all sockets.
    pub gaps: u64,
    /// Deliveries at or below the last one delivered.
    pub repeats: u64,
    /// Messages of a user's chats its socket never delivered.
    pub never_received: i64,
    /// Sends still not acknowledged at the end.
    pub unacked: usize,
    /// 5xx other than 503, `internal` frames, sockets refused with 1008/1011.
    pub server_errors: u64,
    /// Answers a correct client should never get.
    pub unexpected: u64,
    /// Sockets closed with 1008 or 1011.
    pub bad_closes: u64,
    /// `panicked at` lines in the instances' logs.
    pub panics: usize,
    /// Pending sends drained and sockets converged within their limits.
    pub settled: bool,
    /// Samples of what failed.
    pub samples: Vec<String>,
}

impl Checks {
    /// Whether the run kept every promise.
    pub fn passed(&self) -> bool {
        self.settled
            && self.acked > 0
            && self.acked_missing == 0
            && self.acked_moved == 0
            && self.duplicate_rows == 0
            && self.seq_holes == 0
            && self.gaps == 0
            && self.repeats == 0
            && self.never_received == 0
            && self.unacked == 0
            && self.server_errors == 0
            && self.unexpected == 0
            && self.bad_closes == 0
            && self.panics == 0
    }
}

/// Runs every check against PostgreSQL, the clients and the logs.
pub async fn check(sh: &Shared, pg: &Pg, instances: &[Instance], settled: bool) -> Result<Checks> {
    let mut c = Checks {
        settled,
        ..Checks::default()
    };
    let rows = pg
        .query(
            "postgres",
            "SELECT chat_id, seq, coalesce(author_id, 0), coalesce(client_id, '') FROM messages",
        )
        .await?;
    let mut by_key: HashMap<(i64, String), (i64, i64)> = HashMap::new();
    let mut seqs: HashMap<i64, Vec<i64>> = HashMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [chat, seq, author, client_id] = f[..] else {
            continue;
        };
        let (chat, seq, author): (i64, i64, i64) = (chat.parse()?, seq.parse()?, author.parse()?);
        seqs.entry(chat).or_default().push(seq);
        if !client_id.is_empty()
            && by_key
                .insert((author, client_id.to_owned()), (chat, seq))
                .is_some()
        {
            c.duplicate_rows += 1;
        }
    }
    let lasts: HashMap<i64, i64> = crate::last_seqs(pg).await?.into_iter().collect();
    for (chat, last) in &lasts {
        let mut s = seqs.remove(chat).unwrap_or_default();
        s.sort_unstable();
        // (chat, seq) is unique, so a hole is a seq of 1..=last with no row.
        let holes = (*last as usize).saturating_sub(s.len());
        if holes > 0 || s.last().copied().unwrap_or(0) != *last {
            c.seq_holes += holes.max(1);
            c.samples
                .push(format!("chat {chat}: {} rows for last_seq {last}", s.len()));
        }
    }
    for user in &sh.users {
        let st = user.st.lock().unwrap();
        for ack in &st.acks {
            c.acked += 1;
            match by_key.get(&(user.id, ack.client_id.clone())) {
                None => {
                    c.acked_missing += 1;
                    if c.samples.len() < 20 {
                        c.samples.push(format!(
                            "acked {} (chat {} seq {}) is not stored",
                            ack.client_id, ack.chat, ack.seq
                        ));
                    }
                }
                Some(&(chat, seq)) if (chat, seq) != (ack.chat, ack.seq) => {
                    c.acked_moved += 1;
                    c.samples.push(format!(
                        "acked {} as chat {} seq {}, stored as chat {chat} seq {seq}",
                        ack.client_id, ack.chat, ack.seq
                    ));
                }
                Some(_) => {}
            }
        }
        c.gaps += st.gaps;
        c.repeats += st.repeats;
        for s in &st.samples {
            if c.samples.len() < 20 {
                c.samples.push(format!("user {}: {s}", user.idx));
            }
        }
        for chat in &user.chats {
            let have = st.last.get(chat).copied().unwrap_or(0);
            let missing = lasts.get(chat).copied().unwrap_or(0) - have;
            if missing > 0 {
                c.never_received += missing;
                if c.samples.len() < 20 {
                    c.samples.push(format!(
                        "user {}: chat {chat} delivered up to {have} of {}",
                        user.idx, lasts[chat]
                    ));
                }
            }
        }
        if st.has_pending() {
            c.unacked += 1;
        }
    }
    {
        let stats = sh.stats.lock().unwrap();
        c.server_errors = stats.server_errors;
        c.unexpected = stats.unexpected;
        c.bad_closes = ["1008", "1011"]
            .iter()
            .filter_map(|code| stats.closes.get(*code))
            .sum();
        c.samples.extend(stats.samples.iter().cloned());
    }
    for inst in instances {
        let log = std::fs::read_to_string(&inst.log).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("panicked at")) {
            c.panics += 1;
            if c.samples.len() < 30 {
                c.samples.push(format!("instance {}: {line}", inst.name));
            }
        }
    }
    Ok(c)
}

/// Prints the checks and the closing line; answers the whole report as JSON.
pub fn summary(sh: &Shared, faults: &[Fault], c: &Checks, elapsed: Duration) -> Value {
    let stats = sh.stats.lock().unwrap();
    let closes: Vec<String> = stats
        .closes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let opens: Vec<Duration> = stats.opens.iter().map(|(_, d)| *d).collect();
    println!(
        "check: {} acknowledged sends, {} missing from PostgreSQL, {} stored elsewhere than acked",
        c.acked, c.acked_missing, c.acked_moved
    );
    println!(
        "check: {} duplicate rows per (author, client_id), {} seq holes",
        c.duplicate_rows, c.seq_holes
    );
    println!(
        "check: deliveries: {} gaps, {} repeated/reordered, {} messages never received; {} sends unacknowledged at the end{}",
        c.gaps,
        c.repeats,
        c.never_received,
        c.unacked,
        if c.settled { "" } else { " (did not settle)" }
    );
    println!(
        "check: {} server errors (5xx but 503, internal), {} unexpected answers, {} sockets closed 1008/1011, {} panics in logs",
        c.server_errors, c.unexpected, c.bad_closes, c.panics
    );
    println!(
        "info: {} refusals with 503/unavailable; sockets ended: {}; {} socket opens, ready p50 {} p99 {}",
        stats.refusals.len(),
        closes.join(", "),
        opens.len(),
        fmt_ms(percentile(&opens, 50.0)),
        fmt_ms(percentile(&opens, 99.0))
    );
    for s in &c.samples {
        println!("  {s}");
    }
    let passed = c.passed();
    println!(
        "chaos: {} — {} faults over {:.0} s, {} acknowledged sends, {} failed checks",
        if passed { "PASS" } else { "FAIL" },
        faults.len(),
        elapsed.as_secs_f64(),
        c.acked,
        [
            !c.settled,
            c.acked == 0,
            c.acked_missing > 0,
            c.acked_moved > 0,
            c.duplicate_rows > 0,
            c.seq_holes > 0,
            c.gaps > 0,
            c.repeats > 0,
            c.never_received > 0,
            c.unacked > 0,
            c.server_errors > 0,
            c.unexpected > 0,
            c.bad_closes > 0,
            c.panics > 0,
        ]
        .iter()
        .filter(|f| **f)
        .count()
    );
    json!({
        "passed": passed,
        "elapsed_s": elapsed.as_secs_f64(),
        "faults": faults.iter().map(Fault::json).collect::<Vec<_>>(),
        "acked": c.acked,
        "acked_missing": c.acked_missing,
        "acked_moved": c.acked_moved,
        "duplicate_rows": c.duplicate_rows,
        "seq_holes": c.seq_holes,
        "gaps": c.gaps,
        "repeats": c.repeats,
        "never_received": c.never_received,
        "unacked": c.unacked,
        "server_errors": c.server_errors,
        "unexpected": c.unexpected,
        "bad_closes": c.bad_closes,
        "panics": c.panics,
        "refusals": stats.refusals.len(),
        "closes": stats.closes,
        "samples": c.samples,
    })
}
