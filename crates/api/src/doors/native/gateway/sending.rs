//! The gateway's sends, pipelined: a `send_message` is handed to the writer and the socket reads
//! its next frame at once; `message.sent` answers come in send order, each after its commit.
//!
//! A socket receives its own new message as the `message.sent` reply, in order, not again as
//! `message.created`: everything of the chat before it first, nothing after it. So while a send
//! of a chat is in flight, that chat's live messages are held back (in memory, at most the
//! socket's queue length per chat; past that their seqs are noted and read from PostgreSQL), and
//! delivered around each reply: the lower seqs before it, the rest once no send of the chat is
//! in flight.

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ChatId, ClientId, MessageText};
use chat_selectors::ChatEvent;
use serde_json::{Value, json};

use super::frames::{error_frame, with_request_id};
use super::session::Gateway;
use crate::error::ApiError;
use crate::realtime::Event;
use crate::realtime::socket::{Flow, Outbox, SocketDoor};

/// How long a send waits for the messages before its own to reach the socket's queue (they were
/// published before the send was answered) before reading the rest from PostgreSQL.
const OWN_SEND_WAIT: Duration = Duration::from_millis(200);

/// A send's outcome as the socket answers it.
pub(super) struct SendDone {
    chat: ChatId,
    request_id: Option<Value>,
    outcome: Result<chat_services::Sent, ApiError>,
}

/// The seq of a `message.created` event.
fn created_seq(event: &Event) -> Option<i64> {
    match &event.chat_event {
        ChatEvent::MessageCreated { message, .. } => Some(message.seq),
        _ => None,
    }
}

impl Gateway {
    /// Queues a send (after the rate limit) and adds its outcome to the pipeline.
    pub(super) async fn queue_send(
        &mut self,
        chat: ChatId,
        text: &MessageText,
        client_id: Option<&ClientId>,
        request_id: Option<&Value>,
    ) {
        let pending =
            chat_services::queue_send(&self.state.store, self.user.id, chat, text, client_id).await;
        *self.sending.entry(chat).or_insert(0) += 1;
        let request_id = request_id.cloned();
        self.sends.push(async move {
            SendDone {
                chat,
                request_id,
                outcome: pending.outcome().await.map_err(ApiError::from),
            }
        });
    }

    /// Answers the oldest send: `message.sent` (after the chat's messages before it) or its
    /// error frame; then, when no other send of the chat is in flight, what was held back.
    pub(super) async fn answer_send(&mut self, done: SendDone, out: &mut Outbox<'_>) -> Flow {
        let SendDone {
            chat,
            request_id,
            outcome,
        } = done;
        let answered = match outcome {
            Ok(sent) => self.sent(chat, sent, request_id.as_ref(), out).await,
            Err(e) => out.send(error_frame(request_id.as_ref(), &e)).await,
        };
        let idle = match self.sending.get_mut(&chat) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                self.sending.remove(&chat);
                true
            }
        };
        answered?;
        if idle {
            self.release_held(chat, i64::MAX, out).await?;
            let missed = self
                .chats
                .get_mut(&chat)
                .map_or(0, |f| std::mem::take(&mut f.missed_upto));
            if missed > 0 {
                self.catch_up(chat, missed, out).await?;
            }
        }
        Ok(())
    }

    /// `message.sent` for a stored (or repeated) message, after the chat's messages before it.
    async fn sent(
        &mut self,
        chat: ChatId,
        sent: chat_services::Sent,
        request_id: Option<&Value>,
        out: &mut Outbox<'_>,
    ) -> Flow {
        let seq = sent.message.seq;
        if sent.created {
            self.deliver_before(chat, seq, out).await?;
            if let Some(followed) = self.chats.get_mut(&chat) {
                followed.order.mark(seq);
            }
        }
        let reply = with_request_id(
            json!({"event": "message.sent", "chat_id": chat, "seq": seq,
                   "message": sent.message, "duplicate": !sent.created}),
            request_id,
        );
        out.send(reply).await
    }

    /// Holds a live message of a chat with a send in flight; `false` when the chat has none
    /// (deliver it now). Past the hold's bound only its seq is kept, read later from PostgreSQL.
    pub(super) fn hold(&mut self, event: &Arc<Event>, chat: ChatId) -> bool {
        if !self.sending.contains_key(&chat) {
            return false;
        }
        let Some(followed) = self.chats.get_mut(&chat) else {
            return false;
        };
        let seq = created_seq(event).unwrap_or(0);
        if seq <= followed.order.delivered() {
            return true; // already delivered: a duplicate
        }
        if followed.held.len() < self.hold_cap {
            followed.held.push(event.clone());
        } else {
            followed.missed_upto = followed.missed_upto.max(seq);
        }
        true
    }

    /// Delivers `chat`'s held messages below seq `below`, in seq order (gaps filled from
    /// PostgreSQL, duplicates dropped).
    async fn release_held(&mut self, chat: ChatId, below: i64, out: &mut Outbox<'_>) -> Flow {
        let Some(followed) = self.chats.get_mut(&chat) else {
            return Ok(());
        };
        let (mut ready, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut followed.held)
            .into_iter()
            .partition(|event| created_seq(event).is_some_and(|seq| seq < below));
        followed.held = kept;
        ready.sort_by_key(|event| created_seq(event));
        for event in ready {
            if let ChatEvent::MessageCreated { message, .. } = &event.chat_event {
                self.deliver_live(&event, message, out).await?;
            }
        }
        Ok(())
    }

    /// Delivers chat `chat`'s messages before `seq` (this socket's own new message). They were
    /// published before the send was answered, so they are normally held already, or about to
    /// reach this socket's queue: take events from the queue (delivering each, whatever its
    /// chat) for up to [`OWN_SEND_WAIT`]; only what is still missing then is read from
    /// PostgreSQL. This keeps a busy chat's sends from costing a history query each. While Redis
    /// is down (no event can come) it reads PostgreSQL without waiting.
    async fn deliver_before(&mut self, chat: ChatId, seq: i64, out: &mut Outbox<'_>) -> Flow {
        self.release_held(chat, seq, out).await?;
        // While Redis is down nothing arrives live, and what the hold or the queue dropped will
        // not come again: read from PostgreSQL at once then.
        let dropped = self
            .chats
            .get(&chat)
            .is_some_and(|f| f.missed_upto >= seq - 1);
        let wait = if self.state.store.redis_health().is_up() && !dropped {
            OWN_SEND_WAIT
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline
            && self
                .chats
                .get(&chat)
                .is_some_and(|f| f.order.delivered() < seq - 1)
        {
            let Some(event) = out.next_event(deadline).await else {
                break;
            };
            // The chat has a send in flight (this one): its messages are held, then released.
            self.on_event(&event, out).await?;
            self.release_held(chat, seq, out).await?;
        }
        self.catch_up(chat, seq - 1, out).await
    }
}
