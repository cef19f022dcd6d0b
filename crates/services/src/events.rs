use chat_selectors::{ChatEvent, Store};

/// Publishes a committed event to every instance (including this one) over Redis pub/sub,
/// serialized once, together with the cache invalidations it calls for (one round trip). Called after the commit; a Redis fault is logged, not returned: the write
/// stands, and clients repair the missed live delivery from history (`seq` gaps).
pub async fn publish(store: &Store, event: &ChatEvent) {
    let payload = match serde_json::to_string(event) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(%error, "event serialization failed");
            return;
        }
    };
    let channel = store.keys.events_channel();
    let mut pipe = redis::pipe();
    chat_selectors::add_invalidations(&mut pipe, &store.keys, event);
    pipe.publish(&channel, payload).ignore();
    if let Err(error) = pipe.query_async::<()>(&mut store.redis()).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::error!(chat.id = %event.chat_id(), %error, "event publish failed; live delivery lost");
    }
}
