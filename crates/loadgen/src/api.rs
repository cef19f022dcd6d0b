//! The REST calls that set a run up (users, tokens, groups) and the history reads, over the
//! native API and door 002's REST routes (docs/native-api.md). Setup is idempotent: a rerun finds its
//! users and groups and only logs in (or reuses cached tokens).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Password of every generated user (8–128 bytes, as the server requires).
pub const PASSWORD: &str = "load-test-password";

/// A REST client for one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

fn rate_limited(status: StatusCode) -> Result<()> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        bail!(
            "the server rate-limits this (429): start it with CHAT_RATE_AUTH_PER_MIN=0 and \
             CHAT_RATE_SEND_PER_MIN=0 for load runs"
        );
    }
    Ok(())
}

impl Api {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(256)
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        rate_limited(status)?;
        let value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn get(&self, path: &str, token: &str) -> Result<(StatusCode, Value)> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        rate_limited(status)?;
        let value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// The access token of `username`, registering the user first when needed.
    /// Errors: the server refuses both (the reason is in the message).
    pub async fn token(&self, username: &str) -> Result<String> {
        let login = json!({"username": username, "password": PASSWORD});
        let (status, body) = self
            .post("/api/v1/auth/login/", None, login.clone())
            .await?;
        if status == StatusCode::OK {
            return access(&body);
        }
        let register = json!({
            "username": username,
            "email": format!("{username}@load.test"),
            "password": PASSWORD,
            "password2": PASSWORD,
        });
        let (status, body) = self.post("/api/v1/auth/register/", None, register).await?;
        if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
            bail!("register {username}: {status} {body}");
        }
        let (status, body) = self.post("/api/v1/auth/login/", None, login).await?;
        if status != StatusCode::OK {
            bail!("login {username}: {status} {body}");
        }
        access(&body)
    }

    /// Whether `token` is accepted (`GET /api/v1/users/me`).
    pub async fn token_valid(&self, token: &str) -> Result<bool> {
        Ok(self.get("/api/v1/users/me", token).await?.0 == StatusCode::OK)
    }

    /// Tokens for `names`, in order, `concurrency` logins at a time. Tokens are cached in
    /// `$TMPDIR/chat-load/` per server and reused while the server accepts them.
    pub async fn tokens(&self, names: &[String], concurrency: usize) -> Result<Vec<String>> {
        let path = self.cache_path();
        let mut cache: HashMap<String, String> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // One probe tells whether the server still accepts the cached tokens (same secret).
        if let Some(t) = names.iter().find_map(|n| cache.get(n))
            && !self.token_valid(t).await?
        {
            cache.clear();
        }
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !cache.contains_key(*n))
            .cloned()
            .collect();
        if !missing.is_empty() {
            eprintln!("setup: logging in {} users", missing.len());
        }
        let fresh: Vec<(String, String)> = futures_util::stream::iter(missing)
            .map(|n| async move { self.token(&n).await.map(|t| (n, t)) })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let changed = !fresh.is_empty();
        cache.extend(fresh);
        if changed {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, serde_json::to_vec(&cache)?)?;
        }
        names
            .iter()
            .map(|n| {
                cache
                    .get(n)
                    .cloned()
                    .ok_or_else(|| anyhow!("no token for {n}"))
            })
            .collect()
    }

    fn cache_path(&self) -> PathBuf {
        let host: String = self
            .base
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::env::temp_dir()
            .join("chat-load")
            .join(format!("tokens-{host}.json"))
    }

    /// The id of the public group `name`, created by `owner` when it does not exist.
    /// Errors: the name is taken by a group `owner` cannot see.
    pub async fn ensure_group(&self, owner: &str, name: &str) -> Result<i64> {
        let body = json!({"title": name, "name": name, "is_private": false});
        let (status, created) = self.post("/api/v1/chats/groups", Some(owner), body).await?;
        if status == StatusCode::CREATED {
            return created["id"]
                .as_i64()
                .ok_or_else(|| anyhow!("no id in {created}"));
        }
        let (_, list) = self.get("/api/v1/chats?limit=500", owner).await?;
        list.as_array()
            .and_then(|chats| chats.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .ok_or_else(|| anyhow!("group {name}: {status} {created}, and not in its owner's list"))
    }

    /// Members of chat `chat_id` (as seen by a member).
    pub async fn member_count(&self, token: &str, chat_id: i64) -> Result<usize> {
        let (status, body) = self
            .get(&format!("/api/v1/chats/{chat_id}/members"), token)
            .await?;
        if status != StatusCode::OK {
            return Ok(0);
        }
        Ok(body.as_array().map_or(0, Vec::len))
    }

    /// Joins the public group `chat_id` (already a member is fine).
    pub async fn join(&self, token: &str, chat_id: i64) -> Result<()> {
        let (status, body) = self
            .post(
                &format!("/api/v1/chats/{chat_id}/join"),
                Some(token),
                json!({}),
            )
            .await?;
        if !status.is_success() && status != StatusCode::CONFLICT {
            bail!("join {chat_id}: {status} {body}");
        }
        Ok(())
    }

    /// Door 002: creates group `name` (taken is fine) with `POST /api/v1/chat/create-group`.
    pub async fn create_group_002(&self, owner: &str, name: &str) -> Result<()> {
        let (status, body) = self
            .post(
                "/api/v1/chat/create-group",
                Some(owner),
                json!({"name": name}),
            )
            .await?;
        if !status.is_success() && status != StatusCode::CONFLICT {
            bail!("create-group {name}: {status} {body}");
        }
        Ok(())
    }

    /// Door 002: joins group `name` (already a member is fine).
    pub async fn join_group_002(&self, token: &str, name: &str) -> Result<()> {
        let (status, body) = self
            .post(
                &format!("/api/v1/chat/join-group/{name}"),
                Some(token),
                json!({}),
            )
            .await?;
        if !status.is_success() && status != StatusCode::CONFLICT {
            bail!("join-group {name}: {status} {body}");
        }
        Ok(())
    }

    /// Sends `text` into `chat_id` over REST; returns its seq.
    pub async fn send(&self, token: &str, chat_id: i64, text: &str) -> Result<i64> {
        let (status, body) = self
            .post(
                &format!("/api/v1/chats/{chat_id}/messages"),
                Some(token),
                json!({"text": text}),
            )
            .await?;
        if !status.is_success() {
            bail!("send into {chat_id}: {status} {body}");
        }
        body["seq"]
            .as_i64()
            .ok_or_else(|| anyhow!("no seq in {body}"))
    }

    /// The newest seq of `chat_id` (0 when empty).
    pub async fn last_seq(&self, token: &str, chat_id: i64) -> Result<i64> {
        let (status, body) = self
            .get(&format!("/api/v1/chats/{chat_id}/messages?limit=1"), token)
            .await?;
        if status != StatusCode::OK {
            bail!("history of {chat_id}: {status} {body}");
        }
        Ok(body["messages"][0]["seq"].as_i64().unwrap_or(0))
    }

    /// One history page: the `limit` messages before `before`; returns how many came.
    pub async fn page(&self, token: &str, chat_id: i64, before: i64, limit: u32) -> Result<usize> {
        let (status, body) = self
            .get(
                &format!("/api/v1/chats/{chat_id}/messages?before={before}&limit={limit}"),
                token,
            )
            .await?;
        if status != StatusCode::OK {
            bail!("page of {chat_id} before {before}: {status} {body}");
        }
        Ok(body["messages"].as_array().map_or(0, Vec::len))
    }
}

fn access(body: &Value) -> Result<String> {
    body["access"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no access token in {body}"))
}
