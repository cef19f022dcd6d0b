//! `chat-load`: the chat server's load generator (issue 6). Run `chat-load <scenario> --help`.
//!
//! The coordinator (this process) sets a scenario up over REST, spreads the sockets over worker
//! processes (`chat-load worker <plan>`, one thread each), drives them through stdin/stdout and
//! prints a table and a JSON document. It exits 1 when the server broke a promise (a lost,
//! duplicated or reordered delivery, an acknowledged message not stored, a socket not synced,
//! a failed page), never because of speed.

mod api;
mod fleet;
mod report;
mod scenarios;
mod stats;
mod wire;
mod worker;

use anyhow::Result;
use clap::{Parser, Subcommand};

use scenarios::{Common, Rate};

#[derive(Parser)]
#[command(
    name = "chat-load",
    version,
    about = "Load generator for the chat server"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Hold N authenticated sockets idle: server RSS per socket and CPU at rest.
    Idle {
        #[command(flatten)]
        common: Common,
        /// Sockets to open (one user each).
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        /// Users per group (every socket's user is in one group).
        #[arg(long, default_value_t = 100)]
        group_size: usize,
        /// How long to measure CPU at rest, s.
        #[arg(long, default_value_t = 10.0)]
        hold_secs: f64,
    },
    /// G groups of K members, senders at a total rate: deliveries/s, latency, lost/dup/order.
    Fanout {
        #[command(flatten)]
        common: Common,
        /// Groups.
        #[arg(long, default_value_t = 100)]
        groups: usize,
        /// Members (sockets) per group.
        #[arg(long, default_value_t = 100)]
        members: usize,
        /// Senders per group.
        #[arg(long, default_value_t = 5)]
        senders: usize,
        /// Messages per second, all senders together.
        #[arg(long, default_value_t = 1500.0)]
        rate: f64,
        /// Sending time, s.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Unacknowledged sends allowed per sender.
        #[arg(long, default_value_t = 64)]
        window: u32,
    },
    /// One socket per group sending flat out (pipelined sends): sends/s one socket sustains.
    Pipeline {
        #[command(flatten)]
        common: Common,
        /// Groups, one sending socket each.
        #[arg(long, default_value_t = 1)]
        groups: usize,
        /// Members (sockets) per group, the sender included.
        #[arg(long, default_value_t = 5)]
        members: usize,
        /// Messages per second each sender offers.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Sending time, s.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Unacknowledged sends allowed per sender.
        #[arg(long, default_value_t = 64)]
        window: u32,
    },
    /// Durable sends across many chats at increasing rates, then one hot chat.
    Persist {
        #[command(flatten)]
        common: Common,
        /// Chats.
        #[arg(long, default_value_t = 500)]
        chats: usize,
        /// Members per chat, every one a sender.
        #[arg(long, default_value_t = 2)]
        members: usize,
        /// Rates to step through, messages/s, or `max` for as fast as acks come back.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,5000,10000,20000,max"
        )]
        rates: Vec<Rate>,
        /// Time per rate, s.
        #[arg(long, default_value_t = 5.0)]
        step_secs: f64,
        /// Unacknowledged sends allowed per socket.
        #[arg(long, default_value_t = 32)]
        window: u32,
        /// REST senders in the hot chat (0: skip it).
        #[arg(long, default_value_t = 200)]
        hot_senders: usize,
        /// Time in the hot chat, s.
        #[arg(long, default_value_t = 5.0)]
        hot_secs: f64,
    },
    /// Pages of history from a chat of many messages (filled first if needed).
    History {
        #[command(flatten)]
        common: Common,
        /// Messages the chat holds.
        #[arg(long, default_value_t = 1_000_000)]
        messages: i64,
        /// Reading time, s.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Readers at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Messages per page.
        #[arg(long, default_value_t = 50)]
        page: u32,
    },
    /// Drop every socket at once; time until all are back and synced.
    Reconnect {
        #[command(flatten)]
        common: Common,
        /// Sockets (one user each).
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        /// Users per group.
        #[arg(long, default_value_t = 100)]
        group_size: usize,
        /// Give up after, s.
        #[arg(long, default_value_t = 60.0)]
        timeout_secs: f64,
    },
    /// The machine's speed probe (steps per µs of one core, see `stats::speed_probe`), once a
    /// second: run it on an otherwise idle machine to tell a slow phase from a fast one.
    Speed {
        /// How many readings to print.
        #[arg(long, default_value_t = 5)]
        count: u32,
    },
    /// Internal: a worker process (started by the coordinator).
    #[command(hide = true)]
    Worker {
        /// The plan file.
        plan: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Scenario::Worker { plan } = &cli.scenario {
        return worker::run(plan);
    }
    if let Scenario::Speed { count } = cli.scenario {
        for i in 0..count {
            if i > 0 {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            println!("machine speed probe: {} steps per µs", stats::speed_probe());
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (report, json_path) = rt.block_on(async {
        Ok::<_, anyhow::Error>(match cli.scenario {
            Scenario::Idle {
                common,
                sockets,
                group_size,
                hold_secs,
            } => (
                scenarios::idle(&common, sockets, group_size, hold_secs).await?,
                common.json,
            ),
            Scenario::Fanout {
                common,
                groups,
                members,
                senders,
                rate,
                secs,
                window,
            } => (
                scenarios::fanout(&common, groups, members, senders, rate, secs, window).await?,
                common.json,
            ),
            Scenario::Pipeline {
                common,
                groups,
                members,
                rate,
                secs,
                window,
            } => (
                scenarios::pipeline(&common, groups, members, rate, secs, window).await?,
                common.json,
            ),
            Scenario::Persist {
                common,
                chats,
                members,
                rates,
                step_secs,
                window,
                hot_senders,
                hot_secs,
            } => (
                scenarios::persist(
                    &common,
                    chats,
                    members,
                    &rates,
                    step_secs,
                    window,
                    hot_senders,
                    hot_secs,
                )
                .await?,
                common.json,
            ),
            Scenario::History {
                common,
                messages,
                secs,
                concurrency,
                page,
            } => (
                scenarios::history(&common, messages, secs, concurrency, page).await?,
                common.json,
            ),
            Scenario::Reconnect {
                common,
                sockets,
                group_size,
                timeout_secs,
            } => (
                scenarios::reconnect(&common, sockets, group_size, timeout_secs).await?,
                common.json,
            ),
            Scenario::Worker { .. } | Scenario::Speed { .. } => unreachable!("handled above"),
        })
    })?;
    print!("{}", report.table());
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = json_path {
        std::fs::write(path, &json)?;
    }
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
