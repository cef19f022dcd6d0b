//! The sending side of the message writer (group commit): what every [`Store`](crate::Store)
//! clone must reach — the bounded queues and the request shape.

use chat_domain::{ChatId, MessageKind, UserId};
use tokio::sync::{mpsc, oneshot};

use super::Inserted;
use crate::Result;

/// One message for the writer to store, with where to answer. The writer answers only after the
/// statement that stored it has committed.
pub struct MessageWrite {
    /// The chat to store it in.
    pub chat: ChatId,
    /// The author; `None` for a system line.
    pub author: Option<UserId>,
    /// `text` or `system`.
    pub kind: MessageKind,
    /// The text, already validated by the caller.
    pub text: String,
    /// The client's idempotency key, unique per author.
    pub client_id: Option<String>,
    /// Store it only when `author` is a member of `chat` at commit time.
    pub require_member: bool,
    /// The outcome: `Ok(Some)` the committed message; `Ok(None)` nothing was stored (the author
    /// is not a member with `require_member`, the chat does not exist, or `client_id` was used
    /// before); `Err` a database fault (nothing is known to be stored).
    pub reply: oneshot::Sender<Result<Option<Inserted>>>,
}

/// The handle of a started writer: one bounded queue per writer task. A chat is always routed to
/// the same queue (`chat_id mod writers`), so one chat is written by one task only, in arrival
/// order. Cheap to clone (the senders are shared).
#[derive(Debug, Clone)]
pub struct MessageWriter {
    queues: Vec<mpsc::Sender<MessageWrite>>,
}

impl MessageWriter {
    /// A handle over `queues` (the writer tasks' inboxes, in task order). `None` when `queues` is
    /// empty: a writer needs at least one task.
    pub fn new(queues: Vec<mpsc::Sender<MessageWrite>>) -> Option<Self> {
        (!queues.is_empty()).then_some(Self { queues })
    }

    /// The queue that owns `chat`: `queues[chat_id mod writers]`.
    pub fn queue_for(&self, chat: ChatId) -> &mpsc::Sender<MessageWrite> {
        // `len() >= 1` by construction; ids are positive, rem_euclid keeps any id in range.
        let index = chat.0.rem_euclid(self.queues.len() as i64) as usize;
        &self.queues[index]
    }
}
