//! What every handler shares.

use std::sync::Arc;

use chat_services::Store;

use crate::auth::{CutOffs, JwtKeys};
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
    /// This process's copy of users' token cut-offs (see [`CutOffs`]).
    pub cut_offs: Arc<CutOffs>,
    /// Turns `true` when the server shuts down: every socket closes with 1012 (service restart).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}
