//! Servers under test (feature `app`): real `chat-server` instances on port 0 of 127.0.0.1,
//! talked to over real HTTP and WebSocket connections, with helpers for every door.

use std::sync::Arc;
use std::time::Duration;

use chat_api::{RunningServer, Settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::{TestEnv, redis_url};

/// The JWT secret of every server under test.
pub const JWT_SECRET: &str = "test-secret-not-for-production";

impl TestEnv {
    /// Settings for one instance of the app under test.
    pub fn settings(&self) -> Settings {
        Settings {
            database_url: self.database_url.clone(),
            redis_url: redis_url(),
            redis_prefix: self.redis_prefix.clone(),
            listen: "127.0.0.1:0".into(),
            jwt_secret: Some(JWT_SECRET.into()),
            bcrypt_cost: 4,
            workers: 1,
            db_pool_size: 4,
            // Off unless a test is about them: tests sign in a lot from one address.
            rate_send_per_min: 0,
            rate_auth_per_min: 0,
            // Offline at once unless a test is about the grace period.
            presence_grace_ms: 0,
            ..Settings::default()
        }
    }
}

/// One running instance of the server under test.
pub struct TestApp {
    /// Its database and Redis prefix (shared with its peers).
    pub env: Arc<TestEnv>,
    /// The running server (`None` once stopped).
    pub server: Option<RunningServer>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>`.
    pub ws_base: String,
    /// An HTTP client for it.
    pub http: reqwest::Client,
}

impl TestApp {
    /// A fresh environment and one instance on it.
    pub async fn spawn() -> Self {
        let env = TestEnv::new().await;
        Self::spawn_with(env.clone(), env.settings()).await
    }

    /// Another instance sharing this one's database and Redis prefix (a second server process
    /// in a deployment).
    pub async fn spawn_peer(&self) -> Self {
        Self::spawn_with(self.env.clone(), self.env.settings()).await
    }

    /// An instance on `env` with `settings` (which should come from `env.settings()`).
    pub async fn spawn_with(env: Arc<TestEnv>, settings: Settings) -> Self {
        // Server logs go to the test's captured output (shown for failing tests); RUST_LOG filters.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let server = chat_api::start(settings)
            .await
            .expect("server failed to start");
        let addr = server.addr;
        Self {
            env,
            server: Some(server),
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// The absolute URL of `path` on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` with a JSON body, as `token`'s bearer if any: status and body (see [`read`]).
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.unwrap()).await
    }

    /// `GET path`, as `token`'s bearer if any: status and body (see [`read`]).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.unwrap()).await
    }

    /// An app with door 001 on, on its own listener (port 0), and that listener's base URL.
    pub async fn spawn_door001() -> (Self, String) {
        Self::spawn_door001_with(|_| {}).await
    }

    /// [`TestApp::spawn_door001`] with settings changed by `change` (limits, sizes).
    pub async fn spawn_door001_with(change: impl FnOnce(&mut Settings)) -> (Self, String) {
        let env = TestEnv::new().await;
        let mut settings = chat_api::Settings {
            door_avito: true,
            avito_listen: Some("127.0.0.1:0".into()),
            // Off unless a test is about it, as the other limits.
            avito_rate_per_min: 0,
            ..env.settings()
        };
        change(&mut settings);
        let app = Self::spawn_with(env, settings).await;
        let door = app
            .server
            .as_ref()
            .unwrap()
            .avito_addr
            .expect("door 001 listener");
        (app, format!("http://{door}"))
    }

    /// Registers and logs in `username` (password `password123`, email `<username>@example.com`).
    pub async fn user(&self, username: &str) -> TestUser {
        let (status, body) = self
            .post(
                "/api/v1/auth/register/",
                None,
                json!({"username": username, "email": format!("{username}@example.com"),
                       "password": "password123", "password2": "password123"}),
            )
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        let id = body["id"].as_i64().unwrap();
        let (status, tokens) = self
            .post(
                "/api/v1/auth/login/",
                None,
                json!({"username": username, "password": "password123"}),
            )
            .await;
        assert_eq!(status, 200, "login {username}: {tokens}");
        TestUser {
            id,
            username: username.to_owned(),
            access: tokens["access"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh"].as_str().unwrap().to_owned(),
        }
    }

    /// Door 002: `owner` creates the group `name` (asserting 201).
    pub async fn create_group_002(&self, owner: &TestUser, name: &str) {
        let (status, body) = self
            .post(
                "/api/v1/chat/create-group",
                Some(&owner.access),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "create-group {name}: {body}");
    }

    /// Door 002: `user` joins the group `name` (asserting 200).
    pub async fn join_group_002(&self, user: &TestUser, name: &str) {
        let (status, body) = self
            .post(
                &format!("/api/v1/chat/join-group/{name}"),
                Some(&user.access),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "join-group {name}: {body}");
    }

    /// Door 002: `a` and `b` add each other as friends.
    pub async fn befriend(&self, a: &TestUser, b: &TestUser) {
        for (me, other) in [(a, b), (b, a)] {
            let path = format!("/api/v1/chat/add-friend/{}", other.username);
            let (status, body) = self.post(&path, Some(&me.access), json!({})).await;
            assert_eq!(status, 200, "add-friend: {body}");
        }
    }

    /// `user`'s door-002 socket on the group `name`.
    pub async fn group_socket(&self, user: &TestUser, name: &str) -> WsClient {
        self.ws(&format!("/ws/group/{name}/?token={}", user.access))
            .await
    }

    /// `user`'s door-002 socket on the direct chat with `peer`.
    pub async fn user_socket(&self, user: &TestUser, peer: &TestUser) -> WsClient {
        self.ws(&format!(
            "/ws/user/{}/?token={}",
            peer.username, user.access
        ))
        .await
    }

    /// `user`'s gateway socket (`/api/v1/ws?token=`), after its `ready` frame (returned).
    pub async fn gateway(&self, user: &TestUser) -> (WsClient, Value) {
        let mut socket = self.ws(&format!("/api/v1/ws?token={}", user.access)).await;
        let ready = socket.recv_json().await;
        assert_eq!(ready["event"], "ready", "{ready}");
        (socket, ready)
    }

    /// A public group of `owner` with `members` added by the owner: its id.
    pub async fn group(&self, owner: &TestUser, members: &[&TestUser]) -> i64 {
        let (status, chat) = self
            .post(
                "/api/v1/chats/groups",
                Some(&owner.access),
                json!({"title": "G"}),
            )
            .await;
        assert_eq!(status, 201, "{chat}");
        let chat = chat["id"].as_i64().unwrap();
        for member in members {
            let (status, body) = self
                .post(
                    &format!("/api/v1/chats/{chat}/members"),
                    Some(&owner.access),
                    json!({"user_id": member.id}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        chat
    }

    /// The id of `user`'s most recently active chat.
    pub async fn latest_chat(&self, user: &TestUser) -> i64 {
        let (_, list) = self.get("/api/v1/chats", Some(&user.access)).await;
        list[0]["id"].as_i64().expect("no chat")
    }

    /// `user` sends `text` to `chat` over REST (asserting 201); returns the message.
    pub async fn send(&self, user: &TestUser, chat: i64, text: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                Some(&user.access),
                json!({"text": text}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Opens a WebSocket at `path` (with `?token=` already in it where wanted).
    pub async fn ws(&self, path: &str) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(format!("{}{path}", self.ws_base))
            .await
            .expect("WebSocket handshake failed");
        WsClient { stream }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // The stop command is sent at once; the database drop that follows ends what remains.
            drop(server.handle().stop(false));
        }
    }
}

/// A response's status and body: JSON parsed, other text as a JSON string, empty as `null`.
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A registered and logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// The user's id.
    pub id: i64,
    /// The username it registered with.
    pub username: String,
    /// Its access token (JWT).
    pub access: String,
    /// Its refresh token.
    pub refresh: String,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket connection to a server under test.
pub struct WsClient {
    /// The connection itself, for what the helpers below do not cover.
    pub stream: Ws,
}

/// How long a test waits for a frame that should come.
pub const WAIT: Duration = Duration::from_secs(5);

impl WsClient {
    /// Sends `value` as a text frame.
    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends `text` as a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
    }

    /// The next text frame as JSON (pings are skipped). Panics after `WAIT` or on close.
    pub async fn recv_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no frame within 5 s")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("frame is not JSON");
                }
                Message::Close(frame) => panic!("socket closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The close frame the server sends next, skipping text frames (returned alongside).
    pub async fn recv_close(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut texts = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no close within 5 s");
            match msg {
                Some(Ok(Message::Text(text))) => texts.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return (texts, frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (texts, None),
            }
        }
    }

    /// The next frame whose `"event"` is `event`, skipping others (presence, typing, ...).
    pub async fn recv_event(&mut self, event: &str) -> Value {
        loop {
            let frame = self.recv_json().await;
            if frame["event"] == event {
                return frame;
            }
        }
    }

    /// Every text frame that arrives within `ms` milliseconds.
    pub async fn drain(&mut self, ms: u64) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    frames.push(serde_json::from_str(&text).unwrap())
                }
                Ok(Some(Ok(_))) => continue,
                _ => return frames,
            }
        }
    }

    /// Asserts that no text frame arrives within `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) => panic!("unexpected frame: {text}"),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }
}
