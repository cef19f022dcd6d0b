//! A Redis server of a test's own.

use std::time::Duration;

use rand::Rng;

/// A Redis server of a test's own, on a free port, so the test may kill and restart it without
/// touching the machine's shared one. Killed when dropped.
pub struct PrivateRedis {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let port = loop {
            let candidate = rand::rng().random_range(21_000..29_000);
            if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
                break candidate;
            }
        };
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: nothing is said to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk) and waits until it
    /// answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is not installed");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private redis-server did not start on {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
