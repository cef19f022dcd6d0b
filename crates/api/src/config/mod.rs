//! Server settings, loaded once at start-up and passed down (no globals).
//!
//! Sources, later ones winning: built-in defaults, then a TOML file (`chat.toml` in the working
//! directory, or the path in `CHAT_CONFIG`), then environment variables. Every variable:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/chat` | PostgreSQL (TCP timeouts added unless set: `chat_selectors::with_tcp_timeouts`) |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` | Redis (one server; unused when `REDIS_CLUSTER_URLS` is set) |
//! | `REDIS_CLUSTER_URLS` | unset | a Redis Cluster instead: seed nodes, comma-separated (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`); live events then use sharded pub/sub (Redis 7) |
//! | `CHAT_LISTEN` | `127.0.0.1:8080` | address:port the HTTP/WebSocket server binds |
//! | `CHAT_JWT_SECRET` | a development secret, with a loud warning | HS256 key for access tokens |
//! | `CHAT_BCRYPT_COST` | `12` | bcrypt cost, 4..=31 |
//! | `CHAT_ACCESS_TTL_SECS` | `900` | access token lifetime, s |
//! | `CHAT_DOOR_TOKEN_TTL_SECS` | `86400` (24 h, as the seeds) | lifetime of the tokens doors 000, 003 and 004 issue, s |
//! | `CHAT_REFRESH_TTL_SECS` | `2592000` (30 days) | refresh token lifetime, s |
//! | `CHAT_MAX_MESSAGE_CHARS` | `4096` | longest message text, characters |
//! | `CHAT_MAX_BODY_BYTES` | `65536` | largest HTTP JSON body, bytes |
//! | `CHAT_WS_MAX_FRAME_BYTES` | `65536` | largest WebSocket frame, bytes; larger closes with 1009 |
//! | `CHAT_WS_OUTBOUND_QUEUE` | `256` | frames queued per socket before a slow reader is disconnected |
//! | `CHAT_WS_HEARTBEAT_SECS` | `30` | ping interval, s |
//! | `CHAT_WS_CLIENT_TIMEOUT_SECS` | `90` | a socket silent this long is closed, s |
//! | `CHAT_PRESENCE_GRACE_MS` | `15000` | a user whose last socket closed is announced offline only if no socket of theirs is back within this, ms (a reload or a reconnect storm shows nobody gone and back) |
//! | `CHAT_WS_WRITE_TIMEOUT_MS` | `10000` | a socket write blocked this long closes it, ms |
//! | `CHAT_WS_FRAMES_PER_SEC` | `50` | client frames a socket may send per second, on average (every door; 0: no limit) |
//! | `CHAT_WS_FRAME_BURST` | `100` | client frames a socket may send at once; past it each frame gets an error with `retry_after`, and the burst again refused closes it with 1008 |
//! | `CHAT_REDIS_PREFIX` | `chat:` | prefix of every Redis key and channel (no braces: keys carry Redis Cluster hash tags after it) |
//! | `CHAT_EVENT_SHARDS` | `1024` | shards of the live-event channels: an instance listens only to the shards of its sockets' chats; the same on every instance of a deployment |
//! | `CHAT_DB_POOL_SIZE` | `16` | PostgreSQL connections per process |
//! | `CHAT_DB_WAIT_TIMEOUT_MS` | `5000` | wait for a pooled connection, ms; then 503 |
//! | `CHAT_DB_WRITERS` | `4` | message writer tasks (group commit), 1..=`CHAT_DB_POOL_SIZE`; each holds one pooled connection while a batch runs |
//! | `CHAT_WORKERS` | `0` (one per core) | HTTP worker threads |
//! | `CHAT_LOG_FORMAT` | `pretty` | `pretty` or `json` |
//! | `CHAT_RATE_SEND_PER_MIN` | `120` | messages one user may send per minute, all instances together (0: off) |
//! | `CHAT_RATE_AUTH_PER_MIN` | `20` | logins, registrations and token refreshes per client address per minute (0: off) |
//! | `CHAT_TRUST_PROXY` | `false` | take the client address, host and scheme from `X-Forwarded-*`/`Forwarded` (behind a proxy you run) |
//! | `CHAT_PUBLIC_URL` | unset | the server's public address (`https://chat.example.com`); door 002's socket URLs are built from it, else from `Host` |
//! | `CHAT_DOOR_REALTIME_CHAT` | `true` | serve door 002 (`/api/v1/chat/...`, `/ws/user/`, `/ws/group/`) |
//! | `CHAT_DOOR_AVITO` | `false` | serve door 001 (`/users/add`, ...: no auth, a sandbox of its own users and chats) on its own listener |
//! | `CHAT_AVITO_LISTEN` | `127.0.0.1:9000` | door 001's listener, when the door is on (never the main one); a warning is logged unless it is a loopback address |
//! | `CHAT_AVITO_RATE_PER_MIN` | `6000` | requests per client address per minute on door 001, every route counted, all instances together (0: off); door 001 has its own limit instead of the login and send limits |
//! | `CHAT_DOOR_ROOMS` | `true` | serve door 004 (`/register`, `PUT /login`, ..., `/ws`) |
//! | `CHAT_DOOR_SUPPORT` | `true` | serve door 003 (`/v1/auth/`, `/v1/ws/`) |
//! | `CHAT_DOOR_WSCHAT` | `true` | serve door 000 (`/auth/sign-up`, `/group_chat`, `/chat`, `/chat_group`) |
//! | `CHAT_ROOMS_MAX_FRAME_BYTES` | `16384` | door 004's largest WebSocket frame, bytes |
//! | `CHAT_ROOMS_MAX_MESSAGE_BYTES` | `2000` | door 004's longest message, bytes |
//! | `CHAT_CONFIG` | `chat.toml` | the TOML file read before the environment (keys are the names above without `CHAT_`, lowercase) |
//! | `RUST_LOG` | `info` | log filter (tracing-subscriber `EnvFilter` syntax) |
//!
//! A `CHAT_*` variable or a file key that is not a setting stops start-up with a message naming it
//! and the nearest known name (a typo would otherwise leave the default in force).

mod names;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;

/// The development JWT secret used when `CHAT_JWT_SECRET` is not set (never in production).
pub const DEV_JWT_SECRET: &str = "dev-only-insecure-secret-change-me";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (development).
    Pretty,
    /// One JSON object per line (production).
    Json,
}

/// Every setting of the server; see the module docs for the variables and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
#[expect(
    missing_docs,
    reason = "each setting is documented in docs/configuration.md, which a test checks"
)]
pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
    pub redis_cluster_urls: Option<String>,
    pub listen: String,
    pub jwt_secret: Option<SecretString>,
    pub bcrypt_cost: u32,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub door_token_ttl_secs: u64,
    pub max_message_chars: usize,
    pub max_body_bytes: usize,
    pub ws_max_frame_bytes: usize,
    pub ws_outbound_queue: usize,
    pub ws_heartbeat_secs: u64,
    pub ws_client_timeout_secs: u64,
    pub ws_write_timeout_ms: u64,
    pub presence_grace_ms: u64,
    pub ws_frames_per_sec: u32,
    pub ws_frame_burst: u32,
    pub redis_prefix: String,
    pub event_shards: u32,
    pub db_pool_size: usize,
    pub db_wait_timeout_ms: u64,
    pub db_writers: usize,
    pub workers: usize,
    pub log_format: LogFormat,
    pub rate_send_per_min: u32,
    pub rate_auth_per_min: u32,
    pub trust_proxy: bool,
    pub public_url: Option<String>,
    pub door_realtime_chat: bool,
    pub door_avito: bool,
    pub avito_listen: Option<String>,
    pub avito_rate_per_min: u32,
    pub door_rooms: bool,
    pub door_wschat: bool,
    pub door_support: bool,
    pub rooms_max_frame_bytes: usize,
    pub rooms_max_message_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432/chat".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster_urls: None,
            listen: "127.0.0.1:8080".into(),
            jwt_secret: None,
            bcrypt_cost: 12,
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            door_token_ttl_secs: 24 * 3600,
            max_message_chars: 4096,
            max_body_bytes: 64 * 1024,
            ws_max_frame_bytes: 64 * 1024,
            ws_outbound_queue: 256,
            ws_heartbeat_secs: 30,
            ws_client_timeout_secs: 90,
            ws_write_timeout_ms: 10_000,
            presence_grace_ms: 15_000,
            ws_frames_per_sec: 50,
            ws_frame_burst: 100,
            redis_prefix: "chat:".into(),
            event_shards: chat_selectors::DEFAULT_EVENT_SHARDS,
            db_pool_size: 16,
            db_wait_timeout_ms: 5_000,
            db_writers: chat_services::DEFAULT_WRITERS,
            workers: 0,
            log_format: LogFormat::Pretty,
            rate_send_per_min: 120,
            rate_auth_per_min: 20,
            trust_proxy: false,
            public_url: None,
            door_realtime_chat: true,
            door_avito: false,
            avito_listen: None,
            avito_rate_per_min: 6000,
            door_rooms: true,
            door_wschat: true,
            door_support: true,
            rooms_max_frame_bytes: 16 * 1024,
            rooms_max_message_bytes: 2000,
        }
    }
}

impl Settings {
    /// Every environment variable the settings read (the module docs describe each).
    pub const VARIABLES: [&'static str; 40] = [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_CLUSTER_URLS",
        "CHAT_LISTEN",
        "CHAT_JWT_SECRET",
        "CHAT_BCRYPT_COST",
        "CHAT_ACCESS_TTL_SECS",
        "CHAT_REFRESH_TTL_SECS",
        "CHAT_DOOR_TOKEN_TTL_SECS",
        "CHAT_MAX_MESSAGE_CHARS",
        "CHAT_MAX_BODY_BYTES",
        "CHAT_WS_MAX_FRAME_BYTES",
        "CHAT_WS_OUTBOUND_QUEUE",
        "CHAT_WS_HEARTBEAT_SECS",
        "CHAT_WS_CLIENT_TIMEOUT_SECS",
        "CHAT_WS_WRITE_TIMEOUT_MS",
        "CHAT_PRESENCE_GRACE_MS",
        "CHAT_WS_FRAMES_PER_SEC",
        "CHAT_WS_FRAME_BURST",
        "CHAT_REDIS_PREFIX",
        "CHAT_EVENT_SHARDS",
        "CHAT_DB_POOL_SIZE",
        "CHAT_DB_WAIT_TIMEOUT_MS",
        "CHAT_DB_WRITERS",
        "CHAT_WORKERS",
        "CHAT_LOG_FORMAT",
        "CHAT_RATE_SEND_PER_MIN",
        "CHAT_RATE_AUTH_PER_MIN",
        "CHAT_TRUST_PROXY",
        "CHAT_PUBLIC_URL",
        "CHAT_DOOR_REALTIME_CHAT",
        "CHAT_DOOR_AVITO",
        "CHAT_AVITO_LISTEN",
        "CHAT_AVITO_RATE_PER_MIN",
        "CHAT_DOOR_ROOMS",
        "CHAT_ROOMS_MAX_FRAME_BYTES",
        "CHAT_ROOMS_MAX_MESSAGE_BYTES",
        "CHAT_DOOR_WSCHAT",
        "CHAT_DOOR_SUPPORT",
        "CHAT_CONFIG",
    ];

    /// The default of `CHAT_AVITO_LISTEN`: door 001 on the loopback interface only.
    pub const DEFAULT_AVITO_LISTEN: &'static str = "127.0.0.1:9000";

    /// The settings that `vars` (variable name → value, as in an environment) give over the
    /// defaults, read the way the environment is read (`RUST_LOG` and other foreign names are
    /// skipped). Errors: an unknown `CHAT_*` variable, a malformed value, a failed validation —
    /// each naming the variable.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let vars: Vec<(&str, &str)> = vars.into_iter().collect();
        Self::check_names(vars.iter().map(|(name, _)| *name), None)?;
        let mut figment = Figment::new();
        for (name, value) in vars {
            if !Self::VARIABLES.contains(&name) || name == "CHAT_CONFIG" {
                continue;
            }
            let key = Self::key_of(name);
            let value: figment::value::Value = value
                .parse()
                .map_err(|_| format!("{name}: unreadable value"))?;
            figment = figment.merge(figment::providers::Serialized::global(&key, value));
        }
        let settings: Settings = figment
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads defaults, then the TOML file, then the environment, and validates the result.
    /// Errors: a message naming the bad setting, or a name that is not one.
    pub fn load() -> Result<Self, String> {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        Self::check_names(names.iter().map(String::as_str), None)?;
        let file = std::env::var("CHAT_CONFIG").unwrap_or_else(|_| "chat.toml".into());
        if std::path::Path::new(&file).exists() {
            let keys: figment::value::Dict = Figment::from(Toml::file(&file))
                .extract()
                .map_err(|e| format!("{file}: {e}"))?;
            Self::check_names(keys.keys().map(String::as_str), Some(&file))?;
        }
        let settings: Settings = Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("CHAT_").ignore(&["CONFIG"]))
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL", "REDIS_CLUSTER_URLS"]))
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every bound. Errors: `"<VARIABLE> must ..."`.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 18] = [
            (
                !self.redis_prefix.contains(['{', '}']),
                "CHAT_REDIS_PREFIX must not contain braces (keys carry Redis Cluster hash tags)",
            ),
            (
                (1..=65_536).contains(&self.event_shards),
                "CHAT_EVENT_SHARDS must be 1..=65536",
            ),
            (
                self.redis_cluster_urls.as_deref().is_none_or(|urls| {
                    !self.cluster_nodes().is_empty()
                        && urls.split(',').all(|u| {
                            let u = u.trim();
                            u.starts_with("redis://") || u.starts_with("rediss://")
                        })
                }),
                "REDIS_CLUSTER_URLS must be redis://host:port addresses, comma-separated",
            ),
            (
                (4..=31).contains(&self.bcrypt_cost),
                "CHAT_BCRYPT_COST must be 4..=31",
            ),
            (
                self.access_ttl_secs >= 1,
                "CHAT_ACCESS_TTL_SECS must be at least 1",
            ),
            (
                self.refresh_ttl_secs >= 1,
                "CHAT_REFRESH_TTL_SECS must be at least 1",
            ),
            (
                self.door_token_ttl_secs >= 1,
                "CHAT_DOOR_TOKEN_TTL_SECS must be at least 1",
            ),
            (
                self.ws_frame_burst >= 1,
                "CHAT_WS_FRAME_BURST must be at least 1",
            ),
            (
                self.public_url.as_deref().is_none_or(|u| {
                    let u = u.trim_end_matches('/');
                    let rest = u
                        .strip_prefix("https://")
                        .or_else(|| u.strip_prefix("http://"));
                    rest.is_some_and(|host| {
                        !host.is_empty() && !host.contains(['/', '?', '#', '@'])
                    })
                }),
                "CHAT_PUBLIC_URL must look like https://chat.example.com (a scheme and a host[:port], no path)",
            ),
            (
                self.max_message_chars >= 1,
                "CHAT_MAX_MESSAGE_CHARS must be at least 1",
            ),
            (
                self.max_body_bytes >= 1024,
                "CHAT_MAX_BODY_BYTES must be at least 1024",
            ),
            (
                self.ws_max_frame_bytes >= 1024,
                "CHAT_WS_MAX_FRAME_BYTES must be at least 1024",
            ),
            (
                self.ws_outbound_queue >= 1,
                "CHAT_WS_OUTBOUND_QUEUE must be at least 1",
            ),
            (
                self.ws_heartbeat_secs >= 1 && self.ws_client_timeout_secs > self.ws_heartbeat_secs,
                "CHAT_WS_CLIENT_TIMEOUT_SECS must exceed CHAT_WS_HEARTBEAT_SECS (>= 1)",
            ),
            (
                self.db_pool_size >= 1,
                "CHAT_DB_POOL_SIZE must be at least 1",
            ),
            (
                (1..=self.db_pool_size).contains(&self.db_writers),
                "CHAT_DB_WRITERS must be at least 1 and at most CHAT_DB_POOL_SIZE (each writer \
                 holds one pooled connection while it writes a batch)",
            ),
            (
                self.rooms_max_frame_bytes >= 1024 && self.rooms_max_message_bytes >= 1,
                "CHAT_ROOMS_MAX_FRAME_BYTES must be at least 1024, CHAT_ROOMS_MAX_MESSAGE_BYTES at least 1",
            ),
            (
                self.listen.parse::<std::net::SocketAddr>().is_ok(),
                "CHAT_LISTEN must be an address:port such as 127.0.0.1:8080",
            ),
        ];
        if let Some(listen) = &self.avito_listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err("CHAT_AVITO_LISTEN must be an address:port such as 127.0.0.1:9000".into());
        }
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }

    /// Door 001's listener address: `CHAT_AVITO_LISTEN`, else [`Self::DEFAULT_AVITO_LISTEN`].
    pub fn avito_listen_addr(&self) -> &str {
        self.avito_listen
            .as_deref()
            .unwrap_or(Self::DEFAULT_AVITO_LISTEN)
    }

    /// The JWT secret, or the development one (the caller warns).
    pub fn jwt_secret_bytes(&self) -> Vec<u8> {
        use secrecy::ExposeSecret;
        match &self.jwt_secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => DEV_JWT_SECRET.as_bytes().to_vec(),
        }
    }

    /// The seed nodes of `REDIS_CLUSTER_URLS` (empty: one Redis at `REDIS_URL`).
    pub fn cluster_nodes(&self) -> Vec<String> {
        self.redis_cluster_urls
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The store's share of the settings.
    pub fn store_config(&self) -> chat_selectors::StoreConfig {
        chat_selectors::StoreConfig {
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            redis_cluster_urls: self.cluster_nodes(),
            event_shards: self.event_shards,
            redis_prefix: self.redis_prefix.clone(),
            db_pool_size: self.db_pool_size,
            db_wait_timeout_ms: self.db_wait_timeout_ms,
            send_per_min: self.rate_send_per_min,
        }
    }
}

#[cfg(test)]
mod tests;
