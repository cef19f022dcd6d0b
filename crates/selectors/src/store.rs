//! The shared storage handles: the PostgreSQL pool, the Redis connection and keyspace, and the
//! embedded migrations. Services (writes) and selectors (reads) both take a [`Store`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool::Runtime;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::redis_link::{RedisHealth, RedisLink};
use crate::{ChatId, Error, MessageWriter, Result, UserId};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A pooled PostgreSQL connection.
pub type DbConn = Object<AsyncPgConnection>;

/// How to reach PostgreSQL and Redis.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `postgres://user@host:port/db`.
    pub database_url: String,
    /// `redis://host:port[/db]`.
    pub redis_url: String,
    /// Prepended to every Redis key and channel, so several deployments (or tests) share one Redis.
    pub redis_prefix: String,
    /// Most PostgreSQL connections this process opens.
    pub db_pool_size: usize,
    /// How long a request waits for a free connection before failing, in ms.
    pub db_wait_timeout_ms: u64,
    /// Messages one user may send per minute, across instances (0: no limit).
    pub send_per_min: u32,
}

/// Handles to PostgreSQL and Redis; cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Store {
    /// PostgreSQL connection pool.
    pub db: Pool<AsyncPgConnection>,
    /// Shared multiplexed Redis connection for commands and publishing (reconnects by itself),
    /// behind the circuit breaker of [`crate::redis_link`].
    pub redis: RedisLink,
    /// The Redis client, for opening the process's dedicated pub/sub connection.
    pub redis_client: redis::Client,
    /// The Redis keyspace of this deployment.
    pub keys: Keys,
    /// Messages one user may send per minute (0: no limit).
    pub send_per_min: u32,
    /// The message writer (group commit), once `chat_services::start_writer` has filled it;
    /// shared by every clone. Empty (sends write directly, one statement each) in processes
    /// that never start one, such as the CLI commands.
    pub writer: Arc<OnceLock<MessageWriter>>,
}

impl Store {
    /// Builds the pool and connects to Redis. The pool opens connections lazily; Redis is
    /// connected at once; no message writer is started. Errors: `Pool` for a malformed database
    /// URL, `Cache` when Redis is unreachable.
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        // `Fast` recycling: a connection handed out again is not probed with a test query (the
        // probe doubled the round trips of every checkout: -20 % throughput, history p99 over
        // 5 ms, 2.7 % failed handshakes in a reconnect storm; BENCHMARKS.md). A dead peer is
        // noticed by TCP instead, within about 30 s (see `with_tcp_timeouts`), not after the
        // kernel's default of minutes; the broken connection is then dropped.
        let mut manager_config = ManagerConfig::default();
        manager_config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            with_tcp_timeouts(&config.database_url),
            manager_config,
        );
        let wait = Duration::from_millis(config.db_wait_timeout_ms);
        let db = Pool::builder(manager)
            .max_size(config.db_pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .recycle_timeout(Some(wait))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        let redis_client = redis::Client::open(config.redis_url.as_str())?;
        let manager = redis::aio::ConnectionManager::new_with_config(
            redis_client.clone(),
            crate::redis_link::manager_config(),
        )
        .await?;
        let keys = Keys::new(&config.redis_prefix);
        let health = Arc::new(RedisHealth::new(
            tokio::runtime::Handle::current(),
            keys.control_channel(),
        ));
        Ok(Self {
            db,
            redis: RedisLink::new(manager, health),
            redis_client,
            keys,
            send_per_min: config.send_per_min,
            writer: Arc::new(OnceLock::new()),
        })
    }

    /// A connection from the pool. Errors: `Pool` after the wait timeout.
    pub async fn conn(&self) -> Result<DbConn> {
        Ok(self.db.get().await?)
    }

    /// Whether PostgreSQL answers (`SELECT 1` on a pooled connection). Errors: the cause.
    pub async fn check_database(&self) -> Result<()> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }

    /// Whether Redis answers (`PING`). Errors: the cause.
    pub async fn check_redis(&self) -> Result<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.redis()).await?;
        Ok(())
    }

    /// A clone of the shared Redis connection (cheap: it is multiplexed).
    pub fn redis(&self) -> RedisLink {
        self.redis.clone()
    }

    /// Whether Redis answers, as this process last saw it.
    pub fn redis_health(&self) -> &Arc<RedisHealth> {
        self.redis.health()
    }
}

/// TCP settings for pooled connections, so a half-open connection (failover, a dropped idle
/// connection) fails within about 30 s: `tcp_user_timeout=30` (unacknowledged writes, s) and
/// keepalives after 30 s idle, every 10 s, 3 probes (tokio-postgres connection parameters, as
/// libpq's). Added only when `url` sets none of them itself; works for URIs and key=value strings.
pub fn with_tcp_timeouts(url: &str) -> String {
    if url.contains("tcp_user_timeout") || url.contains("keepalives") {
        return url.to_owned();
    }
    let params = [
        ("tcp_user_timeout", "30"),
        ("keepalives_idle", "30"),
        ("keepalives_interval", "10"),
        ("keepalives_retries", "3"),
    ];
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut out = url.to_owned();
        for (i, (k, v)) in params.iter().enumerate() {
            let sep = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            out.push_str(&format!("{sep}{k}={v}"));
        }
        out
    } else {
        let extra: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{url} {}", extra.join(" "))
    }
}

/// The migration that makes `users.username_key` required and unique. Before it runs, the
/// server computes the key of every existing account (in Rust: it is RFC 8265 plus Unicode case
/// folding, which SQL cannot compute).
const USERNAME_KEYS_MIGRATION: &str = "20261202000001";

/// Applies every pending migration to the database at `database_url`, on a blocking thread.
/// Returns the versions applied (empty when up to date). Errors: `Internal` with the cause; when
/// two existing accounts have the same canonical username, `Internal` naming both, and the
/// migrations stop before the one that would make names unique (nothing is merged or lost).
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>> {
    run_migrations_until(database_url, None).await
}

/// [`run_migrations`], stopping after the migration `last` (a version such as
/// `20261121000000`) when given: upgrade tests start from an older schema this way.
pub async fn run_migrations_until(database_url: &str, last: Option<&str>) -> Result<Vec<String>> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let url = database_url.to_owned();
    let last = last.map(str::to_owned);
    tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| Error::Internal(format!("connect for migrations: {e}")))?;
        let mut applied = Vec::new();
        loop {
            let pending = conn
                .pending_migrations(MIGRATIONS)
                .map_err(|e| Error::Internal(format!("migrations: {e}")))?;
            let Some(next) = pending.into_iter().next() else {
                break;
            };
            let version = next.name().version().to_string();
            if last.as_deref().is_some_and(|last| version.as_str() > last) {
                break;
            }
            if version == USERNAME_KEYS_MIGRATION {
                backfill_username_keys(&mut conn)?;
            }
            conn.run_migration(&*next)
                .map_err(|e| Error::Internal(format!("migration {version}: {e}")))?;
            applied.push(version);
        }
        Ok(applied)
    })
    .await
    .map_err(|e| Error::Internal(format!("migration task: {e}")))?
}

#[derive(diesel::QueryableByName)]
struct LegacyUser {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    sandbox: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_skeleton: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_skeleton_upper: Option<String>,
}

/// Fills `username_key` and the skeletons of every account that has none, in one statement,
/// checked against every account (those keyed by an earlier, interrupted run too).
/// Errors (nothing written): two accounts of one namespace with the same key, named with ids.
/// Two names that merely look alike are both kept: the older account (lower id) keeps the
/// skeleton, the later one gets none (a warning names them), so the unique skeleton indexes can
/// be built; reserved lookalikes are named in a warning too.
fn backfill_username_keys<C>(conn: &mut C) -> Result<()>
where
    C: diesel::connection::LoadConnection<Backend = diesel::pg::Pg>,
{
    use diesel::RunQueryDsl;
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    use std::collections::{BTreeMap, HashMap};

    let users: Vec<LegacyUser> = diesel::sql_query(
        "SELECT id, username, sandbox, username_key, username_skeleton, username_skeleton_upper
         FROM users ORDER BY id",
    )
    .load(conn)
    .map_err(|e| Error::Internal(format!("reading usernames: {e}")))?;
    if users.iter().all(|u| u.username_key.is_some()) {
        return Ok(());
    }
    let key_of = |u: &LegacyUser| {
        u.username_key
            .clone()
            .unwrap_or_else(|| chat_domain::Username::key_of(&u.username))
    };
    let mut by_key: BTreeMap<(bool, String), Vec<&LegacyUser>> = BTreeMap::new();
    for user in &users {
        by_key
            .entry((user.sandbox, key_of(user)))
            .or_default()
            .push(user);
    }
    let collisions: Vec<String> = by_key
        .iter()
        .filter(|(_, same)| same.len() > 1)
        .map(|((_, key), same)| {
            let names: Vec<String> = same
                .iter()
                .map(|u| format!("id {} {:?}", u.id, u.username))
                .collect();
            format!("{} are all {key:?}", names.join(", "))
        })
        .collect();
    if !collisions.is_empty() {
        return Err(Error::Internal(format!(
            "cannot make usernames unique: accounts share a canonical name ({}). Rename all but \
             one of each (UPDATE users SET username = '<new name>' WHERE id = <id>) and start again; \
             no account was changed",
            collisions.join("; ")
        )));
    }
    // Skeletons are handed out oldest account first; those of keyed accounts are taken already.
    let mut taken: [HashMap<(bool, String), i64>; 2] = Default::default();
    for user in users.iter().filter(|u| u.username_key.is_some()) {
        let held = [&user.username_skeleton, &user.username_skeleton_upper];
        for (i, skeleton) in held.into_iter().enumerate() {
            if let Some(skeleton) = skeleton {
                taken[i].insert((user.sandbox, skeleton.clone()), user.id);
            }
        }
    }
    let (mut ids, mut keys, mut skeletons, mut uppers) = (vec![], vec![], vec![], vec![]);
    for user in users.iter().filter(|u| u.username_key.is_none()) {
        let key = key_of(user);
        let found = chat_domain::Username::skeletons_of(&key);
        if chat_domain::Username::is_reserved(&found) {
            tracing::warn!(user.id = user.id, username = %user.username, "an existing username looks like a reserved one");
        }
        let mut kept: [Option<String>; 2] = [None, None];
        for (i, skeleton) in found.into_iter().enumerate() {
            match taken[i].get(&(user.sandbox, skeleton.clone())) {
                Some(first) => tracing::warn!(
                    user.id = user.id, username = %user.username, looks_like = first,
                    "an existing username looks like an older one; both are kept"
                ),
                None => {
                    taken[i].insert((user.sandbox, skeleton.clone()), user.id);
                    kept[i] = Some(skeleton);
                }
            }
        }
        let [skeleton, upper] = kept;
        ids.push(user.id);
        keys.push(key);
        skeletons.push(skeleton);
        uppers.push(upper);
    }
    diesel::sql_query(
        "UPDATE users u SET username_key = v.k, username_skeleton = v.s, username_skeleton_upper = v.su
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS v(id, k, s, su)
         WHERE u.id = v.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(keys)
    .bind::<Array<Nullable<Text>>, _>(skeletons)
    .bind::<Array<Nullable<Text>>, _>(uppers)
    .execute(conn)
    .map_err(|e| Error::Internal(format!("writing username keys: {e}")))?;
    Ok(())
}

/// Every Redis key and channel name this deployment uses, under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    /// Keys under `prefix` (for example `chat:`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel carrying every chat event between instances.
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The membership generation of a chat: a random value replaced after every committed
    /// membership change, so cached entries of other generations are ignored.
    pub fn chat_members_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v1:{chat}:members:gen", self.prefix)
    }

    /// One user's cached membership in a chat: `"<generation>:<role or ->"`.
    pub fn chat_member(&self, chat: ChatId, user: UserId) -> String {
        format!("{}chat:v1:{chat}:member:{user}", self.prefix)
    }

    /// A user's live connections (presence): a sorted set of connection tokens scored by their
    /// expiry time (unix ms). The user is online while any score lies in the future.
    pub fn presence(&self, user: UserId) -> String {
        format!("{}presence:v1:{user}", self.prefix)
    }

    /// The generation of a chat's summary in chat lists (last message, last_seq): replaced after
    /// every committed message, edit or delete in the chat.
    pub fn chat_summary_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v1:{chat}:summary:gen", self.prefix)
    }

    /// The generation of a user's own part of their chat list (which chats, read markers):
    /// replaced after the user joins, leaves, reads, or a chat of theirs is created or deleted.
    pub fn chat_list_gen(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:chats:gen", self.prefix)
    }

    /// A user's cached chat list (JSON, stamped with the generations it was computed under).
    pub fn chat_list(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:chats", self.prefix)
    }

    /// A rate-limit counter of `subject` (e.g. `send:42`, `auth:10.0.0.1`) in the minute `window`.
    pub fn rate(&self, subject: &str, window: u64) -> String {
        format!("{}rate:v1:{subject}:{window}", self.prefix)
    }

    /// A cached user profile (JSON of `UserView`; v2 since it carries `sandbox`, so no profile
    /// cached by an older release is read as a main-namespace user).
    pub fn user(&self, user: UserId) -> String {
        format!("{}user:v2:{user}", self.prefix)
    }

    /// A user's cached token cut-off: unix seconds before which their tokens are dead, `-1`
    /// when no token is valid (disabled or gone). See `crate::tokens_not_before`.
    pub fn tokens_not_before(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:nbf", self.prefix)
    }

    /// The live instances (presence): a sorted set of instance ids scored by the expiry (unix
    /// ms) of their last heartbeat. An instance past it has died without saying so.
    pub fn presence_instances(&self) -> String {
        format!("{}presence:v1:instances", self.prefix)
    }

    /// The users that have (or had) a presence entry made by `instance`: whom to check when it
    /// dies.
    pub fn presence_instance_users(&self, instance: &str) -> String {
        format!("{}presence:v1:instance:{instance}:users", self.prefix)
    }

    /// The pub/sub channel carrying events about users rather than chats (sessions revoked).
    pub fn control_channel(&self) -> String {
        format!("{}control", self.prefix)
    }

    /// Present for 2 s after `user`'s last published typing event in `chat` (the throttle).
    pub fn typing(&self, chat: ChatId, user: UserId) -> String {
        format!("{}typing:v1:{chat}:{user}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::with_tcp_timeouts;

    #[test]
    fn tcp_timeouts_are_added_unless_the_url_sets_its_own() {
        assert_eq!(
            with_tcp_timeouts("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db?tcp_user_timeout=30&keepalives_idle=30&keepalives_interval=10&keepalives_retries=3"
        );
        assert!(
            with_tcp_timeouts("postgres://u@h/db?sslmode=disable")
                .starts_with("postgres://u@h/db?sslmode=disable&tcp_user_timeout=30&")
        );
        assert_eq!(
            with_tcp_timeouts("postgres://u@h/db?keepalives_idle=5"),
            "postgres://u@h/db?keepalives_idle=5"
        );
        assert!(
            with_tcp_timeouts("host=h user=u").starts_with("host=h user=u tcp_user_timeout=30 ")
        );
    }
}
