//! Live delivery: the per-process [`Hub`] of sockets by chat, the Redis [`bus`] that carries
//! committed events between instances, and the socket plumbing the WebSocket doors share.
//!
//! Path of a message: a service commits it and publishes a `ChatEvent` to Redis → every
//! instance's single subscriber connection receives it, wraps it in one [`Event`] → the hub hands
//! the same `Arc<Event>` to each local socket on that chat through its bounded queue → each door
//! renders its wire frame once per event ([`Event::frame`]) and writes the same bytes to all of
//! its sockets.

pub mod bus;
mod hub;
pub mod ordered;
pub mod sessions;
pub mod socket;

pub use hub::{
    Connection, Event, FrameKind, Hub, RECENT, SessionGuard, Signal, Subscription, SupportWatch,
    UserRegistration,
};
