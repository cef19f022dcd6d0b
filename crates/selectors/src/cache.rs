//! Read-through helpers over the shared Redis connection. Cache faults never fail a read: they are
//! logged and the caller goes to PostgreSQL.

use redis::AsyncCommands;
use serde::{Serialize, de::DeserializeOwned};

use crate::Store;

/// Reads a JSON value; `None` on a miss, a Redis fault or an entry that no longer parses.
pub(crate) async fn get_json<T: DeserializeOwned>(store: &Store, key: &str) -> Option<T> {
    let raw: Option<String> = match store.redis().get(key).await {
        Ok(raw) => raw,
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(cache.key = key, %error, "cache read failed; using the database");
            return None;
        }
    };
    raw.and_then(|raw| serde_json::from_str(&raw).ok())
}

/// Stores a JSON value for `ttl_secs` seconds; faults are logged and ignored.
pub(crate) async fn set_json<T: Serialize>(store: &Store, key: &str, value: &T, ttl_secs: u64) {
    let Ok(raw) = serde_json::to_string(value) else {
        return;
    };
    if let Err(error) = store.redis().set_ex::<_, _, ()>(key, raw, ttl_secs).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::warn!(cache.key = key, %error, "cache write failed");
    }
}

/// Deletes keys after a committed write; faults are logged (the entries expire by themselves).
pub(crate) async fn delete(store: &Store, key: &str) {
    if let Err(error) = store.redis().del::<_, ()>(key).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::error!(cache.key = key, %error, "cache invalidation failed; entry lives until its TTL");
    }
}

/// The current values of generation keys, starting (with a random value, `SET NX`) those that
/// do not exist yet. A generation is replaced by [`bump`] after every committed change to what
/// it guards; entries stamped with another value are stale. Random values, not counters: a key
/// lost to eviction or a restart can never come back as an old value. `None` on a Redis fault.
pub(crate) async fn generations(store: &Store, keys: &[String]) -> Option<Vec<u64>> {
    if keys.is_empty() {
        return Some(Vec::new());
    }
    let mut redis = store.redis();
    let mut values: Vec<Option<u64>> = match redis.mget(keys).await {
        Ok(values) => values,
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "cache generation read failed");
            return None;
        }
    };
    for (key, value) in keys.iter().zip(values.iter_mut()) {
        if value.is_none() {
            *value = Some(start_generation(&mut redis, key).await?);
        }
    }
    values.into_iter().collect()
}

async fn start_generation(redis: &mut crate::RedisLink, key: &str) -> Option<u64> {
    let fresh: u64 = rand::random();
    let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
        .arg(key)
        .arg(fresh)
        .arg("NX")
        .query_async(redis)
        .await;
    match set {
        Ok(Some(_)) => Some(fresh),
        Ok(None) => redis.get::<_, Option<u64>>(key).await.ok().flatten(),
        Err(_) => None,
    }
}

/// Replaces generations after a committed change (one pipelined round trip); faults are logged
/// (entries then live until their TTL).
pub(crate) async fn bump(store: &Store, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.set(key, rand::random::<u64>()).ignore();
    }
    if let Err(error) = pipe.query_async::<()>(&mut store.redis()).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::error!(%error, "cache invalidation failed; entries live until their TTL");
    }
}
