//! Revocation: logout-all, refresh-token reuse and disable-user end every token and socket.

use anyhow::{Result, anyhow, bail, ensure};
use reqwest::Method;
use serde_json::json;

use super::{native_401, refused_everywhere, whoami};
use crate::checks::skip;
use crate::client::{
    self, Auth, Ended, Http, User, Ws, door000_token, door003_token, door004_token, gateway,
    register,
};
use crate::{AdminAction, Target};

/// The close a revoked session gets: 1008 (policy) with a reason naming the revocation.
fn revoked(ended: &Ended) -> bool {
    matches!(ended, Ended::Closed(1008, reason) if reason.contains("revoked"))
}

/// One open socket per door for `user` (the gateway on the other instance), named.
async fn sockets_of(
    t: &Target,
    user: &User,
    tokens: &DoorTokens,
) -> Result<Vec<(&'static str, Ws)>> {
    let http = &t.main;
    let mut sockets = vec![("gateway", gateway(t.other(), &user.access).await?)];
    let name = t.name(&format!("g{}", user.id));
    let resp = http
        .post(
            "/api/v1/chat/create-group",
            Auth::Bearer(&user.access),
            &json!({"name": name}),
        )
        .await?;
    ensure!(
        resp.status == 201,
        "door 002 create-group: {}",
        resp.brief()
    );
    let mut ws = http
        .ws(&format!("/ws/group/{name}/?token={}", user.access))
        .await?;
    ensure!(
        ws.ended(300).await == Ended::Open,
        "door 002 group socket refused"
    );
    sockets.push(("door 002", ws));
    let mut ws = t
        .other()
        .ws(&format!("/ws?token={}", tokens.door004))
        .await?;
    ensure!(
        ws.ended(100).await == Ended::Open,
        "door 004 socket refused"
    );
    sockets.push(("door 004", ws));
    let resp = http
        .call(
            Method::POST,
            "/group_chat?title=revoke",
            Auth::Bearer(&tokens.door000),
            None,
            &[],
        )
        .await?;
    let id = resp.json()["idGroup"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("door 000 group_chat: {}", resp.brief()))?;
    let mut ws = http
        .ws(&format!(
            "/chat_group?idGroup={id}&token={}",
            tokens.door000
        ))
        .await?;
    ensure!(
        ws.ended(300).await == Ended::Open,
        "door 000 group socket refused"
    );
    sockets.push(("door 000", ws));
    let mut ws = t.other().ws("/v1/ws/").await?;
    ws.send_json(&json!({"method": "message.auth", "params": [tokens.door003], "id": 1}))
        .await?;
    let reply = ws.recv_json().await?;
    ensure!(reply["error"].is_null(), "door 003 message.auth: {reply}");
    sockets.push(("door 003", ws));
    Ok(sockets)
}

struct DoorTokens {
    door004: String,
    door000: String,
    door003: String,
}

async fn door_tokens(http: &Http, user: &User) -> Result<DoorTokens> {
    Ok(DoorTokens {
        door004: door004_token(http, user).await?,
        door000: door000_token(http, user).await?,
        door003: door003_token(http, user).await?,
    })
}

/// Each socket closes with 1008 "...revoked..." within 5 s.
async fn all_closed_as_revoked(sockets: Vec<(&'static str, Ws)>) -> Result<()> {
    let waits = sockets
        .into_iter()
        .map(|(door, mut ws)| async move { (door, ws.ended(5000).await) });
    for (door, ended) in futures_util::future::join_all(waits).await {
        ensure!(
            revoked(&ended),
            "{door} socket: expected close 1008 \"session revoked\" within 5 s, got {ended:?}"
        );
    }
    Ok(())
}

async fn refresh_refused(http: &Http, refresh: &str, what: &str) -> Result<()> {
    let resp = http
        .post(
            "/api/v1/auth/login/refresh/",
            Auth::None,
            &json!({"refresh": refresh}),
        )
        .await?;
    native_401(&resp, what)
}

/// `POST /api/v1/auth/logout-all/`: every token of the user (two native sessions, doors 004, 000,
/// 003) fails on every door, every socket closes with 1008, refresh tokens are dead; a new
/// login works at once.
pub async fn logout_all_reaches_every_token_and_socket(t: &Target) -> Result<()> {
    let http = &t.main;
    let user = register(http, &t.name("logout")).await?;
    let (access2, refresh2) = client::login(http, &user.username).await?;
    let tokens = door_tokens(http, &user).await?;
    let sockets = sockets_of(t, &user, &tokens).await?;
    let resp = http
        .post(
            "/api/v1/auth/logout-all/",
            Auth::Bearer(&access2),
            &json!({}),
        )
        .await?;
    ensure!(resp.status == 204, "logout-all answered {}", resp.brief());
    all_closed_as_revoked(sockets).await?;
    for (label, token) in [
        ("native session 1", &user.access),
        ("native session 2", &access2),
        ("door 004", &tokens.door004),
        ("door 000", &tokens.door000),
        ("door 003", &tokens.door003),
    ] {
        for target in [http, t.other()] {
            refused_everywhere(target, token, label).await?;
        }
    }
    refresh_refused(http, &user.refresh, "refresh of session 1").await?;
    refresh_refused(http, &refresh2, "refresh of session 2").await?;
    // Logging in again works at once, on every instance.
    let (fresh, _) = client::login(http, &user.username).await?;
    for target in [http, t.other()] {
        ensure!(
            whoami(target, &fresh).await? == user.id,
            "the new token is someone else's"
        );
    }
    Ok(())
}

async fn rotate(http: &Http, refresh: &str) -> Result<(String, String)> {
    let resp = http
        .post(
            "/api/v1/auth/login/refresh/",
            Auth::None,
            &json!({"refresh": refresh}),
        )
        .await?;
    ensure!(resp.status == 200, "refresh: {}", resp.brief());
    let pair = resp.json();
    match (pair["access"].as_str(), pair["refresh"].as_str()) {
        (Some(a), Some(r)) => Ok((a.to_owned(), r.to_owned())),
        _ => bail!("refresh: {}", resp.brief()),
    }
}

/// Presenting an already rotated refresh token again (a stolen token used twice) revokes every
/// token and socket of its user, on every instance — but not for a token revoked by a logout,
/// and only once per token (an old token cannot be replayed to log its user out again and
/// again).
pub async fn refresh_token_reuse_revokes_everything(t: &Target) -> Result<()> {
    let http = &t.main;
    let user = register(http, &t.name("reuse")).await?;
    // A token revoked by logout is no evidence of theft: presenting it ends nothing.
    let (_, logged_out) = client::login(http, &user.username).await?;
    let resp = http
        .post(
            "/api/v1/auth/logout/",
            Auth::None,
            &json!({"refresh": logged_out}),
        )
        .await?;
    ensure!(resp.status == 204, "logout: {}", resp.brief());
    refresh_refused(http, &logged_out, "a logged-out refresh token").await?;
    ensure!(
        whoami(http, &user.access).await? == user.id,
        "a logged-out token's reuse ended the session"
    );

    let (access2, refresh2) = rotate(http, &user.refresh).await?;
    let tokens = door_tokens(http, &user).await?;
    let sockets = sockets_of(t, &user, &tokens).await?;
    refresh_refused(http, &user.refresh, "reuse of the rotated refresh token").await?;
    all_closed_as_revoked(sockets).await?;
    for (label, token) in [
        ("rotated access", &access2),
        ("first access", &user.access),
        ("door 004", &tokens.door004),
    ] {
        refused_everywhere(t.other(), token, label).await?;
    }
    refresh_refused(http, &refresh2, "the newer refresh token").await?;
    // Once: presenting it yet again does not end the next session.
    let (fresh, _) = client::login(http, &user.username).await?;
    refresh_refused(http, &user.refresh, "a third presentation").await?;
    ensure!(
        whoami(http, &fresh).await? == user.id,
        "the same stolen token ended a session twice"
    );
    Ok(())
}

/// `chat-server disable-user <name>`: the user's tokens fail at once on every door and
/// instance, their sockets close with 1008, logins are refused; `enable-user` lets them log in.
pub async fn disable_user_stops_tokens_and_sockets_at_once(t: &Target) -> Result<()> {
    let Some(admin) = &t.admin else {
        return Err(skip("no admin hook (--cli) to run disable-user"));
    };
    let http = &t.main;
    let user = register(http, &t.name("disabled")).await?;
    let tokens = door_tokens(http, &user).await?;
    // The profile is cached now: the disable must not wait for the cache.
    whoami(t.other(), &user.access).await?;
    let sockets = sockets_of(t, &user, &tokens).await?;
    admin(AdminAction::DisableUser(user.username.clone())).await?;
    // The command tells every instance over the bus; once a socket has closed there, that
    // instance knows, and every door of it refuses the tokens.
    all_closed_as_revoked(sockets).await?;
    for (label, token) in [
        ("native", &user.access),
        ("door 004", &tokens.door004),
        ("door 000", &tokens.door000),
    ] {
        refused_everywhere(t.other(), token, label).await?;
        refused_everywhere(http, token, label).await?;
    }
    let resp = http
        .auth_call(
            Method::POST,
            "/api/v1/auth/login/",
            &json!({"username": user.username, "password": client::PASSWORD}),
        )
        .await?;
    native_401(&resp, "login of a disabled user")?;
    refresh_refused(http, &user.refresh, "refresh of a disabled user").await?;
    admin(AdminAction::EnableUser(user.username.clone())).await?;
    let (fresh, _) = client::login(http, &user.username).await?;
    if whoami(http, &fresh).await? != user.id {
        bail!("enabled user logs in as someone else");
    }
    Ok(())
}
