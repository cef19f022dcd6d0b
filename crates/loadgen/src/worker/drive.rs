//! One open socket's task: it writes the probes it is asked for and accounts every frame read.

use std::rc::Rc;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{Cmd, Sock, Worker, Ws};
use crate::stats;
use crate::wire::{self, Incoming, Probe, Protocol};

/// Writes this socket's next probe if its window allows (it is counted as skipped otherwise).
async fn send_one(worker: &Worker, sock: &Sock, ws: &mut Ws) -> bool {
    let frame = {
        let mut st = sock.st.borrow_mut();
        if st.inflight >= *worker.window.borrow() {
            worker.counters.borrow_mut().skipped += 1;
            return false;
        }
        st.inflight += 1;
        st.next_n += 1;
        let probe = Probe {
            sender: sock.plan.id,
            n: st.next_n,
            sent_us: wire::now_us(),
        };
        wire::send_frame(
            worker.plan.protocol,
            sock.plan.chat_id,
            &probe,
            worker.plan.run_id,
        )
    };
    if let Err(e) = ws.feed(Message::text(frame)).await {
        worker.counters.borrow_mut().error(format!("write: {e}"));
        return false;
    }
    true
}

/// One socket's life: writes what the rate loop asks for, reads and accounts every frame.
pub(super) async fn drive(worker: Rc<Worker>, sock: Rc<Sock>, ws: Ws, rx: mpsc::Receiver<Cmd>) {
    drive_open(&worker, &sock, ws, rx).await;
    // Closed: what it had in flight will never be acknowledged on this connection.
    let mut st = sock.st.borrow_mut();
    st.open = false;
    st.inflight = 0;
}

async fn drive_open(worker: &Worker, sock: &Sock, mut ws: Ws, mut rx: mpsc::Receiver<Cmd>) {
    let protocol = worker.plan.protocol;
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(Cmd::Send) = cmd else { break };
                send_one(worker, sock, &mut ws).await;
                while let Ok(Cmd::Send) = rx.try_recv() {
                    send_one(worker, sock, &mut ws).await;
                }
                if ws.flush().await.is_err() {
                    worker.counters.borrow_mut().closed += 1;
                    break;
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        worker.counters.borrow_mut().closed += 1;
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let now = wire::now_us();
                let acked = account(worker, sock, protocol, wire::decode(protocol, &text), now);
                if acked && *worker.closed_loop.borrow() {
                    send_one(worker, sock, &mut ws).await;
                    if ws.flush().await.is_err() {
                        worker.counters.borrow_mut().closed += 1;
                        break;
                    }
                }
            }
        }
    }
}

/// Updates the counters for one frame; `true` when it acknowledged one of this socket's sends.
fn account(worker: &Worker, sock: &Sock, protocol: Protocol, incoming: Incoming, now: u64) -> bool {
    let mut c = worker.counters.borrow_mut();
    let mut st = sock.st.borrow_mut();
    match incoming {
        Incoming::Delivered {
            chat_id,
            seq,
            probe,
        } => {
            if seq > 0 {
                let seen = st.chat_seq.entry(chat_id).or_insert(0);
                *seen = (*seen).max(seq);
            }
            let Some(p) = probe else { return false };
            c.deliveries += 1;
            stats::record(&mut c.latency, now.saturating_sub(p.sent_us));
            if c.first_delivery_us == 0 {
                c.first_delivery_us = now;
            }
            c.last_delivery_us = now;
            let last = st.last_from.entry(p.sender).or_insert(0);
            if p.n == *last + 1 {
                *last = p.n;
                *c.in_order.entry(p.sender).or_insert(0) += 1;
            } else if p.n > *last + 1 {
                *last = p.n;
                c.out_of_order += 1;
            } else {
                c.duplicates += 1;
            }
            // Door 002 has no ack: the sender's own broadcast is its proof of storage.
            if protocol == Protocol::Door002 && p.sender == sock.plan.id {
                st.inflight = st.inflight.saturating_sub(1);
                c.acks += 1;
                *c.sent.entry(p.sender).or_insert(0) += 1;
                stats::record(&mut c.ack_latency, now.saturating_sub(p.sent_us));
                return true;
            }
            false
        }
        Incoming::Acked {
            chat_id,
            seq,
            request_id,
        } => {
            let seen = st.chat_seq.entry(chat_id).or_insert(0);
            *seen = (*seen).max(seq);
            st.inflight = st.inflight.saturating_sub(1);
            c.acks += 1;
            *c.sent.entry(sock.plan.id).or_insert(0) += 1;
            if let Some(sent) = request_id {
                stats::record(&mut c.ack_latency, now.saturating_sub(sent));
            }
            true
        }
        Incoming::Error { request_id, detail } => {
            if request_id.is_some() || protocol == Protocol::Door002 {
                st.inflight = st.inflight.saturating_sub(1);
                c.send_errors += 1;
            } else {
                c.error_frames += 1;
            }
            c.error(detail);
            false
        }
        Incoming::Synced => {
            st.synced = true;
            false
        }
        Incoming::Refused(reason) => {
            c.error_frames += 1;
            c.error(reason);
            false
        }
        Incoming::Ready(_) | Incoming::Other => false,
    }
}
