//! Missing and forged tokens, each refused by every door.

use anyhow::{Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::{native_401, plain_401, refused_everywhere};
use crate::Target;
use crate::client::{Auth, Ended, door004_token, register};

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
