//! Bad input gets a clear error in the door's own format and changes nothing; never a 500, never
//! a dead socket.

use chat_test_support::{JWT_SECRET, TestApp};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_wrong_types_and_missing_fields_are_400() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let raw = app
        .http
        .post(app.url("/api/v1/auth/login/"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_error(400, &body, 400, "invalid_json");

    let (status, body) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": "two"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid_json");

    let (status, body) = app
        .post("/api/v1/auth/register/", None, json!({"username": "x"}))
        .await;
    assert_error(status, &body, 400, "invalid");
    let fields = body["fields"].as_object().unwrap();
    for field in ["username", "email", "password", "password2"] {
        assert!(fields.contains_key(field), "no error for {field}: {body}");
    }

    let (status, body) = app
        .post(
            "/api/v1/auth/register/",
            None,
            json!({"username": "bob", "email": "bob@example.com", "password": "password123", "password2": "password124"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    assert!(body["fields"]["password2"].is_array());

    let wrong_type = app
        .http
        .post(app.url("/api/v1/auth/login/"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);

    let huge = json!({"text": "x".repeat(70 * 1024)});
    let (status, body) = app
        .post("/api/v1/chats/1/messages", Some(&alice.access), huge)
        .await;
    assert_error(status, &body, 413, "too_large");

    // Nothing was created by any of it.
    let (status, _) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "bob", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_409_and_wrong_credentials_401() {
    let app = TestApp::spawn().await;
    app.user("alice").await;
    let register = |username: &str, email: &str| json!({"username": username, "email": email, "password": "password123", "password2": "password123"});
    let (status, body) = app
        .post(
            "/api/v1/auth/register/",
            None,
            register("ALICE", "other@example.com"),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/auth/register/",
            None,
            register("alice2", "Alice@Example.com"),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    assert!(body["detail"].as_str().unwrap().contains("email"));

    let (status, body) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alice", "password": "wrong-password"}),
        )
        .await;
    assert_error(status, &body, 401, "not_authenticated");
    let (status, body) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "nobody", "password": "password123"}),
        )
        .await;
    assert_error(status, &body, 401, "not_authenticated");
    let (status, body) = app
        .post(
            "/api/v1/auth/login/refresh/",
            None,
            json!({"refresh": "not-a-token"}),
        )
        .await;
    assert_error(status, &body, 401, "not_authenticated");
    let (status, body) = app
        .post(
            "/api/v1/auth/logout/",
            None,
            json!({"refresh": "not-a-token"}),
        )
        .await;
    assert_error(status, &body, 401, "not_authenticated");
}

fn forged(secret: &str, user_id: i64, exp_offset_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"token_type": "access", "user_id": user_id, "iat": now, "exp": now + exp_offset_secs});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bad_and_expired_tokens_are_401() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (status, body) = app.get("/api/v1/chats", None).await;
    assert_error(status, &body, 401, "not_authenticated");
    for token in [
        "garbage".to_owned(),
        forged(JWT_SECRET, alice.id, -3600),
        forged("another-secret", alice.id, 3600),
        alice.refresh.clone(),
    ] {
        let (status, body) = app.get("/api/v1/chats", Some(&token)).await;
        assert_error(status, &body, 401, "not_authenticated");
        let (status, _) = app.get("/api/v1/chat/list-friends", Some(&token)).await;
        assert_eq!(status, 401);
    }
    // The harness's secret really is what the server checks: a well-formed token passes.
    let (status, _) = app
        .get("/api/v1/chats", Some(&forged(JWT_SECRET, alice.id, 3600)))
        .await;
    assert_eq!(status, 200);
}

/// An expired access token says so (simplejwt's `messages`, RFC 6750's header, the gateway's
/// frame), so a client refreshes instead of asking for the password; other bad tokens do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_401_with_a_hint_to_refresh() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let expired = forged(JWT_SECRET, alice.id, -3600);
    let answer = |token: String| {
        let request = app
            .http
            .get(app.url("/api/v1/chats"))
            .bearer_auth(token)
            .send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let header = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, header, response.json::<Value>().await.unwrap())
        }
    };
    let (status, header, body) = answer(expired.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Given token not valid for any token type");
    assert_eq!(body["code"], "not_authenticated");
    assert_eq!(body["messages"][0]["message"], "Token is expired");
    assert_eq!(
        header.as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="The access token expired""#)
    );
    for token in [
        "garbage".to_owned(),
        forged("another-secret", alice.id, -3600),
    ] {
        let (status, header, body) = answer(token).await;
        assert_eq!(status, 401);
        assert_eq!(header.as_deref(), Some("Bearer"));
        assert!(body.get("messages").is_none(), "{body}");
    }
    let (status, body) = app.get("/api/v1/chat/list-friends", Some(&expired)).await;
    assert_eq!(
        (status, &body["messages"][0]["message"]),
        (401, &json!("Token is expired"))
    );

    let mut socket = app.ws(&format!("/api/v1/ws?token={expired}")).await;
    let (frames, close) = socket.recv_close().await;
    assert_eq!(frames[0]["code"], "not_authenticated", "{frames:?}");
    assert!(
        frames[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Token is expired"),
        "{frames:?}"
    );
    assert_eq!(u16::from(close.unwrap().code), 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acting_outside_ones_chats_is_403_or_404_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Secret", "is_private": true}),
        )
        .await;
    let group = group["id"].as_i64().unwrap();
    let path = format!("/api/v1/chats/{group}/messages");

    let (status, body) = app
        .post(&path, Some(&mallory.access), json!({"text": "let me in"}))
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app.get(&path, Some(&mallory.access)).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{group}/join"),
            Some(&mallory.access),
            json!({}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{group}/leave"),
            Some(&mallory.access),
            json!({}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = app
        .post(
            "/api/v1/chats/999999/messages",
            Some(&alice.access),
            json!({"text": "hi"}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": 999999}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": alice.id}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");

    // The refused send used no seq: the owner's first message is seq 1.
    let (status, first) = app
        .post(&path, Some(&alice.access), json!({"text": "first"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(first["seq"], 1);
    // A client_id is the author's own: reusing it in another chat is a conflict, not a resend.
    app.post(
        &path,
        Some(&alice.access),
        json!({"text": "keyed", "client_id": "k"}),
    )
    .await;
    let (_, other) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Other"}),
        )
        .await;
    let other_path = format!("/api/v1/chats/{}/messages", other["id"]);
    let (status, body) = app
        .post(
            &other_path,
            Some(&alice.access),
            json!({"text": "keyed", "client_id": "k"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_limits_query_bounds_unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "T"}),
        )
        .await;
    let path = format!("/api/v1/chats/{}/messages", group["id"]);
    for text in [json!(""), json!("   \n"), json!("é".repeat(4097))] {
        let (status, body) = app
            .post(&path, Some(&alice.access), json!({"text": text}))
            .await;
        assert_error(status, &body, 400, "invalid");
        assert!(body["fields"]["text"].is_array());
    }
    let (status, _) = app
        .post(
            &path,
            Some(&alice.access),
            json!({"text": "é".repeat(4096)}),
        )
        .await;
    assert_eq!(status, 201, "4096 characters are allowed");
    let (status, body) = app
        .post(
            &path,
            Some(&alice.access),
            json!({"text": "x", "client_id": ""}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");

    for query in ["?limit=0", "?limit=201", "?before=x"] {
        let (status, body) = app
            .get(&format!("{path}{query}"), Some(&alice.access))
            .await;
        assert_error(status, &body, 400, "invalid");
    }
    let (status, body) = app
        .get(&format!("{path}?limit=abc"), Some(&alice.access))
        .await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = app
        .get("/api/v1/chats/abc/messages", Some(&alice.access))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/api/v1/nowhere", None).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/api/v1/auth/login/", None).await;
    assert_error(status, &body, 405, "method_not_allowed");
    // RFC 9110 §15.5.6: a 405 names the methods the resource serves.
    let response = app
        .http
        .put(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, PATCH");
    let (status, _) = app
        .post("/api/v1/chat/list-friends", Some(&alice.access), json!({}))
        .await;
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_002_rest_errors_are_detail_json_with_4xx() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let cases: Vec<(&str, Value, u16)> = vec![
        ("/api/v1/chat/add-friend/nobody", json!({}), 404),
        ("/api/v1/chat/add-friend/alice", json!({}), 400),
        ("/api/v1/chat/remove-friend/bob", json!({}), 403),
        ("/api/v1/chat/join-group/none", json!({}), 404),
        (
            "/api/v1/chat/create-group",
            json!({"name": "bad name!"}),
            400,
        ),
        ("/api/v1/chat/create-group", json!({"name": 5}), 400),
        ("/api/v1/chat/create-group", json!({}), 400),
    ];
    for (path, body, want) in cases {
        let (status, answer) = app.post(path, Some(&alice.access), body).await;
        assert_eq!(status, want, "{path}: {answer}");
        assert!(answer["detail"].is_string(), "{path}: {answer}");
    }
    app.post(
        "/api/v1/chat/add-friend/bob",
        Some(&alice.access),
        json!({}),
    )
    .await;
    let (status, _) = app
        .post(
            "/api/v1/chat/add-friend/bob",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    app.create_group_002(&alice, "g").await;
    let (status, _) = app
        .post(
            "/api/v1/chat/create-group",
            Some(&alice.access),
            json!({"name": "g"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .post("/api/v1/chat/join-group/g", Some(&alice.access), json!({}))
        .await;
    assert_eq!(status, 409);
    let bob = app.user("carol").await;
    let (status, _) = app
        .get("/api/v1/chat/chat-friend/alice", Some(&bob.access))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get("/api/v1/chat/chat-group/g", Some(&bob.access))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sockets_get_the_disconnect_frame_and_a_close() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.create_group_002(&alice, "club").await;
    let expired = forged(JWT_SECRET, alice.id, -3600);
    let cases = [
        "/ws/group/club/".to_owned(),
        "/ws/group/club/?token=garbage".to_owned(),
        format!("/ws/group/club/?token={expired}"),
        format!("/ws/group/nope/?token={}", alice.access),
        format!("/ws/group/club/?token={}", bob.access),
        format!("/ws/user/alice/?token={}", bob.access),
        format!("/ws/user/nobody/?token={}", bob.access),
    ];
    for path in cases {
        let mut socket = app.ws(&path).await;
        let (frames, close) = socket.recv_close().await;
        assert_eq!(frames.len(), 1, "{path}: {frames:?}");
        assert_eq!(frames[0]["action"], "disconect", "{path}");
        assert!(frames[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(u16::from(close.expect("close frame").code), 1008, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_the_socket_keeps_working() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "club").await;
    let mut socket = app.group_socket(&alice, "club").await;
    let bad: Vec<Value> = vec![
        json!({"action": "dance"}),
        json!({"message": "no action"}),
        json!({"action": 7}),
        json!({"action": "send_message"}),
        json!({"action": "send_message", "message": 42}),
        json!({"action": "send_message", "message": "   "}),
        json!({"action": "send_message", "message": "x".repeat(4097)}),
        json!({"action": "retrieve_message", "number": 0}),
        json!({"action": "retrieve_message", "number": "ten"}),
        json!([1, 2, 3]),
    ];
    for frame in bad {
        socket.send_json(frame.clone()).await;
        let answer = socket.recv_json().await;
        assert_eq!(answer["action"], "error", "{frame}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    socket.send_text("{not json").await;
    assert_eq!(socket.recv_json().await["action"], "error");
    socket
        .stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(socket.recv_json().await["action"], "error");

    // Still alive, and nothing was stored by the bad frames.
    socket
        .send_json(json!({"action": "send_message", "message": "still here"}))
        .await;
    assert_eq!(socket.recv_json().await["message"]["content"], "still here");
    socket
        .send_json(json!({"action": "retrieve_message"}))
        .await;
    assert_eq!(socket.recv_json().await["data"]["meta"]["number_msgs"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_closes_with_1009() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "club").await;
    let mut socket = app.group_socket(&alice, "club").await;
    let big = json!({"action": "send_message", "message": "x".repeat(65 * 1024)});
    socket.send_json(big).await;
    let (_, close) = socket.recv_close().await;
    let close = close.expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    assert!(close.reason.contains("65536"), "{}", close.reason);

    // The server is fine and nothing was stored.
    let mut again = app.group_socket(&alice, "club").await;
    again.send_json(json!({"action": "retrieve_message"})).await;
    assert_eq!(again.recv_json().await["data"]["meta"]["number_msgs"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_passwords_count_to_the_last_byte_and_overlong_ones_are_refused() {
    let app = TestApp::spawn().await;
    let register = |name: &str, password: &str| {
        json!({"username": name, "email": format!("{name}@example.com"),
               "password": password, "password2": password})
    };
    let login = |name: &str, password: String| json!({"username": name, "password": password});
    let (status, body) = app
        .post(
            "/api/v1/auth/register/",
            None,
            register("toolong", &"p".repeat(129)),
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    assert!(body["fields"]["password"].is_array(), "{body}");
    for (name, len) in [("long72", 72), ("long128", 128)] {
        let password = "p".repeat(len);
        let (status, _) = app
            .post("/api/v1/auth/register/", None, register(name, &password))
            .await;
        assert_eq!(status, 201, "{len} bytes");
        let (status, _) = app
            .post("/api/v1/auth/login/", None, login(name, password.clone()))
            .await;
        assert_eq!(status, 200, "{len} bytes");
        // bcrypt alone would ignore everything past byte 72: the last byte must still count.
        let mut other = password.clone();
        other.pop();
        other.push('q');
        let (status, _) = app
            .post("/api/v1/auth/login/", None, login(name, other))
            .await;
        assert_eq!(status, 401, "{len} bytes: a different last byte logged in");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_everywhere_not_a_500() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "club").await;
    let (_, list) = app.get("/api/v1/chats", Some(&alice.access)).await;
    let path = format!("/api/v1/chats/{}/messages", list[0]["id"]);
    let (status, body) = app
        .post(&path, Some(&alice.access), json!({"text": "a\0b"}))
        .await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = app
        .post(
            &path,
            Some(&alice.access),
            json!({"text": "ok", "client_id": "a\0"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    let (status, body) = app
        .post(
            "/api/v1/auth/register/",
            None,
            json!({"username": "x\0y", "email": "x\0@example.com", "password": "pass\0word", "password2": "pass\0word"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    assert_eq!(body["fields"].as_object().unwrap().len(), 3, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "a\0", "password": "password123"}),
        )
        .await;
    assert_error(status, &body, 401, "not_authenticated");
    let (status, body) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "t\0"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid");
    for route in ["add-friend/a%00", "join-group/x%00"] {
        let (status, body) = app
            .post(
                &format!("/api/v1/chat/{route}"),
                Some(&alice.access),
                json!({}),
            )
            .await;
        assert_error(status, &body, 404, "not_found");
    }
    let mut socket = app.group_socket(&alice, "club").await;
    socket
        .send_json(json!({"action": "send_message", "message": "a\0b"}))
        .await;
    let answer = socket.recv_json().await;
    assert_eq!(answer["action"], "error", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("NUL"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_get_on_a_socket_route_is_a_json_400() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "club").await;
    let (status, body) = app
        .get(&format!("/ws/group/club/?token={}", alice.access), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("WebSocket")),
        "{body}"
    );
}

/// JSON Schema counts `2.0` as an integer (RFC 8259 has one number type), so integer fields
/// accept it; a fraction or a number beyond i64 is still a type error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_fields_take_integral_numbers_in_any_notation() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (status, chat) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": bob.id as f64}),
        )
        .await;
    assert_eq!(status, 201, "{chat}");
    assert_eq!(chat["kind"], "direct");
    // An integral number near 2^52 in exponent notation is still that integer (read correctly
    // rounded, not one ULP off): an unknown user (404), not a type error.
    let response = app
        .http
        .post(app.url("/api/v1/chats/direct"))
        .bearer_auth(&alice.access)
        .header("content-type", "application/json")
        .body(r#"{"user_id": 4.079981955574103e15}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    for bad in [json!(bob.id as f64 + 0.5), json!(1e300), json!("2")] {
        let (status, body) = app
            .post(
                "/api/v1/chats/direct",
                Some(&alice.access),
                json!({ "user_id": bad }),
            )
            .await;
        assert_error(status, &body, 400, "invalid_json");
    }
}
