//! The server's writing half of a WebSocket: frames are encoded straight into a buffer that the
//! HTTP/1 dispatcher takes as the upgraded response's body.
//!
//! actix-ws reads the client's frames ([`MessageStream`]); writing goes through this module
//! instead of actix-ws's `Session`, whose every frame crossed a 32-slot channel (a permit
//! future, a semaphore, a queue node) and was encoded into a new buffer on the dispatcher's
//! side: on the fan-out path that was a fifth of the server's CPU per delivery (BENCHMARKS.md
//! §10). Here a frame is encoded once, by the socket's task, into a buffer shared with the
//! response body ([`WsBody`]); the dispatcher is woken and takes everything buffered in one
//! chunk, so frames written close together leave in one `send(2)`.
//!
//! Backpressure: a write waits while [`WRITE_BUFFER_BYTES`] or more are buffered (the client
//! reads too slowly, or the kernel's socket buffer is full); callers bound that wait with the
//! write timeout. Frames are RFC 6455 §5.2 server frames (unmasked), written by actix-http's
//! frame encoder.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::MessageStream;
use bytestring::ByteString;

/// Bytes buffered for the client above which a write waits for the dispatcher to take them
/// (it takes everything at once, and blocks only when the kernel's socket buffer is full).
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// RFC 6455 §5.5: a control frame's payload is at most 125 bytes (a close's: code + 123).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// The session was closed (the client is gone, or a close frame was already sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebSocket session is closed")
    }
}

impl std::error::Error for Closed {}

/// What the socket's task and the dispatcher share.
#[derive(Default)]
struct Shared {
    /// Encoded frames the dispatcher has not taken yet.
    buf: BytesMut,
    /// The dispatcher, waiting for frames.
    reader: Option<Waker>,
    /// The socket's task, waiting for room.
    writer: Option<Waker>,
    /// A close frame is buffered: nothing more is written, the body ends after it.
    closing: bool,
    /// The body is gone (the connection ended) or the session was dropped.
    ended: bool,
}

#[derive(Default)]
struct Pipe(Mutex<Shared>);

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writing half of one WebSocket (what actix-ws calls a session): text, ping, pong and
/// close frames, each waiting for room in the socket's write buffer.
pub struct Session {
    pipe: Arc<Pipe>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

impl Session {
    /// Sends a text frame. Errors: [`Closed`] when the connection is gone or closing.
    pub async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Closed> {
        let text: ByteString = text.into();
        self.write(OpCode::Text, text.as_bytes()).await
    }

    /// Sends a ping with `payload` (cut to 125 bytes, RFC 6455 §5.5).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.write(OpCode::Ping, control(payload)).await
    }

    /// Answers a ping with a pong carrying `payload` (cut to 125 bytes).
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.write(OpCode::Pong, control(payload)).await
    }

    /// Sends a close frame (a description cut to 123 bytes at a character boundary); the
    /// connection ends once it is written. Errors: [`Closed`] as for [`Self::text`].
    pub async fn close(&mut self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let reason = reason.map(|mut reason| {
            if let Some(description) = reason.description.as_mut() {
                let mut end = description.len().min(MAX_CONTROL_PAYLOAD - 2);
                while !description.is_char_boundary(end) {
                    end -= 1;
                }
                description.truncate(end);
            }
            reason
        });
        let pipe = self.pipe.clone();
        let mut reason = Some(reason);
        poll_fn(|cx| {
            pipe.with_room(cx, |shared| {
                Parser::write_close(&mut shared.buf, reason.take().flatten(), false);
                shared.closing = true;
            })
        })
        .await
    }

    async fn write(&mut self, op: OpCode, payload: &[u8]) -> Result<(), Closed> {
        poll_fn(|cx| {
            self.pipe.with_room(cx, |shared| {
                Parser::write_message(&mut shared.buf, payload, op, true, false);
            })
        })
        .await
    }
}

impl Pipe {
    /// Runs `write` on the buffer once it has room, then wakes the dispatcher.
    fn with_room(
        &self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut Shared),
    ) -> Poll<Result<(), Closed>> {
        let mut shared = self.lock();
        if shared.ended || shared.closing {
            return Poll::Ready(Err(Closed));
        }
        if shared.buf.len() >= WRITE_BUFFER_BYTES {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        write(&mut shared);
        let reader = shared.reader.take();
        drop(shared);
        if let Some(reader) = reader {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Session {
    /// The body ends once what is buffered is taken (the connection closes without a close
    /// frame when none was sent).
    fn drop(&mut self) {
        let mut shared = self.pipe.lock();
        shared.ended = true;
        let reader = shared.reader.take();
        drop(shared);
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

fn control(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)]
}

/// The upgraded response's body: what the [`Session`] buffered, in chunks, until a close frame
/// or the session's end. It also holds actix-ws's own body, unused, whose drop tells the
/// [`MessageStream`] that the connection is gone.
struct WsBody {
    pipe: Arc<Pipe>,
    _reader_signal: BoxBody,
}

impl MessageBody for WsBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let mut shared = self.pipe.lock();
        if !shared.buf.is_empty() {
            // The buffer goes with the chunk: an idle socket keeps no write buffer (its next
            // frame allocates one of the frame's size).
            let chunk = std::mem::take(&mut shared.buf).freeze();
            let writer = shared.writer.take();
            drop(shared);
            if let Some(writer) = writer {
                writer.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if shared.closing || shared.ended {
            return Poll::Ready(None);
        }
        if !shared
            .reader
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            shared.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for WsBody {
    fn drop(&mut self) {
        let mut shared = self.pipe.lock();
        shared.ended = true;
        let writer = shared.writer.take();
        drop(shared);
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}

/// Accepts a WebSocket handshake: the 101 response, the writing [`Session`] and the client's
/// frames. Errors: actix-ws's handshake error (not a valid upgrade request).
pub fn handshake(
    req: &HttpRequest,
    body: actix_web::web::Payload,
) -> Result<(HttpResponse, Session, MessageStream), actix_web::Error> {
    let (response, _unused, stream) = actix_ws::handle(req, body)?;
    let (head, reader_signal) = response.into_parts();
    let pipe = Arc::new(Pipe::default());
    let body = WsBody {
        pipe: pipe.clone(),
        _reader_signal: reader_signal,
    };
    Ok((
        head.set_body(body).map_into_boxed_body(),
        Session { pipe },
        stream,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (Session, WsBody) {
        let pipe = Arc::new(Pipe::default());
        let body = WsBody {
            pipe: pipe.clone(),
            _reader_signal: BoxBody::new(()),
        };
        (Session { pipe }, body)
    }

    fn take(body: &mut WsBody) -> Poll<Option<Bytes>> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        Pin::new(body)
            .poll_next(&mut cx)
            .map(|c| c.map(|r| r.unwrap_or_default()))
    }

    #[tokio::test]
    async fn frames_written_together_leave_in_one_chunk_as_rfc_6455_server_frames() {
        let (mut session, mut body) = pipe();
        assert_eq!(take(&mut body), Poll::Pending);
        session.text("hi").await.unwrap();
        session.ping(b"p").await.unwrap();
        let Poll::Ready(Some(chunk)) = take(&mut body) else {
            panic!("nothing buffered")
        };
        // FIN + text, unmasked length 2, "hi"; FIN + ping, length 1, "p".
        assert_eq!(&chunk[..], b"\x81\x02hi\x89\x01p");
        assert_eq!(take(&mut body), Poll::Pending);
    }

    #[tokio::test]
    async fn a_close_ends_the_body_and_later_writes_fail() {
        let (mut session, mut body) = pipe();
        let reason = CloseReason {
            code: actix_ws::CloseCode::Policy,
            description: Some("é".repeat(100)),
        };
        session.close(Some(reason)).await.unwrap();
        let Poll::Ready(Some(chunk)) = take(&mut body) else {
            panic!("no close frame")
        };
        // A control frame's payload stays within 125 bytes: code (2) + 122 bytes of "é"s.
        assert_eq!(chunk[0], 0x88);
        assert_eq!(usize::from(chunk[1]), 2 + 122);
        assert_eq!(take(&mut body), Poll::Ready(None));
    }

    #[tokio::test]
    async fn a_full_buffer_makes_writes_wait_and_a_gone_body_fails_them() {
        let (mut session, mut body) = pipe();
        let big = "x".repeat(WRITE_BUFFER_BYTES);
        session.text(big.clone()).await.unwrap();
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), session.text("more")).await;
        assert!(blocked.is_err(), "a write past the buffer did not wait");
        assert!(matches!(take(&mut body), Poll::Ready(Some(_))));
        session.text("more").await.unwrap();
        drop(body);
        assert_eq!(session.text("after").await, Err(Closed));
    }
}
