//! `chat-chaos`: the fault-injection run (`make chaos`; `--short` in CI).
//!
//! It starts its own PostgreSQL (`initdb` on a free port) and Redis (a free port), two
//! `chat-server` instances on them, and users that chat through both the gateway and REST (see
//! `client`), then injects, round after round: kill -9 of the busier instance, then of the other
//! (which took its clients), Redis killed and restarted, PostgreSQL stopped with `-m immediate`
//! and restarted, SIGTERM of the busier instance, and a Redis outage (10 s by default).
//! Afterwards it checks against PostgreSQL and every client's stream:
//!
//! - every acknowledged message is stored, under the chat and seq it was acknowledged with;
//! - no two rows share an (author, `client_id`); each chat's seqs run `1..=last_seq` with no hole;
//! - every socket got every message of its chats, in order, exactly once;
//! - every send was acknowledged in the end, and no answer was a 5xx other than 503 (nor an
//!   `internal` error frame, nor a socket refused with 1008/1011);
//! - no instance log holds a panic.
//!
//! It reports, per fault, how long the affected clients waited until acknowledged again, and the
//! figures of issue 11's targets (send→ack during the Redis outage, new sockets' `ready`, how
//! soon every socket had every message after Redis returned, refusal latency while PostgreSQL
//! was down). Those are reported, never asserted. Exit code 1 when a check failed.
//!
//! This file holds the command line, the deployment's life and the run's course; `setup` makes
//! the users and chats, `inject` the faults, `client` the clients, `env` the processes
//! (PostgreSQL, Redis, the instances), and `report` the measurements, checks and report.

mod client;
mod env;
mod inject;
mod report;
mod setup;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use crate::client::{Kind, Shared, lock};
use crate::env::{Instance, Pg, Redis, free_port};
use crate::inject::{BUSIER, inject};
use crate::report::FaultKind;
use crate::setup::setup;

#[derive(Parser, Clone)]
#[command(
    name = "chat-chaos",
    about = "Fault-injection run against two chat-server instances"
)]
struct Args {
    /// The server binary.
    #[arg(long, default_value = "target/debug/chat-server")]
    server: PathBuf,
    /// Directory of `initdb`, `pg_ctl` and `psql`.
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pg_bin: PathBuf,
    /// The short form for CI: one round of faults.
    #[arg(long)]
    short: bool,
    /// Rounds of the fault schedule (default: 1 with --short, else 3).
    #[arg(long)]
    rounds: Option<u32>,
    /// Users (each has a gateway socket; every third sends over REST, the rest on the socket).
    #[arg(long, default_value_t = 24)]
    users: usize,
    /// Groups (each user is in two) and direct chats (between users 0-1, 2-3, ...).
    #[arg(long, default_value_t = 5)]
    groups: usize,
    /// Direct chats.
    #[arg(long, default_value_t = 4)]
    directs: usize,
    /// Mean pause between one user's acknowledged send and its next, ms.
    #[arg(long, default_value_t = 150)]
    interval_ms: u64,
    /// Length of the long Redis outage, s.
    #[arg(long, default_value_t = 10)]
    outage_secs: u64,
    /// How long PostgreSQL stays down, s.
    #[arg(long, default_value_t = 3)]
    pg_down_secs: u64,
    /// Steady running after each fault, s.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Where the run's data and logs go (default: a new directory under /tmp); kept when a check
    /// fails or with --keep.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the run's directory even when every check passed.
    #[arg(long)]
    keep: bool,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The deployment of one run.
struct Deployment {
    pg: Pg,
    redis: Redis,
    instances: [Instance; 2],
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("chaos: could not run: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("chat-chaos-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root)?;
    // PostgreSQL runs as its own user when we are root: it must reach the directory.
    let _ = std::process::Command::new("chmod")
        .arg("755")
        .arg(&root)
        .status();
    let server = std::fs::canonicalize(&args.server)
        .with_context(|| format!("no server binary at {}", args.server.display()))?;
    println!("chaos: run directory {}", root.display());
    let started = Instant::now();

    let pg = Pg::init(&args.pg_bin, &root, free_port()?).await?;
    pg.start().await?;
    let mut redis = Redis::new(&root, free_port()?);
    redis.start().await?;
    let env = vec![
        ("DATABASE_URL".to_owned(), pg.url("postgres")),
        ("REDIS_URL".to_owned(), redis.url()),
        ("CHAT_REDIS_PREFIX".to_owned(), "chaos:".to_owned()),
        (
            "CHAT_JWT_SECRET".to_owned(),
            format!("chaos-{}", rand::random::<u64>()),
        ),
        ("CHAT_BCRYPT_COST".to_owned(), "4".to_owned()),
        ("CHAT_ACCESS_TTL_SECS".to_owned(), "7200".to_owned()),
        ("CHAT_RATE_SEND_PER_MIN".to_owned(), "0".to_owned()),
        ("CHAT_RATE_AUTH_PER_MIN".to_owned(), "0".to_owned()),
        ("CHAT_WS_FRAMES_PER_SEC".to_owned(), "0".to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    let mut a = Instance::new("A", &server, &root, free_port()?, env.clone());
    let mut b = Instance::new("B", &server, &root, free_port()?, env);
    // A migrates the database before B starts.
    a.start().await?;
    b.start().await?;
    let mut dep = Deployment {
        pg,
        redis,
        instances: [a, b],
    };
    println!(
        "chaos: PostgreSQL :{}, Redis :{}, instances A :{} and B :{} up in {:.1} s",
        dep.pg.port,
        dep.redis.port,
        dep.instances[0].port,
        dep.instances[1].port,
        started.elapsed().as_secs_f64()
    );

    let outcome = exercise(&args, &mut dep).await;
    for inst in &mut dep.instances {
        inst.terminate().await;
    }
    dep.redis.kill().await;
    let _ = dep.pg.stop(false).await;
    let passed = match outcome {
        Ok(passed) => passed,
        Err(e) => {
            println!("chaos: the run broke off: {e:#}");
            false
        }
    };
    if passed && !args.keep && args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        println!("chaos: logs and data kept in {}", root.display());
    }
    println!("chaos: {:.0} s in all", started.elapsed().as_secs_f64());
    Ok(passed)
}

/// Users, chats, clients; the fault schedule; the checks. Answers whether every check passed.
async fn exercise(args: &Args, dep: &mut Deployment) -> Result<bool> {
    let bases = [dep.instances[0].base(), dep.instances[1].base()];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let users = setup(&http, &bases[0], args).await?;
    let sh = Arc::new(Shared {
        bases: bases.clone(),
        start: Instant::now(),
        run: rand::random::<u32>() % 1_000_000,
        interval_ms: args.interval_ms,
        stop_sending: true.into(),
        done: false.into(),
        stats: Mutex::default(),
        users,
        http: http.clone(),
    });
    let mut tasks = Vec::new();
    for user in &sh.users {
        tasks.push(tokio::spawn(client::run_socket(sh.clone(), user.clone())));
    }
    // Every socket open and caught up before the first send.
    wait_until(Duration::from_secs(30), || {
        sh.users.iter().all(|u| lock(&u.st).on.is_some())
    })
    .await
    .then_some(())
    .context("not every socket opened within 30 s")?;
    sh.stop_sending.store(false, Ordering::Relaxed);
    for user in sh.users.iter().filter(|u| u.kind == Kind::Rest) {
        tasks.push(tokio::spawn(client::run_rest(sh.clone(), user.clone())));
    }
    println!(
        "chaos: {} users ({} over REST) in {} chats, one send at a time each, ~{} ms apart",
        sh.users.len(),
        sh.users.iter().filter(|u| u.kind == Kind::Rest).count(),
        count_chats(&sh),
        args.interval_ms
    );

    let settle = Duration::from_secs(args.settle_secs);
    let rounds = args.rounds.unwrap_or(if args.short { 1 } else { 3 });
    let mut faults = Vec::new();
    tokio::time::sleep(settle).await;
    for _ in 0..rounds {
        for kind in [
            FaultKind::Kill(BUSIER),
            FaultKind::Kill(BUSIER),
            FaultKind::RedisRestart,
            FaultKind::PgRestart,
            FaultKind::Terminate(BUSIER),
            FaultKind::RedisOutage,
        ] {
            let fault = inject(&sh, dep, kind, args).await?;
            println!("{}", fault.line());
            faults.push(fault);
            tokio::time::sleep(settle).await;
        }
    }

    // Drain: no new sends; every pending one acknowledged; every socket has every message.
    sh.stop_sending.store(true, Ordering::Relaxed);
    let drained = wait_until(Duration::from_secs(60), || {
        sh.users.iter().all(|u| !lock(&u.st).has_pending())
    })
    .await;
    let lasts = last_seqs(&dep.pg).await?;
    let converged = wait_until(Duration::from_secs(20), || everyone_has(&sh, &lasts)).await;
    sh.done.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    }
    let elapsed = sh.now();
    let checks = report::check(&sh, &dep.pg, &dep.instances, drained && converged).await?;
    let summary = report::summary(&sh, &faults, &checks, elapsed);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(checks.passed())
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count_chats(sh: &Shared) -> usize {
    let mut chats: Vec<i64> = sh.users.iter().flat_map(|u| u.chats.clone()).collect();
    chats.sort_unstable();
    chats.dedup();
    chats.len()
}

/// Each chat's `last_seq` in PostgreSQL now.
async fn last_seqs(pg: &Pg) -> Result<Vec<(i64, i64)>> {
    let rows = pg
        .query("postgres", "SELECT id, last_seq FROM chats")
        .await?;
    Ok(rows
        .lines()
        .filter_map(|l| {
            let (id, seq) = l.split_once('\t')?;
            Some((id.parse().ok()?, seq.parse().ok()?))
        })
        .collect())
}

/// Whether every user's socket has delivered each of its chats up to `lasts`.
fn everyone_has(sh: &Shared, lasts: &[(i64, i64)]) -> bool {
    sh.users.iter().all(|u| {
        let st = lock(&u.st);
        lasts.iter().all(|(chat, seq)| {
            !u.chats.contains(chat) || st.last.get(chat).copied().unwrap_or(0) >= *seq
        })
    })
}
