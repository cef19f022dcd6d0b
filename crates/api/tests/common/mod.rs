//! Test harness: every test gets its own PostgreSQL database, cloned from a migrated template
//! (`CREATE DATABASE .. TEMPLATE`, ~40 ms), its own Redis key prefix, and real server instances
//! on port 0 talked to over real HTTP and WebSocket connections.
//!
//! Environment: `TEST_DATABASE_URL` (server URL without a database name, default
//! `postgres://postgres@127.0.0.1:5432`), `REDIS_URL` (default `redis://127.0.0.1:6379`).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chat_api::{RunningServer, Settings};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub const JWT_SECRET: &str = "test-secret-not-for-production";

fn pg_base() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{}/postgres", pg_base()))
        .await
        .expect("PostgreSQL is not reachable at TEST_DATABASE_URL (run `make services`)")
}

/// The template's name changes with the migrations, so a schema change builds a new one.
fn template_name() -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut paths: Vec<_> = walk(std::path::Path::new(dir));
    paths.sort();
    let mut hasher = DefaultHasher::new();
    for path in paths {
        path.file_name().hash(&mut hasher);
        std::fs::read(&path).unwrap().hash(&mut hasher);
    }
    format!("chat_tpl_{:016x}", hasher.finish())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Builds the migrated template once per machine (other test processes wait on an advisory
/// lock), building under a temporary name so a crash never leaves a half-migrated template.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin().await;
            diesel::sql_query("SELECT pg_advisory_lock(727274)")
                .execute(&mut conn)
                .await
                .unwrap();
            let exists: Count =
                diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                    .bind::<Text, _>(&name)
                    .get_result(&mut conn)
                    .await
                    .unwrap();
            if exists.n == 0 {
                let build = format!("{name}_build");
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {build}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                diesel::sql_query(format!("CREATE DATABASE {build}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                chat_selectors::run_migrations(&format!("{}/{build}", pg_base()))
                    .await
                    .unwrap();
                diesel::sql_query(format!("ALTER DATABASE {build} RENAME TO {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            diesel::sql_query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut conn)
                .await
                .unwrap();
            name
        })
        .await
}

/// A test's own database and Redis prefix; both are removed when the last holder drops it.
pub struct TestEnv {
    pub db_name: String,
    pub database_url: String,
    pub redis_prefix: String,
}

impl TestEnv {
    pub async fn new() -> Arc<Self> {
        let template = template().await;
        let suffix: u64 = rand::rng().random();
        // The creation time in the name lets `make clean-test-dbs` drop only stale databases,
        // never those of a run still going.
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let db_name = format!("t_{created}_{suffix:016x}");
        let mut conn = admin().await;
        diesel::sql_query(format!("CREATE DATABASE {db_name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Arc::new(Self {
            database_url: format!("{}/{db_name}", pg_base()),
            redis_prefix: format!("test:{suffix:016x}:"),
            db_name,
        })
    }

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
            ..Settings::default()
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let db = self.db_name.clone();
        let prefix = self.redis_prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin().await;
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                if let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut redis) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut redis)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// One running instance of the server under test.
pub struct TestApp {
    pub env: Arc<TestEnv>,
    pub server: Option<RunningServer>,
    pub base: String,
    pub ws_base: String,
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.unwrap()).await
    }

    /// An app with door 001 on, on its own listener (port 0), and that listener's base URL.
    pub async fn spawn_door001() -> (Self, String) {
        let env = TestEnv::new().await;
        let settings = chat_api::Settings {
            door_avito: true,
            avito_listen: Some("127.0.0.1:0".into()),
            ..env.settings()
        };
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

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub access: String,
    pub refresh: String,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    pub stream: Ws,
}

/// How long a test waits for a frame that should come.
pub const WAIT: Duration = Duration::from_secs(5);

impl WsClient {
    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

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

/// Runs `sql` on the server's `postgres` database (for statements about a test's own database,
/// such as refusing its connections for a while).
pub async fn admin_execute(sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    admin()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A Redis server of a test's own, on a free port, so the test may kill and restart it without
/// touching the machine's shared one. Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let port = loop {
            let candidate = rand::rng().random_range(21_000..29_000);
            if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
                break candidate;
            }
        };
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: nothing is said to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk) and waits until it
    /// answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is not installed");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private redis-server did not start on {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
