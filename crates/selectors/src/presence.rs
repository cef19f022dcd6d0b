//! Presence reads: who is online, across every instance. See `Keys::presence`.

use redis::AsyncCommands;

use crate::{Result, Store, UserId};

/// Current time in unix ms (the presence scores' clock).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Which of `users` have a live connection on any instance (an unexpired presence entry). One
/// pipelined round trip.
pub async fn online_users(store: &Store, users: &[UserId]) -> Result<Vec<UserId>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let mut pipe = redis::pipe();
    for user in users {
        pipe.zcount(store.keys.presence(*user), now, "+inf");
    }
    let counts: Vec<i64> = pipe.query_async(&mut store.redis()).await?;
    Ok(users
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(u, _)| *u)
        .collect())
}

/// Whether `user` is online.
pub async fn is_online(store: &Store, user: UserId) -> Result<bool> {
    let count: i64 = store
        .redis()
        .zcount(store.keys.presence(user), now_ms(), "+inf")
        .await?;
    Ok(count > 0)
}
