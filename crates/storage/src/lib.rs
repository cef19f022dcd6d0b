//! The storage plumbing that reads (`chat-selectors`) and writes (`chat-services`) share.
//!
//! What lives here: the PostgreSQL pool and schema, the embedded migrations, the Redis
//! connection with its circuit breaker ([`redis_link`]), the Redis keyspace ([`Keys`]), the
//! control events carried between instances ([`ControlEvent`]) and the one [`Error`] of the
//! storage layers, with the helpers that classify database faults. Nothing here knows a rule of
//! the chat core.

mod control;
mod error;
mod keys;
mod migrations;
pub mod redis_link;
pub mod schema;
mod store;

pub use control::ControlEvent;
pub use error::{Error, Result, foreign_key_violation, transient_database_fault, unique_violation};
pub use keys::{DEFAULT_EVENT_SHARDS, Keys, Topic};
pub use migrations::{MIGRATIONS, run_migrations, run_migrations_until};
pub use redis_link::{RedisHealth, RedisLink};
pub use store::{DbConn, RedisClient, Store, StoreConfig, with_tcp_timeouts};
