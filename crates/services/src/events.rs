use chat_selectors::{ChatEvent, Keys, Store};

/// Publishes a committed event to every instance (including this one) over Redis pub/sub,
/// serialized once, together with the cache invalidations it calls for (one round trip). Called after the commit; a Redis fault is logged, not returned: the write
/// stands, and clients repair the missed live delivery from history (`seq` gaps).
pub async fn publish(store: &Store, event: &ChatEvent) {
    publish_all(&mut store.redis(), &store.keys, std::slice::from_ref(event)).await;
}

/// [`publish`] for several committed events at once, in order, in one Redis round trip (the
/// message writer publishes each batch this way). A Redis fault is logged, not returned.
pub async fn publish_all(
    redis: &mut redis::aio::ConnectionManager,
    keys: &Keys,
    events: &[ChatEvent],
) {
    if events.is_empty() {
        return;
    }
    let channel = keys.events_channel();
    let mut pipe = redis::pipe();
    for event in events {
        match serde_json::to_string(event) {
            Ok(payload) => {
                chat_selectors::add_invalidations(&mut pipe, keys, event);
                pipe.publish(&channel, payload).ignore();
            }
            Err(error) => tracing::error!(%error, "event serialization failed"),
        }
    }
    if let Err(error) = pipe.query_async::<()>(redis).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::error!(events = events.len(), %error, "event publish failed; live delivery lost");
    }
}
