//! Scenario 4, history: page latency in a chat of many messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;
use tokio::sync::Mutex;

use super::Common;
use super::send::rest_sends;
use super::setup::setup_groups;
use crate::api::Api;
use crate::fleet::Target;
use crate::report::Report;
use crate::stats::{self, Latency};
use crate::wire::Protocol;

/// Scenario 4: pages of `page` messages at random points of a chat holding `messages`
/// messages (filled over the gateway first if it holds fewer); latency p50/p99 over `secs`
/// with `concurrency` readers.
pub async fn history(
    common: &Common,
    messages: i64,
    secs: f64,
    concurrency: usize,
    page: u32,
) -> Result<Report> {
    let target = Target::resolve(&common.url, Protocol::Native, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let fillers = 200;
    let setup = setup_groups(&api, common, &format!("hist{messages}x"), 1, fillers).await?;
    let (chat, token) = (setup.groups[0].0, setup.tokens[0].clone());
    let mut report = Report::new(
        "history",
        json!({"common": common.params(), "messages": messages, "secs": secs,
               "concurrency": concurrency, "page": page}),
    );
    let mut last = api.last_seq(&token, chat).await?;
    if last < messages {
        // Filled over REST by every member at once (sockets in the chat would each receive
        // every message: the fill would measure fan-out).
        eprintln!("history: filling chat {chat} from {last} to {messages} messages");
        let fill = Instant::now();
        while last < messages {
            let deadline = Instant::now() + Duration::from_secs(10);
            let budget = (messages - last) as u64;
            let (_, (errors, first)) =
                rest_sends(&api, &setup.tokens, chat, deadline, budget).await;
            if errors > 0 {
                bail!("filling the history chat: {errors} errors, first: {first:?}");
            }
            last = api.last_seq(&token, chat).await?;
            eprintln!("history: {last} messages");
        }
        report.add("fill time, s", fill.elapsed().as_secs_f64());
    }
    report.add("messages in the chat", last as f64);
    let latency = Arc::new(Mutex::new(stats::histogram()));
    let failures = Arc::new(Mutex::new((0u64, None::<String>)));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let min_before = i64::from(page) + 1;
    let readers = (0..concurrency.max(1)).map(|_| {
        let (api, token, latency, failures) = (
            api.clone(),
            token.clone(),
            latency.clone(),
            failures.clone(),
        );
        async move {
            while Instant::now() < deadline {
                let before = if last + 1 > min_before {
                    rand::random_range(min_before..=last + 1)
                } else {
                    last + 1
                };
                let t = Instant::now();
                let got = api.page(&token, chat, before, page).await;
                let us = t.elapsed().as_micros() as u64;
                let want = (before - 1).min(i64::from(page)) as usize;
                match got {
                    Ok(n) if n == want => stats::record(&mut *latency.lock().await, us),
                    Ok(n) => {
                        let mut f = failures.lock().await;
                        f.0 += 1;
                        f.1.get_or_insert(format!(
                            "page before {before}: {n} messages, want {want}"
                        ));
                    }
                    Err(e) => {
                        let mut f = failures.lock().await;
                        f.0 += 1;
                        f.1.get_or_insert(format!("{e:#}"));
                    }
                }
            }
        }
    });
    futures_util::future::join_all(readers).await;
    let l = Latency::of(&*latency.lock().await);
    let f = failures.lock().await;
    report.add("pages read", l.count as f64);
    report.add("pages per s", (l.count as f64 / secs).round());
    report.add("page p50, ms", l.p50_ms);
    report.at_most("page p99, ms", l.p99_ms, 5.0);
    report.add("page max, ms", l.max_ms);
    report.must_be_zero("failed or short pages", f.0 as f64);
    report.first_error = f.1.clone();
    Ok(report)
}
