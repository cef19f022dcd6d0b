//! Door 000 ("websocket chat") driven as its clients did: sign-up/sign-in, groups, and the direct
//! and group sockets that replay history, then deliver live — to the other user too, which the
//! original never managed.

use chat_test_support::{TestApp, WsClient};
use serde_json::{Value, json};

async fn plain(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = app.http.post(app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

struct WsUser {
    id: i64,
    token: String,
}

async fn sign_up(app: &TestApp, name: &str) -> WsUser {
    let (status, body) = plain(app, "/auth/sign-up", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "password1"}))).await;
    assert_eq!(status, 200, "{body}");
    let id: Value = serde_json::from_str(&body).unwrap();
    let id = id["id"]
        .as_str()
        .expect("the id is a string")
        .parse()
        .unwrap();
    let (status, body) = plain(
        app,
        "/auth/sign-in",
        None,
        Some(json!({"email": format!("{name}@example.com"), "password": "password1"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    WsUser { id, token }
}

async fn expect(socket: &mut WsClient, username: &str, message: &str) -> Value {
    let frame = socket.recv_json().await;
    assert_eq!(
        (frame["username"].as_str(), frame["message"].as_str()),
        (Some(username), Some(message)),
        "{frame}"
    );
    let date = frame["date"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{date}"
    );
    assert!(frame["id"].is_i64());
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_and_groups_with_plain_text_errors() {
    let app = TestApp::spawn().await;
    let alex = sign_up(&app, "alex").await;
    // Sign-in by username works too (the seed says username auth).
    let (status, _) = plain(
        &app,
        "/auth/sign-in",
        None,
        Some(json!({"username": "alex", "password": "password1"})),
    )
    .await;
    assert_eq!(status, 200);
    let cases = [
        (
            "/auth/sign-up",
            json!({"username": "alex", "email": "x@example.com", "password": "password1"}),
            409,
        ),
        (
            "/auth/sign-up",
            json!({"username": "al", "email": "y@example.com", "password": "password1"}),
            400,
        ),
        ("/auth/sign-up", json!({"username": "newbie"}), 400),
        (
            "/auth/sign-in",
            json!({"email": "alex@example.com", "password": "nope-nope"}),
            401,
        ),
        ("/auth/sign-in", json!({"password": "password1"}), 400),
    ];
    for (path, body, want) in cases {
        let (status, text) = plain(&app, path, None, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {text}");
        assert!(
            !text.is_empty() && serde_json::from_str::<Value>(&text).is_err(),
            "plain text expected: {text}"
        );
    }
    let (status, body) = plain(&app, "/group_chat?title=Friends", Some(&alex.token), None).await;
    assert_eq!(status, 200);
    let group: Value = serde_json::from_str(&body).unwrap();
    assert!(
        group["idGroup"].as_str().unwrap().parse::<i64>().is_ok(),
        "{group}"
    );
    assert_eq!(
        plain(&app, "/group_chat", Some(&alex.token), None).await.0,
        400
    );
    assert_eq!(plain(&app, "/group_chat?title=X", None, None).await.0, 401);
    assert_eq!(
        plain(&app, "/group_chat?title=X", Some("garbage"), None)
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_chat_delivers_live_to_the_other_user_and_replays_on_reconnect() {
    let app = TestApp::spawn().await;
    let alex = sign_up(&app, "alex").await;
    let bob = sign_up(&app, "bob").await;
    let mut a = app
        .ws(&format!("/chat?email=bob@example.com&token={}", alex.token))
        .await;
    let mut b = app
        .ws(&format!("/chat?username=alex&token={}", bob.token))
        .await;
    a.send_json(json!({"message": "Hello, Bob!"})).await;
    expect(&mut a, "alex", "Hello, Bob!").await;
    expect(&mut b, "alex", "Hello, Bob!").await;
    b.send_json(json!({"message": "Hi Alex"})).await;
    expect(&mut a, "bob", "Hi Alex").await;
    expect(&mut b, "bob", "Hi Alex").await;
    // Bad frames get an error frame; the socket stays.
    for bad in [
        "{oops".to_owned(),
        json!({"text": "x"}).to_string(),
        json!({"message": ""}).to_string(),
    ] {
        a.send_text(&bad).await;
        assert!(a.recv_json().await["error"].is_string());
    }
    drop(a);
    // Reconnecting replays the history oldest first, then goes live, with nothing twice.
    let mut a = app
        .ws(&format!("/chat?email=bob@example.com&token={}", alex.token))
        .await;
    expect(&mut a, "alex", "Hello, Bob!").await;
    expect(&mut a, "bob", "Hi Alex").await;
    b.send_json(json!({"message": "again"})).await;
    expect(&mut a, "bob", "again").await;
    a.expect_silence(200).await;
    assert_ne!(alex.id, bob.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sockets_join_public_groups_and_refusals_come_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let alex = sign_up(&app, "alex").await;
    let bob = sign_up(&app, "bob").await;
    let (_, body) = plain(&app, "/group_chat?title=Team", Some(&alex.token), None).await;
    let group: i64 = serde_json::from_str::<Value>(&body).unwrap()["idGroup"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut a = app
        .ws(&format!("/chat_group?idGroup={group}&token={}", alex.token))
        .await;
    let mut b = app
        .ws(&format!("/chat_group?idGroup={group}&token={}", bob.token))
        .await;
    // Bob joined by connecting: his join line reaches alex live and him in his replay.
    expect(&mut a, "system", "bob joined the group").await;
    expect(&mut b, "system", "bob joined the group").await;
    b.send_json(json!({"message": "hey team"})).await;
    expect(&mut a, "bob", "hey team").await;
    expect(&mut b, "bob", "hey team").await;

    // A message from the native API reaches door 000's sockets.
    let (status, tokens) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alex", "password": "password1"}),
        )
        .await;
    assert_eq!(status, 200);
    let native = tokens["access"].as_str().unwrap();
    app.post(
        &format!("/api/v1/chats/{group}/messages"),
        Some(native),
        json!({"text": "from native"}),
    )
    .await;
    expect(&mut b, "alex", "from native").await;

    // Refusals, as plain HTTP answers before any upgrade.
    let (_, private) = app
        .post(
            "/api/v1/chats/groups",
            Some(native),
            json!({"title": "Closed", "is_private": true}),
        )
        .await;
    let private = private["id"].as_i64().unwrap();
    for (path, want) in [
        (format!("/chat_group?idGroup={group}"), 401),
        (
            format!("/chat_group?idGroup=999999&token={}", bob.token),
            404,
        ),
        (format!("/chat_group?idGroup=abc&token={}", bob.token), 404),
        (
            format!("/chat_group?idGroup={private}&token={}", bob.token),
            403,
        ),
        (
            format!("/chat?email=nobody@example.com&token={}", bob.token),
            404,
        ),
        (
            format!("/chat?email=bob@example.com&token={}", bob.token),
            400,
        ),
    ] {
        let error = tokio_tungstenite::connect_async(format!("{}{path}", app.ws_base))
            .await
            .expect_err(&path);
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status().as_u16(), want, "{path}")
            }
            other => panic!("{path}: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_closed_and_a_failed_handshake_joins_nothing() {
    let app = TestApp::spawn().await;
    let alex = sign_up(&app, "alex").await;
    let bob = sign_up(&app, "bob").await;
    let (_, body) = plain(&app, "/group_chat?title=Team", Some(&alex.token), None).await;
    let group: i64 = serde_json::from_str::<Value>(&body).unwrap()["idGroup"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // A plain GET (no upgrade) is refused and joins nobody.
    let response = app
        .http
        .get(app.url(&format!("/chat_group?idGroup={group}&token={}", bob.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, tokens) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alex", "password": "password1"}),
        )
        .await;
    let native = tokens["access"].as_str().unwrap().to_owned();
    let (_, members) = app
        .get(&format!("/api/v1/chats/{group}/members"), Some(&native))
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    // Bob joins by connecting, is removed by the owner, and his socket is closed.
    let mut b = app
        .ws(&format!("/chat_group?idGroup={group}&token={}", bob.token))
        .await;
    expect(&mut b, "system", "bob joined the group").await;
    let status = app
        .http
        .delete(app.url(&format!("/api/v1/chats/{group}/members/{}", bob.id)))
        .bearer_auth(&native)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let (_, close) = b.recv_close().await;
    assert_eq!(u16::from(close.expect("close frame").code), 1008);
}
