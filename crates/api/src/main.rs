//! `chat-server`: `serve` (the default), `migrate`, and the operator's commands
//! (`create-operator`, `create-admin`, `disable-user`, `enable-user`). Configured by environment
//! (see the README and `chat_api::config`).

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use chat_api::config::{LogFormat, Settings};
use chat_domain::{Password, UserRole, Username};

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
    /// Make a user an operator (answers door 003's support chats); creates the user with a
    /// generated password, printed once, when it does not exist.
    CreateOperator {
        /// The user's name.
        username: String,
    },
    /// Make a user a server admin (also answers support chats); creates it like `create-operator`.
    CreateAdmin {
        /// The user's name.
        username: String,
    },
    /// Disable a user: every token of theirs fails at once on every door, their open sockets
    /// close (1008 "session revoked") on every instance, and they cannot log in.
    DisableUser {
        /// The user's name (any spelling of it).
        username: String,
    },
    /// Let a disabled user log in again (the tokens they had stay dead).
    EnableUser {
        /// The user's name (any spelling of it).
        username: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// jemalloc instead of glibc's malloc: the send path allocates per message (frames, events,
/// rows), and glibc's malloc, free and realloc took a third of the server's CPU at 20,000
/// durable sends/s; with jemalloc the same machine commits 25-30 % more (BENCHMARKS.md §10),
/// with the same memory per idle socket.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        Command::CreateOperator { username } => {
            grant(&settings, &username, UserRole::Operator).await?
        }
        Command::CreateAdmin { username } => grant(&settings, &username, UserRole::Admin).await?,
        Command::DisableUser { username } => {
            let store = operator_store(&settings).await?;
            let user = chat_services::disable_user(&store, &username).await?;
            println!(
                "{} (id {}) is disabled; every session ended",
                user.username, user.id
            );
        }
        Command::EnableUser { username } => {
            let store = operator_store(&settings).await?;
            let user = chat_services::enable_user(&store, &username).await?;
            println!("{} (id {}) may log in again", user.username, user.id);
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

/// The store for an operator's command, after migrating the database.
async fn operator_store(settings: &Settings) -> anyhow::Result<chat_services::Store> {
    chat_selectors::run_migrations(&settings.database_url).await?;
    Ok(chat_services::Store::connect(&settings.store_config()).await?)
}

/// Gives `username` the role `role`, creating the user with a random password when needed.
async fn grant(settings: &Settings, username: &str, role: UserRole) -> anyhow::Result<()> {
    let name = Username::parse(username).map_err(|e| anyhow::anyhow!("invalid username: {e:?}"))?;
    let store = operator_store(settings).await?;
    let mut created = None;
    if chat_selectors::user_by_username(&store, name.as_str())
        .await
        .is_err()
    {
        let secret = format!("{:032x}", rand::random::<u128>());
        let password = Password::parse(&secret).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        chat_services::register(&store, &name, None, Some(&password), settings.bcrypt_cost).await?;
        created = Some(secret);
    }
    let user = chat_services::set_user_role(&store, &name, role).await?;
    match created {
        Some(password) => println!(
            "created {} (id {}) as {}; password: {password}",
            user.username,
            user.id,
            role.as_str()
        ),
        None => println!(
            "{} (id {}) is now {}",
            user.username,
            user.id,
            role.as_str()
        ),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            },
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler: stop with Ctrl-C");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
