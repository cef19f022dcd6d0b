//! The chat server's HTTP and WebSocket side: settings, auth, the live-delivery hub, and the
//! doors (the native API and the seed protocols), all over the same services and selectors.

pub mod app;
pub mod auth;
pub mod config;
pub mod doors;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod realtime;
pub mod state;
pub mod web_client;

pub use app::{RunningServer, start};
pub use config::Settings;
