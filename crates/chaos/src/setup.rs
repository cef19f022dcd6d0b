//! The run's users and chats, made over REST on instance A before any fault.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::Args;
use crate::client::{Kind, User, UserState};

/// Password of every user the run registers.
const PASSWORD: &str = "chaos-run-password";

/// Users 0..n registered and logged in (on instance A), groups and direct chats created and
/// joined, and each user's chats read back from the server.
pub async fn setup(http: &reqwest::Client, base: &str, args: &Args) -> Result<Vec<Arc<User>>> {
    let tag = format!("{:05x}", rand::random::<u32>() & 0xfffff);
    let mut accounts = Vec::new();
    for i in 0..args.users {
        let name = format!("chaos{tag}u{i}");
        let reg = post(
            http,
            base,
            "/api/v1/auth/register/",
            None,
            json!({"username": name, "email": format!("{name}@example.com"),
                   "password": PASSWORD, "password2": PASSWORD}),
        )
        .await?;
        let login = post(
            http,
            base,
            "/api/v1/auth/login/",
            None,
            json!({"username": name, "password": PASSWORD}),
        )
        .await?;
        let id = reg["id"].as_i64().context("register answered no id")?;
        let token = login["access"]
            .as_str()
            .context("no access token")?
            .to_owned();
        accounts.push((id, token));
    }
    let mut groups = Vec::new();
    for g in 0..args.groups.max(1) {
        let owner = &accounts[g % accounts.len()].1;
        let chat = post(
            http,
            base,
            "/api/v1/chats/groups",
            Some(owner),
            json!({"title": format!("chaos group {g}"), "is_private": false}),
        )
        .await?;
        groups.push(chat["id"].as_i64().context("group without id")?);
    }
    for (i, (_, token)) in accounts.iter().enumerate() {
        for g in [i % groups.len(), (i + 2) % groups.len()] {
            if g % accounts.len() != i {
                post(
                    http,
                    base,
                    &format!("/api/v1/chats/{}/join", groups[g]),
                    Some(token),
                    json!({}),
                )
                .await?;
            }
        }
    }
    for d in 0..args.directs.min(accounts.len() / 2) {
        let (other, _) = &accounts[2 * d + 1];
        post(
            http,
            base,
            "/api/v1/chats/direct",
            Some(&accounts[2 * d].1),
            json!({"user_id": other}),
        )
        .await?;
    }
    let mut users = Vec::new();
    for (idx, (id, token)) in accounts.into_iter().enumerate() {
        let list = http
            .get(format!("{base}/api/v1/chats"))
            .bearer_auth(&token)
            .send()
            .await?
            .json::<Value>()
            .await?;
        let items = list
            .as_array()
            .or_else(|| list["results"].as_array())
            .context("GET /api/v1/chats answered no list")?;
        let chats = items.iter().filter_map(|c| c["id"].as_i64()).collect();
        users.push(Arc::new(User {
            idx,
            id,
            token,
            kind: if idx % 3 == 2 {
                Kind::Rest
            } else {
                Kind::Gateway
            },
            chats,
            st: Mutex::new(UserState::default()),
        }));
    }
    Ok(users)
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut req = http.post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.with_context(|| format!("POST {path}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status} {body}");
    }
    Ok(body)
}
