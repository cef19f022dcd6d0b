//! What every handler shares.

use std::sync::Arc;

use chat_services::Store;

use crate::auth::{CutOffs, JwtKeys};
use crate::config::Settings;
use crate::realtime::Hub;

/// Shared state of one server instance: one allocation, each clone a pointer (every socket
/// holds one, so a clone must not copy the keys and handles: 8 bytes, not ~600).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of an instance made of `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
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
    /// Admission of socket handshakes to PostgreSQL: at most half the pool at once, the others
    /// wait their turn (a reconnect storm queues instead of failing, and REST requests always
    /// find connections free).
    pub handshakes: tokio::sync::Semaphore,
}
