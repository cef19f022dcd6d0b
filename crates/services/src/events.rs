use std::time::Duration;

use crate::Store;
use chat_selectors::redis_link::announce_catch_up;
use chat_selectors::{ChatEvent, Keys, RedisLink, Topic};

/// How long a publish may hold its caller (a message writer, a handler). Past it the caller
/// goes on; the publish finishes (or fails) in the background and counts as missed, so that
/// every instance's sockets catch up from PostgreSQL once Redis answers promptly again.
pub const PUBLISH_WAIT: Duration = Duration::from_millis(100);

/// Publishes a committed event to every instance (including this one) that listens to its chat
/// over Redis pub/sub, serialized once, together with the cache invalidations it calls for (one
/// round trip).
///
/// Called after the commit; a Redis fault is logged, not returned: the write stands, and the event
/// is recovered from history (see [`publish_all`]).
pub async fn publish(store: &Store, event: &ChatEvent) {
    publish_all(&store.redis(), &store.keys, std::slice::from_ref(event)).await;
}

/// [`publish`] for several committed events at once, in order, in one Redis round trip (the
/// message writer publishes each batch this way). Never waits longer than [`PUBLISH_WAIT`], and
/// not at all while Redis is down. Events that could not be published are not silently gone:
/// they are marked missed, and when Redis answers again every instance is told to catch its
/// sockets up (`ControlEvent::CatchUp`); a socket also repairs a gap from PostgreSQL on the next
/// message of its chat. A Redis fault is logged, not returned.
pub async fn publish_all(redis: &RedisLink, keys: &Keys, events: &[ChatEvent]) {
    if events.is_empty() {
        return;
    }
    let health = redis.health().clone();
    if !health.is_up() {
        health.note_missed();
        metrics::counter!("chat_events_unpublished_total").increment(events.len() as u64);
        return;
    }
    let publish = health.publish_command();
    let mut pipe = redis::pipe();
    for event in events {
        match serde_json::to_string(event) {
            Ok(payload) => {
                chat_selectors::add_invalidations(&mut pipe, keys, event);
                for topic in topics(keys, event) {
                    pipe.cmd(publish)
                        .arg(keys.channel(topic))
                        .arg(&payload)
                        .ignore();
                }
            }
            Err(error) => tracing::error!(%error, "event serialization failed"),
        }
    }
    let mut conn = redis.clone();
    // Spawned, so a publish cut short by the wait below is finished, not dropped half-sent.
    let sending = tokio::spawn(async move { pipe.query_async::<()>(&mut conn).await });
    let failed = match tokio::time::timeout(PUBLISH_WAIT, sending).await {
        Ok(Ok(Ok(()))) => {
            if health.take_missed() {
                let mut conn = redis.clone();
                tokio::spawn(async move { announce_catch_up(&health, &mut conn).await });
            }
            return;
        }
        Ok(Ok(Err(error))) => error.to_string(),
        Ok(Err(error)) => format!("publish task: {error}"),
        Err(_) => format!("no answer within {} ms", PUBLISH_WAIT.as_millis()),
    };
    health.note_missed();
    metrics::counter!("chat_redis_errors_total").increment(1);
    metrics::counter!("chat_events_unpublished_total").increment(events.len() as u64);
    tracing::warn!(events = events.len(), error = %failed, "event publish failed or is late; sockets catch up when Redis answers");
}

/// The channels `event` goes out on: its chat's shard; a join also to the joining user's shard
/// (their sockets on instances that do not listen to the chat yet), a support chat's message
/// also to the support channel (door 003's operators). An instance that hears an event twice
/// delivers it once (the hub remembers such events).
pub fn topics(keys: &Keys, event: &ChatEvent) -> impl Iterator<Item = Topic> {
    let extra = match event {
        ChatEvent::MemberJoined { user, .. } => Some(keys.user_topic(user.id)),
        ChatEvent::MessageCreated {
            support_customer: Some(_),
            ..
        } => Some(Topic::Support),
        _ => None,
    };
    std::iter::once(keys.chat_topic(event.chat_id())).chain(extra)
}
