//! Scenario 2, fanout: deliveries per second and lost, duplicated or reordered deliveries.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::send::send_phase;
use super::setup::setup_groups;
use super::{Common, connect, cpu_percent, note_errors};
use crate::api::Api;
use crate::fleet::{Fleet, Target};
use crate::report::Report;
use crate::stats;
use crate::wire::Protocol;

/// Scenario 2: G groups of K members, senders at a total rate R; deliveries/s, send→deliver
/// latency, and lost/duplicated/reordered deliveries (must be 0).
pub async fn fanout(
    common: &Common,
    groups: usize,
    members: usize,
    senders: usize,
    rate: f64,
    secs: f64,
    window: u32,
) -> Result<Report> {
    let shape = Shape {
        groups,
        members,
        senders,
        rate,
        secs,
        window,
    };
    run(common, "fanout", &shape).await
}

/// Pipelined sends: one sender per group, each at `rate` messages/s with up to `window`
/// unacknowledged; the sends per second one socket sustains (target ≥ 1,000, issue "Fan-out at
/// scale"), with every delivery checked as in [`fanout`].
pub async fn pipeline(
    common: &Common,
    groups: usize,
    members: usize,
    rate: f64,
    secs: f64,
    window: u32,
) -> Result<Report> {
    let shape = Shape {
        groups,
        members,
        senders: 1,
        rate: rate * groups as f64,
        secs,
        window,
    };
    let mut report = run(common, "pipeline", &shape).await?;
    let accepted = report.value("messages sent and accepted").unwrap_or(0.0);
    report.at_least(
        "sends per s per socket",
        (accepted / secs / groups as f64).round(),
        1_000.0,
    );
    Ok(report)
}

/// A fan-out run's shape.
struct Shape {
    groups: usize,
    members: usize,
    senders: usize,
    rate: f64,
    secs: f64,
    window: u32,
}

async fn run(common: &Common, name: &str, shape: &Shape) -> Result<Report> {
    let &Shape {
        groups,
        members,
        senders,
        rate,
        secs,
        window,
    } = shape;
    let target = Target::resolve(&common.url, common.protocol, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let setup = setup_groups(&api, common, "f", groups, members).await?;
    let senders = senders.clamp(1, members);
    let mut report = Report::new(
        name,
        json!({"common": common.params(), "groups": groups, "members": members,
               "senders_per_group": senders, "rate": rate, "secs": secs, "window": window}),
    );
    let pid = common.server_pid(&target);
    let speed_before = stats::speed_probe();
    let mut fleet = Fleet::spawn(&target, setup.sockets(senders), common.workers)?;
    connect(&mut fleet, &mut report, groups * members).await?;
    let cpu0 = pid.map(stats::sample).transpose()?;
    let steal0 = stats::steal_ticks();
    let t0 = Instant::now();
    let (t, answers) = send_phase(&mut fleet, rate, secs, window, Duration::from_secs(2)).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let stolen_ticks = stats::steal_ticks().saturating_sub(steal0);
    // Native senders get their own message as the ack, door 002 senders as a broadcast too.
    let receivers = match common.protocol {
        Protocol::Native => members - 1,
        Protocol::Door002 => members,
    } as f64;
    let accepted: u64 = t.sent.values().sum();
    let expected = accepted as f64 * receivers;
    report.add("messages sent and accepted", accepted as f64);
    report.add("messages sent per s", accepted as f64 / secs);
    report.add("deliveries", t.deliveries);
    let per_s = if t.delivery_span_s > 0.0 {
        t.deliveries / t.delivery_span_s
    } else {
        0.0
    };
    if name == "fanout" {
        report.at_least("deliveries per s", per_s.round(), 150_000.0);
    } else {
        report.add("deliveries per s", per_s.round());
    }
    report.add("send->deliver p50, ms", t.latency.p50_ms);
    report.at_most("send->deliver p99, ms", t.latency.p99_ms, 100.0);
    report.add("send->deliver max, ms", t.latency.max_ms);
    report.must_be_zero("lost deliveries", (expected - t.in_order).max(0.0));
    report.must_be_zero("duplicated deliveries", t.duplicates);
    report.must_be_zero("out-of-order deliveries", t.out_of_order);
    report.must_be_zero("extra deliveries", (t.in_order - expected).max(0.0));
    report.must_be_zero("send errors", t.send_errors);
    report.add("sends skipped (client window full)", t.skipped);
    report.must_be_zero("sends never acknowledged", t.unacked);
    report.must_be_zero("sockets closed by the server", t.closed);
    if let (Some(pid), Some(c0)) = (pid, cpu0) {
        let c1 = stats::sample(pid)?;
        report.add("server CPU, % of one core", cpu_percent(c0, c1, elapsed));
        if t.deliveries > 0.0 {
            // /proc ticks are 1/100 s.
            let cpu_us = c1.cpu_ticks.saturating_sub(c0.cpu_ticks) as f64 * 10_000.0;
            report.add(
                "server CPU per delivery, µs",
                (cpu_us / t.deliveries * 100.0).round() / 100.0,
            );
        }
    }
    note_errors(&mut report, &answers);
    fleet.quit().await?;
    // The machine's phase: its speed just before the sockets opened and once the server has
    // closed them (steps per µs, stats::speed_probe), and the share of its CPUs its host took
    // during the run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.add("machine speed probe before, steps per µs", speed_before);
    report.add(
        "machine speed probe after, steps per µs",
        stats::speed_probe(),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    report.add(
        "CPU stolen by the host during the run, %",
        (stolen_ticks as f64 / (elapsed * 100.0 * cpus) * 1000.0).round() / 10.0,
    );
    Ok(report)
}
