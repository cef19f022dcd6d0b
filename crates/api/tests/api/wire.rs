//! Snapshots of what every door puts on the wire (insta, `tests/api/snapshots/api__wire__*.snap`): one
//! scripted session per door — bodies and statuses of its HTTP routes, its WebSocket frames and
//! closes, successes and errors alike — on a fresh database, so ids are the same on every run.
//! Times, tokens and ports are replaced by `[time]`, `[token]`, `[port]`. A changed field, status
//! or error text is a visible diff: review it with `cargo insta review` (or accept with
//! `INSTA_UPDATE=always`), and say in the commit why the wire changed. The OpenAPI document's
//! snapshot is in `tests/api/openapi.rs`.

use chat_test_support::{TestApp, WsClient};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// One session's transcript: `[{"step", ...}]` in order.
#[derive(Default)]
struct Transcript(Vec<Value>);

impl Transcript {
    fn push(&mut self, step: &str, value: Value) {
        self.0
            .push(json!({"step": step, "wire": normalized(value)}));
    }

    /// An HTTP answer: `{"status", "body"}` (a non-JSON body as a string).
    fn http(&mut self, step: &str, (status, body): (u16, Value)) {
        self.push(step, json!({"status": status, "body": body}));
    }

    fn into_value(self) -> Value {
        Value::Array(self.0)
    }
}

/// The run-dependent parts of a wire value replaced by placeholders.
fn normalized(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(normalized_text(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), &v) {
                        ("refresh", Value::String(_)) => json!("[refresh]"),
                        ("created", Value::Number(_)) => json!("[time]"),
                        _ => normalized(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

fn normalized_text(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_inclusive(['?', '&', ' ']) {
        let (body, tail) = match word.char_indices().last() {
            Some((at, '?' | '&' | ' ')) => (&word[..at], &word[at..]),
            _ => (word, ""),
        };
        let body = if let Some(token) = body.strip_prefix("token=") {
            if token.is_empty() {
                body.to_owned()
            } else {
                "token=[token]".to_owned()
            }
        } else if body.starts_with("eyJ") && body.matches('.').count() == 2 {
            "[token]".to_owned()
        } else if chrono::DateTime::parse_from_rfc3339(body).is_ok() {
            "[time]".to_owned()
        } else {
            body.to_owned()
        };
        out.push_str(&body);
        out.push_str(tail);
    }
    // Door 000's "YYYY-MM-DD HH:MM:SS" spans a space.
    if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").is_ok() {
        return "[time]".to_owned();
    }
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find("127.0.0.1:") {
        result.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = &rest[at + "127.0.0.1:".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        result.push_str("[port]");
        rest = &rest[digits..];
    }
    result.push_str(rest);
    result
}

/// Any request: `(status, body)` with a JSON body parsed, else the text.
async fn call(
    app: &TestApp,
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    chat_test_support::read(req.send().await.unwrap()).await
}

/// The next text frame that is not a presence event (those depend on socket timing).
async fn frame(socket: &mut WsClient) -> Value {
    loop {
        let value = socket.recv_json().await;
        if value["event"] != "presence" {
            return value;
        }
    }
}

/// The frames up to and including the first that `is_reply` accepts, without presence and
/// typing events (their moment depends on the bus).
async fn up_to_reply(socket: &mut WsClient, is_reply: impl Fn(&Value) -> bool) -> Value {
    let mut frames = Vec::new();
    loop {
        let value = frame(socket).await;
        if value["event"] == "typing" {
            continue;
        }
        let done = is_reply(&value);
        frames.push(value);
        if done {
            return Value::Array(frames);
        }
    }
}

/// The frames up to the close, and the close: `{"frames", "close": {"code","reason"}}`.
async fn closing(socket: &mut WsClient) -> Value {
    let (frames, close) = socket.recv_close().await;
    let close = close.map(|c| json!({"code": u16::from(c.code), "reason": c.reason.to_string()}));
    json!({"frames": frames, "close": close})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_rest() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let mut t = Transcript::default();
    let register = r#"{"username":"alice","email":"alice@example.com","password":"password123","password2":"password123"}"#;
    t.http(
        "register",
        call(
            &app,
            &base,
            "POST",
            "/api/v1/auth/register/",
            None,
            Some(register),
        )
        .await,
    );
    t.http(
        "register again",
        call(
            &app,
            &base,
            "POST",
            "/api/v1/auth/register/",
            None,
            Some(register),
        )
        .await,
    );
    t.http(
        "register with bad fields",
        call(
            &app,
            &base,
            "POST",
            "/api/v1/auth/register/",
            None,
            Some(r#"{"username":"a b","email":"nope","password":"short","password2":"other"}"#),
        )
        .await,
    );
    let login = call(
        &app,
        &base,
        "POST",
        "/api/v1/auth/login/",
        None,
        Some(r#"{"username":"alice","password":"password123"}"#),
    )
    .await;
    let bearer = format!("Bearer {}", login.1["access"].as_str().unwrap());
    t.http("login", login);
    t.http(
        "login with a wrong password",
        call(
            &app,
            &base,
            "POST",
            "/api/v1/auth/login/",
            None,
            Some(r#"{"username":"alice","password":"wrong-password"}"#),
        )
        .await,
    );
    let bob = app.user("bob").await;
    let bob_bearer = format!("Bearer {}", bob.access);
    let (auth, bob_auth) = (Some(bearer.as_str()), Some(bob_bearer.as_str()));
    let direct = format!(r#"{{"user_id":{}}}"#, bob.id);
    let send = r#"{"text":"hello","client_id":"c-1"}"#;
    for (step, method, path, auth, body) in [
        ("me", "GET", "/api/v1/users/me", auth, None),
        ("me without a token", "GET", "/api/v1/users/me", None, None),
        (
            "open a direct chat",
            "POST",
            "/api/v1/chats/direct",
            auth,
            Some(direct.as_str()),
        ),
        (
            "create a group",
            "POST",
            "/api/v1/chats/groups",
            auth,
            Some(r#"{"title":"Team","name":"team"}"#),
        ),
        ("send", "POST", "/api/v1/chats/2/messages", auth, Some(send)),
        (
            "send the same client_id again",
            "POST",
            "/api/v1/chats/2/messages",
            auth,
            Some(send),
        ),
        (
            "send blank text",
            "POST",
            "/api/v1/chats/2/messages",
            auth,
            Some(r#"{"text":"   "}"#),
        ),
        (
            "send malformed JSON",
            "POST",
            "/api/v1/chats/2/messages",
            auth,
            Some("{"),
        ),
        (
            "send as a non-member",
            "POST",
            "/api/v1/chats/2/messages",
            bob_auth,
            Some(r#"{"text":"let me in"}"#),
        ),
        (
            "history",
            "GET",
            "/api/v1/chats/2/messages?limit=5",
            auth,
            None,
        ),
        (
            "read beyond the newest message",
            "POST",
            "/api/v1/chats/2/read",
            auth,
            Some(r#"{"seq":99}"#),
        ),
        ("chat list", "GET", "/api/v1/chats", auth, None),
        ("members", "GET", "/api/v1/chats/2/members", auth, None),
        ("unknown route", "GET", "/api/v1/nowhere", auth, None),
        ("wrong method", "PUT", "/api/v1/chats", auth, None),
        ("no chat", "GET", "/api/v1/chats/999/messages", auth, None),
    ] {
        t.http(step, call(&app, &base, method, path, auth, body).await);
    }
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_gateway() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    let mut t = Transcript::default();
    let mut a = app.ws(&format!("/api/v1/ws?token={}", alice.access)).await;
    t.push("ready", frame(&mut a).await);
    let mut b = app.ws(&format!("/api/v1/ws?token={}", bob.access)).await;
    frame(&mut b).await;
    // Each request with the frames it brought, up to its reply (matched by `request_id`): a
    // `sync` from 0 replays what this socket never delivered. Alice's own `typing` event comes
    // back over the bus at no fixed point among her replies, so it is left out of her frames
    // (bob's is recorded below).
    for (step, request) in [
        (
            "send_message",
            json!({"action": "send_message", "chat_id": chat, "message": "hi", "client_id": "g-1", "request_id": 1}),
        ),
        (
            "send_message again",
            json!({"action": "send_message", "chat_id": chat, "message": "hi", "client_id": "g-1", "request_id": 2}),
        ),
        (
            "retrieve_message",
            json!({"action": "retrieve_message", "chat_id": chat, "number": 2, "request_id": 3}),
        ),
        (
            "sync",
            json!({"action": "sync", "chats": {chat.to_string(): 0}, "request_id": 4}),
        ),
        (
            "typing",
            json!({"action": "typing", "chat_id": chat, "request_id": 5}),
        ),
        (
            "read",
            json!({"action": "read", "chat_id": chat, "seq": 1, "request_id": 6}),
        ),
        ("ping", json!({"action": "ping", "request_id": 7})),
        (
            "unknown action",
            json!({"action": "dance", "request_id": 8}),
        ),
        (
            "a chat you are not in",
            json!({"action": "send_message", "chat_id": 999, "message": "x", "request_id": 9}),
        ),
        (
            "a missing field",
            json!({"action": "send_message", "chat_id": chat, "request_id": 10}),
        ),
    ] {
        let id = request["request_id"].clone();
        a.send_json(request).await;
        t.push(step, up_to_reply(&mut a, |f| f["request_id"] == id).await);
    }
    a.send_text("not json").await;
    t.push(
        "invalid JSON",
        up_to_reply(&mut a, |f| f["event"] == "error").await,
    );
    // What bob's socket saw meanwhile: the message once, and typing (alice's read marker did
    // not move — her own send had moved it — so no `read` event).
    for step in ["bob: message.created", "bob: typing"] {
        t.push(step, frame(&mut b).await);
    }
    let mut bad = app.ws("/api/v1/ws?token=garbage").await;
    t.push("a bad token", closing(&mut bad).await);
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_002() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (a, b) = (
        format!("Bearer {}", alice.access),
        format!("Bearer {}", bob.access),
    );
    let (a, b) = (Some(a.as_str()), Some(b.as_str()));
    let mut t = Transcript::default();
    for (step, method, path, auth, body) in [
        ("add-friend", "POST", "/api/v1/chat/add-friend/bob", a, None),
        (
            "add-friend again",
            "POST",
            "/api/v1/chat/add-friend/bob",
            a,
            None,
        ),
        (
            "add-friend yourself",
            "POST",
            "/api/v1/chat/add-friend/alice",
            a,
            None,
        ),
        (
            "add-friend nobody",
            "POST",
            "/api/v1/chat/add-friend/nobody",
            a,
            None,
        ),
        (
            "bob adds alice",
            "POST",
            "/api/v1/chat/add-friend/alice",
            b,
            None,
        ),
        ("list-friends", "GET", "/api/v1/chat/list-friends", a, None),
        (
            "create-group",
            "POST",
            "/api/v1/chat/create-group",
            a,
            Some(r#"{"name":"club"}"#),
        ),
        (
            "create-group taken",
            "POST",
            "/api/v1/chat/create-group",
            a,
            Some(r#"{"name":"club"}"#),
        ),
        (
            "create-group bad name",
            "POST",
            "/api/v1/chat/create-group",
            a,
            Some(r#"{"name":"a b"}"#),
        ),
        (
            "join-group",
            "POST",
            "/api/v1/chat/join-group/club",
            b,
            None,
        ),
        ("chat-group", "GET", "/api/v1/chat/chat-group/club", a, None),
        (
            "chat-friend",
            "GET",
            "/api/v1/chat/chat-friend/bob",
            a,
            None,
        ),
        ("no token", "GET", "/api/v1/chat/list-friends", None, None),
    ] {
        t.http(step, call(&app, &base, method, path, auth, body).await);
    }
    let mut group_a = app.group_socket(&alice, "club").await;
    let mut group_b = app.group_socket(&bob, "club").await;
    group_a
        .send_json(json!({"action": "send_message", "message": "hello club"}))
        .await;
    t.push("group broadcast (sender)", group_a.recv_json().await);
    t.push("group broadcast (member)", group_b.recv_json().await);
    group_a
        .send_json(json!({"action": "retrieve_message", "number": 2}))
        .await;
    t.push("group retrieve_message", group_a.recv_json().await);
    group_a.send_json(json!({"action": "dance"})).await;
    t.push("group unknown action", group_a.recv_json().await);
    let mut direct = app.user_socket(&alice, &bob).await;
    direct
        .send_json(json!({"action": "send_message", "message": "psst"}))
        .await;
    t.push("direct broadcast", direct.recv_json().await);
    direct
        .send_json(json!({"action": "retrieve_message", "number": 1}))
        .await;
    t.push("direct retrieve_message", direct.recv_json().await);
    let mut refused = app.ws("/ws/group/nowhere/?token=garbage").await;
    t.push("a bad token", closing(&mut refused).await);
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_001() {
    let (app, door) = TestApp::spawn_door001().await;
    let mut t = Transcript::default();
    for (step, path, body) in [
        ("users/add", "/users/add", r#"{"username": "user_1"}"#),
        (
            "users/add another",
            "/users/add",
            r#"{"username": "user_2"}"#,
        ),
        ("users/add taken", "/users/add", r#"{"username": "user_1"}"#),
        ("users/add bad", "/users/add", r#"{"username": 5}"#),
        (
            "chats/add",
            "/chats/add",
            r#"{"name": "chat_1", "users": ["1", "2"]}"#,
        ),
        (
            "chats/add unknown user",
            "/chats/add",
            r#"{"name": "chat_2", "users": [1, 999]}"#,
        ),
        (
            "messages/add",
            "/messages/add",
            r#"{"chat": "1", "author": "1", "text": "hi"}"#,
        ),
        (
            "messages/add outsider",
            "/messages/add",
            r#"{"chat": 1, "author": 999, "text": "hi"}"#,
        ),
        ("chats/get", "/chats/get", r#"{"user": 1}"#),
        ("messages/get", "/messages/get", r#"{"chat": 1}"#),
        ("malformed JSON", "/messages/get", "{"),
    ] {
        t.http(
            step,
            call(&app, &door, "POST", path, None, Some(body)).await,
        );
    }
    t.http(
        "wrong method",
        call(&app, &door, "GET", "/users/add", None, None).await,
    );
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_004() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let mut t = Transcript::default();
    for (step, body) in [
        (
            "register",
            r#"{"username": "dana", "email": "dana@example.com", "password": "password"}"#,
        ),
        (
            "register erin",
            r#"{"username": "erin", "email": "erin@example.com", "password": "password"}"#,
        ),
        (
            "register again",
            r#"{"username": "dana", "email": "dana@example.com", "password": "password"}"#,
        ),
        ("register without fields", r#"{"username": "x"}"#),
    ] {
        t.http(
            step,
            call(&app, &base, "POST", "/register", None, Some(body)).await,
        );
    }
    let mut tokens = Vec::new();
    for who in ["dana", "erin"] {
        let login = call(
            &app,
            &base,
            "PUT",
            "/login",
            None,
            Some(&format!(
                r#"{{"email": "{who}@example.com", "password": "password"}}"#
            )),
        )
        .await;
        tokens.push(login.1["token"].as_str().unwrap().to_owned());
        t.http(&format!("login {who}"), login);
    }
    t.http(
        "login wrong",
        call(
            &app,
            &base,
            "PUT",
            "/login",
            None,
            Some(r#"{"email": "dana@example.com", "password": "nope-nope"}"#),
        )
        .await,
    );
    let (dana, erin) = (Some(tokens[0].as_str()), Some(tokens[1].as_str()));
    for (step, method, path, auth, body) in [
        ("profile", "GET", "/profile", dana, None),
        ("profile without a token", "GET", "/profile", None, None),
        (
            "create-room",
            "POST",
            "/create-room",
            dana,
            Some(r#"{"name": "General", "is_private": true}"#),
        ),
        (
            "join a private room",
            "PUT",
            "/join",
            erin,
            Some(r#"{"room_id": 1}"#),
        ),
        (
            "invite by a non-creator",
            "PUT",
            "/invite",
            erin,
            Some(r#"{"room_id": 1, "user_id": 2}"#),
        ),
        (
            "invite",
            "PUT",
            "/invite",
            dana,
            Some(r#"{"room_id": 1, "user_id": 2}"#),
        ),
    ] {
        t.http(step, call(&app, &base, method, path, auth, body).await);
    }
    let mut d = app.ws(&format!("/ws?token={}", tokens[0])).await;
    let mut e = app.ws(&format!("/ws?token={}", tokens[1])).await;
    e.send_json(json!({"type": "message", "content": "early"}))
        .await;
    t.push("message outside a room", e.recv_json().await);
    d.send_json(json!({"type": "join", "content": "1"})).await;
    t.push("dana joins", d.recv_json().await);
    e.send_json(json!({"type": "join", "content": "1"})).await;
    t.push("erin joins", e.recv_json().await);
    t.push("dana sees erin join", d.recv_json().await);
    e.send_json(json!({"type": "message", "content": "hello room"}))
        .await;
    t.push("erin's line (erin)", e.recv_json().await);
    t.push("erin's line (dana)", d.recv_json().await);
    e.send_json(json!({"type": "message", "content": ""})).await;
    t.push("empty message", e.recv_json().await);
    e.send_json(json!({"type": "fly", "content": ""})).await;
    t.push("unknown type", e.recv_json().await);
    e.stream
        .send(Message::Text("not json".into()))
        .await
        .unwrap();
    t.push("invalid JSON", closing(&mut e).await);
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_000() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    let mut t = Transcript::default();
    for (step, path, body) in [
        (
            "sign-up",
            "/auth/sign-up",
            r#"{"username": "alex", "email": "alex@example.com", "password": "qwerty123"}"#,
        ),
        (
            "sign-up bob",
            "/auth/sign-up",
            r#"{"username": "bob", "email": "bob@example.com", "password": "qwerty123"}"#,
        ),
        (
            "sign-up again",
            "/auth/sign-up",
            r#"{"username": "alex", "email": "alex@example.com", "password": "qwerty123"}"#,
        ),
        (
            "sign-in wrong",
            "/auth/sign-in",
            r#"{"email": "alex@example.com", "password": "nope-nope"}"#,
        ),
    ] {
        t.http(
            step,
            call(&app, &base, "POST", path, None, Some(body)).await,
        );
    }
    let sign_in = call(
        &app,
        &base,
        "POST",
        "/auth/sign-in",
        None,
        Some(r#"{"email": "alex@example.com", "password": "qwerty123"}"#),
    )
    .await;
    let token = sign_in.1["token"].as_str().unwrap().to_owned();
    t.http("sign-in", sign_in);
    let bearer = format!("Bearer {token}");
    t.http(
        "group_chat",
        call(
            &app,
            &base,
            "POST",
            "/group_chat?title=Friends",
            Some(&bearer),
            None,
        )
        .await,
    );
    t.http(
        "group_chat without a token",
        call(&app, &base, "POST", "/group_chat?title=Friends", None, None).await,
    );
    t.http(
        "chat with nobody",
        call(
            &app,
            &base,
            "GET",
            &format!("/chat?username=nobody&token={token}"),
            None,
            None,
        )
        .await,
    );
    let mut direct = app.ws(&format!("/chat?username=bob&token={token}")).await;
    direct.send_json(json!({"message": "Hello, Bob!"})).await;
    t.push("direct message", direct.recv_json().await);
    direct.send_text("not json").await;
    t.push("invalid JSON", direct.recv_json().await);
    let mut group = app
        .ws(&format!("/chat_group?idGroup=1&token={token}"))
        .await;
    group.send_json(json!({"message": "Hi, friends"})).await;
    t.push("group message", group.recv_json().await);
    insta::assert_json_snapshot!(t.into_value());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_003() {
    let app = TestApp::spawn().await;
    let base = app.base.clone();
    app.user("carol").await;
    let mut t = Transcript::default();
    let auth = call(
        &app,
        &base,
        "POST",
        "/v1/auth/",
        None,
        Some(r#"{"user_name": "carol", "password": "password123", "id": 3}"#),
    )
    .await;
    let token = auth.1["result"]["token"].as_str().unwrap().to_owned();
    t.http("auth", auth);
    t.http(
        "auth wrong password",
        call(
            &app,
            &base,
            "POST",
            "/v1/auth/",
            None,
            Some(r#"{"user_name": "carol", "password": "nope-nope"}"#),
        )
        .await,
    );
    t.http(
        "auth unknown user",
        call(
            &app,
            &base,
            "POST",
            "/v1/auth/",
            None,
            Some(r#"{"user_name": "nobody", "password": "password123"}"#),
        )
        .await,
    );
    let mut socket = app.ws("/v1/ws/").await;
    for (step, request) in [
        (
            "send before auth",
            json!({"method": "message.send", "params": ["hi"], "id": 1}),
        ),
        (
            "message.auth",
            json!({"method": "message.auth", "params": [token], "id": 2}),
        ),
        (
            "message.send",
            json!({"method": "message.send", "params": ["I need help"], "id": 3}),
        ),
        (
            "wrong params",
            json!({"method": "message.send", "params": [5], "id": 4}),
        ),
        (
            "unknown method",
            json!({"method": "message.fly", "params": [], "id": 5}),
        ),
        (
            "an operator's method",
            json!({"method": "message.operatorSend", "params": ["x", 1], "id": 6}),
        ),
    ] {
        socket.send_json(request).await;
        t.push(step, socket.recv_json().await);
    }
    socket.send_text("not json").await;
    t.push("invalid JSON", socket.recv_json().await);
    let mut bad = app.ws("/v1/ws/").await;
    bad.send_json(json!({"method": "message.auth", "params": ["garbage"], "id": 1}))
        .await;
    t.push("a bad token", closing(&mut bad).await);
    insta::assert_json_snapshot!(t.into_value());
}
