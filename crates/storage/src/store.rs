//! The shared storage handles: the PostgreSQL pool and the Redis connection. Selectors (reads)
//! take a [`Store`]; services (writes) take theirs, which adds the message writer.

use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};

use crate::redis_link::{RedisHealth, RedisLink};
use crate::{Error, Keys, Result};

/// A pooled PostgreSQL connection.
pub type DbConn = Object<AsyncPgConnection>;

/// How to reach PostgreSQL and Redis.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `postgres://user@host:port/db`.
    pub database_url: String,
    /// `redis://host:port[/db]`: one Redis (unless `redis_cluster_urls` is set).
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each); empty: one Redis at
    /// `redis_url`. With a cluster, live events use sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`,
    /// Redis 7).
    pub redis_cluster_urls: Vec<String>,
    /// Shards of the event channels ([`crate::Keys::with_shards`]); the same on every instance.
    pub event_shards: u32,
    /// Prepended to every Redis key and channel, so several deployments (or tests) share one Redis.
    pub redis_prefix: String,
    /// Most PostgreSQL connections this process opens.
    pub db_pool_size: usize,
    /// How long a request waits for a free connection before failing, in ms.
    pub db_wait_timeout_ms: u64,
    /// Messages one user may send per minute, across instances (0: no limit).
    pub send_per_min: u32,
}

/// Where the process's pub/sub connection goes: one Redis, or the seed nodes of a cluster.
#[derive(Debug, Clone)]
pub enum RedisClient {
    /// One Redis.
    Single(redis::Client),
    /// A Redis Cluster's seed nodes (`redis://host:port`).
    Cluster(Vec<String>),
}

/// Handles to PostgreSQL and Redis; cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Store {
    /// PostgreSQL connection pool.
    pub db: Pool<AsyncPgConnection>,
    /// Shared multiplexed Redis connection for commands and publishing (reconnects by itself),
    /// behind the circuit breaker of [`crate::redis_link`].
    pub redis: RedisLink,
    /// How to open the process's dedicated pub/sub connection.
    pub redis_client: RedisClient,
    /// The Redis keyspace of this deployment.
    pub keys: Keys,
    /// Messages one user may send per minute (0: no limit).
    pub send_per_min: u32,
}

impl Store {
    /// Builds the pool and connects to Redis.
    ///
    /// The pool opens connections lazily; Redis is connected at once. Errors: `Pool` for a
    /// malformed database URL, `Cache` when Redis is unreachable.
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        // `Fast` recycling: a connection handed out again is not probed with a test query (the
        // probe doubled the round trips of every checkout: -20 % throughput, history p99 over
        // 5 ms, 2.7 % failed handshakes in a reconnect storm; BENCHMARKS.md). A dead peer is
        // noticed by TCP instead, within about 30 s (see `with_tcp_timeouts`), not after the
        // kernel's default of minutes; the broken connection is then dropped.
        let mut manager_config = ManagerConfig::default();
        manager_config.recycling_method = RecyclingMethod::Fast;
        // Each connection's driver (the task that reads PostgreSQL's answers) is spawned where
        // the connection is made. Made on this (the main) runtime, whichever task asks for one:
        // not on an HTTP worker, whose thread also serves thousands of sockets and would delay
        // every query on that connection while it is busy.
        let runtime = tokio::runtime::Handle::current();
        manager_config.custom_setup = Box::new(move |url| {
            let (runtime, url) = (runtime.clone(), url.to_owned());
            Box::pin(async move {
                use diesel_async::AsyncConnection;
                runtime
                    .spawn(async move { AsyncPgConnection::establish(&url).await })
                    .await
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
            })
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            with_generic_plans(&with_tcp_timeouts(&config.database_url)),
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
        let keys = Keys::with_shards(&config.redis_prefix, config.event_shards);
        let health = Arc::new(RedisHealth::new(
            tokio::runtime::Handle::current(),
            keys.control_channel(),
        ));
        let (redis, redis_client) = if config.redis_cluster_urls.is_empty() {
            let client = redis::Client::open(config.redis_url.as_str())?;
            let manager = redis::aio::ConnectionManager::new_with_config(
                client.clone(),
                crate::redis_link::manager_config(),
            )
            .await?;
            (RedisLink::new(manager, health), RedisClient::Single(client))
        } else {
            let nodes = &config.redis_cluster_urls;
            let client = crate::redis_link::cluster_builder(nodes).build()?;
            let conn = client.get_async_connection().await?;
            (
                RedisLink::cluster(conn, health),
                RedisClient::Cluster(nodes.clone()),
            )
        };
        Ok(Self {
            db,
            redis,
            redis_client,
            keys,
            send_per_min: config.send_per_min,
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
/// connection) fails within about 30 s.
///
/// `tcp_user_timeout=30` (unacknowledged writes, s) and keepalives after 30 s idle, every 10 s, 3
/// probes (tokio-postgres connection parameters, as libpq's).
///
/// Added only when `url` sets none of them itself; works for URIs and key=value strings.
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

/// `url` with `plan_cache_mode=force_generic_plan` for the pool's sessions, unless it sets
/// `options` itself.
///
/// Every query of the server is prepared once per connection (diesel's statement cache), and all
/// are index lookups whose plan does not depend on the values. Left to choose, PostgreSQL kept
/// planning a history page anew on every call (a custom plan: 0.28 ms of planning for 0.03 ms
/// of execution, measured with `pg_stat_statements` during a reconnect storm: 19,000 pages,
/// 5.3 s of planning), since its estimate for `seq > $2 … LIMIT $3` never favours the generic
/// plan.
pub fn with_generic_plans(url: &str) -> String {
    if url.contains("options=") {
        return url.to_owned();
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20plan_cache_mode%3Dforce_generic_plan")
    } else {
        format!("{url} options='-c plan_cache_mode=force_generic_plan'")
    }
}

#[cfg(test)]
mod tests {
    use super::{with_generic_plans, with_tcp_timeouts};

    #[test]
    fn generic_plans_are_asked_for_unless_the_url_sets_options() {
        assert_eq!(
            with_generic_plans("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&options=-c%20plan_cache_mode%3Dforce_generic_plan"
        );
        assert_eq!(
            with_generic_plans("postgres://u@h/db"),
            "postgres://u@h/db?options=-c%20plan_cache_mode%3Dforce_generic_plan"
        );
        assert_eq!(
            with_generic_plans("postgres://u@h/db?options=-c%20x%3D1"),
            "postgres://u@h/db?options=-c%20x%3D1"
        );
        assert!(
            with_generic_plans("host=h")
                .ends_with("options='-c plan_cache_mode=force_generic_plan'")
        );
    }

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
