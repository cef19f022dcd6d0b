//! The tests' harness: every test gets its own PostgreSQL database, cloned from a migrated
//! template (`CREATE DATABASE .. TEMPLATE`, ~40 ms), and its own Redis key prefix.
//!
//! With feature `app`, real server instances on port 0 talked to over real HTTP and WebSocket
//! connections, with helpers for every door ([`TestApp`], [`WsClient`]). Without it the crate
//! does not depend on `chat-api`, so `chat-services` can dev-depend on it for tests of its rules
//! against a real database ([`TestEnv::store`]) without a dependency cycle.
//!
//! Environment: `TEST_DATABASE_URL` (server URL without a database name, default
//! `postgres://postgres@127.0.0.1:5432`), `REDIS_URL` (default `redis://127.0.0.1:6379`).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

#[cfg(feature = "app")]
mod app;
mod db;
mod private_redis;
mod process;
mod redis_cluster;

#[cfg(feature = "app")]
pub use app::{JWT_SECRET, TestApp, TestUser, WAIT, WsClient, read};
pub use db::{TestEnv, admin_execute, pg_base, redis_url};
pub use private_redis::PrivateRedis;
pub use process::run_in_own_process;
pub use redis_cluster::RedisCluster;
