//! `chat-server`: `serve` (the default) or `migrate`. Configured by environment (see the README
//! and `chat_api::config`).

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use chat_api::config::{LogFormat, Settings};

#[derive(Parser)]
#[command(
    name = "chat-server",
    version,
    about = "Chat server: native REST + WebSocket API and seed protocol doors"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve HTTP and WebSockets (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("chat-server: {message}");
            std::process::exit(2);
        }
    };
    init_logging(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let applied = chat_selectors::run_migrations(&settings.database_url).await?;
            println!(
                "applied {} migration(s): {}",
                applied.len(),
                applied.join(", ")
            );
        }
        Command::Serve => {
            let server = chat_api::start(settings).await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.stop().await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
