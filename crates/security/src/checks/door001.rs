//! Door 001 has no authentication (its task's design): it must not be on the main listener, and
//! on its own listener it is a sandbox that reaches nothing of the other doors.

use anyhow::{Result, anyhow, ensure};
use serde_json::{Value, json};

use super::skip;
use crate::Target;
use crate::client::{self, Auth, Http, register};

async fn post(http: &Http, path: &str, body: Value) -> Result<(u16, Value)> {
    let resp = http.post(path, Auth::None, &body).await?;
    Ok((resp.status, resp.json()))
}

/// A 404 in door 001's format (`{"error": "..."}`).
fn unknown(answer: &(u16, Value), what: &str) -> Result<()> {
    ensure!(
        answer.0 == 404 && answer.1["error"].is_string(),
        "{what}: expected 404 {{\"error\"}}, got {} {}",
        answer.0,
        answer.1
    );
    Ok(())
}

/// None of door 001's routes answers on the main listener.
pub async fn door001_is_not_on_the_main_listener(t: &Target) -> Result<()> {
    let probes = [
        ("/users/add", json!({"username": t.name("anon")})),
        ("/chats/add", json!({"name": t.name("anon"), "users": [1]})),
        (
            "/messages/add",
            json!({"chat": 1, "author": 1, "text": "x"}),
        ),
        ("/chats/get", json!({"user": 1})),
        ("/messages/get", json!({"chat": 1})),
    ];
    for (path, body) in probes {
        let (status, answer) = post(&t.main, path, body).await?;
        ensure!(
            status == 404,
            "{path} on the main listener: {status} {answer}"
        );
    }
    Ok(())
}

/// On door 001's listener: the chats and users of the other doors are unknown (404), door 001's
/// own work among themselves, its chats are invisible to the others, and its usernames do not
/// take names from the other doors.
pub async fn door001_is_a_sandbox(t: &Target) -> Result<()> {
    let door = t
        .door001
        .as_ref()
        .ok_or_else(|| skip("no door 001 listener given (--door001-url)"))?;
    let main = &t.main;
    let alice = register(main, &t.name("sb_alice")).await?;
    let bob = register(main, &t.name("sb_bob")).await?;
    let group = client::group(main, &alice, &t.name("sb_priv"), true).await?;
    client::invite(main, &alice, group, &bob).await?;
    let dm = client::direct(main, &alice, &bob).await?;
    let sent = main
        .post(
            &format!("/api/v1/chats/{dm}/messages"),
            Auth::Bearer(&alice.access),
            &json!({"text": "our secret"}),
        )
        .await?;
    ensure!(sent.status == 201, "native send: {}", sent.brief());
    let before = (
        client::history_texts(main, &alice, group).await?,
        client::history_texts(main, &alice, dm).await?,
    );

    // The door's own users and chats.
    let (status, u1) = post(door, "/users/add", json!({"username": t.name("sb_u1")})).await?;
    ensure!(status == 201, "door 001 /users/add: {status} {u1}");
    let (_, u2) = post(door, "/users/add", json!({"username": t.name("sb_u2")})).await?;
    let (u1, u2) = (id(&u1)?, id(&u2)?);

    // Other doors' chats and users are unknown.
    for chat in [group, dm] {
        unknown(
            &post(door, "/messages/get", json!({"chat": chat})).await?,
            "messages/get of a native chat",
        )?;
        unknown(
            &post(
                door,
                "/messages/add",
                json!({"chat": chat, "author": alice.id, "text": "injected"}),
            )
            .await?,
            "messages/add into a native chat as its member",
        )?;
        unknown(
            &post(
                door,
                "/messages/add",
                json!({"chat": chat, "author": u1, "text": "injected"}),
            )
            .await?,
            "messages/add into a native chat as a door 001 user",
        )?;
    }
    unknown(
        &post(door, "/chats/get", json!({"user": alice.id})).await?,
        "chats/get of a native user",
    )?;
    unknown(
        &post(
            door,
            "/chats/add",
            json!({"name": t.name("sb_grab"), "users": [alice.id]}),
        )
        .await?,
        "chats/add with a native user",
    )?;
    unknown(
        &post(
            door,
            "/chats/add",
            json!({"name": t.name("sb_grab2"), "users": [u1, alice.id]}),
        )
        .await?,
        "chats/add mixing a native user in",
    )?;
    let after = (
        client::history_texts(main, &alice, group).await?,
        client::history_texts(main, &alice, dm).await?,
    );
    ensure!(
        before == after,
        "native chats changed: {before:?} -> {after:?}"
    );

    // Door 001's own chat works, and stays in the sandbox.
    let (status, chat) = post(
        door,
        "/chats/add",
        json!({"name": t.name("sb_chat"), "users": [u1, u2]}),
    )
    .await?;
    ensure!(status == 201, "door 001 /chats/add: {status} {chat}");
    let chat = id(&chat)?;
    let (status, m) = post(
        door,
        "/messages/add",
        json!({"chat": chat, "author": u2, "text": "hi"}),
    )
    .await?;
    ensure!(status == 201, "door 001 /messages/add: {status} {m}");
    let (status, list) = post(door, "/messages/get", json!({"chat": chat})).await?;
    ensure!(
        status == 200 && list.as_array().is_some_and(|l| l.len() == 1),
        "door 001 /messages/get: {status} {list}"
    );
    let resp = main
        .get(
            &format!("/api/v1/chats/{chat}/messages"),
            Auth::Bearer(&alice.access),
        )
        .await?;
    ensure!(
        matches!(resp.status, 403 | 404),
        "a native user reads door 001's chat: {}",
        resp.brief()
    );
    let resp = main
        .post(
            "/api/v1/chats/direct",
            Auth::Bearer(&alice.access),
            &json!({"user_id": u1}),
        )
        .await?;
    ensure!(
        resp.status == 404,
        "a native user opens a chat with a door 001 user: {}",
        resp.brief()
    );
    let resp = main
        .post(
            &format!("/api/v1/chats/{group}/members"),
            Auth::Bearer(&alice.access),
            &json!({"user_id": u1}),
        )
        .await?;
    ensure!(
        resp.status == 404,
        "a native owner invites a door 001 user: {}",
        resp.brief()
    );

    // An anonymous caller cannot squat names: door 001's "carol" is not the other doors' carol.
    let carol = t.name("sb_carol");
    let (status, answer) = post(door, "/users/add", json!({"username": carol})).await?;
    ensure!(
        status == 201,
        "door 001 /users/add {carol}: {status} {answer}"
    );
    let resp = client::register_as(
        main,
        &carol,
        &format!("{}@example.com", carol.to_lowercase()),
    )
    .await?;
    ensure!(
        resp.status == 201,
        "native registration of a name door 001 took: {}",
        resp.brief()
    );
    let resp = main
        .post(
            &format!("/api/v1/chat/add-friend/{carol}"),
            Auth::Bearer(&alice.access),
            &json!({}),
        )
        .await?;
    ensure!(resp.status == 200, "add-friend {carol}: {}", resp.brief());
    let friends = main
        .get("/api/v1/chat/list-friends", Auth::Bearer(&alice.access))
        .await?;
    ensure!(
        friends.json().as_array().is_some_and(|f| f.len() == 1),
        "friends: {}",
        friends.brief()
    );
    Ok(())
}

fn id(body: &Value) -> Result<i64> {
    body["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no id in {body}"))
}
