//! The coordinator's side of the worker processes: spawn them with their share of the sockets,
//! send each a command and collect one answer per worker.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::wire::Protocol;
use crate::worker::{Command, Plan, SocketPlan};

/// Where and how the workers connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`.
    pub http: String,
    /// `ws://host:port`.
    pub ws: String,
    /// The server's TCP address.
    pub addr: SocketAddr,
    /// The protocol of the run.
    pub protocol: Protocol,
    /// Client source addresses.
    pub source_ips: Vec<IpAddr>,
}

impl Target {
    /// Resolves `url` (`http://host:port`). On a loopback server, client sockets are spread
    /// over `ips` source addresses 127.0.0.2, 127.0.0.3, …; otherwise the system picks.
    pub async fn resolve(url: &str, protocol: Protocol, ips: u8) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("bad --url {url}"))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow!("no host in {url}"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("{host} does not resolve"))?;
        let source_ips = if addr.ip().is_loopback() && addr.is_ipv4() {
            (0..ips.max(1))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                .collect()
        } else if addr.is_ipv4() {
            vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
        } else {
            vec![IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)]
        };
        let ws_scheme = if parsed.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        Ok(Self {
            http: format!("{}://{host}:{port}", parsed.scheme()),
            ws: format!("{ws_scheme}://{host}:{port}"),
            addr,
            protocol,
            source_ips,
        })
    }
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    senders: usize,
}

/// Running worker processes.
pub struct Fleet {
    procs: Vec<Proc>,
    _dir: PlanDir,
}

/// Removes the plan files when the fleet is gone.
struct PlanDir(std::path::PathBuf);

impl Drop for PlanDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Fleet {
    /// Spawns `workers` processes (this binary, `worker <plan>`), dealing `sockets` out
    /// round-robin. Errors: the binary cannot be started.
    pub fn spawn(target: &Target, sockets: Vec<SocketPlan>, workers: usize) -> Result<Self> {
        let workers = workers.clamp(1, sockets.len().max(1));
        let dir = std::env::temp_dir().join(format!(
            "chat-load-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let dir = PlanDir(dir);
        let mut shares: Vec<Vec<SocketPlan>> = vec![Vec::new(); workers];
        for (i, s) in sockets.into_iter().enumerate() {
            shares[i % workers].push(s);
        }
        let exe = std::env::current_exe()?;
        let run_id = rand::random::<u32>() as u64;
        let mut procs = Vec::new();
        for (i, share) in shares.into_iter().enumerate() {
            let senders = share.iter().filter(|s| s.sender).count();
            let plan = Plan {
                ws_base: target.ws.clone(),
                server: target.addr,
                protocol: target.protocol,
                source_ips: target.source_ips.clone(),
                connect_concurrency: 256,
                run_id,
                sockets: share,
            };
            let path = dir.0.join(format!("worker-{i}.json"));
            std::fs::write(&path, serde_json::to_vec(&plan)?)?;
            let mut child = tokio::process::Command::new(&exe)
                .arg("worker")
                .arg(&path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("start worker {}", exe.display()))?;
            let stdin = child.stdin.take().ok_or_else(|| anyhow!("worker stdin"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| anyhow!("worker stdout"))?;
            procs.push(Proc {
                child,
                stdin,
                stdout: BufReader::new(stdout).lines(),
                senders,
            });
        }
        Ok(Self { procs, _dir: dir })
    }

    /// Senders held by each worker, in worker order.
    pub fn senders(&self) -> Vec<usize> {
        self.procs.iter().map(|p| p.senders).collect()
    }

    /// Sends `cmd` to every worker and returns their answers in worker order.
    pub async fn all(&mut self, cmd: &Command) -> Result<Vec<Value>> {
        let cmds = vec![cmd.clone(); self.procs.len()];
        self.each(cmds).await
    }

    /// Sends `cmds[i]` to worker i (all at once) and returns their answers.
    /// Errors: a worker exited or answered with an error.
    pub async fn each(&mut self, cmds: Vec<Command>) -> Result<Vec<Value>> {
        for (p, cmd) in self.procs.iter_mut().zip(&cmds) {
            let mut line = serde_json::to_string(cmd)?;
            line.push('\n');
            p.stdin.write_all(line.as_bytes()).await?;
            p.stdin.flush().await?;
        }
        let answers =
            futures_util::future::join_all(self.procs.iter_mut().map(|p| p.stdout.next_line()))
                .await;
        let mut out = Vec::new();
        for (i, a) in answers.into_iter().enumerate() {
            let line = a?.ok_or_else(|| anyhow!("worker {i} exited"))?;
            let v: Value =
                serde_json::from_str(&line).with_context(|| format!("worker {i} said {line:?}"))?;
            if let Some(e) = v.get("error") {
                bail!("worker {i}: {e}");
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Tells every worker to quit and waits for them.
    pub async fn quit(mut self) -> Result<()> {
        let _ = self.all(&Command::Quit).await;
        for p in &mut self.procs {
            let _ = p.child.wait().await;
        }
        Ok(())
    }
}

/// Sum of a numeric field over worker answers.
pub fn sum(answers: &[Value], field: &str) -> f64 {
    answers.iter().filter_map(|a| a[field].as_f64()).sum()
}

/// Largest value of a numeric field over worker answers.
pub fn max(answers: &[Value], field: &str) -> f64 {
    answers
        .iter()
        .filter_map(|a| a[field].as_f64())
        .fold(0.0, f64::max)
}

/// The first non-null string field among the answers.
pub fn first_str(answers: &[Value], field: &str) -> Option<String> {
    answers
        .iter()
        .find_map(|a| a[field].as_str().map(str::to_owned))
}
