//! Timed send phases: over the workers' sockets, and over REST.
//!
//! [`send_phase`] splits a rate over the workers and adds their reports up into [`SendTotals`];
//! [`rest_sends`] keeps one REST request in flight per token (the hot chat and the history fill).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::api::Api;
use crate::fleet::{self, Fleet};
use crate::stats::{self, Latency};
use crate::worker::Command;

/// What the send-phase reports add up to.
pub(super) struct SendTotals {
    pub(super) acks: f64,
    pub(super) ack_latency: Latency,
    pub(super) deliveries: f64,
    pub(super) latency: Latency,
    pub(super) in_order: f64,
    pub(super) duplicates: f64,
    pub(super) out_of_order: f64,
    /// Accepted sends per sender.
    pub(super) sent: HashMap<u32, u64>,
    pub(super) send_errors: f64,
    pub(super) skipped: f64,
    pub(super) unacked: f64,
    pub(super) closed: f64,
    pub(super) delivery_span_s: f64,
    /// From the first send until the last ack (sending plus draining), s.
    pub(super) active_s: f64,
}

fn totals(answers: &[Value], sends: &[Value]) -> Result<SendTotals> {
    let mut latency = stats::histogram();
    let mut ack_latency = stats::histogram();
    let mut sent = HashMap::new();
    let mut in_order = 0u64;
    let (mut first, mut last) = (u64::MAX, 0u64);
    for a in answers {
        latency.add(stats::decode(a["latency"].as_str().unwrap_or_default())?)?;
        ack_latency.add(stats::decode(
            a["ack_latency"].as_str().unwrap_or_default(),
        )?)?;
        for (k, v) in a["sent"].as_object().into_iter().flatten() {
            *sent.entry(k.parse().unwrap_or(u32::MAX)).or_insert(0) += v.as_u64().unwrap_or(0);
        }
        in_order += a["in_order"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| v.as_u64())
            .sum::<u64>();
        let f = a["first_delivery_us"].as_u64().unwrap_or(0);
        if f > 0 {
            first = first.min(f);
        }
        last = last.max(a["last_delivery_us"].as_u64().unwrap_or(0));
    }
    Ok(SendTotals {
        acks: fleet::sum(answers, "acks"),
        ack_latency: Latency::of(&ack_latency),
        deliveries: fleet::sum(answers, "deliveries"),
        latency: Latency::of(&latency),
        in_order: in_order as f64,
        duplicates: fleet::sum(answers, "duplicates"),
        out_of_order: fleet::sum(answers, "out_of_order"),
        sent,
        send_errors: fleet::sum(answers, "send_errors"),
        skipped: fleet::sum(answers, "skipped") + fleet::sum(sends, "skipped"),
        unacked: fleet::sum(sends, "unacked"),
        closed: fleet::sum(answers, "closed"),
        active_s: sends
            .iter()
            .map(|s| {
                s["sending_ms"].as_f64().unwrap_or(0.0) + s["drain_ms"].as_f64().unwrap_or(0.0)
            })
            .fold(0.0, f64::max)
            / 1000.0,
        delivery_span_s: if last > first {
            (last - first) as f64 / 1e6
        } else {
            0.0
        },
    })
}

/// Runs one send phase: `rate` messages/s in all (0: closed loop), split over the workers by
/// their senders; waits `settle` for the last deliveries, then collects the reports.
pub(super) async fn send_phase(
    fleet: &mut Fleet,
    rate: f64,
    secs: f64,
    window: u32,
    settle: Duration,
) -> Result<(SendTotals, Vec<Value>)> {
    fleet.all(&Command::Reset).await?;
    let senders = fleet.senders();
    let total: usize = senders.iter().sum::<usize>().max(1);
    let cmds = senders
        .iter()
        .map(|&s| Command::Send {
            rate: rate * s as f64 / total as f64,
            secs,
            window,
        })
        .collect();
    let sends = fleet.each(cmds).await?;
    tokio::time::sleep(settle).await;
    let answers = fleet.all(&Command::Report).await?;
    let mut all = answers.clone();
    all.extend(sends.iter().cloned());
    Ok((totals(&answers, &sends)?, all))
}

/// Every token sends into `chat` over REST, one request at a time each, until `deadline` or
/// until `budget` messages were sent in all. Returns the latency histogram (µs) of the stored
/// ones and (errors, first error).
pub(super) async fn rest_sends(
    api: &Api,
    tokens: &[String],
    chat: i64,
    deadline: Instant,
    budget: u64,
) -> (hdrhistogram::Histogram<u64>, (u64, Option<String>)) {
    let latency = Arc::new(Mutex::new(stats::histogram()));
    let errors = Arc::new(Mutex::new((0u64, None::<String>)));
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = tokens.iter().enumerate().map(|(i, token)| {
        let (latency, errors, issued) = (latency.clone(), errors.clone(), issued.clone());
        async move {
            while Instant::now() < deadline
                && issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < budget
            {
                let t = Instant::now();
                let text = format!("message {i} at {}", crate::wire::now_us());
                match api.send(token, chat, &text).await {
                    Ok(_) => {
                        let us = t.elapsed().as_micros() as u64;
                        stats::record(&mut *latency.lock().await, us);
                    }
                    Err(e) => {
                        let mut errors = errors.lock().await;
                        errors.0 += 1;
                        errors.1.get_or_insert(format!("{e:#}"));
                    }
                }
            }
        }
    });
    futures_util::future::join_all(tasks).await;
    let histogram = latency.lock().await.clone();
    let errors = errors.lock().await.clone();
    (histogram, errors)
}
