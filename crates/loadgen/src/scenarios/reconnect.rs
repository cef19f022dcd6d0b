//! Scenario 5, reconnect: every socket dropped at once, then back and synced.

use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use serde_json::json;

use super::setup::connected_users;
use super::{Common, connect, note_errors};
use crate::fleet::{self, Fleet};
use crate::report::Report;
use crate::wire::Protocol;
use crate::worker::Command;

/// Scenario 5: N sockets in groups, all dropped at once and reconnected resuming from their last
/// seq, while one message per group is sent that they missed; time until every socket is back
/// and `synced`, errors, and whether every socket ended at its chat's last seq.
pub async fn reconnect(
    common: &Common,
    sockets: usize,
    group_size: usize,
    timeout_secs: f64,
) -> Result<Report> {
    let (target, api, groups, plan) =
        connected_users(common, Protocol::Native, sockets, group_size).await?;
    let mut report = Report::new(
        "reconnect",
        json!({"common": common.params(), "sockets": sockets, "group_size": group_size,
               "timeout_secs": timeout_secs}),
    );
    let mut fleet = Fleet::spawn(&target, plan, common.workers)?;
    connect(&mut fleet, &mut report, sockets).await?;
    let storm_cmd = Command::Storm { timeout_secs };
    let storm = fleet.all(&storm_cmd);
    let api = &api;
    let missed = futures_util::stream::iter(groups.groups.iter().enumerate())
        .map(|(g, (chat, _))| {
            let token = &groups.tokens[g * groups.members];
            async move {
                // A client retries a refused send (e.g. 503 while the server is busy).
                let mut failed = 0u64;
                let started = std::time::Instant::now();
                loop {
                    match api.send(token, *chat, "sent while everyone was away").await {
                        Ok(seq) => return Ok(((*chat, seq), failed, started.elapsed())),
                        Err(e) if failed >= 20 => return Err(e),
                        Err(_) => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let (answers, missed) = tokio::join!(storm, missed);
    let answers = answers?;
    let missed: Vec<((i64, i64), u64, Duration)> = missed.into_iter().collect::<Result<_>>()?;
    let rest_failures: u64 = missed.iter().map(|(_, f, _)| f).sum();
    let mut waits: Vec<f64> = missed
        .iter()
        .map(|(_, _, t)| t.as_secs_f64() * 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let expected: Vec<(i64, i64)> = missed.into_iter().map(|(e, _, _)| e).collect();
    report.add(
        "REST sends refused during the storm (retried)",
        rest_failures as f64,
    );
    if let Some(slowest) = waits.last() {
        report.add(
            "REST send during the storm, median ms",
            waits[waits.len() / 2],
        );
        report.add("REST send during the storm, slowest ms", *slowest);
    }
    report.at_most(
        "all back and synced after, s",
        fleet::max(&answers, "elapsed_ms") / 1000.0,
        10.0,
    );
    let attempts = fleet::sum(&answers, "attempt_errors");
    report.at_most(
        "reconnect error rate, %",
        attempts / sockets.max(1) as f64 * 100.0,
        0.1,
    );
    report.must_be_zero(
        "sockets not back",
        sockets as f64 - fleet::sum(&answers, "reconnected"),
    );
    report.must_be_zero(
        "sockets not synced",
        sockets as f64 - fleet::sum(&answers, "synced"),
    );
    note_errors(&mut report, &answers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let verify = fleet.all(&Command::Verify { expected }).await?;
    report.must_be_zero(
        "sockets missing messages after resume",
        fleet::sum(&verify, "mismatched"),
    );
    fleet.quit().await?;
    Ok(report)
}
