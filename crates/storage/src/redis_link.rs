//! The shared Redis connection behind a circuit breaker, so that a Redis fault never stalls the
//! server: every Redis call of the process goes through [`RedisLink`], which
//!
//! - fails at once, without touching the network, while Redis is known to be down;
//! - marks Redis down on a connection fault or a timeout (the connection manager answers within
//!   [`RESPONSE_TIMEOUT`]), and then probes it every [`PROBE_EVERY`] until it answers again;
//! - on recovery tells the process (a [`watch`] counter, [`RedisHealth::recoveries`]) and, when
//!   events could not be published meanwhile ([`RedisHealth::note_missed`]), every instance
//!   (`ControlEvent::CatchUp` on the control channel): sockets then catch up from PostgreSQL.
//!
//! Callers treat a Redis error as they always did — caches fall back to PostgreSQL, rate limits
//! let the request through, presence and typing are skipped, publishing is logged — only now it
//! comes at once.
//!
//! The link is either one Redis (a connection manager) or a Redis Cluster (the redis crate's
//! cluster connection, which routes each command to the master of its slot and follows
//! failovers). On a cluster, a pipeline that is not a transaction is sent as its commands, each
//! to its own slot, concurrently (the crate would refuse a pipeline spanning slots); a
//! transaction must stay within one slot, which the keys' hash tags ensure ([`crate::Keys`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::watch;

use crate::ControlEvent;

/// How long a Redis command may take before Redis counts as down (a paused or overloaded server).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a new connection to Redis may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a down Redis is probed (`PING`).
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// The connection manager's settings.
///
/// One reconnect attempt per command, each bounded, so a command on a broken connection fails
/// within about a second instead of the manager's default six retries (~9.5 s).
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_pipeline_buffer_size(PIPELINE_BUFFER)
}

/// Requests queued to the shared connection before a caller waits for room.
///
/// The redis crate's default, 50, made a burst of thousands of requests (a reconnect storm's
/// presence writes) wait past [`RESPONSE_TIMEOUT`] for their turn to be written, and Redis
/// count as down.
pub const PIPELINE_BUFFER: usize = 8192;

/// A cluster client for `nodes` (seed addresses), bounded as [`manager_config`].
///
/// Each command is answered within [`RESPONSE_TIMEOUT`], with one retry, in RESP3 (which pushes
/// sharded pub/sub messages on the connection itself).
pub fn cluster_builder(nodes: &[String]) -> redis::cluster::ClusterClientBuilder {
    redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(1)
        .min_retry_wait(50)
        .max_retry_wait(200)
        .use_protocol(redis::ProtocolVersion::RESP3)
}

/// Whether Redis answers, as this process last saw it; shared by every clone of the store.
#[derive(Debug)]
pub struct RedisHealth {
    up: AtomicBool,
    cluster: AtomicBool,
    missed: AtomicBool,
    recoveries: watch::Sender<u64>,
    runtime: tokio::runtime::Handle,
    control_channel: String,
}

impl RedisHealth {
    /// Health of a Redis just connected to; probes run on `runtime`, catch-up events go to
    /// `control_channel`.
    pub fn new(runtime: tokio::runtime::Handle, control_channel: String) -> Self {
        Self {
            up: AtomicBool::new(true),
            cluster: AtomicBool::new(false),
            missed: AtomicBool::new(false),
            recoveries: watch::Sender::new(0),
            runtime,
            control_channel,
        }
    }

    /// The command that publishes an event: `SPUBLISH` on a cluster (sharded pub/sub, Redis 7:
    /// the message goes to its channel's shard only, not to every node), else `PUBLISH`.
    pub fn publish_command(&self) -> &'static str {
        if self.cluster.load(Ordering::Relaxed) {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Whether Redis is believed to answer.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Some event could not be published (Redis down or too slow): when Redis answers again,
    /// every instance is told to catch its sockets up.
    pub fn note_missed(&self) {
        self.missed.store(true, Ordering::Release);
    }

    /// Takes the "events were missed" mark (true once after [`Self::note_missed`]).
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, Ordering::AcqRel)
    }

    /// A counter that moves each time Redis answers again after being down.
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.recoveries.subscribe()
    }

    /// Marks Redis down (once per outage: logged, counted, and a probe started).
    fn down(self: &Arc<Self>, probe_with: &Connection, error: &RedisError) {
        if self.up.swap(false, Ordering::AcqRel) {
            metrics::counter!("chat_redis_outages_total").increment(1);
            tracing::warn!(%error, "Redis is unreachable: serving without it until it answers");
            self.runtime.spawn(probe(self.clone(), probe_with.clone()));
        }
    }
}

/// Pings a down Redis until it answers; then marks it up, moves the recovery counter, and sends
/// `ControlEvent::CatchUp` when events were missed.
async fn probe(health: Arc<RedisHealth>, mut conn: Connection) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let ping = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        if !matches!(ping, Ok(Ok(_))) {
            continue;
        }
        health.up.store(true, Ordering::Release);
        health.recoveries.send_modify(|n| *n += 1);
        tracing::info!("Redis answers again");
        if health.take_missed() {
            announce_catch_up(&health, &mut conn).await;
        }
        return;
    }
}

/// Tells every instance to catch its sockets up (events were lost). A failure leaves the mark
/// set, so the next successful publish tries again.
pub async fn announce_catch_up(health: &RedisHealth, conn: &mut impl ConnectionLike) {
    let Ok(payload) = serde_json::to_string(&ControlEvent::CatchUp) else {
        return;
    };
    let sent: RedisResult<()> = redis::cmd(health.publish_command())
        .arg(&health.control_channel)
        .arg(payload)
        .query_async(conn)
        .await;
    match sent {
        Ok(()) => tracing::info!("told every instance to catch up after lost events"),
        Err(error) => {
            health.note_missed();
            tracing::warn!(%error, "catch-up announcement failed; retried after the next publish");
        }
    }
}

/// A connection fault or a timeout: Redis is not answering (as opposed to an error reply).
fn is_fault(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

fn unavailable() -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "Redis is unavailable (not retried until it answers)",
    ))
}

/// One Redis or a cluster: the connection under the health check.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => {
                if pipeline.is_transaction() {
                    return conn.req_packed_commands(pipeline, offset, count);
                }
                // Each command to its own slot, concurrently (they share the nodes'
                // connections, so they still leave in few writes); answers in order.
                let conn = conn.clone();
                Box::pin(async move {
                    let sends = pipeline.cmd_iter().map(|cmd| {
                        let mut conn = conn.clone();
                        async move { conn.req_packed_command(cmd).await }
                    });
                    let answers = futures_util::future::try_join_all(sends).await?;
                    Ok(answers.into_iter().skip(offset).take(count).collect())
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The process's Redis connection (multiplexed, cheap to clone) behind the health check.
#[derive(Clone)]
pub struct RedisLink {
    inner: Connection,
    health: Arc<RedisHealth>,
}

impl RedisLink {
    /// Wraps a connection manager (one Redis).
    pub fn new(inner: ConnectionManager, health: Arc<RedisHealth>) -> Self {
        Self {
            inner: Connection::Single(inner),
            health,
        }
    }

    /// Wraps a cluster connection; events are then published with `SPUBLISH`.
    pub fn cluster(inner: ClusterConnection, health: Arc<RedisHealth>) -> Self {
        health.cluster.store(true, Ordering::Relaxed);
        Self {
            inner: Connection::Cluster(inner),
            health,
        }
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Connection::Cluster(_))
    }

    /// The health this link reports to.
    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    fn observe<T>(&self, result: &RedisResult<T>) {
        if let Err(error) = result
            && is_fault(error)
        {
            self.health.down(&self.inner, error);
        }
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            if !self.health.is_up() {
                return Err(unavailable());
            }
            let result = self.inner.req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if !self.health.is_up() {
                return Err(unavailable());
            }
            let result = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
