//! Starting and stopping one server instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use chat_selectors::run_migrations;
use chat_services::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::doors;
use crate::realtime::{Hub, bus};
use crate::state::AppState;

/// Response header naming the instance that answered: its random id, the one presence leases
/// use (`X-Chat-Instance: <12 hex digits>`), on every response of the main listener.
pub const INSTANCE_HEADER: &str = "X-Chat-Instance";

/// A server that is accepting connections.
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// Where door 001 is served (alone, never on the main listener), when `CHAT_DOOR_AVITO` is on.
    pub avito_addr: Option<SocketAddr>,
    /// The instance's shared state (store, hub), for tests and tooling.
    pub state: AppState,
    handle: ServerHandle,
    server: JoinHandle<std::io::Result<()>>,
    avito: Option<(ServerHandle, JoinHandle<std::io::Result<()>>)>,
    shutdown: tokio::sync::watch::Sender<bool>,
    subscriber: JoinHandle<()>,
    session_checks: JoinHandle<()>,
    liveness: JoinHandle<()>,
}

impl RunningServer {
    /// Shuts down gracefully: every WebSocket is closed with 1012 (service restart) so its client
    /// reconnects elsewhere, then the server stops accepting and lets in-flight requests finish
    /// (at most 10 s), then the event subscriber ends.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        // Give the sessions a moment to write their close frames (bounded).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.state.hub.subscription_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some((handle, server)) = self.avito {
            handle.stop(true).await;
            let _ = server.await;
        }
        self.handle.stop(true).await;
        self.subscriber.abort();
        self.session_checks.abort();
        self.liveness.abort();
        let instance = self.state.hub.instance();
        let grace = Duration::from_millis(self.state.settings.presence_grace_ms);
        if let Err(e) =
            chat_services::presence::forget_instance(&self.state.store, instance, grace).await
        {
            tracing::warn!(error = %e, "instance not removed from the presence set; it expires");
        }
        let _ = self.server.await;
    }

    /// Ends like a killed process, for tests: no socket is closed or told, no presence entry
    /// removed, every task of the instance stops at once.
    pub async fn crash(self) {
        self.subscriber.abort();
        self.session_checks.abort();
        self.liveness.abort();
        if let Some((handle, _)) = &self.avito {
            handle.stop(false).await;
        }
        self.handle.stop(false).await;
    }

    /// Waits until the server ends (after [`ServerHandle::stop`] from elsewhere).
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }
}

/// Starts a server instance and returns once it serves.
///
/// Connects to PostgreSQL and Redis, starts the message writer (`CHAT_DB_WRITERS` tasks on the
/// calling runtime), applies pending migrations, subscribes to the event bus, binds
/// `settings.listen` and starts serving.
///
/// Errors name what could not be reached.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    if settings.jwt_secret.is_none() {
        tracing::warn!(
            "CHAT_JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Anyone can forge \
             tokens for this server. Set CHAT_JWT_SECRET before exposing it."
        );
    }
    let store = Store::connect(&settings.store_config())
        .await
        .with_context(|| format!("cannot reach Redis at {}", settings.redis_url))?;
    // On this (the main) runtime, before the store is cloned into the HTTP workers, whose
    // single-thread runtimes must not host the writers.
    chat_services::start_writer(&store, settings.db_writers)
        .context("cannot start the message writer")?;
    let applied = run_migrations(&settings.database_url)
        .await
        .with_context(|| "cannot migrate the database at DATABASE_URL".to_string())?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }

    crate::metrics::install();
    let hub = Arc::new(Hub::new(store.keys.clone()));
    let cut_offs = Arc::new(crate::auth::CutOffs::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let subscriber = tokio::spawn(bus::run_subscriber(
        store.redis_client.clone(),
        hub.clone(),
        cut_offs.clone(),
        ready_tx,
    ));
    if tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .is_err()
    {
        subscriber.abort();
        anyhow::bail!(
            "cannot subscribe to Redis pub/sub at {}",
            settings.redis_url
        );
    }

    let session_checks = tokio::spawn(crate::realtime::sessions::run_checks(
        store.clone(),
        hub.clone(),
        crate::realtime::sessions::CHECK_EVERY,
    ));
    let liveness = tokio::spawn(instance_liveness(store.clone(), hub.clone()));

    let settings = Arc::new(settings);
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = AppState::new(crate::state::Shared {
        shutdown: shutdown_rx,
        jwt: JwtKeys::new(
            &settings.jwt_secret_bytes(),
            settings.access_ttl_secs,
            settings.door_token_ttl_secs,
        ),
        store,
        settings: settings.clone(),
        hub,
        cut_offs,
        handshakes: tokio::sync::Semaphore::new((settings.db_pool_size / 2).max(1)),
    });
    let data = web::Data::new(state.clone());
    let door_settings = settings.clone();
    let instance = state.hub.instance().to_owned();
    let mut server = HttpServer::new(move || {
        App::new()
            // Which instance answered (also on the WebSocket upgrade), so an operator or a test
            // behind a load balancer can tell the instances apart.
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((INSTANCE_HEADER, instance.clone())),
            )
            .wrap(actix_web::middleware::from_fn(
                crate::metrics::time_requests,
            ))
            .wrap(crate::logging::middleware())
            .app_data(data.clone())
            .configure(|cfg| doors::configure(cfg, &door_settings))
            .configure(crate::web_client::configure)
            .default_service(web::to(doors::not_found))
    })
    .disable_signals()
    .shutdown_timeout(10);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    let server = server
        .bind(&settings.listen)
        .with_context(|| format!("cannot listen on CHAT_LISTEN={}", settings.listen))?;
    let addr = *server.addrs().first().context("bound to no address")?;
    let server = server.run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    tracing::info!(%addr, "chat server listening");

    if !settings.door_avito && settings.avito_listen.is_some() {
        tracing::warn!(
            "CHAT_AVITO_LISTEN is set but door 001 is off: set CHAT_DOOR_AVITO=true to serve it"
        );
    }
    let (avito_addr, avito) = match settings.door_avito.then(|| settings.avito_listen_addr()) {
        Some(listen) => {
            let data = web::Data::new(state.clone());
            let door = HttpServer::new(move || {
                App::new()
                    .wrap(actix_web::middleware::from_fn(doors::avito::rate_limit))
                    .wrap(crate::logging::middleware())
                    .app_data(data.clone())
                    .configure(doors::avito::configure)
                    .default_service(web::to(doors::avito::not_found))
            })
            .disable_signals()
            .workers(1)
            .bind(listen)
            .with_context(|| format!("cannot listen on CHAT_AVITO_LISTEN={listen}"))?;
            let door_addr = *door.addrs().first().context("bound to no address")?;
            let door = door.run();
            let door_handle = door.handle();
            tracing::info!(addr = %door_addr, "door 001 listening");
            if !door_addr.ip().is_loopback() {
                tracing::warn!(
                    addr = %door_addr,
                    "door 001 has no authentication and listens beyond this host: anyone who \
                     reaches this address can create users and chats in its sandbox. Keep it on \
                     an internal network."
                );
            }
            (Some(door_addr), Some((door_handle, tokio::spawn(door))))
        }
        None => (None, None),
    };
    Ok(RunningServer {
        addr,
        avito_addr,
        state,
        handle,
        server,
        avito,
        shutdown,
        subscriber,
        session_checks,
        liveness,
    })
}

/// Runs forever: renews this instance's presence heartbeat, and sweeps the presence of
/// instances that died without a word (their users go offline for the others), every
/// `chat_services::presence::INSTANCE_BEAT`. Redis faults skip a beat (logged).
async fn instance_liveness(store: Store, hub: Arc<Hub>) {
    use chat_services::presence::{INSTANCE_BEAT, register_instance, sweep_dead_instances};
    let mut beats = tokio::time::interval(INSTANCE_BEAT);
    loop {
        beats.tick().await;
        if let Err(e) = register_instance(&store, hub.instance()).await {
            tracing::debug!(error = %e, "instance heartbeat skipped");
            continue;
        }
        if let Err(e) = sweep_dead_instances(&store).await {
            tracing::warn!(error = %e, "presence sweep of dead instances failed");
        }
    }
}
