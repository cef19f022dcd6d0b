use chat_selectors::{ChatEvent, Store};
use redis::AsyncCommands;

/// Publishes a committed event to every instance (including this one) over Redis pub/sub,
/// serialized once. Called after the commit; a Redis fault is logged, not returned: the write
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
    if let Err(error) = store.redis().publish::<_, _, i64>(&channel, payload).await {
        tracing::error!(chat.id = %event.chat_id(), %error, "event publish failed; live delivery lost");
    }
}
