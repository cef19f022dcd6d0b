//! Floods and oversize input: typing, frames on every door's socket, request bodies, and door
//! 004's room lines.

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use reqwest::Method;
use serde_json::{Value, json};

use super::skip;
use crate::Target;
use crate::client::{self, Auth, Ended, Http, Ws, door000_token, door004_token, gateway, register};

/// 30 typing frames in a burst reach the other member as one typing event (at most one per user
/// and chat per 2 s is published), and the typist gets an ack for each.
pub async fn typing_is_throttled(t: &Target) -> Result<()> {
    let http = &t.main;
    let alice = register(http, &t.name("ty_alice")).await?;
    let bob = register(http, &t.name("ty_bob")).await?;
    let group = client::group(http, &alice, &t.name("ty_room"), false).await?;
    client::invite(http, &alice, group, &bob).await?;
    let mut watcher = gateway(t.other(), &bob.access).await?;
    let mut typist = gateway(http, &alice.access).await?;
    for i in 0..30 {
        typist
            .send_json(&json!({"action": "typing", "chat_id": group, "request_id": i}))
            .await?;
    }
    let (frames, _) = typist.collect(1000).await;
    let acks = frames.iter().filter(|f| f["event"] == "ack").count();
    ensure!(
        acks == 30,
        "the typist got {acks} acks for 30 typing frames"
    );
    let (frames, _) = watcher.collect(1500).await;
    let typing = frames.iter().filter(|f| f["event"] == "typing").count();
    ensure!(
        typing == 1,
        "30 typing frames reached the other member {typing} times"
    );
    Ok(())
}

/// Sends `frame` `n` times without reading, then reads for up to 5 s: the frames and the end.
async fn flood(ws: &mut Ws, frame: &str, n: usize) -> Result<(Vec<Value>, Ended)> {
    for _ in 0..n {
        if ws.send_text(frame).await.is_err() {
            break; // closed under us: what came is read below
        }
    }
    Ok(ws.collect(5000).await)
}

/// A flood of frames on each door's socket gets that door's rate-limit error (the gateway's
/// with `retry_after`), then the socket is closed with 1008.
pub async fn socket_frame_floods_are_cut_off(t: &Target) -> Result<()> {
    let http = &t.main;
    let user = register(http, &t.name("flood")).await?;
    let name = t.name("flood_room");
    let resp = http
        .post(
            "/api/v1/chat/create-group",
            Auth::Bearer(&user.access),
            &json!({"name": name}),
        )
        .await?;
    ensure!(resp.status == 201, "create-group: {}", resp.brief());
    let t0 = door000_token(http, &user).await?;
    let t4 = door004_token(http, &user).await?;
    let resp = http
        .call(
            Method::POST,
            "/group_chat?title=flood",
            Auth::Bearer(&t0),
            None,
            &[],
        )
        .await?;
    let g0 = resp.json()["idGroup"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("group_chat: {}", resp.brief()))?;
    type IsLimit = fn(&Value) -> bool;
    let doors: [(&str, String, &str, IsLimit); 5] = [
        (
            "gateway",
            format!("/api/v1/ws?token={}", user.access),
            r#"{"action":"ping"}"#,
            |f| {
                f["event"] == "error"
                    && f["code"] == "rate_limited"
                    && f["retry_after"].as_u64().is_some()
            },
        ),
        (
            "door 002",
            format!("/ws/group/{name}/?token={}", user.access),
            r#"{"action":"nope"}"#,
            |f| {
                f["action"] == "error"
                    && f["message"]
                        .as_str()
                        .is_some_and(|m| m.to_lowercase().contains("too many"))
            },
        ),
        (
            "door 004",
            format!("/ws?token={t4}"),
            r#"{"type":"nope","content":""}"#,
            |f| {
                f["username"] == "error"
                    && f["text"].as_str().is_some_and(|m| m.contains("too many"))
            },
        ),
        (
            "door 000",
            format!("/chat_group?idGroup={g0}&token={t0}"),
            r#"{"nope":1}"#,
            |f| {
                f["error"]
                    .as_str()
                    .is_some_and(|m| m.to_lowercase().contains("too many"))
            },
        ),
        (
            "door 003",
            "/v1/ws/".to_owned(),
            r#"{"method":"nope","params":[],"id":1}"#,
            |f| f["error"]["code"] == 4,
        ),
    ];
    for (door, path, frame, is_limit) in doors {
        let mut ws = http.ws(&path).await?;
        let (frames, ended) = flood(&mut ws, frame, 600).await?;
        ensure!(
            frames.iter().any(is_limit),
            "{door}: no rate-limit error among {} frames (last: {:?})",
            frames.len(),
            frames.last()
        );
        ensure!(
            matches!(ended, Ended::Closed(1008, _)),
            "{door}: a flood of 600 frames ended {ended:?}"
        );
    }
    Ok(())
}

/// A 200 KB body (over `CHAT_MAX_BODY_BYTES`, default 64 KiB) is 413 on every door, in its own
/// format, and nothing is created.
pub async fn bodies_over_the_limit_are_413(t: &Target) -> Result<()> {
    let http = &t.main;
    let big = "x".repeat(200_000);
    let name = t.name("big");
    type FormatOk = fn(&client::Resp) -> bool;
    let mut cases: Vec<(&str, &Http, Method, &str, Value, FormatOk)> = vec![
        (
            "native",
            http,
            Method::POST,
            "/api/v1/auth/register/",
            json!({"username": name, "email": "big@example.com", "password": big, "password2": big}),
            |r| r.json()["code"] == "too_large",
        ),
        (
            "door 000",
            http,
            Method::POST,
            "/auth/sign-up",
            json!({"username": name, "email": "big@example.com", "password": big}),
            |r| r.content_type.starts_with("text/plain"),
        ),
        (
            "door 003",
            http,
            Method::POST,
            "/v1/auth/",
            json!({"user_name": name, "password": big}),
            |_| true,
        ),
        (
            "door 004",
            http,
            Method::POST,
            "/register",
            json!({"username": name, "email": "big@example.com", "password": big}),
            |r| r.content_type.starts_with("text/plain") && r.text.ends_with('\n'),
        ),
    ];
    if let Some(door) = &t.door001 {
        cases.push((
            "door 001",
            door,
            Method::POST,
            "/users/add",
            json!({"username": big}),
            |r| r.json()["error"].is_string(),
        ));
    }
    for (door, target, method, path, body, format_ok) in cases {
        let resp = target
            .call(method, path, Auth::None, Some(&body.to_string()), &[])
            .await?;
        ensure!(
            resp.status == 413 && format_ok(&resp),
            "{door} {path} with a 200 KB body: {} ({})",
            resp.brief(),
            resp.content_type
        );
    }
    let resp = client::login(http, &name).await;
    ensure!(resp.is_err(), "the oversize registration created {name}");
    Ok(())
}

/// Door 004's `join` takes rooms only: a direct chat's id (the joiner is in it) is refused with
/// an error frame, and no "joined the room" line is written into it.
pub async fn door004_joins_only_rooms(t: &Target) -> Result<()> {
    let http = &t.main;
    let alice = register(http, &t.name("jr_alice")).await?;
    let bob = register(http, &t.name("jr_bob")).await?;
    let dm = client::direct(http, &alice, &bob).await?;
    let before = client::history_texts(http, &alice, dm).await?;
    let token = door004_token(http, &alice).await?;
    let mut ws = http.ws(&format!("/ws?token={token}")).await?;
    ws.send_json(&json!({"type": "join", "content": dm.to_string()}))
        .await?;
    let reply = ws.recv_json().await?;
    ensure!(
        reply["username"] == "error",
        "join of a direct chat answered {reply}"
    );
    ws.send_json(&json!({"type": "message", "content": "into the direct chat"}))
        .await?;
    let reply = ws.recv_json().await?;
    ensure!(
        reply["username"] == "error",
        "a message after the refused join answered {reply}"
    );
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = client::history_texts(http, &alice, dm).await?;
    ensure!(
        before == after,
        "the direct chat was written: {before:?} -> {after:?}"
    );
    Ok(())
}

/// Join/leave cycles on door 004 store their "joined"/"leaved" lines only within the user's send
/// limit (`CHAT_RATE_SEND_PER_MIN`): the rest is refused, not written. The limit counts per clock
/// minute, so a run that crosses a minute may store up to twice the limit: twice the limit in
/// cycles (four times in lines) are tried, and at most twice the limit may be stored.
pub async fn door004_room_lines_count_toward_the_send_limit(t: &Target) -> Result<()> {
    if t.send_per_min == 0 {
        return Err(skip(
            "the server has no send limit (CHAT_RATE_SEND_PER_MIN=0)",
        ));
    }
    let http = &t.main;
    let user = register(http, &t.name("cycler")).await?;
    let token = door004_token(http, &user).await?;
    let room = http
        .post(
            "/create-room",
            Auth::Raw(&token),
            &json!({"name": t.name("cyc"), "is_private": false}),
        )
        .await?;
    ensure!(room.status == 201, "create-room: {}", room.brief());
    let room = room.json()["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no room id"))?;
    let mut ws = http.ws(&format!("/ws?token={token}")).await?;
    let cycles = 2 * t.send_per_min as usize;
    for _ in 0..cycles {
        ws.send_json(&json!({"type": "join", "content": room.to_string()}))
            .await?;
        ws.send_json(&json!({"type": "leave", "content": ""}))
            .await?;
        // Stay under the socket's frame limit (50/s): this is about stored lines.
        tokio::time::sleep(Duration::from_millis(42)).await;
    }
    let (frames, ended) = ws.collect(1000).await;
    ensure!(ended == Ended::Open, "the socket ended: {ended:?}");
    let refused = frames.iter().any(|f| {
        f["username"] == "error" && f["text"].as_str().is_some_and(|m| m.contains("too many"))
    });
    ensure!(refused, "{} join/leave cycles were never refused", cycles);
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Only these lines are in the room: its newest seq counts them.
    let newest = http
        .get(
            &format!("/api/v1/chats/{room}/messages?limit=1"),
            Auth::Bearer(&user.access),
        )
        .await?;
    let stored = newest.json()["messages"][0]["seq"].as_u64().unwrap_or(0);
    ensure!(
        stored <= 2 * u64::from(t.send_per_min),
        "{stored} room lines stored from {} tried, over twice the send limit of {} a minute",
        4 * t.send_per_min,
        t.send_per_min
    );
    Ok(())
}
