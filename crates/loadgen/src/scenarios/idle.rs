//! Scenario 1, idle: server memory per socket and CPU at rest.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::setup::connected_users;
use super::{Common, connect, cpu_percent, note_errors};
use crate::fleet::{self, Fleet};
use crate::report::Report;
use crate::stats;
use crate::worker::Command;

/// Scenario 1: N authenticated gateway sockets held idle; server RSS per socket and CPU at rest.
pub async fn idle(
    common: &Common,
    sockets: usize,
    group_size: usize,
    hold_secs: f64,
) -> Result<Report> {
    let (target, _, _, plan) =
        connected_users(common, common.protocol, sockets, group_size).await?;
    let mut report = Report::new(
        "idle",
        json!({"common": common.params(), "sockets": sockets, "group_size": group_size, "hold_secs": hold_secs}),
    );
    let pid = common.server_pid(&target);
    let mut fleet = Fleet::spawn(&target, plan, common.workers)?;
    // Let the server settle after setup before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = pid.map(stats::sample).transpose()?;
    let open = connect(&mut fleet, &mut report, sockets).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let (Some(pid), Some(before)) = (pid, before) {
        let after = stats::sample(pid)?;
        report.add("server RSS before, MiB", before.rss_kib as f64 / 1024.0);
        report.add(
            "server RSS with sockets, MiB",
            after.rss_kib as f64 / 1024.0,
        );
        let per = (after.rss_kib as f64 - before.rss_kib as f64) / open.max(1.0);
        report.at_most(
            "server RSS per socket, KiB",
            (per * 100.0).round() / 100.0,
            8.0,
        );
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
        let end = stats::sample(pid)?;
        report.add(
            "server CPU at rest, % of one core",
            cpu_percent(after, end, t0.elapsed().as_secs_f64()),
        );
    } else {
        eprintln!("idle: server pid unknown (pass --server-pid): no RSS/CPU figures");
        tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
    }
    let answers = fleet.all(&Command::Report).await?;
    report.must_be_zero(
        "sockets closed by the server while idle",
        fleet::sum(&answers, "closed"),
    );
    note_errors(&mut report, &answers);
    fleet.quit().await?;
    Ok(report)
}
