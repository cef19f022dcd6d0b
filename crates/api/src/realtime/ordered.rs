//! In-order, exactly-once delivery of one chat's messages to one socket, shared by the doors
//! that replay history and then go live (the gateway, door 000).
//!
//! The cursor remembers the highest seq delivered. A live message at or below it is a duplicate
//! (it was replayed, or sent as a reply) and dropped; one beyond the next expected seq means
//! messages were missed (published out of order by concurrent senders, or before the socket
//! subscribed) and the gap is filled from PostgreSQL first — seqs are assigned under the chat's
//! row lock, so every lower seq is committed by then.

use bytestring::ByteString;
use chat_domain::ChatId;
use chat_selectors::{HistoryCursor, MessageView, Store, message_history};

use super::socket::{Flow, Outbox, Stop};
use crate::error::ApiError;

/// Messages per page when filling a gap or replaying.
pub const REPLAY_PAGE: i64 = 200;

/// Where one socket stands in one chat.
#[derive(Debug, Clone)]
pub struct Ordered {
    chat: ChatId,
    delivered: i64,
}

impl Ordered {
    /// A cursor for `chat` that counts everything up to `delivered` as sent.
    pub fn new(chat: ChatId, delivered: i64) -> Self {
        Self { chat, delivered }
    }

    /// The chat.
    pub fn chat(&self) -> ChatId {
        self.chat
    }

    /// The highest seq delivered.
    pub fn delivered(&self) -> i64 {
        self.delivered
    }

    /// Counts `seq` as delivered (sent some other way, e.g. as a reply); never moves back.
    pub fn mark(&mut self, seq: i64) {
        self.delivered = self.delivered.max(seq);
    }

    /// Sends the chat's messages after the cursor up to `target` from PostgreSQL, in order.
    ///
    /// Page by page (each write waits for the client), rendered by `render`. Errors: the session
    /// ends with 1013/1011 when PostgreSQL fails (the socket can't know what it missed; the
    /// client reconnects and resumes).
    pub async fn catch_up(
        &mut self,
        store: &Store,
        target: i64,
        render: impl Fn(&MessageView) -> String,
        out: &mut Outbox<'_>,
    ) -> Flow {
        let replayed = replay(
            store,
            self.chat,
            self.delivered,
            target,
            i64::MAX,
            render,
            out,
        )
        .await?;
        self.mark(replayed.last);
        Ok(())
    }

    /// Delivers a live `message` whose shared frame is `frame`: dropped when already delivered,
    /// preceded by the missing ones when it is ahead.
    pub async fn live(
        &mut self,
        store: &Store,
        message: &MessageView,
        frame: impl FnOnce() -> ByteString,
        render: impl Fn(&MessageView) -> String,
        out: &mut Outbox<'_>,
    ) -> Flow {
        if message.seq <= self.delivered {
            return Ok(());
        }
        if message.seq > self.delivered + 1 {
            self.catch_up(store, message.seq - 1, render, out).await?;
        }
        out.send(frame()).await?;
        self.mark(message.seq);
        Ok(())
    }
}

/// What [`replay`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// The seq of the last message sent (the starting seq when none was).
    pub last: i64,
    /// How many messages were sent.
    pub sent: i64,
    /// Whether nothing more is stored after `last` (the end of the chat came before `upto`).
    pub exhausted: bool,
}

/// Sends `chat`'s stored messages after seq `after` up to seq `upto`, at most `budget` of them.
///
/// In seq order, [`REPLAY_PAGE`] per query, each rendered by `render`; every write waits for the
/// client. The one replay loop of the sockets: live gap filling ([`Ordered::catch_up`]) and the
/// gateway's `sync` both use it. Errors: the session ends as [`lost`] says when PostgreSQL fails,
/// or when the client is gone.
pub async fn replay(
    store: &Store,
    chat: ChatId,
    after: i64,
    upto: i64,
    budget: i64,
    render: impl Fn(&MessageView) -> String,
    out: &mut Outbox<'_>,
) -> Result<Replayed, Stop> {
    let mut done = Replayed {
        last: after,
        sent: 0,
        exhausted: false,
    };
    while done.last < upto && done.sent < budget {
        let limit = REPLAY_PAGE.min(upto - done.last).min(budget - done.sent);
        let page = message_history(store, chat, HistoryCursor::After(done.last), limit)
            .await
            .map_err(|e| lost(&e.into()))?;
        if page.messages.is_empty() {
            done.exhausted = true; // nothing stored past the cursor
            break;
        }
        for message in page.messages.iter().filter(|m| m.seq <= upto) {
            out.send(render(message)).await?;
            done.last = message.seq;
            done.sent += 1;
        }
    }
    Ok(done)
}

/// Ends a session whose socket cannot know what it missed (a database fault), so the client
/// reconnects and resumes.
///
/// 1013 (try again later) when the fault is transient (PostgreSQL unreachable or timing out: a
/// 503), else 1011.
pub fn lost(error: &ApiError) -> Stop {
    tracing::warn!(error = %error, "socket session ends: delivery state unknown");
    let code = if error.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
        actix_ws::CloseCode::Again
    } else {
        actix_ws::CloseCode::Error
    };
    Stop::forced("store_fault", code, "temporary failure: reconnect and sync")
}
