//! Presence writes. Each live gateway socket holds an entry (a random token) in its user's
//! presence set, scored with an expiry time and refreshed on every heartbeat; a crashed
//! instance's entries simply expire (no ghosts beyond `ttl_ms`). The first entry of a user
//! publishes `presence {online: true}` to each of their chats; removing the last one publishes
//! `online: false`. Left open: an entry that expires (its instance crashed) produces no
//! `offline` event — readers of `presence`/`online` see the truth, event followers learn it on
//! their next query.

use chat_domain::UserId;
use chat_selectors::{ChatEvent, Store, presence::now_ms, user_chats};

use crate::{Result, publish};

/// Registers a live connection `token` of `user` for `ttl_ms`; publishes `online` when it is
/// the user's first.
pub async fn connect(store: &Store, user: UserId, token: &str, ttl_ms: i64) -> Result<()> {
    let key = store.keys.presence(user);
    let now = now_ms();
    // Atomically: drop expired entries, count the live ones, add ours.
    let (before,): (i64,) = redis::pipe()
        .atomic()
        .zrembyscore(&key, "-inf", now)
        .ignore()
        .zcard(&key)
        .zadd(&key, token, now + ttl_ms)
        .ignore()
        .pexpire(&key, ttl_ms)
        .ignore()
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    if before == 0 {
        announce(store, user, true).await?;
    }
    Ok(())
}

/// Extends a live connection's entry by `ttl_ms` (every heartbeat).
pub async fn refresh(store: &Store, user: UserId, token: &str, ttl_ms: i64) -> Result<()> {
    let key = store.keys.presence(user);
    let _: () = redis::pipe()
        .atomic()
        .zadd(&key, token, now_ms() + ttl_ms)
        .ignore()
        .pexpire(&key, ttl_ms)
        .ignore()
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    Ok(())
}

/// Removes a connection; publishes `offline` when it was the user's last live one.
pub async fn disconnect(store: &Store, user: UserId, token: &str) -> Result<()> {
    let key = store.keys.presence(user);
    let (left,): (i64,) = redis::pipe()
        .atomic()
        .zrem(&key, token)
        .ignore()
        .zrembyscore(&key, "-inf", now_ms())
        .ignore()
        .zcard(&key)
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    if left == 0 {
        announce(store, user, false).await?;
    }
    Ok(())
}

async fn announce(store: &Store, user: UserId, online: bool) -> Result<()> {
    // A connect and a disconnect racing (a page reload) may both see "no other socket": announce
    // only what is still true, so the last word matches the state.
    let still = chat_selectors::presence::is_online(store, user).await?;
    if still != online {
        return Ok(());
    }
    for (chat, _) in user_chats(store, user).await? {
        publish(
            store,
            &ChatEvent::Presence {
                chat_id: chat,
                user_id: user,
                online,
            },
        )
        .await;
    }
    Ok(())
}

fn redis_error(error: redis::RedisError) -> crate::Error {
    crate::Error::Internal(format!("redis: {error}"))
}

/// At most one typing event per user and chat is published in this many ms, on all instances
/// together (clients show an indicator for `expires_in_ms`, longer than this).
pub const TYPING_THROTTLE_MS: u64 = 2_000;

/// Publishes a typing indicator for `user` in `chat` (not stored; it lasts `expires_in_ms`),
/// unless one was published in the last [`TYPING_THROTTLE_MS`] (a Redis `SET NX PX` decides,
/// across instances). Returns whether it was published. The caller checks membership. A Redis
/// fault publishes nothing (typing is best effort).
pub async fn typing(
    store: &Store,
    chat: chat_domain::ChatId,
    user: chat_selectors::UserBrief,
    expires_in_ms: u64,
) -> bool {
    let first: redis::RedisResult<Option<String>> = redis::cmd("SET")
        .arg(store.keys.typing(chat, user.id))
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(TYPING_THROTTLE_MS)
        .query_async(&mut store.redis())
        .await;
    match first {
        Ok(Some(_)) => {}
        Ok(None) => return false,
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "typing throttle unavailable; typing event dropped");
            return false;
        }
    }
    publish(
        store,
        &ChatEvent::Typing {
            chat_id: chat,
            user,
            expires_in_ms,
        },
    )
    .await;
    true
}
