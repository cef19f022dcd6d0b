//! Sending messages: gapless `seq` per chat, idempotent by `(author, client_id)`.

use chat_domain::{ChatId, ClientId, DomainError, MessageKind, MessageText, UserId};
use chat_selectors::{
    ChatEvent, MessageRow, MessageView, Store, message_by_client_id, require_member,
};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::unique_violation;
use crate::{Error, Result, publish};

/// One statement: bump the chat's `last_seq` (row lock: concurrent senders to one chat queue
/// here; `last_message_at` never moves backwards, so the chat list order follows `seq`), insert the message with that seq, and return it joined with its author's name. The
/// bump only happens when the author is a member (`$6`) and has not used `client_id` before, so
/// a refused or repeated send leaves no gap; a racing duplicate fails on the unique index and the
/// statement changes nothing. Sending also moves the author's read marker to the new message
/// (replying means you have read the chat), so your own messages are never unread.
const INSERT_MESSAGE_SQL: &str = "
WITH c AS (
    UPDATE chats SET last_seq = last_seq + 1,
        last_message_at = GREATEST(last_message_at, clock_timestamp())
    WHERE id = $1
      AND (NOT $6 OR EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND user_id = $2))
      AND ($5::text IS NULL OR NOT EXISTS (
            SELECT 1 FROM messages WHERE author_id = $2 AND client_id = $5))
    RETURNING id, last_seq, last_message_at
), ins AS (
    INSERT INTO messages (chat_id, seq, author_id, kind, text, client_id, created_at)
    SELECT id, last_seq, $2, $3, $4, $5, last_message_at FROM c
    RETURNING *
), read_own AS (
    UPDATE chat_members SET last_read_seq = ins.seq FROM ins
    WHERE chat_members.chat_id = ins.chat_id AND chat_members.user_id = ins.author_id
      AND chat_members.last_read_seq < ins.seq
)
SELECT ins.id, ins.chat_id, ins.seq, ins.author_id, u.username AS author_username, ins.kind,
       ins.text, ins.client_id, ins.created_at, ins.edited_at, ins.deleted_at
FROM ins LEFT JOIN users u ON u.id = ins.author_id";

/// Inserts a message with the chat's next seq on `conn` (inside the caller's transaction, if
/// any). `None` when nothing was inserted: the author is not a member (with `require_member`),
/// the chat does not exist, or `client_id` was used before.
pub(crate) async fn insert_message(
    conn: &mut AsyncPgConnection,
    chat: ChatId,
    author: Option<UserId>,
    kind: MessageKind,
    text: &str,
    client_id: Option<&str>,
    require_member: bool,
) -> Result<Option<MessageView>> {
    let row: Option<MessageRow> = diesel::sql_query(INSERT_MESSAGE_SQL)
        .bind::<BigInt, _>(chat.0)
        .bind::<Nullable<BigInt>, _>(author.map(|a| a.0))
        .bind::<Text, _>(kind.as_str())
        .bind::<Text, _>(text)
        .bind::<Nullable<Text>, _>(client_id)
        .bind::<Bool, _>(require_member)
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.map(MessageRow::into_view).transpose()?)
}

use diesel::OptionalExtension;

/// The outcome of a send.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stored message.
    pub message: MessageView,
    /// `false` when `client_id` matched an earlier send and that message is returned instead.
    pub created: bool,
}

/// Stores a text message from `author` in `chat` and publishes it to every instance after the
/// commit. The same `(author, client_id)` returns the original message with `created: false`,
/// forever and on every instance (a unique index, not a cache).
/// Errors: `NotFound` (no such chat), `Forbidden` (not a member), `Conflict` (`client_id` already
/// used in another chat).
pub async fn send_message(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
    client_id: Option<&ClientId>,
) -> Result<Sent> {
    let client_id = client_id.map(ClientId::as_str);
    require_member(store, chat, author).await?;
    let inserted = {
        let mut conn = store.conn().await?;
        insert_message(
            &mut conn,
            chat,
            Some(author),
            MessageKind::Text,
            text.as_str(),
            client_id,
            true,
        )
        .await
    };
    match inserted {
        Ok(Some(message)) => {
            publish(
                store,
                &ChatEvent::MessageCreated {
                    chat_id: chat,
                    message: message.clone(),
                },
            )
            .await;
            Ok(Sent {
                message,
                created: true,
            })
        }
        Ok(None) => match client_id {
            Some(client_id) => earlier_send(store, author, chat, client_id).await,
            None => Err(not_member_or_missing(store, chat, author).await),
        },
        Err(e) if unique_violation(&e).is_some() && client_id.is_some() => {
            earlier_send(store, author, chat, client_id.unwrap_or_default()).await
        }
        Err(e) => Err(e),
    }
}

/// The earlier message sent with `client_id`, or why the send was refused.
async fn earlier_send(
    store: &Store,
    author: UserId,
    chat: ChatId,
    client_id: &str,
) -> Result<Sent> {
    match message_by_client_id(store, author, client_id).await? {
        Some(message) if message.chat_id == chat => Ok(Sent {
            message,
            created: false,
        }),
        Some(_) => Err(DomainError::Conflict(
            "This client_id was already used for a message in another chat.".into(),
        )
        .into()),
        None => Err(not_member_or_missing(store, chat, author).await),
    }
}

/// Why a member check that passed a moment ago now fails (left or deleted meanwhile).
async fn not_member_or_missing(store: &Store, chat: ChatId, author: UserId) -> Error {
    match require_member(store, chat, author).await {
        Err(e) => e.into(),
        Ok(_) => DomainError::Forbidden("You are not a member of this chat.".into()).into(),
    }
}
