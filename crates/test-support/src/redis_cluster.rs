//! A Redis Cluster of a test's own: masters and replicas on free ports of 127.0.0.1, made with
//! `redis-cli --cluster create`, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// One node of a [`RedisCluster`].
struct Node {
    port: u16,
    child: Option<Child>,
}

/// A local Redis Cluster (`redis-server --cluster-enabled yes` per node).
///
/// For tests that need sharded pub/sub, slots and failovers. Nodes keep nothing on disk but
/// their cluster config, in a directory of their own removed on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each (`3, 1`: six nodes), creates the
    /// cluster and waits until every node reports `cluster_state:ok`. A failed master's replica
    /// takes over after the node timeout (1 s).
    pub async fn start(masters: usize, replicas: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("chat-cluster-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let count = masters * (1 + replicas);
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        let base = loop {
            let candidate = rand::rng().random_range(11_000..20_000u16);
            // A node uses its port and port + 10000 (the cluster bus), both below the kernel's
            // ephemeral ports (32768 and up), where outgoing connections could take them.
            let free = (0..count as u16).all(|i| {
                std::net::TcpListener::bind(("127.0.0.1", candidate + i)).is_ok()
                    && std::net::TcpListener::bind(("127.0.0.1", candidate + i + 10_000)).is_ok()
            });
            if free {
                break candidate;
            }
        };
        for i in 0..count as u16 {
            let port = base + i;
            cluster.nodes.push(Node {
                port,
                child: Some(cluster.spawn(port)),
            });
        }
        for node in &cluster.nodes {
            wait_for_ping(node.port).await;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let created = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("redis-cli is not installed");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_until_ok(Duration::from_secs(30)).await;
        cluster.wait_for_replicas(Duration::from_secs(30)).await;
        cluster
    }

    /// Waits until every replica has synced with its master (`master_link_status:up`): only
    /// then can it take over.
    async fn wait_for_replicas(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let mut synced = true;
            for node in &self.nodes {
                let info = node_command::<String>(node.port, redis::cmd("INFO").arg("replication"))
                    .await
                    .unwrap_or_default();
                if info.contains("role:slave") {
                    synced &= info.contains("master_link_status:up");
                }
            }
            if synced {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "the cluster's replicas did not sync within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn spawn(&self, port: u16) -> Child {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "1000"])
            // A replica takes over however long it was cut off, and replicas sync at once (not
            // after the default 5 s wait for more replicas).
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is not installed")
    }

    /// The nodes' addresses, `redis://127.0.0.1:<port>` each (what `REDIS_CLUSTER_URLS` takes).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The ports of the nodes that are masters now.
    pub async fn master_ports(&self) -> Vec<u16> {
        let mut masters = Vec::new();
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let role = node_command::<redis::Value>(node.port, &redis::cmd("ROLE")).await;
            if let Ok(redis::Value::Array(role)) = role
                && matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
            {
                masters.push(node.port);
            }
        }
        masters
    }

    /// The port of the master serving `channel`'s slot now.
    pub async fn master_of(&self, channel: &str) -> u16 {
        let slot: u16 = node_command(
            self.any_port(),
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(channel),
        )
        .await
        .expect("CLUSTER KEYSLOT");
        let shards: redis::Value =
            node_command(self.any_port(), redis::cmd("CLUSTER").arg("SLOTS"))
                .await
                .expect("CLUSTER SLOTS");
        let redis::Value::Array(ranges) = shards else {
            panic!("CLUSTER SLOTS: not an array")
        };
        for range in ranges {
            let redis::Value::Array(range) = range else {
                continue;
            };
            let (
                Some(redis::Value::Int(from)),
                Some(redis::Value::Int(to)),
                Some(redis::Value::Array(master)),
            ) = (range.first(), range.get(1), range.get(2))
            else {
                continue;
            };
            if (*from..=*to).contains(&i64::from(slot))
                && let Some(redis::Value::Int(port)) = master.get(1)
            {
                return *port as u16;
            }
        }
        panic!("no master serves slot {slot}")
    }

    fn any_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .map(|n| n.port)
            .expect("a live node")
    }

    /// Kills the node on `port` (SIGKILL: nothing is said to its clients).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every live node says `cluster_state:ok` and every slot has a live master
    /// (after a failover: the replica took over). Panics after `limit`.
    pub async fn wait_until_ok(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let mut ok = true;
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let info = node_command::<String>(node.port, redis::cmd("CLUSTER").arg("INFO"))
                    .await
                    .unwrap_or_default();
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "the Redis Cluster did not become ok within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One command to one node (not through the cluster routing).
async fn node_command<T: redis::FromRedisValue>(
    port: u16,
    cmd: &redis::Cmd,
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(1),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    tokio::time::timeout(Duration::from_secs(1), cmd.query_async(&mut conn))
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out")))?
}

async fn wait_for_ping(port: u16) {
    for _ in 0..100 {
        if node_command::<String>(port, &redis::cmd("PING"))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on {port}");
}
