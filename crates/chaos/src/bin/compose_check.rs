//! `chat-compose-check`: the checks `make compose-test` runs against a live prod stack, through
//! nginx only (`--url`), driving the stack with the compose command it is given (`--compose`,
//! e.g. `docker-compose -p chatct1 -f docker-compose.prod.yml`). One line per check with its
//! time, then `compose-check: N passed, N failed`; exit code 1 when one failed.
//!
//! Checks, in order: two users' gateway sockets land on different app instances
//! (`X-Chat-Instance`); they chat live over the gateway and over door 002; `kill` of one app →
//! its user reconnects through nginx to the other and resumes with nothing lost; SIGTERM of an
//! app (`stop`) → its sockets get close 1012 through nginx; `restart postgres` → sends work
//! again; `down` then `up` → history is still there; door 001 is not reachable from the host.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(
    name = "chat-compose-check",
    about = "Checks a running prod compose stack"
)]
struct Args {
    /// nginx's address on the host.
    #[arg(long)]
    url: String,
    /// The compose command of the stack, split on spaces.
    #[arg(long)]
    compose: String,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Check {
    http: reqwest::Client,
    url: String,
    compose: Vec<String>,
}

struct User {
    name: String,
    token: String,
}

const PASSWORD: &str = "compose-check-pass";

impl Check {
    async fn compose(&self, args: &[&str]) -> Result<String> {
        let out = tokio::process::Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "{} {}: {}",
                self.compose.join(" "),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<(u16, Value)> {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str, token: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn user(&self, name: &str) -> Result<User> {
        let (status, body) = self
            .post(
                "/api/v1/auth/register/",
                None,
                json!({"username": name, "email": format!("{name}@example.com"),
                       "password": PASSWORD, "password2": PASSWORD}),
            )
            .await?;
        if status != 201 {
            bail!("register {name}: {status} {body}");
        }
        let (status, body) = self
            .post(
                "/api/v1/auth/login/",
                None,
                json!({"username": name, "password": PASSWORD}),
            )
            .await?;
        let token = body["access"]
            .as_str()
            .ok_or_else(|| anyhow!("login {name}: {status} {body}"))?;
        Ok(User {
            name: name.to_owned(),
            token: token.to_owned(),
        })
    }

    /// A gateway socket through nginx, after `ready`; with the instance that took it.
    async fn gateway(&self, user: &User, sync: &str) -> Result<(Ws, String)> {
        let url = format!(
            "{}/api/v1/ws?token={}{sync}",
            self.url.replacen("http", "ws", 1),
            user.token
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(&url).await?;
        let instance = resp
            .headers()
            .get("x-chat-instance")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let ready = next_json(&mut ws, |v| v["event"] == "ready").await?;
        if ready["event"] != "ready" {
            bail!("no ready: {ready}");
        }
        Ok((ws, instance))
    }

    /// Which app service (`app1`/`app2`) has instance id `id`.
    async fn service_of(&self, id: &str) -> Result<String> {
        for service in ["app1", "app2"] {
            let head = self
                .compose(&[
                    "exec",
                    "-T",
                    service,
                    "curl",
                    "-sI",
                    "http://127.0.0.1:8080/healthz",
                ])
                .await
                .unwrap_or_default();
            if head.to_ascii_lowercase().contains(&id.to_ascii_lowercase()) {
                return Ok(service.to_owned());
            }
        }
        bail!("no app container has instance id {id}")
    }

    /// Sends `text` over REST (through nginx), retrying for up to `within`; answers its seq.
    async fn send(&self, user: &User, chat: i64, text: &str, within: Duration) -> Result<i64> {
        let deadline = Instant::now() + within;
        loop {
            let sent = self
                .post(
                    &format!("/api/v1/chats/{chat}/messages"),
                    Some(&user.token),
                    json!({"text": text, "client_id": text}),
                )
                .await;
            match sent {
                Ok((200 | 201, body)) => return Ok(body["seq"].as_i64().unwrap_or(0)),
                Ok((status, body)) if Instant::now() > deadline => {
                    bail!("send {text}: {status} {body}")
                }
                Err(e) if Instant::now() > deadline => bail!("send {text}: {e}"),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Waits until nginx answers `/readyz` with 200 (at most `within`).
    async fn ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(resp) = self.http.get(format!("{}/readyz", self.url)).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("nginx did not answer /readyz within {within:?}")
    }
}

/// The next text frame (as JSON) for which `wanted` holds, within 10 s.
async fn next_json(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => bail!("no matching frame within 10 s"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if wanted(&v) {
                    return Ok(v);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => bail!("closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("socket error: {e}"),
            Ok(None) => bail!("socket ended"),
        }
    }
}

/// The seqs of `chat`'s `message.created` frames until `last` arrived (10 s at most).
async fn created_until(ws: &mut Ws, chat: i64, last: i64) -> Result<Vec<i64>> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let v = next_json(ws, |v| {
            v["event"] == "message.created" && v["chat_id"] == chat
        })
        .await?;
        seqs.push(v["seq"].as_i64().unwrap_or(0));
    }
    Ok(seqs)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let check = Check {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("HTTP client"),
        url: args.url.trim_end_matches('/').to_owned(),
        compose: args.compose.split(' ').map(str::to_owned).collect(),
    };
    let (passed, failed) = run(&check).await;
    println!("compose-check: {passed} passed, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}

async fn run(c: &Check) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    let tag = format!("{:04x}", rand::random::<u16>());
    let mut report = |name: &str, started: Instant, outcome: Result<String>| match outcome {
        Ok(detail) => {
            passed += 1;
            println!(
                "ok   {name} ({:.1} s): {detail}",
                started.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            failed += 1;
            println!(
                "FAIL {name} ({:.1} s): {e:#}",
                started.elapsed().as_secs_f64()
            );
        }
    };

    let t = Instant::now();
    let setup = async {
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
        Ok::<_, anyhow::Error>((alice, bob, chat))
    };
    let (alice, bob, chat) = match setup.await {
        Ok(s) => {
            report(
                "register two users and a group through nginx",
                t,
                Ok("201s".into()),
            );
            s
        }
        Err(e) => {
            report("register two users and a group through nginx", t, Err(e));
            return (passed, failed);
        }
    };

    // Two sockets on different instances, chatting live over the gateway.
    let t = Instant::now();
    let mut sockets = None;
    let outcome = async {
        let (mut a, a_inst) = c.gateway(&alice, "").await?;
        let mut tries = 0;
        let (mut b, b_inst) = loop {
            let (b, b_inst) = c.gateway(&bob, "").await?;
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
        sockets = Some((a, a_inst, b, b_inst));
        Ok(detail)
    }
    .await;
    report(
        "sockets on different instances chat live (gateway)",
        t,
        outcome,
    );

    // Door 002 through nginx.
    let t = Instant::now();
    let outcome = async {
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
    .await;
    report("door 002 group chat", t, outcome);

    // kill -9 of alice's app: she reconnects through nginx and resumes.
    let t = Instant::now();
    let outcome = async {
        let (a, a_inst, b, _) = sockets.take().context("no sockets from the live check")?;
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
                    &bob,
                    chat,
                    &format!("while-{tag}-{i}"),
                    Duration::from_secs(20),
                )
                .await?;
        }
        let (mut again, inst) = c.gateway(&alice, &format!("&sync={chat}:{before}")).await?;
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
    .await;
    report(
        "kill an app: reconnect and resume through nginx",
        t,
        outcome,
    );

    // SIGTERM of an app: its sockets get 1012.
    let t = Instant::now();
    let outcome = async {
        c.ready(Duration::from_secs(60)).await?;
        let (mut a, inst) = c.gateway(&alice, "").await?;
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
    .await;
    report("SIGTERM an app: its sockets get 1012", t, outcome);

    // PostgreSQL restart: sends work again.
    let t = Instant::now();
    let outcome = async {
        c.compose(&["restart", "postgres"]).await?;
        let restarted = t.elapsed();
        c.send(
            &bob,
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
    .await;
    report("restart postgres: the stack recovers", t, outcome);

    // down, then up: the history survives (the volume).
    let t = Instant::now();
    let outcome = async {
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
    .await;
    report("down then up: history kept in the volume", t, outcome);

    // Door 001 is not reachable.
    let t = Instant::now();
    let outcome = async {
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
    .await;
    report("door 001 not reachable from the host", t, outcome);
    (passed, failed)
}
