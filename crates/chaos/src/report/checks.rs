//! The final checks, against PostgreSQL, the clients' streams and the instances' logs.

use std::collections::HashMap;

use anyhow::Result;

use crate::client::{Shared, lock};
use crate::env::{Instance, Pg};

/// The final checks; every count must be 0 (and `settled` true) for the run to pass.
#[derive(Debug, Default)]
pub struct Checks {
    /// Acknowledged sends.
    pub acked: usize,
    /// Acknowledged, but no row with that author and `client_id`.
    pub acked_missing: usize,
    /// Acknowledged with a chat/seq other than the stored row's.
    pub acked_moved: usize,
    /// Rows beyond the first per (author, `client_id`).
    pub duplicate_rows: usize,
    /// Seqs missing from a chat's `1..=last_seq` (or `last_seq` not the highest seq).
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
        let st = lock(&user.st);
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
        let stats = lock(&sh.stats);
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
