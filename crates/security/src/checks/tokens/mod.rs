//! Who gets in: the checks on tokens, door by door and socket by socket.
//!
//! They cover missing and forged tokens (`forged`), tokens crossing doors and non-members
//! (`access`), and revocation — logout-all, refresh-token reuse, disable-user — reaching every
//! door and every open socket (`revocation`). This module holds the assertions they share: each
//! door's 401, a token refused everywhere, and who a door takes a token for.

mod access;
mod forged;
mod revocation;

use anyhow::{Result, anyhow, ensure};
use reqwest::Method;
use serde_json::json;

use crate::client::{self, Auth, Ended, Http};

pub use access::{
    every_door_accepts_every_door_token_for_its_own_user, non_members_are_refused_on_every_door,
};
pub use forged::{forged_tokens_are_refused_by_every_door, no_token_is_refused_by_every_door};
pub use revocation::{
    disable_user_stops_tokens_and_sockets_at_once, logout_all_reaches_every_token_and_socket,
    refresh_token_reuse_revokes_everything,
};

/// Asserts a native (or door 002) 401: JSON `{"detail","code":"not_authenticated"}`.
fn native_401(resp: &client::Resp, what: &str) -> Result<()> {
    ensure!(
        resp.status == 401 && resp.json()["code"] == "not_authenticated",
        "{what}: expected 401 not_authenticated, got {}",
        resp.brief()
    );
    Ok(())
}

/// Asserts a plain-text 401 (doors 004 and 000).
fn plain_401(resp: &client::Resp, what: &str) -> Result<()> {
    ensure!(
        resp.status == 401 && resp.content_type.starts_with("text/plain"),
        "{what}: expected a plain-text 401, got {} ({})",
        resp.brief(),
        resp.content_type
    );
    Ok(())
}

/// Every door refuses `token` over HTTP and on its sockets. `group` is a door-002 group name
/// (any existing or not) for the door 002 socket.
async fn refused_everywhere(http: &Http, token: &str, label: &str) -> Result<()> {
    let resp = http.get("/api/v1/users/me", Auth::Bearer(token)).await?;
    native_401(&resp, &format!("{label}: GET /api/v1/users/me"))?;
    let resp = http
        .get("/api/v1/chat/list-friends", Auth::Bearer(token))
        .await?;
    native_401(&resp, &format!("{label}: door 002 list-friends"))?;
    let resp = http.get("/profile", Auth::Raw(token)).await?;
    plain_401(&resp, &format!("{label}: door 004 /profile"))?;
    let resp = http
        .call(
            Method::POST,
            "/group_chat?title=x",
            Auth::Bearer(token),
            None,
            &[],
        )
        .await?;
    plain_401(&resp, &format!("{label}: door 000 /group_chat"))?;
    let token_q = client::urlencode(token);
    // The gateway answers an error frame, then closes with 1008.
    let mut ws = http.ws(&format!("/api/v1/ws?token={token_q}")).await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        frames.first().is_some_and(|f| f["event"] == "error")
            && matches!(ended, Ended::Closed(1008, _)),
        "{label}: gateway socket not refused: {frames:?} then {ended:?}"
    );
    let status = http.ws_status(&format!("/ws?token={token_q}")).await?;
    ensure!(
        status == 401,
        "{label}: door 004 /ws handshake answered {status}"
    );
    let status = http
        .ws_status(&format!("/chat_group?idGroup=1&token={token_q}"))
        .await?;
    ensure!(
        status == 401,
        "{label}: door 000 /chat_group answered {status}"
    );
    let mut ws = http
        .ws(&format!("/ws/group/nowhere/?token={token_q}"))
        .await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        frames.first().is_some_and(|f| f["action"] == "disconect")
            && matches!(ended, Ended::Closed(1008, _)),
        "{label}: door 002 socket not refused: {frames:?} then {ended:?}"
    );
    let mut ws = http.ws("/v1/ws/").await?;
    ws.send_json(&json!({"method": "message.auth", "params": [token], "id": 1}))
        .await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        matches!(ended, Ended::Closed(1008, _)),
        "{label}: door 003 message.auth not refused: {frames:?} then {ended:?}"
    );
    Ok(())
}

/// The id a door sees for `token` (native `/users/me` and door 004 `/profile`, which agree).
async fn whoami(http: &Http, token: &str) -> Result<i64> {
    let native = http.get("/api/v1/users/me", Auth::Bearer(token)).await?;
    let door004 = http.get("/profile", Auth::Raw(token)).await?;
    ensure!(
        native.status == 200 && door004.status == 200,
        "token refused: native {}, door 004 {}",
        native.brief(),
        door004.brief()
    );
    let (a, b) = (native.json()["id"].as_i64(), door004.json()["id"].as_i64());
    ensure!(a == b, "native says {a:?}, door 004 says {b:?}");
    a.ok_or_else(|| anyhow!("no id in {}", native.brief()))
}
