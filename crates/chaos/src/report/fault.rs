//! The faults a run injects and what the clients saw during each.

use std::time::Duration;

use serde_json::{Value, json};

use super::{fmt_ms, ms, percentile};
use crate::client::{Shared, lock};

/// The faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL of instance 0 (A) or 1 (B), restarted 1 s later.
    Kill(usize),
    /// SIGTERM of an instance (graceful: its sockets get 1012), restarted once it exited.
    Terminate(usize),
    /// Redis killed with `SIGKILL` and started again at once.
    RedisRestart,
    /// PostgreSQL stopped with `-m immediate`, started again after `--pg-down-secs`.
    PgRestart,
    /// Redis killed with `SIGKILL` and started again after `--outage-secs`.
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
            let st = lock(&sh.users[i].st);
            st.acks.last().is_some_and(|a| a.at > since)
        })
    }

    /// Reads recovery, send→ack and refusals from the clients.
    pub fn measure(&mut self, sh: &Shared) {
        let since = self.since();
        for &i in &self.affected {
            let st = lock(&sh.users[i].st);
            match st.acks.iter().find(|a| a.at > since) {
                Some(a) => self.recovery.push(a.at - since),
                None => self.not_recovered += 1,
            }
        }
        for user in &sh.users {
            let st = lock(&user.st);
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
        let stats = lock(&sh.stats);
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

    pub(super) fn json(&self) -> Value {
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
