//! Opening sockets: one handshake from a source address, and all of them with retries.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::drive::drive;
use super::{Cmd, Sock, Worker, Ws};
use crate::wire::{self, Incoming, Protocol};

/// Opens one socket: TCP from `source`, the WebSocket handshake, and for the native gateway the
/// `ready` frame (whose chat seqs are recorded). With `resume`, the handshake carries
/// `sync=<chat>:<seq>,...` of what the socket saw before.
async fn open(worker: &Worker, sock: &Sock, source: IpAddr, resume: bool) -> Result<Ws> {
    let plan = &worker.plan;
    let tcp = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    tcp.bind(SocketAddr::new(source, 0))
        .with_context(|| format!("bind {source}"))?;
    tcp.set_nodelay(true)?;
    let stream = tcp.connect(plan.server).await.context("tcp connect")?;
    let url = match plan.protocol {
        Protocol::Native => {
            let mut url = format!("{}/api/v1/ws?token={}", plan.ws_base, sock.plan.token);
            let st = sock.st.borrow();
            if resume && !st.chat_seq.is_empty() {
                let sync: Vec<String> = st
                    .chat_seq
                    .iter()
                    .map(|(c, s)| format!("{c}:{s}"))
                    .collect();
                url.push_str("&sync=");
                url.push_str(&sync.join(","));
            }
            url
        }
        Protocol::Door002 => format!(
            "{}/ws/group/{}/?token={}",
            plan.ws_base, sock.plan.group_name, sock.plan.token
        ),
    };
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(worker.ws_config))
            .await
            .context("websocket handshake")?;
    if plan.protocol == Protocol::Native {
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(text) = frame? {
                    match wire::decode(Protocol::Native, &text) {
                        Incoming::Ready(chats) => return Ok(chats),
                        Incoming::Error { detail, .. } => return Err(anyhow!("refused: {detail}")),
                        _ => {}
                    }
                }
            }
            Err(anyhow!("closed before ready"))
        })
        .await
        .map_err(|_| anyhow!("no ready within 30 s"))??;
        let mut st = sock.st.borrow_mut();
        for (chat, seq) in ready {
            // On resume, `ready` reports where live delivery starts; the replay fills up to it.
            st.chat_seq.entry(chat).or_insert(seq);
        }
    }
    Ok(ws)
}

/// Opens every socket that is not open, `connect_concurrency` at a time, retrying a failed
/// one up to 3 times. Answers `{"ok","failed","attempt_errors","elapsed_ms","first_error"}`.
pub(super) async fn connect_all(
    worker: &Rc<Worker>,
    socks: &[Rc<Sock>],
    conns: &mut [Option<(mpsc::Sender<Cmd>, JoinHandle<()>)>],
    resume: bool,
) -> serde_json::Value {
    let started = Instant::now();
    let ips = &worker.plan.source_ips;
    let attempt_errors = RefCell::new(0u64);
    let first_error: RefCell<Option<String>> = RefCell::new(None);
    // Sockets never opened or closed since (by the server or the network).
    for (i, conn) in conns.iter_mut().enumerate() {
        if !socks[i].st.borrow().open
            && let Some((_, task)) = conn.take()
        {
            task.abort();
        }
    }
    let todo: Vec<usize> = (0..socks.len()).filter(|&i| conns[i].is_none()).collect();
    let opened: Vec<(usize, Option<Ws>)> = futures_util::stream::iter(todo)
        .map(|i| {
            let sock = socks[i].clone();
            let source = ips[i % ips.len()];
            let attempt_errors = &attempt_errors;
            let first_error = &first_error;
            async move {
                for attempt in 0..4u64 {
                    match open(worker, &sock, source, resume).await {
                        Ok(ws) => return (i, Some(ws)),
                        Err(e) => {
                            *attempt_errors.borrow_mut() += 1;
                            first_error.borrow_mut().get_or_insert(format!("{e:#}"));
                            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                        }
                    }
                }
                (i, None)
            }
        })
        .buffer_unordered(worker.plan.connect_concurrency.max(1))
        .collect()
        .await;
    let mut failed = 0;
    let mut ok = 0;
    for (i, ws) in opened {
        match ws {
            Some(ws) => {
                ok += 1;
                socks[i].st.borrow_mut().open = true;
                let (tx, rx) = mpsc::channel(64);
                let task =
                    tokio::task::spawn_local(drive(worker.clone(), socks[i].clone(), ws, rx));
                conns[i] = Some((tx, task));
            }
            None => failed += 1,
        }
    }
    json!({
        "ok": ok,
        "failed": failed,
        "attempt_errors": *attempt_errors.borrow(),
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "first_error": first_error.borrow().clone(),
    })
}
