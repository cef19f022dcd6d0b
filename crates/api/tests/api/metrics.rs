//! `/metrics` in the Prometheus text format reflects real traffic. The recorder is process-wide,
//! so a test that reads it runs in a process of its own (`own_process!`): other tests' sockets
//! and messages would count too.

use chat_test_support::TestApp;
use serde_json::json;

/// The value of the first line of `metrics` that starts with `line_start`.
pub(super) fn value(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_messages_deliveries_and_latencies() {
    if chat_test_support::own_process!() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "g").await;
    let chat = app.latest_chat(&alice).await;
    let (mut gateway, _) = app.gateway(&alice).await;
    let mut door_002 = app.group_socket(&alice, "g").await;
    app.send(&alice, chat, "one").await;
    gateway.recv_event("message.created").await;
    door_002.recv_json().await;

    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let metrics = response.text().await.unwrap();
    assert_eq!(
        value(&metrics, "chat_websocket_connections{door=\"gateway\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "chat_websocket_connections{door=\"door_002\"}"),
        Some(1.0)
    );
    assert!(value(&metrics, "chat_messages_accepted_total").unwrap() >= 1.0);
    assert!(
        value(&metrics, "chat_writer_batch_size_count").unwrap() >= 1.0,
        "sends go through the message writer"
    );
    assert!(metrics.contains("chat_writer_batch_size_bucket{le=\"512\"}"));
    assert!(value(&metrics, "chat_deliveries_total").unwrap() >= 2.0);
    assert!(value(&metrics, "chat_fanout_delay_seconds_count").unwrap() >= 2.0);
    assert!(metrics.contains("chat_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/chats/{id}/messages\",status=\"201\""), "route patterns, not raw paths");
    assert!(metrics.contains("chat_db_pool_connections{state=\"in_use\"}"));
    assert!(metrics.contains("chat_db_pool_connections{state=\"waiting\"}"));

    drop(gateway);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, _) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        value(&metrics, "chat_websocket_connections{door=\"gateway\"}"),
        Some(0.0),
        "a closed socket is counted out"
    );
}

/// Behind a load balancer an operator (and `make compose-test`) tells the instances apart by
/// `X-Chat-Instance`: on plain responses and on the WebSocket upgrade, the same per instance and
/// different between instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_names_the_instance_that_answered() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer().await;
    let alice = a.user("alice").await;
    let header = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-chat-instance")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let a_id = header(&a.http.get(a.url("/healthz")).send().await.unwrap()).expect("no header");
    let b_id = header(&b.http.get(b.url("/readyz")).send().await.unwrap()).expect("no header");
    assert_ne!(a_id, b_id);
    let not_found = a.http.get(a.url("/nowhere")).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    assert_eq!(header(&not_found).as_deref(), Some(a_id.as_str()));
    let (_socket, upgrade) =
        tokio_tungstenite::connect_async(format!("{}/api/v1/ws?token={}", b.ws_base, alice.access))
            .await
            .unwrap();
    let on_upgrade = upgrade
        .headers()
        .get("x-chat-instance")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(on_upgrade.as_deref(), Some(b_id.as_str()));
}
