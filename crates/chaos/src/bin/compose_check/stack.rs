//! The checker's client of the stack: HTTP and sockets through nginx, and the compose command.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The stack under test: nginx's URL and the compose command that drives it.
pub struct Stack {
    /// HTTP client for requests through nginx.
    pub http: reqwest::Client,
    /// nginx's address on the host, without a trailing slash.
    pub url: String,
    /// The compose command, split on spaces.
    pub compose: Vec<String>,
}

/// A user registered through nginx.
pub struct User {
    /// Username.
    pub name: String,
    /// Native access token.
    pub token: String,
}

/// Password of every user the checks register.
pub const PASSWORD: &str = "compose-check-pass";

impl Stack {
    /// Runs the compose command with `args`; answers its standard output.
    pub async fn compose(&self, args: &[&str]) -> Result<String> {
        let out = tokio::process::Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "{} {}: {}",
                self.compose.join(" "),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `POST path` with a JSON body (and a token): status and body (`Null` when not JSON).
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// `GET path` with a token: status and body (`Null` when not JSON).
    pub async fn get(&self, path: &str, token: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Registers `name` and logs in.
    pub async fn user(&self, name: &str) -> Result<User> {
        let (status, body) = self
            .post(
                "/api/v1/auth/register/",
                None,
                json!({"username": name, "email": format!("{name}@example.com"),
                       "password": PASSWORD, "password2": PASSWORD}),
            )
            .await?;
        if status != 201 {
            bail!("register {name}: {status} {body}");
        }
        let (status, body) = self
            .post(
                "/api/v1/auth/login/",
                None,
                json!({"username": name, "password": PASSWORD}),
            )
            .await?;
        let token = body["access"]
            .as_str()
            .ok_or_else(|| anyhow!("login {name}: {status} {body}"))?;
        Ok(User {
            name: name.to_owned(),
            token: token.to_owned(),
        })
    }

    /// A gateway socket through nginx, after `ready`; with the instance that took it.
    pub async fn gateway(&self, user: &User, sync: &str) -> Result<(Ws, String)> {
        let url = format!(
            "{}/api/v1/ws?token={}{sync}",
            self.url.replacen("http", "ws", 1),
            user.token
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(&url).await?;
        let instance = resp
            .headers()
            .get("x-chat-instance")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let ready = next_json(&mut ws, |v| v["event"] == "ready").await?;
        if ready["event"] != "ready" {
            bail!("no ready: {ready}");
        }
        Ok((ws, instance))
    }

    /// Which app service (`app1`/`app2`) has instance id `id`.
    pub async fn service_of(&self, id: &str) -> Result<String> {
        for service in ["app1", "app2"] {
            let head = self
                .compose(&[
                    "exec",
                    "-T",
                    service,
                    "curl",
                    "-sI",
                    "http://127.0.0.1:8080/healthz",
                ])
                .await
                .unwrap_or_default();
            if head.to_ascii_lowercase().contains(&id.to_ascii_lowercase()) {
                return Ok(service.to_owned());
            }
        }
        bail!("no app container has instance id {id}")
    }

    /// Sends `text` over REST (through nginx), retrying for up to `within`; answers its seq.
    pub async fn send(&self, user: &User, chat: i64, text: &str, within: Duration) -> Result<i64> {
        let deadline = Instant::now() + within;
        loop {
            let sent = self
                .post(
                    &format!("/api/v1/chats/{chat}/messages"),
                    Some(&user.token),
                    json!({"text": text, "client_id": text}),
                )
                .await;
            match sent {
                Ok((200 | 201, body)) => return Ok(body["seq"].as_i64().unwrap_or(0)),
                Ok((status, body)) if Instant::now() > deadline => {
                    bail!("send {text}: {status} {body}")
                }
                Err(e) if Instant::now() > deadline => bail!("send {text}: {e}"),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Waits until nginx answers `/readyz` with 200 (at most `within`).
    pub async fn ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(resp) = self.http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("nginx did not answer /readyz within {within:?}")
    }
}

/// The next text frame (as JSON) for which `wanted` holds, within 10 s.
pub async fn next_json(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => bail!("no matching frame within 10 s"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if wanted(&v) {
                    return Ok(v);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => bail!("closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("socket error: {e}"),
            Ok(None) => bail!("socket ended"),
        }
    }
}

/// The seqs of `chat`'s `message.created` frames until `last` arrived (10 s at most).
pub async fn created_until(ws: &mut Ws, chat: i64, last: i64) -> Result<Vec<i64>> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let v = next_json(ws, |v| {
            v["event"] == "message.created" && v["chat_id"] == chat
        })
        .await?;
        seqs.push(v["seq"].as_i64().unwrap_or(0));
    }
    Ok(seqs)
}
