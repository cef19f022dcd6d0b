//! The one loop every WebSocket session runs: a single task `select!`ing over the client's frames,
//! the socket's bounded event queue, the hub's overflow signal and a heartbeat.
//!
//! A door plugs in through [`SocketDoor`] and writes through an [`Outbox`]; the loop owns limits,
//! heartbeats and closing.
//!
//! Close codes (RFC 6455 §7.4.1): 1009 for a frame over the limit, 1008 for a reader too slow
//! to keep its queue below the limit or a write blocked past the write timeout, for a revoked
//! session ("session revoked": its token died by a logout-all, a refresh-token reuse or a
//! disable-user) and for a client that keeps flooding past the frame rate limit, 1001 for a
//! silent client (no frame or pong for `ws_client_timeout_secs`), 1002 for a protocol error.
//!
//! Every close the server forces is logged at warn with its reason and counted in
//! `chat_websocket_forced_closes_total{door, reason}` (reasons: `slow_reader`, `write_timeout`,
//! `revoked`, `flood`, `frame_too_big`, `heartbeat_timeout`, `protocol_error`, `restart`,
//! `store_fault`, `door_policy`, `door_other`).
//!
//! When the loop turns to its event queue it delivers everything queued (up to 33 events) before
//! it looks at the client again, so a client that sends fast but reads promptly does not let its
//! queue fill; a door that pipelines its sends ([`Pipeline`]) has its next frame read while
//! earlier sends wait for their commit. The sources are polled fairly (no source can starve the
//! client's frames and pongs). When the server closes a socket, the sends still in flight are
//! answered first (within the write timeout).
//!
//! Frame rate: every socket of every door may send `CHAT_WS_FRAMES_PER_SEC` frames (text,
//! binary, ping, pong) per second on average, `CHAT_WS_FRAME_BURST` at once (a token bucket). A
//! frame over the limit is not handled: the door answers it with its own rate-limit error (the
//! gateway's carries `retry_after`, s); a burst's worth of such frames in a row closes the socket
//! (1008) instead.

mod close;
mod limits;
mod pipeline;
mod wire;
pub use close::*;
pub use limits::*;
pub use pipeline::*;
pub use wire::{Closed, Session, WRITE_BUFFER_BYTES};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, CloseCode, MessageStream, ProtocolError};
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::{Connection, Event, Signal};
use crate::config::Settings;

/// Where a door writes its frames. Each write waits for room in the socket (backpressure) but no
/// longer than the write timeout.
pub struct Outbox<'a> {
    session: &'a mut Session,
    limits: &'a SocketLimits,
    /// The socket's event queue, while a client frame is being handled (see [`Self::next_event`]).
    events: Option<&'a mut mpsc::Receiver<Arc<Event>>>,
}

impl<'a> Outbox<'a> {
    /// An outbox on `session` (for writes before [`drive`] starts, e.g. a greeting).
    pub fn new(session: &'a mut Session, limits: &'a SocketLimits) -> Self {
        Self {
            session,
            limits,
            events: None,
        }
    }

    /// The next event queued for this socket, waiting until `deadline` at most; `None` at the
    /// deadline, when the queue is closed, or outside a client frame's handling. Lets a door
    /// deliver what is already on its way (e.g. the messages before the one it just sent) instead
    /// of reading them from the database.
    pub async fn next_event(&mut self, deadline: tokio::time::Instant) -> Option<Arc<Event>> {
        let events = self.events.as_mut()?;
        tokio::time::timeout_at(deadline, events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sends one text frame. Errors: `Stop` when the client is gone or reads too slowly.
    pub async fn send(&mut self, frame: impl Into<ByteString>) -> Flow {
        let write = self.session.text(frame);
        tokio::pin!(write);
        // Room in the socket's channel (the usual case): written without arming a timer.
        if let Some(done) = futures_util::FutureExt::now_or_never(write.as_mut()) {
            return done.map_err(|_closed| Stop::gone());
        }
        match tokio::time::timeout(self.limits.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(Stop::gone()),
            Err(_elapsed) => Err(Stop::forced(
                "write_timeout",
                CloseCode::Policy,
                "write timeout: client reads too slowly",
            )),
        }
    }
}

/// How the loop delivers an event ([`SocketDoor::direct`]).
#[derive(Debug)]
pub enum Direct {
    /// Write this frame; nothing else to do.
    Send(ByteString),
    /// Nothing to write (a duplicate, a chat the socket does not follow).
    Skip,
    /// [`SocketDoor::on_event`] handles it.
    Handle,
}

/// A door's side of a session.
pub trait SocketDoor {
    /// The door's name in metrics (`chat_websocket_connections{door=...}`).
    const NAME: &'static str;
    /// What a pipelined send's outcome future yields, for [`Self::on_done`] to answer (`()` for
    /// a door that pipelines nothing).
    type Done;

    /// The door's sends in flight, if it pipelines them: the loop answers each in send order
    /// with [`Self::on_done`] and reads no client frame while it is full.
    fn pipeline(&mut self) -> Option<&mut Pipeline<Self::Done>> {
        None
    }
    /// The outcome of the oldest send in flight (see [`Self::pipeline`]).
    fn on_done(&mut self, done: Self::Done, out: &mut Outbox<'_>) -> impl Future<Output = Flow> {
        let _ = (done, out);
        async { Ok(()) }
    }

    /// How to deliver `event` without waiting for anything but the socket, when the door can
    /// tell at once (the common case on the fan-out path: the next message of a chat, its
    /// frame rendered already); [`Direct::Handle`] (the default) calls [`Self::on_event`].
    fn direct(&mut self, event: &Arc<Event>) -> Direct {
        let _ = event;
        Direct::Handle
    }
    /// Once, before anything else: the door's greeting (e.g. the gateway's `ready` and the replay
    /// the client asked for, which go out before any live event). `Err` ends the session.
    fn on_start(&mut self, out: &mut Outbox<'_>) -> impl Future<Output = Flow> {
        let _ = out;
        async { Ok(()) }
    }
    /// A text frame from the client (already within the frame limit).
    fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> impl Future<Output = Flow>;
    /// A binary frame from the client.
    fn on_binary(&mut self, out: &mut Outbox<'_>) -> impl Future<Output = Flow>;
    /// An event on one of the socket's chats.
    fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> impl Future<Output = Flow>;
    /// Events may have been lost on the way to this socket (Redis was down or slow): catch up
    /// from PostgreSQL what the door promises to deliver in order (the gateway, door 000). The
    /// other doors have no such promise and do nothing.
    fn on_resync(&mut self, out: &mut Outbox<'_>) -> impl Future<Output = Flow> {
        let _ = out;
        async { Ok(()) }
    }
    /// A client frame over the frame rate limit (not handled): the door's rate-limit error,
    /// saying when to retry (`retry_after`, at least 1 s when shown in seconds).
    fn on_flood(
        &mut self,
        retry_after: Duration,
        out: &mut Outbox<'_>,
    ) -> impl Future<Output = Flow>;
    /// Every heartbeat (after the ping), e.g. to refresh presence; `Err` ends the session.
    fn on_heartbeat(&mut self) -> impl Future<Output = Flow> {
        async { Ok(()) }
    }
    /// Once, when the session has ended, whatever the reason.
    fn on_end(&mut self) -> impl Future<Output = ()> {
        async {}
    }
}

/// Accepts the WebSocket handshake. Errors: 400 `{"detail"}` for a request that is not a valid
/// WebSocket upgrade (a plain GET, a missing `Sec-WebSocket-Key`, ...).
pub fn upgrade(
    req: &actix_web::HttpRequest,
    body: actix_web::web::Payload,
) -> crate::error::ApiResult<(actix_web::HttpResponse, Session, MessageStream)> {
    wire::handshake(req, body).map_err(|e| {
        crate::error::ApiError::bad_request(format!(
            "This route takes a WebSocket upgrade request: {e}"
        ))
    })
}

/// Counts an open socket in `chat_websocket_connections` while it lives (a guard: every exit
/// path, a panic included, counts it out).
struct OpenSocket(metrics::Gauge);

impl OpenSocket {
    fn count(door: &'static str) -> Self {
        let gauge = metrics::gauge!("chat_websocket_connections", "door" => door);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Whether a control write (ping, pong) finished within the write timeout: a socket buffers at
/// most [`WRITE_BUFFER_BYTES`], and a client that stops reading must not keep the session task
/// (and its hub entries) alive.
async fn written<F>(limits: &SocketLimits, write: F) -> bool
where
    F: Future<Output = Result<(), Closed>>,
{
    matches!(
        tokio::time::timeout(limits.write_timeout, write).await,
        Ok(Ok(()))
    )
}

/// Runs a session until the client leaves, a limit is hit or the door stops it. `conn` must be
/// the hub connection feeding `events`; the door (or the caller) holds its subscriptions.
///
/// The door's handlers run boxed: their futures (which reach down into database and Redis
/// calls) live on the heap only while a frame or event is handled, so an idle socket's task
/// holds just this loop's small state (issue 6: memory per idle connection).
pub async fn drive<D: SocketDoor>(
    mut session: Session,
    stream: MessageStream,
    conn: Arc<Connection>,
    mut events: mpsc::Receiver<Arc<Event>>,
    mut door: D,
    limits: SocketLimits,
) {
    let mut shutdown = limits.shutdown.clone();
    let restart = shutdown.wait_for(|down| *down);
    tokio::pin!(restart);
    let _open = OpenSocket::count(D::NAME);
    let mut stream = stream
        .max_frame_size(limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_frame_bytes);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.heartbeat,
        limits.heartbeat,
    );
    let mut last_seen = Instant::now();
    let mut budget = FrameBudget::new(&limits);
    let fanout_delay = metrics::histogram!("chat_fanout_delay_seconds");
    let too_big = || {
        Stop::forced(
            "frame_too_big",
            CloseCode::Size,
            &format!("frame exceeds {} bytes", limits.max_frame_bytes),
        )
    };
    let greeted = {
        let mut out = Outbox::new(&mut session, &limits);
        let start = boxed(door.on_start(&mut out));
        start.await
    };
    let stop = match greeted {
        Err(stop) => stop,
        Ok(()) => loop {
            let reading = !door.pipeline().is_some_and(|p| p.is_full());
            if !reading {
                // Not read while the pipeline is full: not silent.
                last_seen = Instant::now();
            }
            let flow = tokio::select! {
                _ = &mut restart => {
                    Err(Stop::forced("restart", CloseCode::Restart, "server restarting: reconnect"))
                }
                signal = conn.signal() => match signal {
                    Signal::Overflowed => Err(Stop::forced("slow_reader", CloseCode::Policy, "outbound queue full: client reads too slowly")),
                    Signal::Revoked => Err(Stop::forced("revoked", CloseCode::Policy, "session revoked: log in again")),
                    Signal::Resync => Box::pin(door.on_resync(&mut Outbox::new(&mut session, &limits))).await,
                },
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > limits.client_timeout {
                        Err(Stop::forced("heartbeat_timeout", CloseCode::Away, "heartbeat timeout"))
                    } else if boxed(written(&limits, session.ping(b""))).await {
                        Box::pin(door.on_heartbeat()).await
                    } else {
                        Err(Stop::gone())
                    }
                }
                done = next_done(&mut door) => {
                    Box::pin(door.on_done(done, &mut Outbox { session: &mut session, limits: &limits, events: Some(&mut events) })).await
                }
                event = events.recv() => match event {
                    Some(event) => {
                        let now = unix_micros();
                        let mut flow = deliver(&mut door, &event, &mut session, &limits, &fanout_delay, now).await;
                        // What is queued already goes out in the same turn, up to EVENT_BATCH: one
                        // select (and its wake-up registrations) per batch, not per event, and the
                        // frames written together leave in one write.
                        let mut more = EVENT_BATCH;
                        while flow.is_ok() && more > 0 {
                            let Ok(event) = events.try_recv() else { break };
                            flow = deliver(&mut door, &event, &mut session, &limits, &fanout_delay, now).await;
                            more -= 1;
                        }
                        flow
                    }
                    None => Err(Stop::gone()),
                },
                msg = stream.recv(), if reading => match msg {
                    None => Err(Stop::gone()),
                    Some(Err(ProtocolError::Overflow)) => Err(too_big()),
                    Some(Err(ProtocolError::Io(e))) if e.to_string().contains("maximum continuation size") => {
                        Err(too_big())
                    }
                    // The connection broke (reset, EOF mid-frame): the client is gone.
                    Some(Err(ProtocolError::Io(_))) => Err(Stop::gone()),
                    Some(Err(e)) => Err(Stop::forced("protocol_error", CloseCode::Protocol, &e.to_string())),
                    Some(Ok(msg)) => {
                        last_seen = Instant::now();
                        // Over the frame rate, a frame is not handled (a close always is).
                        let refused = match msg {
                            AggregatedMessage::Close(_) => None,
                            _ => budget.take().err(),
                        };
                        match (refused, msg) {
                            (Some(_), _) if budget.refused >= limits.frame_burst => {
                                Err(Stop::forced("flood", CloseCode::Policy, "too many frames"))
                            }
                            (Some(wait), _) => {
                                Box::pin(door.on_flood(wait, &mut Outbox::new(&mut session, &limits))).await
                            }
                            (None, AggregatedMessage::Text(text)) => {
                                Box::pin(door.on_text(&text, &mut Outbox { session: &mut session, limits: &limits, events: Some(&mut events) })).await
                            }
                            (None, AggregatedMessage::Binary(_)) => {
                                Box::pin(door.on_binary(&mut Outbox::new(&mut session, &limits))).await
                            }
                            (None, AggregatedMessage::Ping(payload)) => {
                                if boxed(written(&limits, session.pong(&payload))).await { Ok(()) } else { Err(Stop::gone()) }
                            }
                            (None, AggregatedMessage::Pong(_)) => Ok(()),
                            (None, AggregatedMessage::Close(reason)) => Err(Stop::client(reason)),
                        }
                    }
                },
            };
            if let Err(stop) = flow {
                break stop;
            }
        },
    };
    stop.record(D::NAME);
    let end = boxed(finish(door, session, stop, limits));
    end.await;
}

/// A future on the heap: what an idle socket's task does not need to hold (a ping, the end of
/// a session) stays out of its state, which every socket carries all its life.
fn boxed<F: Future>(future: F) -> std::pin::Pin<Box<F>> {
    Box::pin(future)
}

/// The end of a session: the sends the writer is committing get their answers (within the
/// write timeout), the door cleans up, and the close frame goes out when there is one to send.
async fn finish<D: SocketDoor>(
    mut door: D,
    mut session: Session,
    stop: Stop,
    limits: SocketLimits,
) {
    if stop.is_open() {
        let deadline = tokio::time::Instant::now() + limits.write_timeout;
        while door.pipeline().is_some_and(|p| !p.is_empty()) {
            let Ok(done) = tokio::time::timeout_at(deadline, next_done(&mut door)).await else {
                break;
            };
            let mut out = Outbox::new(&mut session, &limits);
            if Box::pin(door.on_done(done, &mut out)).await.is_err() {
                break;
            }
        }
    }
    Box::pin(door.on_end()).await;
    if let Some(reason) = stop.into_close() {
        close_session(session, Some(reason), &limits).await;
    }
}

/// Most queued events one turn of the socket loop delivers after the one it woke for, before it
/// looks at its other sources again.
const EVENT_BATCH: usize = 32;

/// Hands one event to the door: its frame written at once when the door says so
/// ([`SocketDoor::direct`], no future allocated), else through [`SocketDoor::on_event`]. A
/// delivered message's commit→delivery delay (to `now`, unix µs) goes to
/// `chat_fanout_delay_seconds`.
async fn deliver<D: SocketDoor>(
    door: &mut D,
    event: &Arc<Event>,
    session: &mut Session,
    limits: &SocketLimits,
    fanout_delay: &metrics::Histogram,
    now: i64,
) -> Flow {
    let written = match door.direct(event) {
        Direct::Send(frame) => Outbox::new(session, limits).send(frame).await,
        Direct::Skip => Ok(()),
        Direct::Handle => Box::pin(door.on_event(event, &mut Outbox::new(session, limits))).await,
    };
    if let (Ok(()), Some(created)) = (&written, event.created_micros()) {
        fanout_delay.record((now - created).max(0) as f64 / 1e6);
    }
    written
}

/// Now, in µs since the Unix epoch.
fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The outcome of `door`'s oldest send in flight; pending while it has none.
async fn next_done<D: SocketDoor>(door: &mut D) -> D::Done {
    match door.pipeline() {
        Some(pipeline) => pipeline.next().await,
        None => std::future::pending().await,
    }
}

/// `wait` in whole seconds for a `retry_after` field: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests;
