//! The checks that break the stack: kill, stop and restart of its parts, then down and up.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::checks::Sockets;
use crate::stack::{PASSWORD, Stack, User, created_until};

/// `kill` of Alice's app: she reconnects through nginx to the other and resumes, nothing lost.
pub async fn kill_and_resume(
    c: &Stack,
    alice: &User,
    bob: &User,
    chat: i64,
    tag: &str,
    sockets: Option<Sockets>,
) -> Result<String> {
    let (a, a_inst, b, _) = sockets.context("no sockets from the live check")?;
    let victim = c.service_of(&a_inst).await?;
    drop(b);
    // Alice has seen everything up to the chat's newest message (the live check).
    let (_, page) = c
        .get(
            &format!("/api/v1/chats/{chat}/messages?limit=1"),
            &alice.token,
        )
        .await?;
    let before = page["messages"][0]["seq"]
        .as_i64()
        .context(format!("{page}"))?;
    drop(a);
    c.compose(&["kill", &victim]).await?;
    let mut last = 0;
    for i in 0..3 {
        last = c
            .send(
                bob,
                chat,
                &format!("while-{tag}-{i}"),
                Duration::from_secs(20),
            )
            .await?;
    }
    let (mut again, inst) = c.gateway(alice, &format!("&sync={chat}:{before}")).await?;
    let seqs = created_until(&mut again, chat, last).await?;
    let want: Vec<i64> = (before + 1..=last).collect();
    c.compose(&["start", &victim]).await?;
    if seqs != want {
        bail!("resumed with {seqs:?}, wanted {want:?}");
    }
    Ok(format!(
        "killed {victim}; resumed on {inst} with seqs {}..={last}, nothing lost",
        before + 1
    ))
}

/// `stop` (SIGTERM) of the app holding Alice's socket: it closes with 1012 through nginx.
pub async fn sigterm_closes_1012(c: &Stack, alice: &User) -> Result<String> {
    c.ready(Duration::from_secs(60)).await?;
    let (mut a, inst) = c.gateway(alice, "").await?;
    let victim = c.service_of(&inst).await?;
    let stop_args = ["stop", victim.as_str()];
    let stopping = c.compose(&stop_args);
    let closed = async {
        loop {
            match tokio::time::timeout(Duration::from_secs(40), a.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return frame.map(|f| u16::from(f.code));
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    };
    let (stopped, code) = tokio::join!(stopping, closed);
    stopped?;
    c.compose(&["start", &victim]).await?;
    match code {
        Some(1012) => Ok(format!("stopped {victim}: close 1012 through nginx")),
        other => Err(anyhow!("stopped {victim}: close {other:?}, wanted 1012")),
    }
}

/// `restart postgres`: a send works again afterwards. `t` is when the check began.
pub async fn restart_postgres(
    c: &Stack,
    bob: &User,
    chat: i64,
    tag: &str,
    t: Instant,
) -> Result<String> {
    c.compose(&["restart", "postgres"]).await?;
    let restarted = t.elapsed();
    c.send(
        bob,
        chat,
        &format!("after-pg-{tag}"),
        Duration::from_secs(60),
    )
    .await?;
    Ok(format!(
        "restart took {:.1} s; a send succeeded {:.1} s after it",
        restarted.as_secs_f64(),
        (t.elapsed() - restarted).as_secs_f64()
    ))
}

/// `down` then `up -d`: the group's history is still there (the volume).
pub async fn down_then_up(c: &Stack, alice: &User, chat: i64) -> Result<String> {
    c.compose(&["down"]).await?;
    c.compose(&["up", "-d"]).await?;
    c.ready(Duration::from_secs(180)).await?;
    let login = c
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": alice.name, "password": PASSWORD}),
        )
        .await?;
    let token = login.1["access"]
        .as_str()
        .context(format!("login after up: {:?}", login))?;
    let (status, page) = c
        .get(&format!("/api/v1/chats/{chat}/messages?limit=200"), token)
        .await?;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    if !texts.contains(&"hi bob") || !texts.iter().any(|t| t.starts_with("after-pg-")) {
        bail!("history after down/up: {status} {texts:?}");
    }
    Ok(format!(
        "{} messages still there after down + up",
        texts.len()
    ))
}
