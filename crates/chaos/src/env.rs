//! The deployment a chaos run owns, so it may kill any part of it: a private PostgreSQL cluster
//! (`initdb` in the run's directory, its own port), a private `redis-server` on its own port, and
//! two `chat-server` instances on one database and one Redis. Nothing here touches the machine's
//! shared PostgreSQL or Redis.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (bound, read, released: another process could take it in
/// between, which start-up then reports).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Whether this process runs as root (then PostgreSQL runs as the `postgres` user: `initdb`
/// refuses root).
async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

async fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A private PostgreSQL cluster: data directory, socket directory and log under the run's
/// directory, listening on 127.0.0.1:`port` with trust auth for user `postgres`.
pub struct Pg {
    bin: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    /// Its TCP port.
    pub port: u16,
    as_postgres: bool,
}

impl Pg {
    /// `initdb` in `root/pg` (as the `postgres` user when run as root). `bin` holds `initdb`,
    /// `pg_ctl` and `psql` (`/usr/lib/postgresql/15/bin` on Debian).
    pub async fn init(bin: &Path, root: &Path, port: u16) -> Result<Self> {
        if !bin.join("initdb").exists() {
            bail!(
                "no initdb in {}: install PostgreSQL (apt-get install postgresql) or pass --pg-bin",
                bin.display()
            );
        }
        let dir = root.join("pg");
        let as_postgres = is_root().await;
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            run(
                Command::new("chown").arg("-R").arg("postgres:").arg(root),
                "chown",
            )
            .await?;
        }
        let pg = Self {
            bin: bin.to_owned(),
            log: root.join("postgres.log"),
            dir,
            port,
            as_postgres,
        };
        let initdb = pg.bin.join("initdb");
        let mut cmd = pg.command(&initdb);
        cmd.args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&pg.dir);
        run(&mut cmd, "initdb").await?;
        Ok(pg)
    }

    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// The connection URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server and waits until it accepts connections. `fsync=off`: the run kills
    /// PostgreSQL's processes, never the machine, so what was written stays in the page cache.
    pub async fn start(&self) -> Result<()> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = self.command(&pg_ctl);
        cmd.args(["-w", "-t", "60", "-D"])
            .arg(&self.dir)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &opts, "start"]);
        run(&mut cmd, "pg_ctl start").await.map(drop)
    }

    /// `pg_ctl stop -m immediate` (every backend killed at once, no checkpoint: as a crash) or
    /// `-m fast` (the clean stop at the end of a run).
    pub async fn stop(&self, immediate: bool) -> Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = self.command(&pg_ctl);
        cmd.args(["-w", "-D"]).arg(&self.dir).args([
            "-m",
            if immediate { "immediate" } else { "fast" },
            "stop",
        ]);
        run(&mut cmd, "pg_ctl stop").await.map(drop)
    }

    /// Runs `sql` with psql in database `db`; rows as lines, columns separated by tabs.
    pub async fn query(&self, db: &str, sql: &str) -> Result<String> {
        let psql = self.bin.join("psql");
        let program = if psql.exists() {
            psql
        } else {
            PathBuf::from("psql")
        };
        run(
            Command::new(program).arg(self.url(db)).args([
                "-v",
                "ON_ERROR_STOP=1",
                "-qtA",
                "-F",
                "\t",
                "-c",
                sql,
            ]),
            "psql",
        )
        .await
    }
}

/// A private `redis-server` (nothing kept on disk) on 127.0.0.1:`port`.
pub struct Redis {
    /// Its TCP port.
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// A server that is not started yet; its log goes to `root/redis.log`.
    pub fn new(root: &Path, port: u16) -> Self {
        Self {
            port,
            log: root.join("redis.log"),
            child: None,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits until it answers `PING` (at most 10 s).
    pub async fn start(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile"])
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server (apt-get install redis-server)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }

    async fn ping(&self) -> bool {
        let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        tcp.write_all(b"PING\r\n").await.is_ok()
            && tcp.read_exact(&mut buf).await.is_ok()
            && &buf == b"+PONG\r\n"
    }

    /// SIGKILL, and waits for the process to end.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// One `chat-server serve` process; its output is appended to `root/<name>.log` across
/// restarts.
pub struct Instance {
    /// "A" or "B".
    pub name: &'static str,
    /// Its listener's port.
    pub port: u16,
    bin: PathBuf,
    env: Vec<(String, String)>,
    /// Where its output goes.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    /// An instance not started yet, with these environment variables.
    pub fn new(
        name: &'static str,
        bin: &Path,
        root: &Path,
        port: u16,
        env: Vec<(String, String)>,
    ) -> Self {
        Self {
            name,
            port,
            bin: bin.to_owned(),
            env,
            log: root.join(format!("instance-{name}.log")),
            child: None,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it and waits until `/readyz` answers 200 (ready or degraded), at most 60 s.
    pub async fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .env("CHAT_LISTEN", format!("127.0.0.1:{}", self.port))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        self.child = Some(child);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(resp) = http.get(format!("{}/readyz", self.base())).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("instance {} exited at start: {status}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("instance {} was not ready within 60 s", self.name)
    }

    /// SIGKILL (a crash: no close frames, no clean-up), and waits for the process to end.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM (a graceful stop: sockets get 1012) and waits for the exit, at most 30 s
    /// (then SIGKILL). Answers how long the exit took.
    pub async fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        started.elapsed()
    }
}
