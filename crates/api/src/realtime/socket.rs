//! The one loop every WebSocket session runs: a single task `select!`ing over the client's
//! frames, the socket's bounded event queue, the hub's overflow signal and a heartbeat. A door
//! plugs in through [`SocketDoor`]; the loop owns limits, heartbeats and closing.
//!
//! Close codes (RFC 6455 §7.4.1): 1009 for a frame over the limit, 1008 for a reader too slow
//! to keep its queue below the limit or a write blocked past the write timeout, 1001 for a
//! silent client (no frame or pong for `ws_client_timeout_secs`), 1002 for a protocol error.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::{Connection, Event};
use crate::config::Settings;

/// What a door wants done after a client frame or an event.
#[derive(Debug, Default)]
pub struct Reply {
    /// Frames to send to this client, in order.
    pub frames: Vec<ByteString>,
    /// Close the socket after sending them.
    pub close: Option<CloseReason>,
}

impl Reply {
    /// Nothing to do.
    pub fn none() -> Self {
        Self::default()
    }

    /// Send one frame.
    pub fn frame(frame: impl Into<ByteString>) -> Self {
        Self {
            frames: vec![frame.into()],
            close: None,
        }
    }

    /// Send one frame, then close with `code` and `description`.
    pub fn frame_and_close(
        frame: impl Into<ByteString>,
        code: CloseCode,
        description: &str,
    ) -> Self {
        Self {
            frames: vec![frame.into()],
            close: Some(close_reason(code, description)),
        }
    }
}

/// A close reason with a description.
pub fn close_reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// A door's side of a session.
pub trait SocketDoor {
    /// A text frame from the client (already within the frame limit).
    fn on_text(&mut self, text: &str) -> impl Future<Output = Reply>;
    /// A binary frame from the client.
    fn on_binary(&mut self) -> Reply;
    /// A committed event on one of the socket's chats.
    fn on_event(&mut self, event: &Event) -> Reply;
}

/// Socket limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Largest frame (and aggregated message) accepted, bytes.
    pub max_frame_bytes: usize,
    /// Ping interval.
    pub heartbeat: Duration,
    /// Close a socket silent this long.
    pub client_timeout: Duration,
    /// Close a socket whose write is blocked this long.
    pub write_timeout: Duration,
    /// Events queued per socket.
    pub queue: usize,
}

impl SocketLimits {
    /// The limits configured in `settings`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_frame_bytes: settings.ws_max_frame_bytes,
            heartbeat: Duration::from_secs(settings.ws_heartbeat_secs),
            client_timeout: Duration::from_secs(settings.ws_client_timeout_secs),
            write_timeout: Duration::from_millis(settings.ws_write_timeout_ms),
            queue: settings.ws_outbound_queue,
        }
    }
}

/// Sends `reply`'s frames and closes if it says so (for sessions refused before they start).
pub async fn send_and_close(mut session: Session, reply: Reply, limits: &SocketLimits) {
    for frame in reply.frames {
        if !written(limits, session.text(frame)).await {
            return;
        }
    }
    close_session(session, reply.close, limits).await;
}

/// Whether a write to the client finished within the write timeout. Every write (frames, pings,
/// pongs, the close) goes through here: actix-ws queues at most 32 frames per socket, and a
/// client that stops reading must not keep the session task (and its hub entry) alive.
async fn written<F>(limits: &SocketLimits, write: F) -> bool
where
    F: Future<Output = Result<(), actix_ws::Closed>>,
{
    matches!(
        tokio::time::timeout(limits.write_timeout, write).await,
        Ok(Ok(()))
    )
}

/// Closes the socket, giving up after the write timeout (the connection is dropped then).
async fn close_session(session: Session, reason: Option<CloseReason>, limits: &SocketLimits) {
    let _ = tokio::time::timeout(limits.write_timeout, session.close(reason)).await;
}

/// Runs a session until the client leaves, a limit is hit or the door closes it. `conn` must be
/// the hub connection feeding `events`; the caller holds its subscriptions for the duration.
pub async fn drive<D: SocketDoor>(
    mut session: Session,
    stream: MessageStream,
    conn: Arc<Connection>,
    mut events: mpsc::Receiver<Arc<Event>>,
    mut door: D,
    limits: SocketLimits,
) {
    let mut stream = stream
        .max_frame_size(limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_frame_bytes);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.heartbeat,
        limits.heartbeat,
    );
    let mut last_seen = Instant::now();
    let too_big = || {
        close_reason(
            CloseCode::Size,
            &format!("frame exceeds {} bytes", limits.max_frame_bytes),
        )
    };
    let close = 'session: loop {
        let reply = tokio::select! {
            () = conn.overflowed() => {
                break Some(close_reason(CloseCode::Policy, "outbound queue full: client reads too slowly"));
            }
            event = events.recv() => match event {
                Some(event) => door.on_event(&event),
                None => break None,
            },
            msg = stream.recv() => match msg {
                None => break None,
                Some(Err(ProtocolError::Overflow)) => break Some(too_big()),
                Some(Err(ProtocolError::Io(e))) if e.to_string().contains("maximum continuation size") => {
                    break Some(too_big());
                }
                Some(Err(e)) => break Some(close_reason(CloseCode::Protocol, &e.to_string())),
                Some(Ok(msg)) => {
                    last_seen = Instant::now();
                    match msg {
                        AggregatedMessage::Text(text) => door.on_text(&text).await,
                        AggregatedMessage::Binary(_) => door.on_binary(),
                        AggregatedMessage::Ping(payload) => {
                            if !written(&limits, session.pong(&payload)).await {
                                break None;
                            }
                            Reply::none()
                        }
                        AggregatedMessage::Pong(_) => Reply::none(),
                        AggregatedMessage::Close(reason) => break reason.or(Some(CloseCode::Normal.into())),
                    }
                }
            },
            _ = heartbeat.tick() => {
                if last_seen.elapsed() > limits.client_timeout {
                    break Some(close_reason(CloseCode::Away, "heartbeat timeout"));
                }
                if !written(&limits, session.ping(b"")).await {
                    break None;
                }
                Reply::none()
            }
        };
        for frame in reply.frames {
            if !written(&limits, session.text(frame)).await {
                break 'session Some(close_reason(
                    CloseCode::Policy,
                    "write timeout: client reads too slowly",
                ));
            }
        }
        if let Some(close) = reply.close {
            break Some(close);
        }
    };
    close_session(session, close, &limits).await;
}
