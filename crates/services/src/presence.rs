//! Presence writes.
//!
//! Each live gateway socket holds an entry (`<instance>.<random>`) in its user's presence set,
//! scored with an expiry time and refreshed on every heartbeat, so a crashed instance's entries
//! expire by themselves (no ghosts beyond `ttl_ms`).
//!
//! The first entry of a user publishes `presence {online: true}` to each of their chats; removing
//! the last one publishes `online: false`.
//!
//! An instance that dies without closing its sockets (kill -9, a lost host) says nothing, so
//! every instance also keeps a heartbeat in the instance set ([`register_instance`], every
//! [`INSTANCE_BEAT`], valid [`INSTANCE_TTL`]) and sweeps it ([`sweep_dead_instances`]): one
//! survivor claims each dead instance, removes its entries, and publishes `online: false` for
//! every user it leaves with no socket anywhere — within `INSTANCE_TTL` + `INSTANCE_BEAT` of the
//! death.

use crate::Store;
use chat_domain::UserId;
use chat_selectors::{ChatEvent, presence::now_ms, user_chats};

use crate::{Result, publish};

/// How long an instance's heartbeat lasts.
pub const INSTANCE_TTL: std::time::Duration = std::time::Duration::from_secs(15);
/// How often an instance renews its heartbeat and sweeps dead instances.
pub const INSTANCE_BEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// A presence token of a connection made by `instance`: `<instance>.<random hex>`.
pub fn new_token(instance: &str) -> String {
    format!("{instance}.{:016x}", rand::random::<u64>())
}

/// The instance a token was made by.
fn instance_of(token: &str) -> &str {
    token
        .split_once('.')
        .map_or(token, |(instance, _)| instance)
}

/// Registers a live connection `token` (see [`new_token`]) of `user` for `ttl_ms`; publishes
/// `online` when it is the user's first.
pub async fn connect(store: &Store, user: UserId, token: &str, ttl_ms: i64) -> Result<()> {
    let key = store.keys.presence(user);
    let now = now_ms();
    // Note the user under our instance first (checked when it dies), then atomically on the
    // user's key (one cluster slot): drop expired entries, count the live ones, add ours.
    note_under_instance(store, user, token).await?;
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

/// Extends a live connection's entry by `ttl_ms` (every heartbeat); after a Redis restart it
/// puts the entry (and the user under its instance) back.
pub async fn refresh(store: &Store, user: UserId, token: &str, ttl_ms: i64) -> Result<()> {
    let key = store.keys.presence(user);
    let _: () = redis::pipe()
        .zadd(&key, token, now_ms() + ttl_ms)
        .ignore()
        .pexpire(&key, ttl_ms)
        .ignore()
        .sadd(
            store.keys.presence_instance_users(instance_of(token)),
            user.0,
        )
        .ignore()
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    Ok(())
}

/// Adds `user` to the users of `token`'s instance (whom to sweep when it dies).
async fn note_under_instance(store: &Store, user: UserId, token: &str) -> Result<()> {
    let _: () = redis::cmd("SADD")
        .arg(store.keys.presence_instance_users(instance_of(token)))
        .arg(user.0)
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    Ok(())
}

/// Removes a connection; publishes `offline` when it was the user's last live one.
pub async fn disconnect(store: &Store, user: UserId, token: &str) -> Result<()> {
    let key = store.keys.presence(user);
    let (left,): (Vec<String>,) = redis::pipe()
        .atomic()
        .zrem(&key, token)
        .ignore()
        .zrembyscore(&key, "-inf", now_ms())
        .ignore()
        .zrange(&key, 0, -1)
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    let instance = instance_of(token);
    if !left.iter().any(|t| instance_of(t) == instance) {
        // No socket of this user on this instance any more: nothing to sweep if it dies.
        let _: () = redis::cmd("SREM")
            .arg(store.keys.presence_instance_users(instance))
            .arg(user.0)
            .query_async(&mut store.redis())
            .await
            .map_err(redis_error)?;
    }
    if left.is_empty() {
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
    crate::Error::Unavailable(format!("redis: {error}"))
}

/// Renews `instance`'s heartbeat for [`INSTANCE_TTL`].
pub async fn register_instance(store: &Store, instance: &str) -> Result<()> {
    let expiry = now_ms() + INSTANCE_TTL.as_millis() as i64;
    let _: () = redis::cmd("ZADD")
        .arg(store.keys.presence_instances())
        .arg(expiry)
        .arg(instance)
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    Ok(())
}

/// A gracefully stopping instance: out of the instance set (its sockets have said goodbye).
pub async fn forget_instance(store: &Store, instance: &str) -> Result<()> {
    let _: () = redis::pipe()
        .zrem(store.keys.presence_instances(), instance)
        .ignore()
        .del(store.keys.presence_instance_users(instance))
        .ignore()
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    Ok(())
}

/// Removes the presence entries of every instance whose heartbeat has expired, and publishes
/// `online: false` for each user left with no entry.
///
/// Several instances may sweep at once: each dead instance is claimed by exactly one (`ZREM`
/// answers 1 once). Returns how many users went offline.
pub async fn sweep_dead_instances(store: &Store) -> Result<usize> {
    let mut redis = store.redis();
    let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(store.keys.presence_instances())
        .arg("-inf")
        .arg(now_ms())
        .query_async(&mut redis)
        .await
        .map_err(redis_error)?;
    let mut offline = 0;
    for instance in dead {
        let claimed: i64 = redis::cmd("ZREM")
            .arg(store.keys.presence_instances())
            .arg(&instance)
            .query_async(&mut redis)
            .await
            .map_err(redis_error)?;
        if claimed == 0 {
            continue; // another instance sweeps this one
        }
        let users_key = store.keys.presence_instance_users(&instance);
        let users: Vec<i64> = redis::cmd("SMEMBERS")
            .arg(&users_key)
            .query_async(&mut redis)
            .await
            .map_err(redis_error)?;
        let prefix = format!("{instance}.");
        for user in users.into_iter().map(UserId) {
            let key = store.keys.presence(user);
            let tokens: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut redis)
                .await
                .map_err(redis_error)?;
            // The user is under this instance: it held a socket of theirs when it died (or died
            // while closing it, the entry gone but no `offline` said).
            let theirs: Vec<&String> = tokens.iter().filter(|t| t.starts_with(&prefix)).collect();
            let mut pipe = redis::pipe();
            pipe.atomic();
            if !theirs.is_empty() {
                pipe.zrem(&key, theirs).ignore();
            }
            let (left,): (i64,) = pipe
                .zrembyscore(&key, "-inf", now_ms())
                .ignore()
                .zcard(&key)
                .query_async(&mut redis)
                .await
                .map_err(redis_error)?;
            if left == 0 {
                announce(store, user, false).await?;
                offline += 1;
            }
        }
        let _: () = redis::cmd("DEL")
            .arg(&users_key)
            .query_async(&mut redis)
            .await
            .map_err(redis_error)?;
        tracing::info!(instance = %instance, users_offline = offline, "a dead instance's presence swept");
    }
    Ok(offline)
}

/// At most one typing event per user and chat is published in this many ms, on all instances
/// together (clients show an indicator for `expires_in_ms`, longer than this).
pub const TYPING_THROTTLE_MS: u64 = 2_000;

/// Publishes a typing indicator for `user` in `chat` (not stored; it lasts `expires_in_ms`), unless
/// one was published in the last [`TYPING_THROTTLE_MS`] (a Redis `SET NX PX` decides, across
/// instances).
///
/// Returns whether it was published. The caller checks membership. A Redis fault publishes nothing
/// (typing is best effort).
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
