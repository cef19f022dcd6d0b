//! The suite's HTTP and WebSocket client.
//!
//! Requests are raw (status, content type, body text) so each door's own error format can be
//! checked; WebSockets report their close codes; accounts get a token of every door (registered
//! through the native API, then each door's own login). This module holds the HTTP side; `ws`
//! the WebSockets, `accounts` registration and the doors' logins, `chats` groups and direct
//! chats made and read through the native API.

mod accounts;
mod chats;
mod ws;

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;

pub use accounts::{
    User, door000_token, door003_token, door004_token, login, register, register_as,
};
pub use chats::{direct, group, history_texts, invite};
pub use ws::{Ended, Ws, gateway};

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
