//! The five load scenarios the coordinator runs (issue 6).
//!
//! Each sets itself up over REST (idempotently), drives the worker processes and returns a
//! [`Report`]: [`idle`], [`fanout`], [`persist`], [`history`] and [`reconnect`], one module each.
//! This module holds the options every scenario takes ([`Common`]) and the figures they share
//! (connect counts, CPU, the first error); `setup` creates their users and groups, and `send`
//! runs the timed send phases over the sockets and over REST.

mod fanout;
mod history;
mod idle;
mod persist;
mod reconnect;
mod send;
mod setup;

use anyhow::Result;
use serde_json::{Value, json};

use crate::fleet::{self, Fleet, Target};
use crate::report::Report;
use crate::stats;
use crate::wire::Protocol;
use crate::worker::Command;

pub use fanout::{fanout, pipeline};
pub use history::history;
pub use idle::idle;
pub use persist::{Rate, persist};
pub use reconnect::reconnect;

/// Options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The server, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CHAT_LOAD_URL")]
    pub url: String,
    /// Worker processes holding the sockets (each may open at most 20,000 files).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Source addresses for client sockets on a loopback server: 127.0.0.2 and up.
    #[arg(long, default_value_t = 8)]
    pub source_ips: u8,
    /// WebSocket protocol: the native gateway or door 002's group socket.
    #[arg(long, value_enum, default_value = "native")]
    pub protocol: Protocol,
    /// Prefix of generated user and group names (runs with one prefix reuse their setup).
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// The server's pid, for RSS and CPU readings (default: whoever listens on the URL's port).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// REST calls in flight during setup.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
}

impl Common {
    fn params(&self) -> Value {
        json!({"url": self.url, "workers": self.workers, "protocol": self.protocol,
               "source_ips": self.source_ips})
    }

    fn server_pid(&self, target: &Target) -> Option<u32> {
        self.server_pid.or_else(|| {
            target
                .addr
                .ip()
                .is_loopback()
                .then(|| stats::pid_listening_on(target.addr.port()))
                .flatten()
        })
    }
}

fn note_errors(report: &mut Report, answers: &[Value]) {
    if report.first_error.is_none() {
        report.first_error = fleet::first_str(answers, "first_error");
    }
}

/// Connects every worker's sockets and adds the connect figures to `report`.
async fn connect(fleet: &mut Fleet, report: &mut Report, sockets: usize) -> Result<f64> {
    let answers = fleet.all(&Command::Connect).await?;
    let ok = fleet::sum(&answers, "ok");
    report.add("sockets open", ok);
    report.add(
        "connect time, s",
        fleet::max(&answers, "elapsed_ms") / 1000.0,
    );
    report.add(
        "handshake errors (retried)",
        fleet::sum(&answers, "attempt_errors"),
    );
    report.must_be_zero("sockets that never connected", sockets as f64 - ok);
    note_errors(report, &answers);
    Ok(ok)
}

fn cpu_percent(before: stats::ProcSample, after: stats::ProcSample, secs: f64) -> f64 {
    (after.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64 / 100.0 / secs * 100.0
}
