//! Rate limits counted in Redis hold across instances; over the limit nothing is written and the
//! client learns when to retry, in its door's format.

use chat_test_support::{TestApp, TestEnv};
use serde_json::json;

/// The limits count per clock minute: start a test well inside one, so it never straddles two.
async fn fresh_window() {
    let into = chrono::Utc::now().timestamp() % 60;
    if into > 50 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - into) as u64)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_over_the_limit_get_429_with_retry_after_from_either_instance() {
    fresh_window().await;
    let env = TestEnv::new().await;
    let settings = || chat_api::Settings {
        rate_auth_per_min: 3,
        ..env.settings()
    };
    let one = TestApp::spawn_with(env.clone(), settings()).await;
    let two = TestApp::spawn_with(env.clone(), settings()).await;
    let login = json!({"username": "nobody", "password": "password123"});
    for app in [&one, &two, &one] {
        let (status, _) = app.post("/api/v1/auth/login/", None, login.clone()).await;
        assert_eq!(status, 401);
    }
    for app in [&two, &one] {
        let response = app
            .http
            .post(app.url("/api/v1/auth/login/"))
            .json(&login)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "rate_limited");
    }
    // Other doors' logins share the address's budget and answer in their own format.
    let rooms = one
        .http
        .put(one.url("/login"))
        .json(&json!({"email": "a@b.cc", "password": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rooms.status(), 429);
    assert!(rooms.headers().contains_key("retry-after"));
    assert_eq!(rooms.text().await.unwrap(), "too many requests\n");
    let support = one
        .http
        .post(one.url("/v1/auth/"))
        .json(&json!({"user_name": "a", "password": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(support.status(), 429);
    assert_eq!(support.text().await.unwrap(), "");
    // Registration is refused too, and creates nothing.
    let (status, _) = two
        .post("/api/v1/auth/register/", None, json!({"username": "late", "email": "late@example.com", "password": "password123", "password2": "password123"}))
        .await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_the_limit_are_refused_everywhere_and_not_stored() {
    fresh_window().await;
    let env = TestEnv::new().await;
    let settings = || chat_api::Settings {
        rate_send_per_min: 3,
        ..env.settings()
    };
    let one = TestApp::spawn_with(env.clone(), settings()).await;
    let two = TestApp::spawn_with(env.clone(), settings()).await;
    let alice = one.user("alice").await;
    one.create_group_002(&alice, "g").await;
    let chat = one.latest_chat(&alice).await;
    let path = format!("/api/v1/chats/{chat}/messages");
    let keyed = json!({"text": "1", "client_id": "k1"});
    let (status, first) = one.post(&path, Some(&alice.access), keyed.clone()).await;
    assert_eq!(status, 201);
    two.send(&alice, chat, "2").await;
    one.send(&alice, chat, "3").await;
    let response = two
        .http
        .post(two.url(&format!("/api/v1/chats/{chat}/messages")))
        .bearer_auth(&alice.access)
        .json(&json!({"text": "4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (mut gateway, _) = one.gateway(&alice).await;
    gateway
        .send_json(
            json!({"action": "send_message", "chat_id": chat, "message": "5", "request_id": "r"}),
        )
        .await;
    let error = gateway.recv_event("error").await;
    assert_eq!(
        (error["code"].as_str(), error["request_id"].as_str()),
        (Some("rate_limited"), Some("r"))
    );
    assert!(
        error["retry_after"]
            .as_u64()
            .is_some_and(|s| (1..=60).contains(&s)),
        "{error}"
    );
    let mut door_002 = two.group_socket(&alice, "g").await;
    door_002
        .send_json(json!({"action": "send_message", "message": "6"}))
        .await;
    let error = door_002.recv_json().await;
    assert_eq!(error["action"], "error");
    assert!(
        error["message"].as_str().unwrap().contains("retry in"),
        "{error}"
    );
    // Over the limit, a retry of an earlier send still gets its original message.
    let (status, again) = two.post(&path, Some(&alice.access), keyed).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    let (_, page) = one
        .get(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
        )
        .await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["1", "2", "3"], "refused sends were not stored");
}
