//! What every handler shares.

use std::sync::Arc;

use chat_selectors::Store;

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::realtime::Hub;

/// Shared state of one server instance (cloned into every worker; all fields are shared).
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL + Redis.
    pub store: Store,
    /// Settings as loaded at start-up.
    pub settings: Arc<Settings>,
    /// Access-token keys.
    pub jwt: JwtKeys,
    /// This process's live sockets, by chat.
    pub hub: Arc<Hub>,
    /// Turns `true` when the server shuts down: every socket closes with 1012 (service restart).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}
