//! What crosses the process boundary: the worker's plan file and the coordinator's commands.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::wire::Protocol;

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
