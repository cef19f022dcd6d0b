//! What the logs hold: a request id on every request's lines, never a token, password or
//! message text, and the warnings an operator must see.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chat_test_support::TestApp;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process's log, captured (one global subscriber per process: each test here runs in a
/// process of its own, `own_process!`, where no other test has installed one first).
fn captured() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .json()
                .with_span_events(FmtSpan::CLOSE)
                .with_env_filter("info")
                .with_writer(captured.clone())
                .init();
            captured
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lines_carry_an_id_and_no_secret() {
    if chat_test_support::own_process!() {
        return;
    }
    let captured = captured();
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "g").await;
    let mut socket = app.group_socket(&alice, "g").await;
    socket
        .send_json(json!({"action": "send_message", "message": "the secret plan"}))
        .await;
    socket.recv_json().await;
    drop(socket);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let requests: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"http.method\""))
        .collect();
    assert!(requests.len() >= 4, "request spans logged: {logs}");
    for line in &requests {
        assert!(line.contains("\"request_id\":\""), "{line}");
    }
    for secret in [
        alice.access.as_str(),
        alice.refresh.as_str(),
        "password123",
        "the secret plan",
    ] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
    assert!(
        logs.contains("/ws/group/g/"),
        "the socket's path is logged, without its query"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_001_beyond_loopback_is_a_warning() {
    if chat_test_support::own_process!() {
        return;
    }
    let captured = captured();
    let env = chat_test_support::TestEnv::new().await;
    let settings = chat_api::Settings {
        door_avito: true,
        avito_listen: Some("0.0.0.0:0".into()),
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let door = app.server.as_ref().unwrap().avito_addr.unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warning = logs
        .lines()
        .find(|l| l.contains("door 001 has no authentication"))
        .unwrap_or_else(|| panic!("no warning for door 001 on {door}"));
    assert!(warning.contains("\"WARN\""), "{warning}");
    assert!(warning.contains(&door.to_string()), "{warning}");
}
