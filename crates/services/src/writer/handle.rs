//! The sending side of the message writer (group commit): what every [`Store`](crate::Store)
//! clone must reach — the bounded queues and the request shape.

use chat_domain::{ChatId, MessageKind, UserId};
use tokio::sync::{mpsc, oneshot};

use super::{Inserted, insert_message};
use crate::{Error, Result, Store};

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

/// A message handed to the writer, or already written: its outcome is [`Queued::inserted`].
///
/// Queuing is the ordered half of a send: two messages of one chat queued one after the other
/// are stored in that order (one writer task per chat, first in first out), whenever their
/// outcomes are awaited. That lets one socket have several sends in flight (issue "Fan-out at
/// scale", pipelined sends).
pub(crate) enum Queued {
    /// In the writer's queue; its answer comes after the batch's commit.
    Writer(oneshot::Receiver<Result<Option<Inserted>>>),
    /// Written directly (no writer started, or its task is gone).
    Done(Result<Option<Inserted>>),
}

impl Queued {
    /// The outcome: `Ok(Some)` the committed message, `Ok(None)` nothing stored (see
    /// [`insert_message`]). Errors: `Pool`, `Database`, `Internal` (the writer ended before
    /// answering).
    pub(crate) async fn inserted(self) -> Result<Option<Inserted>> {
        match self {
            Self::Done(result) => result,
            Self::Writer(answer) => answer.await.unwrap_or_else(|_| {
                Err(Error::Internal(
                    "the message writer ended before answering".into(),
                ))
            }),
        }
    }
}

/// Stores one message and publishes its `message.created` after the commit: through the store's
/// writer when one was started (batched with concurrent sends, published with its batch, answered
/// after both), else directly with one statement on a pooled connection, then [`crate::publish`].
/// `Ok(None)` when nothing was stored (see [`insert_message`]).
/// Errors: `Pool` (no connection in time), `Database`, `Internal` (the writer ended mid-request).
pub(crate) async fn write_message(
    store: &Store,
    chat: ChatId,
    author: Option<UserId>,
    kind: MessageKind,
    text: &str,
    client_id: Option<&str>,
    require_member: bool,
) -> Result<Option<Inserted>> {
    queue_message(store, chat, author, kind, text, client_id, require_member)
        .await
        .inserted()
        .await
}

/// The first half of [`write_message`]: hands the message to the writer (waiting for room in its
/// bounded queue: backpressure) and returns without waiting for the commit. Without a writer the
/// message is written here, before returning.
pub(crate) async fn queue_message(
    store: &Store,
    chat: ChatId,
    author: Option<UserId>,
    kind: MessageKind,
    text: &str,
    client_id: Option<&str>,
    require_member: bool,
) -> Queued {
    let direct = async || -> Result<Option<Inserted>> {
        let mut conn = store.conn().await?;
        let inserted = insert_message(
            &mut conn,
            chat,
            author,
            kind,
            text,
            client_id,
            require_member,
        )
        .await?;
        drop(conn);
        if let Some(inserted) = &inserted {
            crate::publish(store, &inserted.created_event()).await;
        }
        Ok(inserted)
    };
    let Some(writer) = store.writer.get() else {
        return Queued::Done(direct().await);
    };
    let (reply, answer) = oneshot::channel();
    let request = MessageWrite {
        chat,
        author,
        kind,
        text: text.to_owned(),
        client_id: client_id.map(str::to_owned),
        require_member,
        reply,
    };
    if writer.queue_for(chat).send(request).await.is_err() {
        // The task is gone (only after a panic while the store lives): nothing was queued.
        tracing::error!(chat.id = %chat, "message writer task ended; writing directly");
        return Queued::Done(direct().await);
    }
    Queued::Writer(answer)
}
