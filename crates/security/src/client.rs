//! The suite's HTTP and WebSocket client: raw requests (status, content type, body text) so each
//! door's own error format can be checked, WebSockets with close codes, and accounts on every door
//! (registering through the native API, then each door's own login).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Password of every account the suite creates (8–128 bytes, as every door requires).
pub const PASSWORD: &str = "security-suite-pass";

/// How long the suite waits for an answer that should come, and the longest wait on a 429.
pub const WAIT: Duration = Duration::from_secs(5);

/// An HTTP answer: status, `Content-Type` and body text.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header ("" when absent).
    pub content_type: String,
    /// The body, as text.
    pub text: String,
}

impl Resp {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// `status body` in one line, for failure messages.
    pub fn brief(&self) -> String {
        let mut text = self.text.clone();
        text.truncate(300);
        format!("{} {text:?}", self.status)
    }
}

/// How a request carries its token.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No token.
    None,
    /// `Authorization: Bearer <token>` (native, doors 002 and 000).
    Bearer(&'a str),
    /// `Authorization: <token>` (door 004).
    Raw(&'a str),
}

/// An HTTP client for one server (a base URL such as `http://127.0.0.1:8080`).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    /// The base URL, without a trailing slash.
    pub base: String,
}

impl Http {
    /// A client for `base`.
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The WebSocket base (`ws://host:port`).
    pub fn ws_base(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    /// One request. `body` is sent as given with `Content-Type: application/json`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Resp> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => req = req.header("Authorization", format!("Bearer {token}")),
            Auth::Raw(token) => req = req.header("Authorization", token),
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Resp {
            status,
            content_type,
            text: resp.text().await.unwrap_or_default(),
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Result<Resp> {
        self.call(Method::GET, path, auth, None, &[]).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, auth: Auth<'_>, body: &Value) -> Result<Resp> {
        self.call(Method::POST, path, auth, Some(&body.to_string()), &[])
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, auth: Auth<'_>, body: &Value) -> Result<Resp> {
        self.call(Method::PUT, path, auth, Some(&body.to_string()), &[])
            .await
    }

    /// A login or registration: waits out a 429 (the server's per-address limit) and retries,
    /// for at most 65 s.
    pub async fn auth_call(&self, method: Method, path: &str, body: &Value) -> Result<Resp> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(65);
        loop {
            let resp = self
                .call(
                    method.clone(),
                    path,
                    Auth::None,
                    Some(&body.to_string()),
                    &[],
                )
                .await?;
            if resp.status != 429 || tokio::time::Instant::now() > deadline {
                return Ok(resp);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Opens a WebSocket at `path`. Errors: the handshake was refused (with its HTTP status).
    pub async fn ws(&self, path: &str) -> Result<Ws> {
        let url = format!("{}{path}", self.ws_base());
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .map_err(|_| anyhow!("WebSocket handshake to {path} timed out"))??;
        Ok(Ws { stream })
    }

    /// The HTTP status with which the server refuses a WebSocket handshake at `path` (`101` when
    /// it accepts it).
    pub async fn ws_status(&self, path: &str) -> Result<u16> {
        let url = format!("{}{path}", self.ws_base());
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => Ok(101),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Ok(resp.status().as_u16()),
            Err(e) => Err(e.into()),
        }
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// The connection dropped without a close frame.
    Dropped,
    /// Still open at the deadline.
    Open,
}

/// A client WebSocket.
pub struct Ws {
    stream: Stream,
}

impl Ws {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.stream
            .send(Message::Text(text.to_owned().into()))
            .await?;
        Ok(())
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send_text(&value.to_string()).await
    }

    /// The next text frame as JSON, within `WAIT`. Errors: none came, or the socket ended.
    pub async fn recv_json(&mut self) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => bail!("no frame within {WAIT:?}"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(
                        serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()))
                    );
                }
                Ok(Some(Ok(Message::Close(frame)))) => bail!("socket closed: {frame:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => bail!("socket error: {e}"),
                Ok(None) => bail!("socket ended"),
            }
        }
    }

    /// The next text frame for which `wanted` holds, skipping others, within `WAIT`.
    pub async fn recv_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = tokio::time::timeout(left, self.recv_json())
                .await
                .map_err(|_| anyhow!("no matching frame within {WAIT:?}"))??;
            if wanted(&frame) {
                return Ok(frame);
            }
        }
    }

    /// Every text frame (as JSON) until `ms` milliseconds have passed or the socket ends, and how
    /// it ended.
    pub async fn collect(&mut self, ms: u64) -> (Vec<Value>, Ended) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return (frames, Ended::Open),
                Ok(Some(Ok(Message::Text(text)))) => frames
                    .push(serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()))),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let ended = frame.map_or(Ended::Dropped, |f| {
                        Ended::Closed(u16::from(f.code), f.reason.to_string())
                    });
                    return (frames, ended);
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return (frames, Ended::Dropped),
            }
        }
    }

    /// How the socket ends within `ms` milliseconds (text frames are skipped).
    pub async fn ended(&mut self, ms: u64) -> Ended {
        self.collect(ms).await.1
    }
}

/// An account with a token of every kind the doors issue.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Username, as registered.
    pub username: String,
    /// Email.
    pub email: String,
    /// Native access token.
    pub access: String,
    /// Native refresh token.
    pub refresh: String,
}

/// Registers `username` through the native API (email `<username>@<domain>`) and logs in.
pub async fn register(http: &Http, username: &str) -> Result<User> {
    let email = format!("{}@example.com", username.to_lowercase());
    let resp = register_as(http, username, &email).await?;
    if resp.status != 201 {
        bail!("register {username:?}: {}", resp.brief());
    }
    let id = resp.json()["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("register {username:?}: no id in {}", resp.brief()))?;
    let (access, refresh) = login(http, username).await?;
    Ok(User {
        id,
        username: username.to_owned(),
        email,
        access,
        refresh,
    })
}

/// `POST /api/v1/auth/register/` for `username` and `email`, as it answers.
pub async fn register_as(http: &Http, username: &str, email: &str) -> Result<Resp> {
    http.auth_call(
        Method::POST,
        "/api/v1/auth/register/",
        &json!({"username": username, "email": email, "password": PASSWORD, "password2": PASSWORD}),
    )
    .await
}

/// A fresh native session of `login` (a username or an email): `(access, refresh)`.
pub async fn login(http: &Http, login: &str) -> Result<(String, String)> {
    let resp = http
        .auth_call(
            Method::POST,
            "/api/v1/auth/login/",
            &json!({"username": login, "password": PASSWORD}),
        )
        .await?;
    if resp.status != 200 {
        bail!("login {login:?}: {}", resp.brief());
    }
    let body = resp.json();
    match (body["access"].as_str(), body["refresh"].as_str()) {
        (Some(a), Some(r)) => Ok((a.to_owned(), r.to_owned())),
        _ => bail!("login {login:?}: {}", resp.brief()),
    }
}

/// Door 004's token (`PUT /login {"email","password"}`).
pub async fn door004_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::PUT,
            "/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await?;
    token_of(resp, "door 004 login")
}

/// Door 000's token (`POST /auth/sign-in {"username","password"}`).
pub async fn door000_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::POST,
            "/auth/sign-in",
            &json!({"username": user.username, "password": PASSWORD}),
        )
        .await?;
    token_of(resp, "door 000 sign-in")
}

/// Door 003's token (`POST /v1/auth/ {"user_name","password"}`).
pub async fn door003_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::POST,
            "/v1/auth/",
            &json!({"user_name": user.username, "password": PASSWORD}),
        )
        .await?;
    if resp.status != 200 {
        bail!("door 003 auth: {}", resp.brief());
    }
    resp.json()["result"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("door 003 auth: {}", resp.brief()))
}

fn token_of(resp: Resp, what: &str) -> Result<String> {
    if resp.status != 200 {
        bail!("{what}: {}", resp.brief());
    }
    resp.json()["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: {}", resp.brief()))
}

/// Creates a native group owned by `owner`: `(id, name)`. `name` is its unique address.
pub async fn group(http: &Http, owner: &User, name: &str, private: bool) -> Result<i64> {
    let resp = http
        .post(
            "/api/v1/chats/groups",
            Auth::Bearer(&owner.access),
            &json!({"title": name, "name": name, "is_private": private}),
        )
        .await?;
    if resp.status != 201 {
        bail!("create group {name}: {}", resp.brief());
    }
    resp.json()["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("create group: {}", resp.brief()))
}

/// `owner` adds `member` to the group `chat`.
pub async fn invite(http: &Http, owner: &User, chat: i64, member: &User) -> Result<()> {
    let resp = http
        .post(
            &format!("/api/v1/chats/{chat}/members"),
            Auth::Bearer(&owner.access),
            &json!({"user_id": member.id}),
        )
        .await?;
    if resp.status != 201 {
        bail!("invite: {}", resp.brief());
    }
    Ok(())
}

/// The direct chat of `a` and `b` (opened by `a`).
pub async fn direct(http: &Http, a: &User, b: &User) -> Result<i64> {
    let resp = http
        .post(
            "/api/v1/chats/direct",
            Auth::Bearer(&a.access),
            &json!({"user_id": b.id}),
        )
        .await?;
    if !matches!(resp.status, 200 | 201) {
        bail!("open direct chat: {}", resp.brief());
    }
    resp.json()["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("open direct chat: {}", resp.brief()))
}

/// A gateway socket of `token`, after its `ready` frame.
pub async fn gateway(http: &Http, token: &str) -> Result<Ws> {
    let mut ws = http.ws(&format!("/api/v1/ws?token={token}")).await?;
    let ready = ws.recv_json().await?;
    if ready["event"] != "ready" {
        bail!("gateway greeted with {ready}");
    }
    Ok(ws)
}

/// The texts of chat `chat`'s newest messages (up to 200), oldest first, read by `reader`.
pub async fn history_texts(http: &Http, reader: &User, chat: i64) -> Result<Vec<String>> {
    let resp = http
        .get(
            &format!("/api/v1/chats/{chat}/messages?limit=200"),
            Auth::Bearer(&reader.access),
        )
        .await?;
    if resp.status != 200 {
        bail!("history of {chat}: {}", resp.brief());
    }
    Ok(resp.json()["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Percent-encodes `text` for a URL path segment or query value (RFC 3986 unreserved characters
/// stay as they are).
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
