//! What a valid token reaches: its own user on every door, nothing in others' private groups.

use anyhow::{Context, Result, ensure};
use reqwest::Method;
use serde_json::json;

use super::whoami;
use crate::Target;
use crate::client::{
    self, Auth, Ended, Http, Ws, door000_token, door003_token, door004_token, gateway, register,
};

/// Every door's token works on every door (by design: one account, many doors), always as its
/// own user, over HTTP and on the gateway.
pub async fn every_door_accepts_every_door_token_for_its_own_user(t: &Target) -> Result<()> {
    let user = register(&t.main, &t.name("cross")).await?;
    let tokens = [
        ("native", user.access.clone()),
        ("door 004", door004_token(&t.main, &user).await?),
        ("door 000", door000_token(&t.main, &user).await?),
        ("door 003", door003_token(&t.main, &user).await?),
    ];
    for (label, token) in &tokens {
        for http in [&t.main, t.other()] {
            let id = whoami(http, token)
                .await
                .with_context(|| format!("{label} token"))?;
            ensure!(
                id == user.id,
                "{label} token acts as user {id}, not {}",
                user.id
            );
        }
        let mut ws = http_gateway(t.other(), token)
            .await
            .with_context(|| format!("{label} token on the gateway"))?;
        drop(ws.collect(10).await);
    }
    Ok(())
}

async fn http_gateway(http: &Http, token: &str) -> Result<Ws> {
    gateway(http, token).await
}

/// A private group of `alice` with `bob`: everything `mallory` (not a member) tries on every
/// door is refused, and nothing changes.
pub async fn non_members_are_refused_on_every_door(t: &Target) -> Result<()> {
    let http = &t.main;
    let alice = register(http, &t.name("nm_alice")).await?;
    let bob = register(http, &t.name("nm_bob")).await?;
    let mallory = register(http, &t.name("nm_mal")).await?;
    let name = t.name("nm_room");
    let group = client::group(http, &alice, &name, true).await?;
    client::invite(http, &alice, group, &bob).await?;
    let sent = http
        .post(
            &format!("/api/v1/chats/{group}/messages"),
            Auth::Bearer(&alice.access),
            &json!({"text": "private"}),
        )
        .await?;
    ensure!(sent.status == 201, "alice's send: {}", sent.brief());
    let before = client::history_texts(http, &alice, group).await?;
    let m = Auth::Bearer(&mallory.access);
    let native = [
        (Method::GET, format!("/api/v1/chats/{group}/messages"), None),
        (
            Method::POST,
            format!("/api/v1/chats/{group}/messages"),
            Some(json!({"text": "in"})),
        ),
        (Method::GET, format!("/api/v1/chats/{group}/members"), None),
        (
            Method::POST,
            format!("/api/v1/chats/{group}/members"),
            Some(json!({"user_id": mallory.id})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/chats/{group}/members/{}", bob.id),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/chats/{group}/members/{}", bob.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{group}/join"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{group}/leave"),
            Some(json!({})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/chats/{group}/messages/1"),
            Some(json!({"text": "x"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/chats/{group}/messages/1"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/chats/{group}/read"),
            Some(json!({"seq": 1})),
        ),
        (Method::GET, format!("/api/v1/chat/chat-group/{name}"), None),
        (
            Method::POST,
            format!("/api/v1/chat/join-group/{name}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/chat/leave-group/{name}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/chat/delete-group/{name}"),
            None,
        ),
    ];
    for (method, path, body) in native {
        let body = body.map(|b| b.to_string());
        let resp = http
            .call(method.clone(), &path, m, body.as_deref(), &[])
            .await?;
        ensure!(
            matches!(resp.status, 403 | 404) && resp.json()["detail"].is_string(),
            "mallory {method} {path}: {}",
            resp.brief()
        );
    }
    // The gateway: every chat action on the group is an error frame with code forbidden.
    let mut ws = gateway(t.other(), &mallory.access).await?;
    for (i, frame) in [
        json!({"action": "send_message", "chat_id": group, "message": "in"}),
        json!({"action": "retrieve_message", "chat_id": group}),
        json!({"action": "sync", "chats": {group.to_string(): 0}}),
        json!({"action": "typing", "chat_id": group}),
        json!({"action": "read", "chat_id": group, "seq": 1}),
        json!({"action": "presence", "chat_id": group}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut frame = frame;
        frame["request_id"] = json!(i);
        ws.send_json(&frame).await?;
        let reply = ws.recv_where(|f| f["request_id"] == i).await?;
        ensure!(
            reply["event"] == "error" && reply["code"] == "forbidden",
            "gateway {frame}: {reply}"
        );
    }
    // Door 002's socket, door 004, door 000.
    let mut ws = http
        .ws(&format!("/ws/group/{name}/?token={}", mallory.access))
        .await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        frames.first().is_some_and(|f| f["action"] == "disconect")
            && matches!(ended, Ended::Closed(1008, _)),
        "door 002 group socket: {frames:?} then {ended:?}"
    );
    let t4 = door004_token(http, &mallory).await?;
    let resp = http
        .put("/join", Auth::Raw(&t4), &json!({"room_id": group}))
        .await?;
    ensure!(
        resp.status == 401 && resp.text == "room is private\n",
        "door 004 join: {}",
        resp.brief()
    );
    let resp = http
        .put(
            "/invite",
            Auth::Raw(&t4),
            &json!({"room_id": group, "user_id": mallory.id}),
        )
        .await?;
    ensure!(resp.status == 403, "door 004 invite: {}", resp.brief());
    let mut ws = http.ws(&format!("/ws?token={t4}")).await?;
    ws.send_json(&json!({"type": "join", "content": group.to_string()}))
        .await?;
    let reply = ws.recv_json().await?;
    ensure!(
        reply["username"] == "error" && reply["text"] == "user not a member of room",
        "door 004 ws join: {reply}"
    );
    let t0 = door000_token(http, &mallory).await?;
    let status = http
        .ws_status(&format!("/chat_group?idGroup={group}&token={t0}"))
        .await?;
    ensure!(status == 403, "door 000 private group socket: {status}");
    // Nothing changed.
    let after = client::history_texts(http, &alice, group).await?;
    ensure!(
        before == after,
        "the group's history changed: {before:?} -> {after:?}"
    );
    let members = http
        .get(
            &format!("/api/v1/chats/{group}/members"),
            Auth::Bearer(&alice.access),
        )
        .await?;
    let count = members.json().as_array().map_or(0, Vec::len);
    ensure!(
        count == 2,
        "the group has {count} members: {}",
        members.brief()
    );
    Ok(())
}
