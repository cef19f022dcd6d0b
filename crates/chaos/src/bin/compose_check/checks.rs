//! The checks that chat through nginx: users and a group, live sockets, door 002, door 001.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::stack::{Stack, User, Ws, next_json};

/// Alice's and Bob's sockets from [`live_gateway`], each with the instance that took it.
pub type Sockets = (Ws, String, Ws, String);

/// Registers Alice and Bob and makes Bob a member of Alice's group: (alice, bob, chat).
pub async fn setup(c: &Stack, tag: &str) -> Result<(User, User, i64)> {
    let alice = c.user(&format!("alice{tag}")).await?;
    let bob = c.user(&format!("bob{tag}")).await?;
    let (status, group) = c
        .post(
            "/api/v1/chats/groups",
            Some(&alice.token),
            json!({"title": "compose"}),
        )
        .await?;
    let chat = group["id"].as_i64().context(format!("{status} {group}"))?;
    let bob_id = c.get("/api/v1/users/me", &bob.token).await?.1["id"].clone();
    c.post(
        &format!("/api/v1/chats/{chat}/members"),
        Some(&alice.token),
        json!({"user_id": bob_id}),
    )
    .await?;
    Ok((alice, bob, chat))
}

/// Alice and Bob on different instances chat live over the gateway; answers their sockets too.
pub async fn live_gateway(
    c: &Stack,
    alice: &User,
    bob: &User,
    chat: i64,
) -> Result<(String, Sockets)> {
    let (mut a, a_inst) = c.gateway(alice, "").await?;
    let mut tries = 0;
    let (mut b, b_inst) = loop {
        let (b, b_inst) = c.gateway(bob, "").await?;
        if b_inst != a_inst || tries == 8 {
            break (b, b_inst);
        }
        tries += 1;
    };
    if a_inst.is_empty() || a_inst == b_inst {
        bail!("both sockets on instance {a_inst:?} (round robin?)");
    }
    a.send(Message::Text(
        json!({"action": "send_message", "chat_id": chat, "message": "hi bob", "client_id": "a1"})
            .to_string()
            .into(),
    ))
    .await?;
    let got = next_json(&mut b, |v| v["event"] == "message.created").await?;
    if got["message"]["text"] != "hi bob" {
        bail!("bob got {got}");
    }
    b.send(Message::Text(
        json!({"action": "send_message", "chat_id": chat, "message": "hi alice", "client_id": "b1"})
            .to_string()
            .into(),
    ))
    .await?;
    let got = next_json(&mut a, |v| v["event"] == "message.created").await?;
    if got["message"]["text"] != "hi alice" {
        bail!("alice got {got}");
    }
    let detail = format!("alice on {a_inst}, bob on {b_inst}; both messages live");
    Ok((detail, (a, a_inst, b, b_inst)))
}

/// A door 002 group of Alice's that Bob joins: a broadcast arrives, its socket URL leads back
/// through nginx.
pub async fn door002(c: &Stack, alice: &User, bob: &User, tag: &str) -> Result<String> {
    let name = format!("room{tag}");
    let (status, body) = c
        .post(
            "/api/v1/chat/create-group",
            Some(&alice.token),
            json!({"name": name}),
        )
        .await?;
    if status != 201 {
        bail!("create-group: {status} {body}");
    }
    let (status, body) = c
        .post(
            &format!("/api/v1/chat/join-group/{name}"),
            Some(&bob.token),
            json!({}),
        )
        .await?;
    if status != 200 {
        bail!("join-group: {status} {body}");
    }
    let (_, url) = c
        .get(&format!("/api/v1/chat/chat-group/{name}"), &bob.token)
        .await?;
    let ws_url = |token: &str| {
        format!(
            "{}/ws/group/{name}/?token={token}",
            c.url.replacen("http", "ws", 1)
        )
    };
    let (mut a, _) = tokio_tungstenite::connect_async(ws_url(&alice.token)).await?;
    let (mut b, _) = tokio_tungstenite::connect_async(ws_url(&bob.token)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send(Message::Text(
        json!({"action": "send_message", "message": "door 002 hello"})
            .to_string()
            .into(),
    ))
    .await?;
    next_json(&mut b, |v| v["message"]["content"] == "door 002 hello").await?;
    // The URL door 002 hands out must lead back through nginx: host and port as used.
    let handed = url["url"].as_str().unwrap_or_default();
    let wanted = format!(
        "{}/ws/group/{name}/?token=",
        c.url.replacen("http", "ws", 1)
    );
    if !handed.starts_with(&wanted) {
        bail!("chat-group url {handed:?} does not start with {wanted:?}");
    }
    Ok(format!("broadcast arrived; chat-group url {wanted}…"))
}

/// Nothing listens on door 001's port, and nginx does not serve its routes.
pub async fn door001_unreachable(c: &Stack) -> Result<String> {
    let host = c
        .url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or("127.0.0.1")
        .to_owned();
    if tokio::net::TcpStream::connect((host.as_str(), 9000))
        .await
        .is_ok()
    {
        bail!("something listens on {host}:9000");
    }
    let resp = c
        .http
        .post(format!("{}/users/add", c.url))
        .json(&json!({"username": "x"}))
        .send()
        .await?;
    if resp.status() != 404 {
        bail!("POST /users/add through nginx: {}", resp.status());
    }
    Ok("port 9000 closed; /users/add through nginx is 404".into())
}
