//! Unknown users, the kick route's answers, door 002's socket URLs, and start-up settings.

use anyhow::{Result, ensure};
use serde_json::json;

use super::skip;
use crate::client::{self, Auth, door004_token, register};
use crate::{AdminAction, Target};

/// User ids and names that do not exist are 404 (door 004: its 401 `user not found`), never a
/// 500, and nothing is created.
pub async fn unknown_users_are_404(t: &Target) -> Result<()> {
    let http = &t.main;
    let alice = register(http, &t.name("uu_alice")).await?;
    let group = client::group(http, &alice, &t.name("uu_room"), false).await?;
    let ghost = 9_007_199_254_740_000_i64;
    let a = Auth::Bearer(&alice.access);
    for (path, body) in [
        ("/api/v1/chats/direct".to_owned(), json!({"user_id": ghost})),
        (
            format!("/api/v1/chats/{group}/members"),
            json!({"user_id": ghost}),
        ),
        (
            "/api/v1/chat/add-friend/nobody_here_at_all".to_owned(),
            json!({}),
        ),
    ] {
        let resp = http.post(&path, a, &body).await?;
        ensure!(
            resp.status == 404 && resp.json()["code"] == "not_found",
            "{path} {body}: {}",
            resp.brief()
        );
    }
    let resp = http
        .get("/api/v1/chat/chat-friend/nobody_here_at_all", a)
        .await?;
    ensure!(
        resp.status == 404,
        "chat-friend of nobody: {}",
        resp.brief()
    );
    let token = door004_token(http, &alice).await?;
    let resp = http
        .put(
            "/invite",
            Auth::Raw(&token),
            &json!({"room_id": group, "user_id": ghost}),
        )
        .await?;
    ensure!(
        resp.status == 401 && resp.text == "user not found\n",
        "door 004 invite of nobody: {}",
        resp.brief()
    );
    let list = http.get("/api/v1/chats", a).await?;
    let chats = list.json().as_array().map_or(0, Vec::len);
    ensure!(chats == 1, "alice now has {chats} chats: {}", list.brief());
    Ok(())
}

/// `DELETE /api/v1/chats/{id}/members/{user_id}` by a non-member: the same status and body for a
/// member target, a non-member target and a user who does not exist.
pub async fn kick_answers_non_members_alike(t: &Target) -> Result<()> {
    let http = &t.main;
    let alice = register(http, &t.name("kk_alice")).await?;
    let bob = register(http, &t.name("kk_bob")).await?;
    let carol = register(http, &t.name("kk_carol")).await?;
    let mallory = register(http, &t.name("kk_mal")).await?;
    let group = client::group(http, &alice, &t.name("kk_room"), true).await?;
    client::invite(http, &alice, group, &bob).await?;
    let mut answers = Vec::new();
    for target in [bob.id, carol.id, alice.id, 9_007_199_254_740_000] {
        let resp = http
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/chats/{group}/members/{target}"),
                Auth::Bearer(&mallory.access),
                None,
                &[],
            )
            .await?;
        answers.push((resp.status, resp.text));
    }
    ensure!(
        answers.iter().all(|a| *a == answers[0]),
        "a non-member's kick answers differ by target: {answers:?}"
    );
    ensure!(
        matches!(answers[0].0, 403 | 404),
        "a non-member's kick: {answers:?}"
    );
    let members = http
        .get(
            &format!("/api/v1/chats/{group}/members"),
            Auth::Bearer(&alice.access),
        )
        .await?;
    ensure!(
        members.json().as_array().is_some_and(|m| m.len() == 2),
        "members changed: {}",
        members.brief()
    );
    Ok(())
}

/// Door 002's `chat-group`/`chat-friend` URLs (they carry the access token) are built from the
/// server's own address, not from `X-Forwarded-Host`/`Forwarded` sent by the client.
pub async fn socket_urls_ignore_forwarded_headers(t: &Target) -> Result<()> {
    if t.trusts_proxy {
        return Err(skip("the server trusts a proxy's forwarded headers"));
    }
    let http = &t.main;
    let alice = register(http, &t.name("url_alice")).await?;
    let bob = register(http, &t.name("url_bob")).await?;
    let name = t.name("url_room");
    let resp = http
        .post(
            "/api/v1/chat/create-group",
            Auth::Bearer(&alice.access),
            &json!({"name": name}),
        )
        .await?;
    ensure!(resp.status == 201, "create-group: {}", resp.brief());
    let resp = http
        .post(
            &format!("/api/v1/chat/add-friend/{}", bob.username),
            Auth::Bearer(&alice.access),
            &json!({}),
        )
        .await?;
    ensure!(resp.status == 200, "add-friend: {}", resp.brief());
    let evil = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "host=evil.example;proto=https"),
    ];
    for path in [
        format!("/api/v1/chat/chat-group/{name}"),
        format!("/api/v1/chat/chat-friend/{}", bob.username),
    ] {
        let resp = http
            .call(
                reqwest::Method::GET,
                &path,
                Auth::Bearer(&alice.access),
                None,
                &evil,
            )
            .await?;
        let url = resp.json()["url"].as_str().unwrap_or_default().to_owned();
        ensure!(
            resp.status == 200 && url.starts_with("ws"),
            "{path}: {}",
            resp.brief()
        );
        ensure!(
            !url.contains("evil.example"),
            "{path} points the token to {url}"
        );
    }
    Ok(())
}

/// `CHAT_BCRYPT_COS=4` (a typo) stops start-up with a message naming it and `CHAT_BCRYPT_COST`.
pub async fn misspelled_settings_stop_start_up(t: &Target) -> Result<()> {
    let Some(admin) = &t.admin else {
        return Err(skip("no admin hook (--cli) to start the server's CLI"));
    };
    for (typo, value, meant) in [
        ("CHAT_BCRYPT_COS", "4", "CHAT_BCRYPT_COST"),
        ("CHAT_JWT_SECRTE", "x", "CHAT_JWT_SECRET"),
    ] {
        let out = admin(AdminAction::RunWithEnv(typo.into(), value.into())).await?;
        ensure!(
            out.code != 0 && out.stderr.contains(typo) && out.stderr.contains(meant),
            "start-up with {typo}={value}: exit {} and {:?}",
            out.code,
            out.stderr
        );
    }
    Ok(())
}
