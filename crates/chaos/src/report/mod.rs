//! What a chaos run found, and the report that says so.
//!
//! `fault` holds what was measured per fault (one report line each), `checks` the final checks
//! against PostgreSQL, the clients' streams and the logs; this module prints the checks and the
//! closing line (`chaos: PASS|FAIL ...`) and answers the whole report as JSON.

mod checks;
mod fault;

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Shared, lock};

pub use checks::{Checks, check};
pub use fault::{Fault, FaultKind};

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The `p`-th percentile (0..=100) of `values`, `None` when empty.
fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    Some(v[rank.min(v.len() - 1)])
}

fn fmt_ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{} ms", ms(d)))
}

/// Prints the checks and the closing line; answers the whole report as JSON.
pub fn summary(sh: &Shared, faults: &[Fault], c: &Checks, elapsed: Duration) -> Value {
    let stats = lock(&sh.stats);
    let closes: Vec<String> = stats
        .closes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let opens: Vec<Duration> = stats.opens.iter().map(|(_, d)| *d).collect();
    println!(
        "check: {} acknowledged sends, {} missing from PostgreSQL, {} stored elsewhere than acked",
        c.acked, c.acked_missing, c.acked_moved
    );
    println!(
        "check: {} duplicate rows per (author, client_id), {} seq holes",
        c.duplicate_rows, c.seq_holes
    );
    println!(
        "check: deliveries: {} gaps, {} repeated/reordered, {} messages never received; {} sends unacknowledged at the end{}",
        c.gaps,
        c.repeats,
        c.never_received,
        c.unacked,
        if c.settled { "" } else { " (did not settle)" }
    );
    println!(
        "check: {} server errors (5xx but 503, internal), {} unexpected answers, {} sockets closed 1008/1011, {} panics in logs",
        c.server_errors, c.unexpected, c.bad_closes, c.panics
    );
    println!(
        "info: {} refusals with 503/unavailable; sockets ended: {}; {} socket opens, ready p50 {} p99 {}",
        stats.refusals.len(),
        closes.join(", "),
        opens.len(),
        fmt_ms(percentile(&opens, 50.0)),
        fmt_ms(percentile(&opens, 99.0))
    );
    for s in &c.samples {
        println!("  {s}");
    }
    let passed = c.passed();
    println!(
        "chaos: {} — {} faults over {:.0} s, {} acknowledged sends, {} failed checks",
        if passed { "PASS" } else { "FAIL" },
        faults.len(),
        elapsed.as_secs_f64(),
        c.acked,
        [
            !c.settled,
            c.acked == 0,
            c.acked_missing > 0,
            c.acked_moved > 0,
            c.duplicate_rows > 0,
            c.seq_holes > 0,
            c.gaps > 0,
            c.repeats > 0,
            c.never_received > 0,
            c.unacked > 0,
            c.server_errors > 0,
            c.unexpected > 0,
            c.bad_closes > 0,
            c.panics > 0,
        ]
        .iter()
        .filter(|f| **f)
        .count()
    );
    json!({
        "passed": passed,
        "elapsed_s": elapsed.as_secs_f64(),
        "faults": faults.iter().map(Fault::json).collect::<Vec<_>>(),
        "acked": c.acked,
        "acked_missing": c.acked_missing,
        "acked_moved": c.acked_moved,
        "duplicate_rows": c.duplicate_rows,
        "seq_holes": c.seq_holes,
        "gaps": c.gaps,
        "repeats": c.repeats,
        "never_received": c.never_received,
        "unacked": c.unacked,
        "server_errors": c.server_errors,
        "unexpected": c.unexpected,
        "bad_closes": c.bad_closes,
        "panics": c.panics,
        "refusals": stats.refusals.len(),
        "closes": stats.closes,
        "samples": c.samples,
    })
}
