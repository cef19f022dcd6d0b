//! The api's integration tests, one binary (one link of the whole app instead of one per file):
//! each file is a module, run against real servers on the harness of `chat-test-support`. A
//! test that reads process-wide state (the metrics recorder, the log subscriber) runs in a
//! process of its own (`chat_test_support::own_process!`). Run one file with
//! `cargo test -p chat-api --test api wire::`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

mod bad_input;
mod chat_flow;
mod chat_model;
mod cli;
mod cluster;
mod compose;
mod door_avito;
mod door_avito_clients;
mod door_rooms;
mod door_support;
mod door_wschat;
mod faults;
mod gateway;
mod group_commit;
mod logging;
mod metrics;
mod migrations;
mod openapi;
mod pipelined_sends;
mod rate_limits;
mod secure_defaults;
mod security;
mod wire;
