//! The five scenarios, run by the coordinator (issue 6): idle, fanout, persist, history and
//! reconnect. Each sets itself up over REST (idempotently), drives the worker processes and
//! returns a [`Report`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::api::Api;
use crate::fleet::{self, Fleet, Target};
use crate::report::Report;
use crate::stats::{self, Latency};
use crate::wire::Protocol;
use crate::worker::{Command, SocketPlan};

/// Options every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The server, `http://host:port`.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CHAT_LOAD_URL")]
    pub url: String,
    /// Worker processes holding the sockets (each may open at most 20,000 files).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Source addresses for client sockets on a loopback server: 127.0.0.2 and up.
    #[arg(long, default_value_t = 8)]
    pub source_ips: u8,
    /// WebSocket protocol: the native gateway or door 002's group socket.
    #[arg(long, value_enum, default_value = "native")]
    pub protocol: Protocol,
    /// Prefix of generated user and group names (runs with one prefix reuse their setup).
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// The server's pid, for RSS and CPU readings (default: whoever listens on the URL's port).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// REST calls in flight during setup.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
}

impl Common {
    fn params(&self) -> Value {
        json!({"url": self.url, "workers": self.workers, "protocol": self.protocol,
               "source_ips": self.source_ips})
    }

    fn server_pid(&self, target: &Target) -> Option<u32> {
        self.server_pid.or_else(|| {
            target
                .addr
                .ip()
                .is_loopback()
                .then(|| stats::pid_listening_on(target.addr.port()))
                .flatten()
        })
    }
}

/// Users and groups of a run: `groups` groups of `members` users each.
struct Groups {
    tokens: Vec<String>,
    /// (chat id (0 on door 002), name) per group.
    groups: Vec<(i64, String)>,
    members: usize,
}

/// Creates (or finds) `groups` public groups of `members` users named after `tag`, every user
/// a member. Native runs set up through the native API, door 002 runs through door 002's REST.
async fn setup_groups(
    api: &Api,
    common: &Common,
    tag: &str,
    groups: usize,
    members: usize,
) -> Result<Groups> {
    let started = Instant::now();
    let names: Vec<String> = (0..groups * members)
        .map(|i| format!("{}{tag}{i}", common.prefix))
        .collect();
    let tokens = api.tokens(&names, common.setup_concurrency).await?;
    let protocol = common.protocol;
    let conc = common.setup_concurrency;
    let made: Vec<Result<(i64, String)>> = futures_util::stream::iter(0..groups)
        .map(|g| {
            let members_tokens = &tokens[g * members..(g + 1) * members];
            let name = format!("{}-{tag}{members}-{g}", common.prefix);
            async move {
                let owner = &members_tokens[0];
                let id = match protocol {
                    Protocol::Native => {
                        let id = api.ensure_group(owner, &name).await?;
                        if api.member_count(owner, id).await? < members {
                            join_all(members_tokens, conc, |t| api.join(t, id)).await?;
                        }
                        id
                    }
                    Protocol::Door002 => {
                        api.create_group_002(owner, &name).await?;
                        join_all(members_tokens, conc, |t| api.join_group_002(t, &name)).await?;
                        0
                    }
                };
                Ok((id, name))
            }
        })
        .buffered(4)
        .collect()
        .await;
    let groups = made.into_iter().collect::<Result<Vec<_>>>()?;
    eprintln!(
        "setup: {} groups of {members} ready in {:.1} s",
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Groups {
        tokens,
        groups,
        members,
    })
}

async fn join_all<'a, F, Fut>(tokens: &'a [String], conc: usize, join: F) -> Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    futures_util::stream::iter(tokens.iter().skip(1))
        .map(|t| join(t))
        .buffer_unordered(conc.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

impl Groups {
    /// One socket per user; the first `senders` of each group send.
    fn sockets(&self, senders: usize) -> Vec<SocketPlan> {
        let mut out = Vec::new();
        for (g, (chat_id, name)) in self.groups.iter().enumerate() {
            for m in 0..self.members {
                let i = g * self.members + m;
                out.push(SocketPlan {
                    id: i as u32,
                    token: self.tokens[i].clone(),
                    chat_id: *chat_id,
                    group_name: name.clone(),
                    sender: m < senders,
                });
            }
        }
        out
    }
}

fn note_errors(report: &mut Report, answers: &[Value]) {
    if report.first_error.is_none() {
        report.first_error = fleet::first_str(answers, "first_error");
    }
}

/// Connects every worker's sockets and adds the connect figures to `report`.
async fn connect(fleet: &mut Fleet, report: &mut Report, sockets: usize) -> Result<f64> {
    let answers = fleet.all(&Command::Connect).await?;
    let ok = fleet::sum(&answers, "ok");
    report.add("sockets open", ok);
    report.add(
        "connect time, s",
        fleet::max(&answers, "elapsed_ms") / 1000.0,
    );
    report.add(
        "handshake errors (retried)",
        fleet::sum(&answers, "attempt_errors"),
    );
    report.must_be_zero("sockets that never connected", sockets as f64 - ok);
    note_errors(report, &answers);
    Ok(ok)
}

fn cpu_percent(before: stats::ProcSample, after: stats::ProcSample, secs: f64) -> f64 {
    (after.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64 / 100.0 / secs * 100.0
}

/// The users of the idle and reconnect scenarios (shared, tag `c`): `sockets` users in groups
/// of `group_size`, one receiving socket each.
async fn connected_users(
    common: &Common,
    protocol: Protocol,
    sockets: usize,
    group_size: usize,
) -> Result<(Target, Api, Groups, Vec<SocketPlan>)> {
    let target = Target::resolve(&common.url, protocol, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let group_size = group_size.clamp(1, sockets.max(1));
    let groups = setup_groups(&api, common, "c", sockets.div_ceil(group_size), group_size).await?;
    let mut plan = groups.sockets(0);
    plan.truncate(sockets);
    Ok((target, api, groups, plan))
}

/// Scenario 1: N authenticated gateway sockets held idle; server RSS per socket and CPU at rest.
pub async fn idle(
    common: &Common,
    sockets: usize,
    group_size: usize,
    hold_secs: f64,
) -> Result<Report> {
    let (target, _, _, plan) =
        connected_users(common, common.protocol, sockets, group_size).await?;
    let mut report = Report::new(
        "idle",
        json!({"common": common.params(), "sockets": sockets, "group_size": group_size, "hold_secs": hold_secs}),
    );
    let pid = common.server_pid(&target);
    let mut fleet = Fleet::spawn(&target, plan, common.workers)?;
    // Let the server settle after setup before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = pid.map(stats::sample).transpose()?;
    let open = connect(&mut fleet, &mut report, sockets).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let (Some(pid), Some(before)) = (pid, before) {
        let after = stats::sample(pid)?;
        report.add("server RSS before, MiB", before.rss_kib as f64 / 1024.0);
        report.add(
            "server RSS with sockets, MiB",
            after.rss_kib as f64 / 1024.0,
        );
        let per = (after.rss_kib as f64 - before.rss_kib as f64) / open.max(1.0);
        report.at_most(
            "server RSS per socket, KiB",
            (per * 100.0).round() / 100.0,
            8.0,
        );
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
        let end = stats::sample(pid)?;
        report.add(
            "server CPU at rest, % of one core",
            cpu_percent(after, end, t0.elapsed().as_secs_f64()),
        );
    } else {
        eprintln!("idle: server pid unknown (pass --server-pid): no RSS/CPU figures");
        tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
    }
    let answers = fleet.all(&Command::Report).await?;
    report.must_be_zero(
        "sockets closed by the server while idle",
        fleet::sum(&answers, "closed"),
    );
    note_errors(&mut report, &answers);
    fleet.quit().await?;
    Ok(report)
}

/// What the send-phase reports add up to.
struct SendTotals {
    acks: f64,
    ack_latency: Latency,
    deliveries: f64,
    latency: Latency,
    in_order: f64,
    duplicates: f64,
    out_of_order: f64,
    /// Accepted sends per sender.
    sent: HashMap<u32, u64>,
    send_errors: f64,
    skipped: f64,
    unacked: f64,
    closed: f64,
    delivery_span_s: f64,
    /// From the first send until the last ack (sending plus draining), s.
    active_s: f64,
}

fn totals(answers: &[Value], sends: &[Value]) -> Result<SendTotals> {
    let mut latency = stats::histogram();
    let mut ack_latency = stats::histogram();
    let mut sent = HashMap::new();
    let mut in_order = 0u64;
    let (mut first, mut last) = (u64::MAX, 0u64);
    for a in answers {
        latency.add(stats::decode(a["latency"].as_str().unwrap_or_default())?)?;
        ack_latency.add(stats::decode(
            a["ack_latency"].as_str().unwrap_or_default(),
        )?)?;
        for (k, v) in a["sent"].as_object().into_iter().flatten() {
            *sent.entry(k.parse().unwrap_or(u32::MAX)).or_insert(0) += v.as_u64().unwrap_or(0);
        }
        in_order += a["in_order"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| v.as_u64())
            .sum::<u64>();
        let f = a["first_delivery_us"].as_u64().unwrap_or(0);
        if f > 0 {
            first = first.min(f);
        }
        last = last.max(a["last_delivery_us"].as_u64().unwrap_or(0));
    }
    Ok(SendTotals {
        acks: fleet::sum(answers, "acks"),
        ack_latency: Latency::of(&ack_latency),
        deliveries: fleet::sum(answers, "deliveries"),
        latency: Latency::of(&latency),
        in_order: in_order as f64,
        duplicates: fleet::sum(answers, "duplicates"),
        out_of_order: fleet::sum(answers, "out_of_order"),
        sent,
        send_errors: fleet::sum(answers, "send_errors"),
        skipped: fleet::sum(answers, "skipped") + fleet::sum(sends, "skipped"),
        unacked: fleet::sum(sends, "unacked"),
        closed: fleet::sum(answers, "closed"),
        active_s: sends
            .iter()
            .map(|s| {
                s["sending_ms"].as_f64().unwrap_or(0.0) + s["drain_ms"].as_f64().unwrap_or(0.0)
            })
            .fold(0.0, f64::max)
            / 1000.0,
        delivery_span_s: if last > first {
            (last - first) as f64 / 1e6
        } else {
            0.0
        },
    })
}

/// Runs one send phase: `rate` messages/s in all (0: closed loop), split over the workers by
/// their senders; waits `settle` for the last deliveries, then collects the reports.
async fn send_phase(
    fleet: &mut Fleet,
    rate: f64,
    secs: f64,
    window: u32,
    settle: Duration,
) -> Result<(SendTotals, Vec<Value>)> {
    fleet.all(&Command::Reset).await?;
    let senders = fleet.senders();
    let total: usize = senders.iter().sum::<usize>().max(1);
    let cmds = senders
        .iter()
        .map(|&s| Command::Send {
            rate: rate * s as f64 / total as f64,
            secs,
            window,
        })
        .collect();
    let sends = fleet.each(cmds).await?;
    tokio::time::sleep(settle).await;
    let answers = fleet.all(&Command::Report).await?;
    let mut all = answers.clone();
    all.extend(sends.iter().cloned());
    Ok((totals(&answers, &sends)?, all))
}

/// Scenario 2: G groups of K members, senders at a total rate R; deliveries/s, send→deliver
/// latency, and lost/duplicated/reordered deliveries (must be 0).
#[allow(clippy::too_many_arguments)]
pub async fn fanout(
    common: &Common,
    groups: usize,
    members: usize,
    senders: usize,
    rate: f64,
    secs: f64,
    window: u32,
) -> Result<Report> {
    let target = Target::resolve(&common.url, common.protocol, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let setup = setup_groups(&api, common, "f", groups, members).await?;
    let senders = senders.clamp(1, members);
    let mut report = Report::new(
        "fanout",
        json!({"common": common.params(), "groups": groups, "members": members,
               "senders_per_group": senders, "rate": rate, "secs": secs, "window": window}),
    );
    let pid = common.server_pid(&target);
    let mut fleet = Fleet::spawn(&target, setup.sockets(senders), common.workers)?;
    connect(&mut fleet, &mut report, groups * members).await?;
    let cpu0 = pid.map(stats::sample).transpose()?;
    let t0 = Instant::now();
    let (t, answers) = send_phase(&mut fleet, rate, secs, window, Duration::from_secs(2)).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    // Native senders get their own message as the ack, door 002 senders as a broadcast too.
    let receivers = match common.protocol {
        Protocol::Native => members - 1,
        Protocol::Door002 => members,
    } as f64;
    let accepted: u64 = t.sent.values().sum();
    let expected = accepted as f64 * receivers;
    report.add("messages sent and accepted", accepted as f64);
    report.add("messages sent per s", accepted as f64 / secs);
    report.add("deliveries", t.deliveries);
    let per_s = if t.delivery_span_s > 0.0 {
        t.deliveries / t.delivery_span_s
    } else {
        0.0
    };
    report.at_least("deliveries per s", per_s.round(), 150_000.0);
    report.add("send->deliver p50, ms", t.latency.p50_ms);
    report.at_most("send->deliver p99, ms", t.latency.p99_ms, 100.0);
    report.add("send->deliver max, ms", t.latency.max_ms);
    report.must_be_zero("lost deliveries", (expected - t.in_order).max(0.0));
    report.must_be_zero("duplicated deliveries", t.duplicates);
    report.must_be_zero("out-of-order deliveries", t.out_of_order);
    report.must_be_zero("extra deliveries", (t.in_order - expected).max(0.0));
    report.must_be_zero("send errors", t.send_errors);
    report.add("sends skipped (client window full)", t.skipped);
    report.must_be_zero("sends never acknowledged", t.unacked);
    report.must_be_zero("sockets closed by the server", t.closed);
    if let (Some(pid), Some(c0)) = (pid, cpu0) {
        report.add(
            "server CPU, % of one core",
            cpu_percent(c0, stats::sample(pid)?, elapsed),
        );
    }
    note_errors(&mut report, &answers);
    fleet.quit().await?;
    Ok(report)
}

/// One step of the persist scenario: a rate (messages/s) or `max` (closed loop).
#[derive(Debug, Clone, Copy)]
pub enum Rate {
    /// Open loop at this many messages/s.
    Fixed(f64),
    /// Closed loop: each sender keeps its window full.
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Self::Max);
        }
        s.parse::<f64>()
            .ok()
            .filter(|r| *r > 0.0)
            .map(Self::Fixed)
            .ok_or_else(|| format!("{s:?} is neither a positive rate nor \"max\""))
    }
}

/// Scenario 3: senders across `chats` chats at increasing rates (committed messages/s, send→ack
/// latency), then `hot_senders` senders in one chat as fast as acks come back. Every ack is
/// checked against the chats' `last_seq` afterwards: acknowledged means stored.
#[allow(clippy::too_many_arguments)]
pub async fn persist(
    common: &Common,
    chats: usize,
    members: usize,
    rates: &[Rate],
    step_secs: f64,
    window: u32,
    hot_senders: usize,
    hot_secs: f64,
) -> Result<Report> {
    let target = Target::resolve(&common.url, common.protocol, common.source_ips).await?;
    if common.protocol != Protocol::Native {
        bail!("persist measures acks, which only the native gateway gives: use --protocol native");
    }
    let api = Api::new(&target.http)?;
    let mut report = Report::new(
        "persist",
        json!({"common": common.params(), "chats": chats, "members": members,
               "rates": rates.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
               "step_secs": step_secs, "window": window, "hot_senders": hot_senders,
               "hot_secs": hot_secs}),
    );
    let setup = setup_groups(&api, common, "p", chats, members).await?;
    let seqs_before = last_seqs(&api, &setup).await?;
    let mut fleet = Fleet::spawn(&target, setup.sockets(members), common.workers)?;
    connect(&mut fleet, &mut report, chats * members).await?;
    // Warm-up, not reported: opens pool connections, fills caches, prepares statements.
    if let Some(Rate::Fixed(r)) = rates.first() {
        send_phase(&mut fleet, *r, 2.0, window, Duration::ZERO).await?;
    }
    let mut acked = 0.0;
    let mut saturated = false;
    for rate in rates {
        let (label, r) = match rate {
            Rate::Fixed(_) if saturated => continue,
            Rate::Fixed(r) => (format!("{r}/s"), *r),
            Rate::Max => ("max".to_owned(), 0.0),
        };
        let (t, answers) = send_phase(&mut fleet, r, step_secs, window, Duration::ZERO).await?;
        acked += t.acks;
        // Committed per second from the first send to the last ack.
        let per_s = t.acks / t.active_s.max(step_secs);
        if r > 0.0 && per_s < 0.8 * r {
            // Past saturation higher rates only queue more; `max` tells the ceiling.
            saturated = true;
            report.add(
                format!("[{label}] saturated: committed share of the offered rate, %"),
                (per_s / r * 100.0).round(),
            );
        }
        if matches!(rate, Rate::Max) {
            report.at_least(
                format!("[{label}] committed msgs/s"),
                per_s.round(),
                25_000.0,
            );
        } else {
            report.add(format!("[{label}] committed msgs/s"), per_s.round());
        }
        report.add(format!("[{label}] send->ack p50, ms"), t.ack_latency.p50_ms);
        if matches!(rate, Rate::Fixed(r) if (*r - 1000.0).abs() < f64::EPSILON) {
            report.at_most(
                format!("[{label}] send->ack p99, ms"),
                t.ack_latency.p99_ms,
                50.0,
            );
        } else {
            report.add(format!("[{label}] send->ack p99, ms"), t.ack_latency.p99_ms);
        }
        report.add(format!("[{label}] sends skipped (window full)"), t.skipped);
        report.must_be_zero(&format!("[{label}] send errors"), t.send_errors);
        report.must_be_zero(&format!("[{label}] sends never acknowledged"), t.unacked);
        report.must_be_zero(&format!("[{label}] sockets closed by the server"), t.closed);
        note_errors(&mut report, &answers);
    }
    fleet.quit().await?;
    let seqs_after = last_seqs(&api, &setup).await?;
    let stored: i64 = seqs_after
        .iter()
        .zip(&seqs_before)
        .map(|(a, b)| a - b)
        .sum();
    report.add("messages acknowledged", acked);
    report.must_be_zero(
        "acknowledged but not stored",
        (acked - stored as f64).max(0.0),
    );

    if hot_senders > 0 {
        hot_chat(&api, common, &mut report, hot_senders, hot_secs).await?;
    }
    Ok(report)
}

/// The hot chat: `senders` members of one chat each sending over REST (`POST
/// /api/v1/chats/{id}/messages`, answered 201 after the commit) as fast as answers come back.
/// REST rather than sockets: every socket in the chat would receive every message, and the
/// fan-out, not the writes, would be measured.
async fn hot_chat(
    api: &Api,
    common: &Common,
    report: &mut Report,
    senders: usize,
    secs: f64,
) -> Result<()> {
    let hot = setup_groups(api, common, "h", 1, senders).await?;
    let chat = hot.groups[0].0;
    let before = last_seqs(api, &hot).await?[0];
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let (histogram, e) = rest_sends(api, &hot.tokens, chat, deadline, u64::MAX).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = last_seqs(api, &hot).await?[0];
    let l = Latency::of(&histogram);
    report.at_least(
        "[hot chat] committed msgs/s",
        (l.count as f64 / elapsed).round(),
        5_000.0,
    );
    report.add("[hot chat] send->201 p50, ms", l.p50_ms);
    report.add("[hot chat] send->201 p99, ms", l.p99_ms);
    report.must_be_zero("[hot chat] send errors", e.0 as f64);
    report.must_be_zero(
        "[hot chat] acknowledged but not stored",
        (l.count as f64 - (after - before) as f64).max(0.0),
    );
    if report.first_error.is_none() {
        report.first_error = e.1;
    }
    Ok(())
}

/// Every token sends into `chat` over REST, one request at a time each, until `deadline` or
/// until `budget` messages were sent in all. Returns the latency histogram (µs) of the stored
/// ones and (errors, first error).
async fn rest_sends(
    api: &Api,
    tokens: &[String],
    chat: i64,
    deadline: Instant,
    budget: u64,
) -> (hdrhistogram::Histogram<u64>, (u64, Option<String>)) {
    let latency = Arc::new(Mutex::new(stats::histogram()));
    let errors = Arc::new(Mutex::new((0u64, None::<String>)));
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = tokens.iter().enumerate().map(|(i, token)| {
        let (latency, errors, issued) = (latency.clone(), errors.clone(), issued.clone());
        async move {
            while Instant::now() < deadline
                && issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < budget
            {
                let t = Instant::now();
                let text = format!("message {i} at {}", crate::wire::now_us());
                match api.send(token, chat, &text).await {
                    Ok(_) => {
                        let us = t.elapsed().as_micros() as u64;
                        stats::record(&mut *latency.lock().await, us);
                    }
                    Err(e) => {
                        let mut errors = errors.lock().await;
                        errors.0 += 1;
                        errors.1.get_or_insert(format!("{e:#}"));
                    }
                }
            }
        }
    });
    futures_util::future::join_all(tasks).await;
    let histogram = latency.lock().await.clone();
    let errors = errors.lock().await.clone();
    (histogram, errors)
}

async fn last_seqs(api: &Api, setup: &Groups) -> Result<Vec<i64>> {
    futures_util::stream::iter(setup.groups.iter().enumerate())
        .map(|(g, (id, _))| api.last_seq(&setup.tokens[g * setup.members], *id))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Scenario 4: pages of `page` messages at random points of a chat holding `messages`
/// messages (filled over the gateway first if it holds fewer); latency p50/p99 over `secs`
/// with `concurrency` readers.
pub async fn history(
    common: &Common,
    messages: i64,
    secs: f64,
    concurrency: usize,
    page: u32,
) -> Result<Report> {
    let target = Target::resolve(&common.url, Protocol::Native, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let fillers = 200;
    let setup = setup_groups(&api, common, &format!("hist{messages}x"), 1, fillers).await?;
    let (chat, token) = (setup.groups[0].0, setup.tokens[0].clone());
    let mut report = Report::new(
        "history",
        json!({"common": common.params(), "messages": messages, "secs": secs,
               "concurrency": concurrency, "page": page}),
    );
    let mut last = api.last_seq(&token, chat).await?;
    if last < messages {
        // Filled over REST by every member at once (sockets in the chat would each receive
        // every message: the fill would measure fan-out).
        eprintln!("history: filling chat {chat} from {last} to {messages} messages");
        let fill = Instant::now();
        while last < messages {
            let deadline = Instant::now() + Duration::from_secs(10);
            let budget = (messages - last) as u64;
            let (_, (errors, first)) =
                rest_sends(&api, &setup.tokens, chat, deadline, budget).await;
            if errors > 0 {
                bail!("filling the history chat: {errors} errors, first: {first:?}");
            }
            last = api.last_seq(&token, chat).await?;
            eprintln!("history: {last} messages");
        }
        report.add("fill time, s", fill.elapsed().as_secs_f64());
    }
    report.add("messages in the chat", last as f64);
    let latency = Arc::new(Mutex::new(stats::histogram()));
    let failures = Arc::new(Mutex::new((0u64, None::<String>)));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let min_before = i64::from(page) + 1;
    let readers = (0..concurrency.max(1)).map(|_| {
        let (api, token, latency, failures) = (
            api.clone(),
            token.clone(),
            latency.clone(),
            failures.clone(),
        );
        async move {
            while Instant::now() < deadline {
                let before = if last + 1 > min_before {
                    rand::random_range(min_before..=last + 1)
                } else {
                    last + 1
                };
                let t = Instant::now();
                let got = api.page(&token, chat, before, page).await;
                let us = t.elapsed().as_micros() as u64;
                let want = (before - 1).min(i64::from(page)) as usize;
                match got {
                    Ok(n) if n == want => stats::record(&mut *latency.lock().await, us),
                    Ok(n) => {
                        let mut f = failures.lock().await;
                        f.0 += 1;
                        f.1.get_or_insert(format!(
                            "page before {before}: {n} messages, want {want}"
                        ));
                    }
                    Err(e) => {
                        let mut f = failures.lock().await;
                        f.0 += 1;
                        f.1.get_or_insert(format!("{e:#}"));
                    }
                }
            }
        }
    });
    futures_util::future::join_all(readers).await;
    let l = Latency::of(&*latency.lock().await);
    let f = failures.lock().await;
    report.add("pages read", l.count as f64);
    report.add("pages per s", (l.count as f64 / secs).round());
    report.add("page p50, ms", l.p50_ms);
    report.at_most("page p99, ms", l.p99_ms, 5.0);
    report.add("page max, ms", l.max_ms);
    report.must_be_zero("failed or short pages", f.0 as f64);
    report.first_error = f.1.clone();
    Ok(report)
}

/// Scenario 5: N sockets in groups, all dropped at once and reconnected resuming from their last
/// seq, while one message per group is sent that they missed; time until every socket is back
/// and `synced`, errors, and whether every socket ended at its chat's last seq.
pub async fn reconnect(
    common: &Common,
    sockets: usize,
    group_size: usize,
    timeout_secs: f64,
) -> Result<Report> {
    let (target, api, groups, plan) =
        connected_users(common, Protocol::Native, sockets, group_size).await?;
    let mut report = Report::new(
        "reconnect",
        json!({"common": common.params(), "sockets": sockets, "group_size": group_size,
               "timeout_secs": timeout_secs}),
    );
    let mut fleet = Fleet::spawn(&target, plan, common.workers)?;
    connect(&mut fleet, &mut report, sockets).await?;
    let storm_cmd = Command::Storm { timeout_secs };
    let storm = fleet.all(&storm_cmd);
    let api = &api;
    let missed = futures_util::stream::iter(groups.groups.iter().enumerate())
        .map(|(g, (chat, _))| {
            let token = &groups.tokens[g * groups.members];
            async move {
                // A client retries a refused send (e.g. 503 while the server is busy).
                let mut failed = 0u64;
                loop {
                    match api.send(token, *chat, "sent while everyone was away").await {
                        Ok(seq) => return Ok(((*chat, seq), failed)),
                        Err(e) if failed >= 20 => return Err(e),
                        Err(_) => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let (answers, missed) = tokio::join!(storm, missed);
    let answers = answers?;
    let missed: Vec<((i64, i64), u64)> = missed.into_iter().collect::<Result<_>>()?;
    let rest_failures: u64 = missed.iter().map(|(_, f)| f).sum();
    let expected: Vec<(i64, i64)> = missed.into_iter().map(|(e, _)| e).collect();
    report.add(
        "REST sends refused during the storm (retried)",
        rest_failures as f64,
    );
    report.at_most(
        "all back and synced after, s",
        fleet::max(&answers, "elapsed_ms") / 1000.0,
        10.0,
    );
    let attempts = fleet::sum(&answers, "attempt_errors");
    report.at_most(
        "reconnect error rate, %",
        attempts / sockets.max(1) as f64 * 100.0,
        0.1,
    );
    report.must_be_zero(
        "sockets not back",
        sockets as f64 - fleet::sum(&answers, "reconnected"),
    );
    report.must_be_zero(
        "sockets not synced",
        sockets as f64 - fleet::sum(&answers, "synced"),
    );
    note_errors(&mut report, &answers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let verify = fleet.all(&Command::Verify { expected }).await?;
    report.must_be_zero(
        "sockets missing messages after resume",
        fleet::sum(&verify, "mismatched"),
    );
    fleet.quit().await?;
    Ok(report)
}
