//! How a session ends: [`Stop`] (the close to send and why), closing within the write timeout,
//! and the forced-close log and counter (issue "Fan-out at scale", item 0).

use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;

use super::{Outbox, Session, SocketLimits};

/// Why a session ends early: the close to send and its cause.
///
/// The close is `None` when the connection is already gone; a client's own close is answered in
/// kind. The cause of a forced close is a short label for the log and the
/// `chat_websocket_forced_closes_total{door, reason}` counter.
#[derive(Debug)]
pub struct Stop {
    close: Option<CloseReason>,
    cause: Cause,
}

/// Who ended a session, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The connection is gone (reset, or a write found it closed): nothing to send.
    Gone,
    /// The client sent a close frame: echoed.
    Client,
    /// The server closed it: the label of the reason (`slow_reader`, `write_timeout`, ...).
    Forced(&'static str),
}

impl Stop {
    /// A close the door decided (its own protocol's policy: a refused frame, a chat deleted, a
    /// failed authentication): counted as `door_policy` (1008) or `door_other`.
    pub fn close(code: CloseCode, description: &str) -> Self {
        let cause = if code == CloseCode::Policy {
            "door_policy"
        } else {
            "door_other"
        };
        Self::forced(cause, code, description)
    }

    /// A close the server forces, counted and logged under `cause` (a fixed label, e.g.
    /// `slow_reader`, `store_fault`).
    pub fn forced(cause: &'static str, code: CloseCode, description: &str) -> Self {
        Self {
            close: Some(close_reason(code, description)),
            cause: Cause::Forced(cause),
        }
    }

    /// The connection is already gone: nothing to send.
    pub fn gone() -> Self {
        Self {
            close: None,
            cause: Cause::Gone,
        }
    }

    /// The client closed with `reason` (1000 when it gave none): answered with the same.
    pub(super) fn client(reason: Option<CloseReason>) -> Self {
        Self {
            close: reason.or(Some(CloseCode::Normal.into())),
            cause: Cause::Client,
        }
    }

    /// Whether the connection is still there to write to (a close frame is to be sent).
    pub fn is_open(&self) -> bool {
        self.close.is_some()
    }

    /// The close frame to send, if any.
    pub fn into_close(self) -> Option<CloseReason> {
        self.close
    }

    /// Logs a forced close at warn (a restart at info: it is planned) and counts it by door and
    /// reason; other ends are not counted here (`chat_websocket_connections` shows them).
    pub(super) fn record(&self, door: &'static str) {
        let Cause::Forced(reason) = self.cause else {
            return;
        };
        metrics::counter!("chat_websocket_forced_closes_total", "door" => door, "reason" => reason)
            .increment(1);
        let code = self.close.as_ref().map_or(0, |c| u16::from(c.code));
        let description = self
            .close
            .as_ref()
            .and_then(|c| c.description.as_deref())
            .unwrap_or_default();
        if reason == "restart" {
            tracing::info!(
                door,
                reason,
                code,
                description,
                "socket closed by the server"
            );
        } else {
            tracing::warn!(
                door,
                reason,
                code,
                description,
                "socket closed by the server"
            );
        }
    }
}

/// What a door's handlers return: `Err` ends the session.
pub type Flow = Result<(), Stop>;

/// A close reason with a description.
pub fn close_reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// Sends `frame` then closes with `code` and `reason` (for sessions refused before they start;
/// see [`refusal_code`]).
pub async fn reject(
    mut session: Session,
    frame: impl Into<ByteString>,
    code: CloseCode,
    reason: String,
    limits: SocketLimits,
) {
    let mut out = Outbox::new(&mut session, &limits);
    if out.send(frame).await.is_ok() {
        close_session(session, Some(close_reason(code, &reason)), &limits).await;
    }
}

/// The close code of a session refused with an error of `status`.
///
/// 1008 (policy) when the client is refused (do not retry as is), 1013 "try again later" when a
/// store did not answer (503), 1011 for another fault (retry with backoff), so that a client never
/// takes an outage for bad credentials (RFC 6455 §7.4.1; 1013 from the IANA registry).
pub fn refusal_code(status: actix_web::http::StatusCode) -> CloseCode {
    match status {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE => CloseCode::Again,
        s if s.is_server_error() => CloseCode::Error,
        _ => CloseCode::Policy,
    }
}

/// Closes the socket, giving up after the write timeout (the connection is dropped then).
pub(super) async fn close_session(
    mut session: Session,
    reason: Option<CloseReason>,
    limits: &SocketLimits,
) {
    let _ = tokio::time::timeout(limits.write_timeout, session.close(reason)).await;
}
