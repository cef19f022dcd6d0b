//! Chats made and read through the native API: groups, members, direct chats, history.

use anyhow::{Result, anyhow, bail};
use serde_json::json;

use super::{Auth, Http, User};

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
