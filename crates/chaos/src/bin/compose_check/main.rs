//! `chat-compose-check`: the checks `make compose-test` runs against a live prod stack.
//!
//! It goes through nginx only (`--url`) and drives the stack with the compose command it is given
//! (`--compose`, e.g. `docker-compose -p chatct1 -f docker-compose.prod.yml`). One line per check
//! with its time, then `compose-check: N passed, N failed`; exit code 1 when one failed.
//!
//! Checks, in order: two users' gateway sockets land on different app instances
//! (`X-Chat-Instance`); they chat live over the gateway and over door 002; `kill` of one app →
//! its user reconnects through nginx to the other and resumes with nothing lost; SIGTERM of an
//! app (`stop`) → its sockets get close 1012 through nginx; `restart postgres` → sends work
//! again; `down` then `up` → history is still there; door 001 is not reachable from the host.
//!
//! This file runs the checks in order and prints their lines; `stack` is the client of the stack
//! (HTTP and sockets through nginx, the compose command), `checks` the checks that chat through
//! nginx, `faults` those that break the stack (kill, stop, restart, down and up).

mod checks;
mod faults;
mod stack;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use stack::Stack;

#[derive(Parser)]
#[command(
    name = "chat-compose-check",
    about = "Checks a running prod compose stack"
)]
struct Args {
    /// nginx's address on the host.
    #[arg(long)]
    url: String,
    /// The compose command of the stack, split on spaces.
    #[arg(long)]
    compose: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stack = Stack {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("build the HTTP client")?,
        url: args.url.trim_end_matches('/').to_owned(),
        compose: args.compose.split(' ').map(str::to_owned).collect(),
    };
    let (passed, failed) = run(&stack).await;
    println!("compose-check: {passed} passed, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}

/// Runs every check in order, each reported as it ends; answers (passed, failed).
async fn run(c: &Stack) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    let tag = format!("{:04x}", rand::random::<u16>());
    let mut report = |name: &str, started: Instant, outcome: Result<String>| match outcome {
        Ok(detail) => {
            passed += 1;
            println!(
                "ok   {name} ({:.1} s): {detail}",
                started.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            failed += 1;
            println!(
                "FAIL {name} ({:.1} s): {e:#}",
                started.elapsed().as_secs_f64()
            );
        }
    };

    let t = Instant::now();
    let (alice, bob, chat) = match checks::setup(c, &tag).await {
        Ok(s) => {
            report(
                "register two users and a group through nginx",
                t,
                Ok("201s".into()),
            );
            s
        }
        Err(e) => {
            report("register two users and a group through nginx", t, Err(e));
            return (passed, failed);
        }
    };

    // Two sockets on different instances, chatting live over the gateway.
    let t = Instant::now();
    let mut sockets = None;
    let outcome = checks::live_gateway(c, &alice, &bob, chat)
        .await
        .map(|(detail, live)| {
            sockets = Some(live);
            detail
        });
    report(
        "sockets on different instances chat live (gateway)",
        t,
        outcome,
    );

    // Door 002 through nginx.
    let t = Instant::now();
    let outcome = checks::door002(c, &alice, &bob, &tag).await;
    report("door 002 group chat", t, outcome);

    // kill -9 of alice's app: she reconnects through nginx and resumes.
    let t = Instant::now();
    let outcome = faults::kill_and_resume(c, &alice, &bob, chat, &tag, sockets).await;
    report(
        "kill an app: reconnect and resume through nginx",
        t,
        outcome,
    );

    // SIGTERM of an app: its sockets get 1012.
    let t = Instant::now();
    let outcome = faults::sigterm_closes_1012(c, &alice).await;
    report("SIGTERM an app: its sockets get 1012", t, outcome);

    // PostgreSQL restart: sends work again.
    let t = Instant::now();
    let outcome = faults::restart_postgres(c, &bob, chat, &tag, t).await;
    report("restart postgres: the stack recovers", t, outcome);

    // down, then up: the history survives (the volume).
    let t = Instant::now();
    let outcome = faults::down_then_up(c, &alice, chat).await;
    report("down then up: history kept in the volume", t, outcome);

    // Door 001 is not reachable.
    let t = Instant::now();
    let outcome = checks::door001_unreachable(c).await;
    report("door 001 not reachable from the host", t, outcome);
    (passed, failed)
}
