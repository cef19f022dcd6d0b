//! The process's one Redis pub/sub subscriber.
//!
//! Receives every committed chat event published by any instance and dispatches it to the local
//! [`Hub`], and every control event (sessions revoked: the hub closes those sockets; catch up: they
//! fetch what was lost).
//!
//! Reconnects with backoff (100 ms doubling to 1 s) when Redis drops; events published while it is
//! down are not replayed live, so on reconnecting it tells every local socket to catch up from
//! PostgreSQL (`Hub::resync_all`); revoked sockets are closed by the periodic check,
//! `super::sessions`.

use std::sync::Arc;
use std::time::Duration;

use chat_selectors::{ChatEvent, ControlEvent};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::{Event, Hub};
use crate::auth::CutOffs;

/// Runs forever: subscribe to `channel` (chat events) and `control`, dispatch, reconnect on loss.
///
/// `ready` fires after the first successful SUBSCRIBE (the server starts serving only then, so no
/// event is missed).
pub async fn run_subscriber(
    client: redis::Client,
    channel: String,
    control: String,
    hub: Arc<Hub>,
    cut_offs: Arc<CutOffs>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    let mut lost = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&[&channel, &control]).await {
                Ok(()) => {
                    tracing::info!(redis.channel = %channel, "event subscriber connected");
                    backoff = Duration::from_millis(100);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    if std::mem::take(&mut lost) {
                        // Whatever was published while this process was not subscribed is lost.
                        hub.resync_all();
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if msg.get_channel_name() == control {
                            control_event(&hub, &cut_offs, msg.get_payload_bytes());
                        } else {
                            dispatch(&hub, msg.get_payload_bytes());
                        }
                    }
                    metrics::counter!("chat_redis_errors_total").increment(1);
                    tracing::warn!("event subscriber lost its Redis connection; reconnecting");
                    lost = true;
                }
                Err(error) => {
                    metrics::counter!("chat_redis_errors_total").increment(1);
                    tracing::warn!(%error, "event subscribe failed");
                }
            },
            Err(error) => {
                metrics::counter!("chat_redis_errors_total").increment(1);
                tracing::warn!(%error, "event subscriber cannot reach Redis");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn dispatch(hub: &Hub, payload: &[u8]) {
    match serde_json::from_slice::<ChatEvent>(payload) {
        Ok(event) => {
            hub.dispatch(Arc::new(Event::new(event)));
        }
        Err(error) => tracing::error!(%error, "undecodable event on the bus; dropped"),
    }
}

/// The longest wait between two subscribe attempts: after an outage, an instance hears events
/// again within this of Redis' return.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn control_event(hub: &Arc<Hub>, cut_offs: &CutOffs, payload: &[u8]) {
    match serde_json::from_slice::<ControlEvent>(payload) {
        Ok(ControlEvent::SessionsRevoked {
            user_id,
            not_before,
        }) => {
            cut_offs.revoked(user_id, not_before);
            let closed = hub.revoke(user_id, not_before);
            tracing::info!(user.id = %user_id, sockets = closed, "sessions revoked");
        }
        Ok(ControlEvent::CatchUp) => hub.resync_all(),
        Err(error) => tracing::error!(%error, "undecodable control event on the bus; dropped"),
    }
}
