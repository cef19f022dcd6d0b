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
        tracing::warn!(cache.key = key, %error, "cache write failed");
    }
}

/// Deletes keys after a committed write; faults are logged (the entries expire by themselves).
pub(crate) async fn delete(store: &Store, key: &str) {
    if let Err(error) = store.redis().del::<_, ()>(key).await {
        tracing::error!(cache.key = key, %error, "cache invalidation failed; entry lives until its TTL");
    }
}
