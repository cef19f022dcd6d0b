//! The REST sender: one message at a time over `POST /api/v1/chats/{id}/messages`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ACK_TIMEOUT, Shared, User, backoff, lock};

/// A REST sender for the whole run: one message at a time, resent with the same `client_id`
/// until it is acknowledged.
pub async fn run_rest(sh: Arc<Shared>, user: Arc<User>) {
    let mut inst = user.idx % 2;
    let mut failures = 0u32;
    loop {
        let next = {
            let mut st = lock(&user.st);
            sh.maybe_start(&user, &mut st);
            let wait = st
                .next_send
                .map(|t| t.saturating_duration_since(Instant::now()));
            st.pending
                .as_ref()
                .map(|p| (p.chat, p.client_id.clone()))
                .ok_or(wait)
        };
        let (chat, client_id) = match next {
            Ok(send) => send,
            Err(wait) => {
                if sh.stop_sending.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(wait.unwrap_or_default().max(Duration::from_millis(5))).await;
                continue;
            }
        };
        lock(&user.st).on = Some(inst);
        let started = Instant::now();
        let resp = sh
            .http
            .post(format!("{}/api/v1/chats/{chat}/messages", sh.bases[inst]))
            .bearer_auth(&user.token)
            .json(&json!({"text": format!("chaos {client_id}"), "client_id": client_id}))
            .timeout(ACK_TIMEOUT)
            .send()
            .await;
        let took = started.elapsed();
        let resp = match resp {
            Ok(resp) => resp,
            Err(_) => {
                // Refused, reset or no answer in time: the other instance, after a backoff.
                failures += 1;
                inst = 1 - inst;
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => {
                let seq = body["seq"].as_i64().unwrap_or(0);
                let mut st = lock(&user.st);
                if body["client_id"].as_str() != Some(client_id.as_str()) {
                    let mut stats = lock(&sh.stats);
                    stats.unexpected += 1;
                    stats.sample(format!(
                        "user {} REST: ack of another client_id: {body}",
                        user.idx
                    ));
                }
                sh.acked(&mut st, body["chat_id"].as_i64().unwrap_or(chat), seq, took);
            }
            503 | 429 => {
                if status == 503 {
                    lock(&sh.stats).refusals.push((sh.now(), took));
                }
                let wait = retry_after.unwrap_or(1.0).clamp(0.05, 5.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            s if s >= 500 => {
                {
                    let mut stats = lock(&sh.stats);
                    stats.server_errors += 1;
                    stats.sample(format!("user {} REST {s}: {body}", user.idx));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            s => {
                {
                    let mut stats = lock(&sh.stats);
                    stats.unexpected += 1;
                    stats.sample(format!("user {} REST {s}: {body}", user.idx));
                }
                lock(&user.st).pending = None;
            }
        }
    }
}
