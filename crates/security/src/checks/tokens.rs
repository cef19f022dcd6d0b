//! Who gets in: missing and forged tokens, tokens crossing doors, non-members, and revocation
//! (logout-all, refresh-token reuse, disable-user) reaching every door and every open socket.

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::skip;
use crate::client::{
    self, Auth, Ended, Http, User, Ws, door000_token, door003_token, door004_token, gateway,
    register,
};
use crate::{AdminAction, Target};

/// The close a revoked session gets: 1008 (policy) with a reason naming the revocation.
fn revoked(ended: &Ended) -> bool {
    matches!(ended, Ended::Closed(1008, reason) if reason.contains("revoked"))
}

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

/// No token at all: 401 in each door's format on every protected route, refused sockets.
pub async fn no_token_is_refused_by_every_door(t: &Target) -> Result<()> {
    let http = &t.main;
    let native: [(Method, &str); 7] = [
        (Method::GET, "/api/v1/chats"),
        (Method::GET, "/api/v1/users/me"),
        (Method::GET, "/api/v1/users?search=a"),
        (Method::POST, "/api/v1/chats/groups"),
        (Method::POST, "/api/v1/chats/direct"),
        (Method::POST, "/api/v1/auth/logout-all/"),
        (Method::GET, "/api/v1/chat/list-friends"),
    ];
    for (method, path) in native {
        let resp = http
            .call(method.clone(), path, Auth::None, Some("{}"), &[])
            .await?;
        native_401(&resp, &format!("{method} {path}"))?;
    }
    for (method, path) in [
        (Method::GET, "/profile"),
        (Method::PUT, "/change-name"),
        (Method::POST, "/create-room"),
        (Method::PUT, "/join"),
        (Method::PUT, "/invite"),
    ] {
        let resp = http
            .call(method.clone(), path, Auth::None, Some("{}"), &[])
            .await?;
        plain_401(&resp, &format!("door 004 {method} {path}"))?;
        ensure!(
            resp.text == "authorization failed\n",
            "door 004 {path}: {}",
            resp.brief()
        );
    }
    let resp = http
        .call(Method::POST, "/group_chat?title=x", Auth::None, None, &[])
        .await?;
    plain_401(&resp, "door 000 /group_chat")?;
    // Sockets: the gateway wants an auth frame first; the doors refuse outright.
    let mut ws = http.ws("/api/v1/ws").await?;
    ws.send_json(&json!({"action": "send_message", "chat_id": 1, "message": "x"}))
        .await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        frames.first().is_some_and(|f| f["event"] == "error")
            && matches!(ended, Ended::Closed(1008, _)),
        "gateway without auth: {frames:?} then {ended:?}"
    );
    let status = http.ws_status("/ws").await?;
    ensure!(status == 401, "door 004 /ws without a token: {status}");
    let status = http.ws_status("/chat?username=nobody").await?;
    ensure!(status == 401, "door 000 /chat without a token: {status}");
    let mut ws = http.ws("/ws/group/nowhere/").await?;
    let (frames, ended) = ws.collect(3000).await;
    ensure!(
        frames.first().is_some_and(|f| f["action"] == "disconect")
            && matches!(ended, Ended::Closed(1008, _)),
        "door 002 socket without a token: {frames:?} then {ended:?}"
    );
    let mut ws = http.ws("/v1/ws/").await?;
    ws.send_json(&json!({"method": "message.send", "params": ["hi"], "id": 7}))
        .await?;
    let reply = ws.recv_json().await?;
    ensure!(
        reply["error"]["code"] == 3 && reply["id"] == 7,
        "door 003 message.send before auth: {reply}"
    );
    Ok(())
}

fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn signed(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> Result<String> {
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Tokens an attacker can make, each refused everywhere: `alg: none`, a wrong key (HS256 and
/// HS512), a tampered real token, the refresh token; with the server's secret also an expired
/// token, one without `exp`, and one of another type.
pub async fn forged_tokens_are_refused_by_every_door(t: &Target) -> Result<()> {
    let victim = register(&t.main, &t.name("victim")).await?;
    let now = chrono_now();
    let claims =
        json!({"token_type": "access", "user_id": victim.id, "iat": now, "exp": now + 3600});
    let door_claims = json!({"user_id": victim.id, "exp": now + 3600});
    let mut tokens: Vec<(String, String)> = vec![
        ("garbage".into(), "not-a-jwt".into()),
        (
            "alg none".into(),
            jwt(&json!({"alg": "none", "typ": "JWT"}), &claims, ""),
        ),
        (
            "alg none (door shape)".into(),
            jwt(&json!({"alg": "none"}), &door_claims, ""),
        ),
        (
            "wrong key HS256".into(),
            signed(jsonwebtoken::Algorithm::HS256, "guess", &claims)?,
        ),
        (
            "wrong key HS512".into(),
            signed(jsonwebtoken::Algorithm::HS512, "guess", &claims)?,
        ),
        ("refresh token as access".into(), victim.refresh.clone()),
    ];
    // A real token with its payload swapped for another user's: the signature no longer fits.
    let real = door004_token(&t.main, &victim).await?;
    let parts: Vec<&str> = real.split('.').collect();
    ensure!(parts.len() == 3, "door 004 token is not a JWT: {real}");
    let other_payload =
        URL_SAFE_NO_PAD.encode(json!({"user_id": victim.id + 1, "exp": now + 3600}).to_string());
    tokens.push((
        "tampered payload".into(),
        format!("{}.{other_payload}.{}", parts[0], parts[2]),
    ));
    if let Some(secret) = &t.jwt_secret {
        let hs = jsonwebtoken::Algorithm::HS256;
        tokens.push(("expired".into(), signed(hs, secret, &json!({"token_type": "access", "user_id": victim.id, "iat": now - 7200, "exp": now - 3600}))?));
        tokens.push((
            "no exp".into(),
            signed(
                hs,
                secret,
                &json!({"token_type": "access", "user_id": victim.id, "iat": now}),
            )?,
        ));
        tokens.push(("token_type refresh".into(), signed(hs, secret, &json!({"token_type": "refresh", "user_id": victim.id, "iat": now, "exp": now + 3600}))?));
        // A door token (no iat, dated by its exp) expiring later than any door token issued now:
        // it would look issued in the future and outlive every revocation.
        tokens.push((
            "door token beyond the door token lifetime".into(),
            signed(
                hs,
                secret,
                &json!({"user_id": victim.id, "exp": now + 400 * 86400}),
            )?,
        ));
    }
    for (label, token) in &tokens {
        refused_everywhere(&t.main, token, label).await?;
    }
    // The victim's own token still works: the refusals were about the tokens.
    let resp = t
        .main
        .get("/api/v1/users/me", Auth::Bearer(&victim.access))
        .await?;
    ensure!(
        resp.status == 200,
        "the real token stopped working: {}",
        resp.brief()
    );
    Ok(())
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
