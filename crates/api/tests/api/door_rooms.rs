//! Door 004 ("chat-server", Go) driven as its clients did: raw-token auth, plain-text errors with
//! the original texts and statuses, the room WebSocket, and rooms crossing into the native API.

use chat_test_support::{TestApp, WsClient};
use serde_json::{Value, json};

/// A request as the seed's curl sends it: raw token in `Authorization`, a JSON body.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String, String) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(token) = token {
        req = req.header("Authorization", token);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

struct RoomsUser {
    id: i64,
    token: String,
}

async fn user(app: &TestApp, name: &str) -> RoomsUser {
    use reqwest::Method;
    let (status, _, body) = call(app, Method::POST, "/register", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "password"}))).await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _, body) = call(
        app,
        Method::PUT,
        "/login",
        None,
        Some(json!({"email": format!("{name}@example.com"), "password": "password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    RoomsUser {
        id,
        token: serde_json::from_str::<Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_walkthrough() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (status, _, body) = call(
        &app,
        Method::POST,
        "/register",
        None,
        Some(json!({"username": "user", "email": "user@example.com", "password": "password"})),
    )
    .await;
    assert_eq!(status, 201);
    let registered = json_of(&body);
    let keys: Vec<&String> = registered.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["created-at", "email", "id", "username"]);
    let (status, _, body) = call(
        &app,
        Method::PUT,
        "/login",
        None,
        Some(json!({"email": "user@example.com", "password": "password"})),
    )
    .await;
    assert_eq!(status, 200);
    let token = json_of(&body)["token"].as_str().unwrap().to_owned();
    // The token's claims are exactly {"user_id","exp"}.
    let payload = token.split('.').nth(1).unwrap();
    let claims =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    let claim_keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(claim_keys, vec!["exp", "user_id"]);
    assert_eq!(claims["user_id"], registered["id"]);

    let (status, _, body) = call(&app, Method::GET, "/profile", Some(&token), None).await;
    assert_eq!((status, json_of(&body)), (200, registered.clone()));
    let (status, _, body) = call(
        &app,
        Method::PUT,
        "/change-name",
        Some(&token),
        Some(json!({"username": "newname1234"})),
    )
    .await;
    assert_eq!(
        (status, json_of(&body)),
        (200, json!({"message": "name change succeed"}))
    );
    let (_, _, body) = call(&app, Method::GET, "/profile", Some(&token), None).await;
    assert_eq!(json_of(&body)["username"], "newname1234");

    let (status, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&token),
        Some(json!({"name": "GeneralChat", "is_private": false})),
    )
    .await;
    assert_eq!(status, 201);
    let room = json_of(&body);
    assert_eq!(
        (
            room["name"].clone(),
            room["is_private"].clone(),
            room["creator_id"].clone()
        ),
        (json!("GeneralChat"), json!(false), registered["id"].clone())
    );
    let other = user(&app, "other").await;
    let (status, _, body) = call(
        &app,
        Method::PUT,
        "/join",
        Some(&other.token),
        Some(json!({"room_id": room["id"]})),
    )
    .await;
    assert_eq!(
        (status, json_of(&body)),
        (200, json!({"message": "join succeed"}))
    );
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&token),
        Some(json!({"name": "Secret", "is_private": true})),
    )
    .await;
    let secret = json_of(&body);
    let (status, _, body) = call(
        &app,
        Method::PUT,
        "/invite",
        Some(&token),
        Some(json!({"room_id": secret["id"], "user_id": other.id})),
    )
    .await;
    assert_eq!(
        (status, json_of(&body)),
        (200, json!({"message": "invite succeed"}))
    );
}

/// method, path, raw token, body, expected status, expected text.
type ErrorCase<'a> = (
    reqwest::Method,
    &'a str,
    Option<String>,
    Option<Value>,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_the_original_text_status_and_plain_text_body() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let owner = user(&app, "owner").await;
    let guest = user(&app, "guest").await;
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&owner.token),
        Some(json!({"name": "private_room", "is_private": true})),
    )
    .await;
    let private_room = json_of(&body)["id"].as_i64().unwrap();
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&owner.token),
        Some(json!({"name": "open_room", "is_private": false})),
    )
    .await;
    let open_room = json_of(&body)["id"].as_i64().unwrap();
    let reg = |name: &str, email: &str, password: &str| {
        Some(json!({"username": name, "email": email, "password": password}))
    };
    let cases: Vec<ErrorCase<'_>> = vec![
        (Method::POST, "/register", None, None, 400, "invalid data"),
        (
            Method::POST,
            "/register",
            None,
            Some(json!({"username": "abc"})),
            400,
            "missing fields",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("abcd", "not-an-email", "password"),
            400,
            "invalid email",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("a", "a@b.cc", "password"),
            400,
            "name must be 3-20 characters long and contain only letters, numbers or underscores",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("bad-name", "a@b.cc", "password"),
            400,
            "name must be 3-20 characters long and contain only letters, numbers or underscores",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("system", "s@b.cc", "password"),
            409,
            "user with same name or email already exists",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("systern", "s@b.cc", "password"),
            409,
            "user with same name or email already exists",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("shorty", "s@b.cc", "pass"),
            400,
            "password must be 8-128 characters long",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("owner", "x@b.cc", "password"),
            409,
            "user with same name or email already exists",
        ),
        (
            Method::POST,
            "/register",
            None,
            reg("fresh", "OWNER@example.com", "password"),
            409,
            "user with same name or email already exists",
        ),
        (
            Method::PUT,
            "/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "password"})),
            401,
            "user not found",
        ),
        (
            Method::PUT,
            "/login",
            None,
            Some(json!({"email": "owner@example.com", "password": "wrongpass"})),
            401,
            "invalid password",
        ),
        (
            Method::PUT,
            "/login",
            None,
            Some(json!({"email": "owner@example.com"})),
            400,
            "missing fields",
        ),
        (
            Method::GET,
            "/profile",
            None,
            None,
            401,
            "authorization failed",
        ),
        (
            Method::GET,
            "/profile",
            Some("garbage".into()),
            None,
            401,
            "authorization failed",
        ),
        (
            Method::PUT,
            "/change-name",
            Some(owner.token.clone()),
            Some(json!({"username": "owner"})),
            400,
            "new name matches the current",
        ),
        (
            Method::PUT,
            "/change-name",
            Some(owner.token.clone()),
            Some(json!({"username": "guest"})),
            409,
            "user with same name already exists",
        ),
        (
            Method::POST,
            "/create-room",
            Some(owner.token.clone()),
            Some(json!({"name": "open_room", "is_private": false})),
            409,
            "room with same name already exists",
        ),
        (
            Method::POST,
            "/create-room",
            Some(owner.token.clone()),
            Some(json!({"name": "x"})),
            400,
            "name must be 3-20 characters long and contain only letters, numbers or underscores",
        ),
        (
            Method::PUT,
            "/join",
            Some(guest.token.clone()),
            Some(json!({"room_id": 999999})),
            401,
            "room not found",
        ),
        (
            Method::PUT,
            "/join",
            Some(guest.token.clone()),
            Some(json!({"room_id": private_room})),
            401,
            "room is private",
        ),
        (
            Method::PUT,
            "/join",
            Some(owner.token.clone()),
            Some(json!({"room_id": open_room})),
            409,
            "user is already a member of room",
        ),
        (
            Method::PUT,
            "/invite",
            Some(guest.token.clone()),
            Some(json!({"room_id": private_room, "user_id": guest.id})),
            403,
            "only creator can invite to room",
        ),
        (
            Method::PUT,
            "/invite",
            Some(owner.token.clone()),
            Some(json!({"room_id": private_room, "user_id": 999999})),
            401,
            "user not found",
        ),
        (
            Method::PUT,
            "/invite",
            Some(owner.token.clone()),
            Some(json!({"room_id": private_room, "user_id": owner.id})),
            409,
            "user is already a member of room",
        ),
    ];
    for (method, path, token, body, want_status, want_text) in cases {
        let (status, content_type, text) =
            call(&app, method.clone(), path, token.as_deref(), body.clone()).await;
        assert_eq!(
            (status, text.as_str()),
            (want_status, format!("{want_text}\n").as_str()),
            "{method} {path} {body:?}"
        );
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
    }
    // A bad token on the WebSocket upgrade is refused before the upgrade.
    let refused = app
        .http
        .get(app.url("/ws?token=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.text().await.unwrap(), "invalid token\n");
}

async fn room_socket(app: &TestApp, token: &str) -> WsClient {
    app.ws(&format!("/ws?token={token}")).await
}

async fn expect(socket: &mut WsClient, username: &str, text: &str) {
    let frame = socket.recv_json().await;
    assert_eq!(
        (frame["username"].as_str(), frame["text"].as_str()),
        (Some(username), Some(text)),
        "{frame}"
    );
    let stamp = frame["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{stamp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_session_with_system_lines_errors_and_messages() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let ann = user(&app, "ann").await;
    let ben = user(&app, "ben").await;
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&ann.token),
        Some(json!({"name": "lobby", "is_private": false})),
    )
    .await;
    let lobby = json_of(&body)["id"].as_i64().unwrap();
    call(
        &app,
        Method::PUT,
        "/join",
        Some(&ben.token),
        Some(json!({"room_id": lobby})),
    )
    .await;
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&ann.token),
        Some(json!({"name": "closed", "is_private": true})),
    )
    .await;
    let closed = json_of(&body)["id"].as_i64().unwrap();

    let mut a = room_socket(&app, &ann.token).await;
    let mut b = room_socket(&app, &ben.token).await;
    let send = |kind: &str, content: &str| json!({"type": kind, "content": content});
    a.send_json(send("message", "hello?")).await;
    expect(&mut a, "error", "not connected to any room").await;
    a.send_json(send("join", "lobby")).await;
    expect(&mut a, "error", "room id must be number").await;
    a.send_json(send("join", &lobby.to_string())).await;
    expect(&mut a, "system", "ann joined the room").await;
    a.send_json(send("join", &lobby.to_string())).await;
    expect(&mut a, "error", "already in room").await;
    b.send_json(send("join", &lobby.to_string())).await;
    expect(&mut a, "system", "ben joined the room").await;
    expect(&mut b, "system", "ben joined the room").await;

    a.send_json(send("message", "hi ben")).await;
    expect(&mut a, "ann", "hi ben").await;
    expect(&mut b, "ann", "hi ben").await;
    a.send_json(send("message", "")).await;
    expect(&mut a, "error", "can not send empty message").await;
    a.send_json(send("message", &"x".repeat(2001))).await;
    expect(&mut a, "error", "message should be less 2000 symbols long").await;
    a.send_json(send("dance", "")).await;
    expect(&mut a, "error", "invalid operation").await;
    b.expect_silence(200).await;

    // Ben tries a room he is not in: he leaves the lobby first, then is refused.
    b.send_json(send("join", &closed.to_string())).await;
    expect(&mut a, "system", "ben leaved the room").await;
    expect(&mut b, "error", "user not a member of room").await;
    b.send_json(send("join", &lobby.to_string())).await;
    expect(&mut b, "system", "ben joined the room").await;
    expect(&mut a, "system", "ben joined the room").await;
    b.send_json(send("leave", "")).await;
    expect(&mut b, "system", "you leaved the room").await;
    expect(&mut a, "system", "ben leaved the room").await;
    b.send_json(send("join", &lobby.to_string())).await;
    expect(&mut b, "system", "ben joined the room").await;
    expect(&mut a, "system", "ben joined the room").await;
    // A disconnect while in a room tells the room.
    drop(b);
    expect(&mut a, "system", "ben leaved the room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_non_string_content_and_big_frames_close_the_socket() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "ann").await;
    for bad in [
        "{nope".to_owned(),
        json!({"type": "join", "content": 5}).to_string(),
        "x".repeat(17 * 1024),
    ] {
        let mut socket = room_socket(&app, &ann.token).await;
        socket.send_text(&bad).await;
        let (frames, _close) = socket.recv_close().await;
        assert!(frames.is_empty(), "{frames:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_message_reaches_native_history_and_a_native_gateway_client() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let ann = user(&app, "ann").await;
    let (_, _, body) = call(
        &app,
        Method::POST,
        "/create-room",
        Some(&ann.token),
        Some(json!({"name": "bridge", "is_private": false})),
    )
    .await;
    let room = json_of(&body)["id"].as_i64().unwrap();
    // Ann's door-004 password logs her in natively too.
    let (status, tokens) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "ann@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(status, 200);
    let native = chat_test_support::TestUser {
        id: ann.id,
        username: "ann".into(),
        access: tokens["access"].as_str().unwrap().into(),
        refresh: String::new(),
    };
    let (mut gateway, _) = app.gateway(&native).await;

    let mut socket = room_socket(&app, &ann.token).await;
    socket
        .send_json(json!({"type": "join", "content": room.to_string()}))
        .await;
    expect(&mut socket, "system", "ann joined the room").await;
    socket
        .send_json(json!({"type": "message", "content": "across doors"}))
        .await;
    expect(&mut socket, "ann", "across doors").await;
    loop {
        let event = gateway.recv_event("message.created").await;
        if event["message"]["text"] == "across doors" {
            assert_eq!(event["chat_id"], room);
            assert_eq!(event["message"]["author"]["username"], "ann");
            break;
        }
    }
    let (_, page) = app
        .get(
            &format!("/api/v1/chats/{room}/messages"),
            Some(&native.access),
        )
        .await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["ann joined the room", "across doors"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_string_type_closes_and_a_bad_handshake_is_plain_text() {
    let app = TestApp::spawn().await;
    let ann = user(&app, "ann").await;
    let mut socket = room_socket(&app, &ann.token).await;
    socket.send_json(json!({"type": 5, "content": "1"})).await;
    let (frames, _) = socket.recv_close().await;
    assert!(frames.is_empty());
    let response = app
        .http
        .get(app.url(&format!("/ws?token={}", ann.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), "bad websocket handshake\n");
}
