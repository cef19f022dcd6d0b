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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forced_close_is_a_warning_and_counted_by_door_and_reason() {
    if chat_test_support::own_process!() {
        return;
    }
    let captured = captured();
    let env = chat_test_support::TestEnv::new().await;
    let settings = chat_api::Settings {
        ws_max_frame_bytes: 1024,
        ws_frames_per_sec: 1,
        ws_frame_burst: 2,
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "g").await;
    // A frame over the limit on the gateway: 1009.
    let (mut gateway, _) = app.gateway(&alice).await;
    gateway.send_text(&"x".repeat(2048)).await;
    let (_, close) = gateway.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1009));
    // Frames past the rate limit on door 002, a burst's worth in a row: 1008.
    let mut door_002 = app.group_socket(&alice, "g").await;
    for _ in 0..8 {
        door_002
            .send_json(json!({"action": "retrieve_message"}))
            .await;
    }
    let (_, close) = door_002.recv_close().await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1008));
    // A client's own close is not a forced one.
    let (mut leaving, _) = app.gateway(&alice).await;
    leaving.stream.close(None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |door: &str, reason: &str| {
        let line =
            format!("chat_websocket_forced_closes_total{{door=\"{door}\",reason=\"{reason}\"}} ");
        super::metrics::value(&metrics, &line)
    };
    assert_eq!(count("gateway", "frame_too_big"), Some(1.0), "{metrics}");
    assert_eq!(count("door_002", "flood"), Some(1.0), "{metrics}");
    let total: usize = metrics
        .lines()
        .filter(|l| l.starts_with("chat_websocket_forced_closes_total{"))
        .count();
    assert_eq!(total, 2, "only the two forced closes: {metrics}");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("socket closed by the server"))
        .collect();
    assert_eq!(closes.len(), 2, "{logs}");
    for (door, reason) in [("gateway", "frame_too_big"), ("door_002", "flood")] {
        let line = closes
            .iter()
            .find(|l| l.contains(&format!("\"reason\":\"{reason}\"")))
            .unwrap_or_else(|| panic!("no warning for {reason}: {logs}"));
        assert!(line.contains("\"WARN\""), "{line}");
        assert!(line.contains(&format!("\"door\":\"{door}\"")), "{line}");
    }
}
