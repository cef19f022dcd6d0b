//! Presence writes.
//!
//! Each live gateway socket holds an entry (`<instance>.<random>`) in its user's presence set,
//! scored with an expiry time and refreshed on every heartbeat, so a crashed instance's entries
//! expire by themselves (no ghosts beyond `ttl_ms`).
//!
//! What the others were last told is kept too (`Keys::presence_said`): a user's first entry
//! publishes `presence {online: true}` to each of their chats unless they were told so already,
//! and removing the last one publishes `online: false` only if no entry came back within the
//! grace period (`CHAT_PRESENCE_GRACE_MS`): a reload, a network switch or a reconnect storm
//! shows nobody as gone and back, and costs no presence fan-out.
//!
//! An instance that dies without closing its sockets (kill -9, a lost host) says nothing, so
//! every instance also keeps a heartbeat in the instance set ([`register_instance`], every
//! [`INSTANCE_BEAT`], valid [`INSTANCE_TTL`]) and sweeps it ([`sweep_dead_instances`]): one
//! survivor claims each dead instance, removes its entries, and publishes `online: false` for
//! every user it leaves with no socket anywhere — within `INSTANCE_TTL` + `INSTANCE_BEAT` of the
//! death.

use std::time::Duration;

use crate::Store;
use chat_domain::{ChatId, UserId};
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

/// How long the others' record of what they were told about a user lives (s): longer than any
/// grace period; a user online for longer is simply told online again after a reconnect.
const SAID_TTL_SECS: u64 = 24 * 3600;

/// Registers a live connection `token` (see [`new_token`]) of `user` for `ttl_ms`.
///
/// Publishes `online` to `chats` (the user's chats, as the caller knows them) unless the others
/// were told so already (a socket of the user is open, or closed less than the grace period
/// ago).
pub async fn connect(
    store: &Store,
    user: UserId,
    token: &str,
    ttl_ms: i64,
    chats: &[ChatId],
) -> Result<()> {
    let key = store.keys.presence(user);
    let now = now_ms();
    // Note the user under our instance first (checked when it dies), then atomically on the
    // user's keys (one cluster slot): drop expired entries, add ours, say "online".
    note_under_instance(store, user, token).await?;
    let (said,): (Option<String>,) = redis::pipe()
        .atomic()
        .zrembyscore(&key, "-inf", now)
        .ignore()
        .zadd(&key, token, now + ttl_ms)
        .ignore()
        .pexpire(&key, ttl_ms)
        .ignore()
        .cmd("SET")
        .arg(store.keys.presence_said(user))
        .arg(ONLINE)
        .arg("EX")
        .arg(SAID_TTL_SECS)
        .arg("GET")
        .query_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    if said.as_deref() != Some(ONLINE) {
        announce(store, user, true, Some(chats)).await?;
    }
    Ok(())
}

/// What `presence_said` holds once the others were told a user is online.
const ONLINE: &str = "online";

/// Extends a live connection's entry by `ttl_ms` (every heartbeat); after a Redis restart it
/// puts the entry (and the user under its instance) back.
pub async fn refresh(store: &Store, user: UserId, token: &str, ttl_ms: i64) -> Result<()> {
    let key = store.keys.presence(user);
    let said = store.keys.presence_said(user);
    let _: () = redis::pipe()
        .zadd(&key, token, now_ms() + ttl_ms)
        .ignore()
        .pexpire(&key, ttl_ms)
        .ignore()
        // What the others were told lives as long as the socket (and says "online" again after
        // a Redis restart lost it: they were told so when the socket opened).
        .cmd("SET")
        .arg(&said)
        .arg(ONLINE)
        .arg("EX")
        .arg(SAID_TTL_SECS)
        .arg("NX")
        .ignore()
        .expire(&said, SAID_TTL_SECS as i64)
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

/// Removes a connection; after the user's last live one, `offline` follows the grace period.
///
/// `offline` is published to `chats` (the user's chats as the caller knows them) after `grace`,
/// unless an entry came back meanwhile (checked then, atomically with the record of what was
/// said; the check runs in the background, the call returns at once).
pub async fn disconnect(
    store: &Store,
    user: UserId,
    token: &str,
    grace: Duration,
    chats: Vec<ChatId>,
) -> Result<()> {
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
    let instance = instance_of(token).to_owned();
    if left.iter().any(|t| instance_of(t) == instance) {
        // Another socket of the user on this instance: its close decides.
        return Ok(());
    }
    // The user stays under this instance until the check below has run: if the instance dies
    // first, whoever sweeps it says "offline" instead.
    {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Err(e) = gone_offline(&store, user, Some(&chats), Some(&instance)).await {
                tracing::warn!(error = %e, user.id = %user, "offline not announced; the presence entry expires by itself");
            }
        });
    }
    Ok(())
}

/// The check of [`gone_offline`], hashed once (EVALSHA; the script is loaded on first use).
static GONE_OFFLINE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
          local ours = 0
          if ARGV[3] ~= '' then
            for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
              if string.sub(token, 1, string.len(ARGV[3])) == ARGV[3] then ours = 1 end
            end
          end
          if redis.call('ZCARD', KEYS[1]) > 0 then return {'busy', ours} end
          local said = redis.call('SET', KEYS[2], 'offline', 'EX', ARGV[2], 'GET')
          if said == 'offline' then return {'quiet', ours} end
          return {'gone', ours}",
    )
});

/// If `user` has no live entry, records that the others are told "offline" and tells them.
///
/// Unless they were told so already; in `chats` (read from PostgreSQL when `None`). With
/// `instance`, the user leaves that instance's list once no entry of it is left. Returns
/// whether it announced.
async fn gone_offline(
    store: &Store,
    user: UserId,
    chats: Option<&[ChatId]>,
    instance: Option<&str>,
) -> Result<bool> {
    // Atomic on the user's two keys (one slot): no entry came back between the check and the
    // record of what was said. A record Redis lost counts as "online" (it was said when the
    // socket opened).
    let prefix = instance.map(|i| format!("{i}.")).unwrap_or_default();
    let (outcome, ours): (String, i64) = GONE_OFFLINE
        .key(store.keys.presence(user))
        .key(store.keys.presence_said(user))
        .arg(now_ms())
        .arg(SAID_TTL_SECS)
        .arg(&prefix)
        .invoke_async(&mut store.redis())
        .await
        .map_err(redis_error)?;
    if let Some(instance) = instance
        && ours == 0
    {
        // No socket of this user on this instance any more: nothing to sweep if it dies.
        let _: () = redis::cmd("SREM")
            .arg(store.keys.presence_instance_users(instance))
            .arg(user.0)
            .query_async(&mut store.redis())
            .await
            .map_err(redis_error)?;
    }
    if outcome != "gone" {
        return Ok(false);
    }
    announce(store, user, false, chats).await?;
    Ok(true)
}

/// Publishes `online` to each chat of `user` (`chats`, or read from PostgreSQL when `None`),
/// if it is still true: a connect and a disconnect racing (a page reload) may both decide to
/// speak, and the last word must match the state.
async fn announce(
    store: &Store,
    user: UserId,
    online: bool,
    chats: Option<&[ChatId]>,
) -> Result<()> {
    let still = chat_selectors::presence::is_online(store, user).await?;
    if still != online {
        return Ok(());
    }
    let read;
    let chats = match chats {
        Some(chats) => chats,
        None => {
            read = user_chats(store, user)
                .await?
                .into_iter()
                .map(|(chat, _)| chat)
                .collect::<Vec<_>>();
            &read
        }
    };
    let events: Vec<ChatEvent> = chats
        .iter()
        .map(|chat| ChatEvent::Presence {
            chat_id: *chat,
            user_id: user,
            online,
        })
        .collect();
    crate::events::publish_all(&store.redis(), &store.keys, &events).await;
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

/// A gracefully stopping instance: its heartbeat is made to run out after `grace`.
///
/// The others sweep it then (or the next instance to start, if none is left): its users who did
/// not come back elsewhere within the grace period are said offline — the checks it would have
/// run itself die with it.
pub async fn forget_instance(store: &Store, instance: &str, grace: Duration) -> Result<()> {
    let expiry = now_ms() + grace.as_millis() as i64;
    let _: () = redis::cmd("ZADD")
        .arg(store.keys.presence_instances())
        .arg(expiry)
        .arg(instance)
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
            if left == 0 && gone_offline(store, user, None, None).await? {
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
