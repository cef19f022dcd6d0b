//! `chat-security`: runs the security regression suite against a live server and prints one line
//! per check, then `security: N passed, N failed, N skipped`. Exit code 1 when a check failed.
//!
//! `--cli` names the server's own binary (`chat-server`); with it the suite can run
//! `disable-user`/`enable-user` and start-up checks, using this process's environment
//! (`DATABASE_URL`, `REDIS_URL`, `CHAT_REDIS_PREFIX`, ... must be those of the server).

use chat_security::{Target, cli_hook, client::Http};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "chat-security",
    about = "Security regression suite for the chat server"
)]
struct Args {
    /// The server's main listener.
    #[arg(long, env = "SECURITY_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A second instance of the same deployment (cross-instance revocation).
    #[arg(long, env = "SECURITY_PEER_URL")]
    peer_url: Option<String>,
    /// Door 001's own listener (`CHAT_AVITO_LISTEN`), when the door is on.
    #[arg(long, env = "SECURITY_DOOR001_URL")]
    door001_url: Option<String>,
    /// The server's `CHAT_JWT_SECRET`, to forge well-signed bad tokens (expired, no exp, ...).
    #[arg(long, env = "SECURITY_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// The server's binary, for disable-user/enable-user and the start-up checks.
    #[arg(long, env = "SECURITY_CLI")]
    cli: Option<String>,
    /// The server's `CHAT_RATE_SEND_PER_MIN` (0: off).
    #[arg(long, env = "SECURITY_SEND_PER_MIN", default_value_t = 120)]
    send_per_min: u32,
    /// The server trusts forwarded headers (`CHAT_TRUST_PROXY=true`).
    #[arg(long, env = "SECURITY_TRUSTS_PROXY")]
    trusts_proxy: bool,
    /// Run only the checks whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut target = Target::new(&args.url)?;
    target.peer = args.peer_url.as_deref().map(Http::new).transpose()?;
    target.door001 = args.door001_url.as_deref().map(Http::new).transpose()?;
    target.jwt_secret = args.jwt_secret;
    target.admin = args.cli.map(|cli| cli_hook(cli, Vec::new()));
    target.send_per_min = args.send_per_min;
    target.trusts_proxy = args.trusts_proxy;
    let results = chat_security::run(&target, args.only.as_deref()).await;
    print!("{}", chat_security::report(&results));
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, chat_security::Outcome::Fail(_)));
    std::process::exit(i32::from(failed));
}
