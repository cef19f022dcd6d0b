//! The chat server's security regression suite: what an attacker tries, as checks.
//!
//! They run against any live server over real HTTP and WebSocket connections (`chat-security
//! --url ...`, or `make security`, which starts its own server pair). The same checks run inside
//! `cargo test` against in-process servers (`crates/api/tests/api/security.rs`).
//!
//! Every check creates its own accounts and chats under a random prefix, so runs never collide
//! and a check never depends on another's leftovers. A check that needs something the target
//! does not offer (door 001's listener, a second instance, the JWT secret, the admin CLI) is
//! skipped and says why; it never passes by default.
//!
//! The checks, by the items of the issue "Secure by default" they keep fixed, are listed by
//! [`checks`]; `--only <text>` runs those whose name contains the text.

mod checks;
pub mod client;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use checks::checks;
use client::Http;

/// A boxed future, for the admin hook and the checks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What only the operator of the server can do, for the checks that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// `chat-server disable-user <username>`.
    DisableUser(String),
    /// `chat-server enable-user <username>`.
    EnableUser(String),
    /// Start the server's CLI (`chat-server migrate`) with one more environment variable and
    /// report its exit status and standard error (a start-up check of the settings).
    RunWithEnv(String, String),
}

/// The answer of an [`AdminAction`]: for `RunWithEnv`, the exit code and standard error.
#[derive(Debug, Clone, Default)]
pub struct AdminOutput {
    /// Process exit code (0 for the in-process hooks).
    pub code: i32,
    /// What it printed on standard error.
    pub stderr: String,
}

/// Runs an [`AdminAction`] on the target's side.
pub type AdminHook =
    Arc<dyn Fn(AdminAction) -> BoxFuture<'static, anyhow::Result<AdminOutput>> + Send + Sync>;

/// The admin hook of a server's own binary (`chat-server`).
///
/// It runs `disable-user`/`enable-user`, and `migrate` with one more variable for
/// [`AdminAction::RunWithEnv`], with this process's environment plus `env` (which must lead it
/// to the server's database and Redis prefix). Errors: the binary cannot start, or a user
/// command exits non-zero (its stderr).
pub fn cli_hook(binary: String, env: Vec<(String, String)>) -> AdminHook {
    Arc::new(move |action| {
        let mut command = tokio::process::Command::new(&binary);
        command.envs(env.iter().cloned());
        match &action {
            AdminAction::DisableUser(name) => command.args(["disable-user", name]),
            AdminAction::EnableUser(name) => command.args(["enable-user", name]),
            AdminAction::RunWithEnv(var, value) => command.arg("migrate").env(var, value),
        };
        let binary = binary.clone();
        Box::pin(async move {
            let out = command.output().await?;
            let output = AdminOutput {
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            if !matches!(action, AdminAction::RunWithEnv(..)) && output.code != 0 {
                anyhow::bail!("{binary} {action:?} failed: {}", output.stderr);
            }
            Ok(output)
        })
    })
}

/// The server under test.
#[derive(Clone)]
pub struct Target {
    /// The main listener (`http://host:port`).
    pub main: Http,
    /// A second instance of the same deployment, for cross-instance checks.
    pub peer: Option<Http>,
    /// Door 001's own listener (`CHAT_AVITO_LISTEN`), when the door is on.
    pub door001: Option<Http>,
    /// The server's `CHAT_JWT_SECRET`, for forging well-signed tokens (expired, no `exp`, ...).
    pub jwt_secret: Option<String>,
    /// The operator's hook (disable a user, start the CLI), when available.
    pub admin: Option<AdminHook>,
    /// The server's `CHAT_RATE_SEND_PER_MIN` (0: off).
    pub send_per_min: u32,
    /// Whether the server trusts a proxy's forwarded headers (`CHAT_TRUST_PROXY`).
    pub trusts_proxy: bool,
    /// Prefix of every name this run creates (a few random characters).
    pub prefix: String,
}

impl Target {
    /// A target for the main listener `url`, with nothing optional; names get a random prefix.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            main: Http::new(url)?,
            peer: None,
            door001: None,
            jwt_secret: None,
            admin: None,
            send_per_min: 120,
            trusts_proxy: false,
            prefix: format!("s{:06x}", rand::random::<u32>() & 0xff_ffff),
        })
    }

    /// A name unique to this run: `<prefix>_<what>` (letters, digits and `_`, as door 004 wants).
    pub fn name(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    /// The second instance, or the main one when there is none.
    pub fn other(&self) -> &Http {
        self.peer.as_ref().unwrap_or(&self.main)
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it tried was refused (or worked) as it should.
    Pass,
    /// What went wrong.
    Fail(String),
    /// Not run here, and why.
    Skip(String),
}

/// One check: a name, the issue item it keeps fixed, and the code.
pub struct Check {
    /// `snake_case` name.
    pub name: &'static str,
    /// What it shows, in a line.
    pub what: &'static str,
    /// Runs it.
    pub run: for<'a> fn(&'a Target) -> BoxFuture<'a, Outcome>,
}

/// The result of a check, with its duration.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The check's name.
    pub name: &'static str,
    /// What it shows.
    pub what: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time, ms.
    pub ms: u128,
}

/// Runs the checks whose name contains `only` (all with `None`), one after another, and returns
/// their results in order.
pub async fn run(target: &Target, only: Option<&str>) -> Vec<Ran> {
    let mut results = Vec::new();
    for check in checks() {
        if only.is_some_and(|o| !check.name.contains(o)) {
            continue;
        }
        let started = Instant::now();
        let outcome = (check.run)(target).await;
        results.push(Ran {
            name: check.name,
            what: check.what,
            outcome,
            ms: started.elapsed().as_millis(),
        });
    }
    results
}

/// The results as a table, one line per check, then a summary line
/// (`security: N passed, N failed, N skipped`).
pub fn report(results: &[Ran]) -> String {
    let mut out = String::new();
    for r in results {
        let (mark, detail) = match &r.outcome {
            Outcome::Pass => ("pass", String::new()),
            Outcome::Fail(why) => ("FAIL", format!("\n      {why}")),
            Outcome::Skip(why) => ("skip", format!(" ({why})")),
        };
        out.push_str(&format!(
            "{mark}  {:<44} {:>6} ms  {}{detail}\n",
            r.name, r.ms, r.what
        ));
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    out.push_str(&format!(
        "security: {} passed, {} failed, {} skipped\n",
        count(|o| *o == Outcome::Pass),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Skip(_))),
    ));
    out
}
