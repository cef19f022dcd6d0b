//! What the security suite (tests/api/security.rs) cannot reach from outside: users deleted behind
//! the server's back, the settings that decide door 002's socket URLs and the door tokens'
//! lifetime, and the periodic check that closes sockets a lost revocation event left open.

use std::time::Duration;

use chat_test_support::{TestApp, TestEnv};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};

async fn delete_user(app: &TestApp, id: i64) {
    let mut conn = AsyncPgConnection::establish(&app.env.database_url)
        .await
        .unwrap();
    conn.batch_execute(&format!("DELETE FROM users WHERE id = {id}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deleted_while_cached_is_404_not_500() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "g"}),
        )
        .await;
    let group = group["id"].as_i64().unwrap();
    // Their profiles are cached now (the search and the gateway read them).
    for user in [&bob, &carol] {
        let (status, _) = app.get("/api/v1/users/me", Some(&user.access)).await;
        assert_eq!(status, 200);
    }
    delete_user(&app, bob.id).await;
    delete_user(&app, carol.id).await;
    let (status, body) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{group}/members"),
            Some(&alice.access),
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/api/v1/chat/add-friend/bob",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, chats) = app.get("/api/v1/chats", Some(&alice.access)).await;
    assert_eq!(
        chats.as_array().unwrap().len(),
        1,
        "nothing was created: {chats}"
    );
    // A deleted user's token stops within the cut-off's cache times (Redis 5 s, the instance's
    // copy 1 s), not the profile's 5 minutes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = app.get("/api/v1/users/me", Some(&bob.access)).await;
        if status == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's token still works"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_check_closes_the_sockets_of_a_deleted_user() {
    let app = TestApp::spawn().await;
    let bob = app.user("bob").await;
    let (mut socket, _) = app.gateway(&bob).await;
    delete_user(&app, bob.id).await;
    let state = &app.server.as_ref().unwrap().state;
    let check = tokio::spawn(chat_api::realtime::sessions::run_checks(
        state.store.clone(),
        state.hub.clone(),
        Duration::from_millis(100),
    ));
    let (_, close) = socket.recv_close().await;
    check.abort();
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("revoked"), "{}", close.reason);
}

async fn socket_url(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> String {
    let mut req = app
        .http
        .get(app.url("/api/v1/chat/chat-group/room"))
        .bearer_auth(token);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    body["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_urls_come_from_the_public_url_then_a_trusted_proxy_then_host() {
    let forwarded = [
        ("X-Forwarded-Host", "proxy.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    let env = TestEnv::new().await;
    let plain = TestApp::spawn_with(env.clone(), env.settings()).await;
    let alice = plain.user("alice").await;
    plain.create_group_002(&alice, "room").await;
    let addr = plain.base.trim_start_matches("http://").to_owned();
    let url = socket_url(&plain, &alice.access, &forwarded).await;
    assert_eq!(
        url,
        format!("ws://{addr}/ws/group/room/?token={}", alice.access)
    );

    let trusting = TestApp::spawn_with(
        env.clone(),
        chat_api::Settings {
            trust_proxy: true,
            ..env.settings()
        },
    )
    .await;
    let url = socket_url(&trusting, &alice.access, &forwarded).await;
    assert!(
        url.starts_with("wss://proxy.example/ws/group/room/"),
        "{url}"
    );

    let public = TestApp::spawn_with(
        env.clone(),
        chat_api::Settings {
            trust_proxy: true,
            public_url: Some("https://chat.example.com/".into()),
            ..env.settings()
        },
    )
    .await;
    let url = socket_url(&public, &alice.access, &forwarded).await;
    assert!(
        url.starts_with("wss://chat.example.com/ws/group/room/?token="),
        "{url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_tokens_live_as_long_as_the_setting_says() {
    use base64::Engine;
    let env = TestEnv::new().await;
    let app = TestApp::spawn_with(
        env.clone(),
        chat_api::Settings {
            door_token_ttl_secs: 600,
            ..env.settings()
        },
    )
    .await;
    let alice = app.user("alice").await;
    let response = app
        .http
        .put(app.url("/login"))
        .json(&json!({"email": "alice@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let left = claims["exp"].as_i64().unwrap() - now;
    assert!((595..=601).contains(&left), "{claims}: {left} s left");
    assert_eq!(claims["user_id"], alice.id);
}
