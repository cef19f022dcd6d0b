//! Scenario 3, persist: durable sends at increasing rates, then one hot chat.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::send::{rest_sends, send_phase};
use super::setup::{last_seqs, setup_groups};
use super::{Common, connect, note_errors};
use crate::api::Api;
use crate::fleet::{Fleet, Target};
use crate::report::Report;
use crate::stats::Latency;
use crate::wire::Protocol;

/// One step of the persist scenario: a rate (messages/s) or `max` (closed loop).
#[derive(Debug, Clone, Copy)]
pub enum Rate {
    /// Open loop at this many messages/s.
    Fixed(f64),
    /// Closed loop: each sender keeps its window full.
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Self::Max);
        }
        s.parse::<f64>()
            .ok()
            .filter(|r| *r > 0.0)
            .map(Self::Fixed)
            .ok_or_else(|| format!("{s:?} is neither a positive rate nor \"max\""))
    }
}

/// Scenario 3: senders across `chats` chats at increasing rates (committed messages/s, send→ack
/// latency), then `hot_senders` senders in one chat as fast as acks come back. Every ack is
/// checked against the chats' `last_seq` afterwards: acknowledged means stored.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per command-line option of the scenario"
)]
pub async fn persist(
    common: &Common,
    chats: usize,
    members: usize,
    rates: &[Rate],
    step_secs: f64,
    window: u32,
    hot_senders: usize,
    hot_secs: f64,
) -> Result<Report> {
    let target = Target::resolve(&common.url, common.protocol, common.source_ips).await?;
    if common.protocol != Protocol::Native {
        bail!("persist measures acks, which only the native gateway gives: use --protocol native");
    }
    let api = Api::new(&target.http)?;
    let mut report = Report::new(
        "persist",
        json!({"common": common.params(), "chats": chats, "members": members,
               "rates": rates.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
               "step_secs": step_secs, "window": window, "hot_senders": hot_senders,
               "hot_secs": hot_secs}),
    );
    let setup = setup_groups(&api, common, "p", chats, members).await?;
    let seqs_before = last_seqs(&api, &setup).await?;
    let mut fleet = Fleet::spawn(&target, setup.sockets(members), common.workers)?;
    connect(&mut fleet, &mut report, chats * members).await?;
    // Warm-up, not reported: opens pool connections, fills caches, prepares statements.
    if let Some(Rate::Fixed(r)) = rates.first() {
        send_phase(&mut fleet, *r, 2.0, window, Duration::ZERO).await?;
    }
    let mut acked = 0.0;
    let mut saturated = false;
    for rate in rates {
        let (label, r) = match rate {
            Rate::Fixed(_) if saturated => continue,
            Rate::Fixed(r) => (format!("{r}/s"), *r),
            Rate::Max => ("max".to_owned(), 0.0),
        };
        let (t, answers) = send_phase(&mut fleet, r, step_secs, window, Duration::ZERO).await?;
        acked += t.acks;
        // Committed per second from the first send to the last ack.
        let per_s = t.acks / t.active_s.max(step_secs);
        if r > 0.0 && per_s < 0.8 * r {
            // Past saturation higher rates only queue more; `max` tells the ceiling.
            saturated = true;
            report.add(
                format!("[{label}] saturated: committed share of the offered rate, %"),
                (per_s / r * 100.0).round(),
            );
        }
        if matches!(rate, Rate::Max) {
            report.at_least(
                format!("[{label}] committed msgs/s"),
                per_s.round(),
                25_000.0,
            );
        } else {
            report.add(format!("[{label}] committed msgs/s"), per_s.round());
        }
        report.add(format!("[{label}] send->ack p50, ms"), t.ack_latency.p50_ms);
        if matches!(rate, Rate::Fixed(r) if (*r - 1000.0).abs() < f64::EPSILON) {
            report.at_most(
                format!("[{label}] send->ack p99, ms"),
                t.ack_latency.p99_ms,
                50.0,
            );
        } else {
            report.add(format!("[{label}] send->ack p99, ms"), t.ack_latency.p99_ms);
        }
        report.add(format!("[{label}] sends skipped (window full)"), t.skipped);
        report.must_be_zero(&format!("[{label}] send errors"), t.send_errors);
        report.must_be_zero(&format!("[{label}] sends never acknowledged"), t.unacked);
        report.must_be_zero(&format!("[{label}] sockets closed by the server"), t.closed);
        note_errors(&mut report, &answers);
    }
    fleet.quit().await?;
    let seqs_after = last_seqs(&api, &setup).await?;
    let stored: i64 = seqs_after
        .iter()
        .zip(&seqs_before)
        .map(|(a, b)| a - b)
        .sum();
    report.add("messages acknowledged", acked);
    report.must_be_zero(
        "acknowledged but not stored",
        (acked - stored as f64).max(0.0),
    );

    if hot_senders > 0 {
        hot_chat(&api, common, &mut report, hot_senders, hot_secs).await?;
    }
    Ok(report)
}

/// The hot chat: `senders` members of one chat each sending over REST (`POST
/// /api/v1/chats/{id}/messages`, answered 201 after the commit) as fast as answers come back.
/// REST rather than sockets: every socket in the chat would receive every message, and the
/// fan-out, not the writes, would be measured.
async fn hot_chat(
    api: &Api,
    common: &Common,
    report: &mut Report,
    senders: usize,
    secs: f64,
) -> Result<()> {
    let hot = setup_groups(api, common, "h", 1, senders).await?;
    let chat = hot.groups[0].0;
    let before = last_seqs(api, &hot).await?[0];
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let (histogram, e) = rest_sends(api, &hot.tokens, chat, deadline, u64::MAX).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = last_seqs(api, &hot).await?[0];
    let l = Latency::of(&histogram);
    report.at_least(
        "[hot chat] committed msgs/s",
        (l.count as f64 / elapsed).round(),
        5_000.0,
    );
    report.add("[hot chat] send->201 p50, ms", l.p50_ms);
    report.add("[hot chat] send->201 p99, ms", l.p99_ms);
    report.must_be_zero("[hot chat] send errors", e.0 as f64);
    report.must_be_zero(
        "[hot chat] acknowledged but not stored",
        (l.count as f64 - (after - before) as f64).max(0.0),
    );
    if report.first_error.is_none() {
        report.first_error = e.1;
    }
    Ok(())
}
