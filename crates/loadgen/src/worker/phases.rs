//! The worker's long commands: a send phase, the counters' report and the reconnect storm.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connect::connect_all;
use super::{Cmd, Sock, Worker};
use crate::stats;
use crate::wire::Protocol;

/// The send phase (see [`Command::Send`]).
pub(super) async fn send_phase(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &[Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    rate: f64,
    secs: f64,
    window: u32,
) -> serde_json::Value {
    *worker.window.borrow_mut() = window.max(1);
    let senders: Vec<&mpsc::Sender<Cmd>> = socks
        .iter()
        .zip(conns)
        .filter(|(s, _)| s.plan.sender)
        .filter_map(|(_, c)| c.as_ref().map(|(tx, _)| tx))
        .collect();
    let started = Instant::now();
    let duration = Duration::from_secs_f64(secs);
    if senders.is_empty() {
        tokio::time::sleep(duration).await;
    } else if rate <= 0.0 {
        *worker.closed_loop.borrow_mut() = true;
        for tx in &senders {
            for _ in 0..window.max(1) {
                let _ = tx.try_send(Cmd::Send);
            }
        }
        tokio::time::sleep(duration).await;
        *worker.closed_loop.borrow_mut() = false;
    } else {
        let mut issued = 0u64;
        let mut next = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while started.elapsed() < duration {
            tick.tick().await;
            let due = (rate * started.elapsed().as_secs_f64().min(secs)) as u64;
            while issued < due {
                if senders[next % senders.len()].try_send(Cmd::Send).is_err() {
                    worker.counters.borrow_mut().skipped += 1;
                }
                next += 1;
                issued += 1;
            }
        }
    }
    let sending_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Wait for the sends in flight to be acknowledged (an overloaded server may hold many).
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(60)
        && socks.iter().any(|s| s.st.borrow().inflight > 0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let unacked: u64 = socks
        .iter()
        .map(|s| u64::from(s.st.borrow().inflight))
        .sum();
    json!({"ok": true, "sending_ms": sending_ms, "drain_ms": drain.elapsed().as_secs_f64() * 1000.0, "unacked": unacked})
}

pub(super) fn report(worker: &Worker) -> serde_json::Value {
    let c = worker.counters.borrow();
    json!({
        "ok": true,
        "deliveries": c.deliveries,
        "latency": stats::encode(&c.latency),
        "in_order": c.in_order.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
        "duplicates": c.duplicates,
        "out_of_order": c.out_of_order,
        "first_delivery_us": c.first_delivery_us,
        "last_delivery_us": c.last_delivery_us,
        "acks": c.acks,
        "ack_latency": stats::encode(&c.ack_latency),
        "send_errors": c.send_errors,
        "skipped": c.skipped,
        "error_frames": c.error_frames,
        "closed": c.closed,
        "first_error": c.first_error,
        "sent": c.sent.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
    })
}

/// The reconnect storm (see [`Command::Storm`]).
pub(super) async fn storm(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &mut [Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    timeout_secs: f64,
) -> serde_json::Value {
    let started = Instant::now();
    for (_, task) in conns.iter_mut().filter_map(Option::take) {
        task.abort();
    }
    // Let the aborted tasks drop their sockets (the kernel sends FIN for each).
    tokio::task::yield_now().await;
    let closed_before = worker.counters.borrow().closed;
    for s in socks {
        let mut st = s.st.borrow_mut();
        st.synced = false;
        st.inflight = 0;
        st.open = false;
    }
    let connected = connect_all(worker, socks, conns, true).await;
    let deadline = started + Duration::from_secs_f64(timeout_secs);
    let resumable = |s: &Rc<Sock>| {
        worker.plan.protocol == Protocol::Native && !s.st.borrow().chat_seq.is_empty()
    };
    while Instant::now() < deadline
        && socks
            .iter()
            .zip(conns.iter())
            .any(|(s, c)| c.is_some() && resumable(s) && !s.st.borrow().synced)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let synced = socks
        .iter()
        .filter(|s| !resumable(s) || s.st.borrow().synced)
        .count();
    json!({
        "ok": true,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "reconnected": connected["ok"],
        "failed": connected["failed"],
        "attempt_errors": connected["attempt_errors"],
        "first_error": connected["first_error"],
        "synced": synced,
        "closed_during": worker.counters.borrow().closed - closed_before,
    })
}
