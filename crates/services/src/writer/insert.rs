//! The one-message insert: the statement that gives a message its chat's next seq, and the row
//! it returns. The writer batches these; a process without a writer runs them one by one.

use chat_domain::{ChatId, MessageKind, UserId};
use chat_selectors::{ChatEvent, MessageRow, MessageView};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{Error, Result};

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
    RETURNING id, last_seq, last_message_at, support_user_id
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
       ins.text, ins.client_id, ins.created_at, ins.edited_at, ins.deleted_at,
       c.support_user_id AS support_customer
FROM ins CROSS JOIN c LEFT JOIN users u ON u.id = ins.author_id";

/// A row of `INSERT_MESSAGE_SQL` (and, with its `ord`, of the writer's batch statement).
#[derive(diesel::QueryableByName)]
pub(crate) struct InsertedRow {
    #[diesel(embed)]
    message: MessageRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    support_customer: Option<i64>,
}

/// A message just stored, with what its `message.created` event needs.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The message.
    pub message: MessageView,
    /// The customer, when the chat is a support chat.
    pub support_customer: Option<UserId>,
}

impl TryFrom<InsertedRow> for Inserted {
    type Error = Error;

    /// Errors: `Internal` for an unknown stored kind.
    fn try_from(row: InsertedRow) -> Result<Self> {
        Ok(Self {
            message: row.message.into_view()?,
            support_customer: row.support_customer.map(UserId),
        })
    }
}

impl Inserted {
    /// The `message.created` event announcing it.
    pub fn created_event(&self) -> ChatEvent {
        ChatEvent::MessageCreated {
            chat_id: self.message.chat_id,
            message: self.message.clone(),
            support_customer: self.support_customer,
        }
    }
}

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
) -> Result<Option<Inserted>> {
    let row: Option<InsertedRow> = diesel::sql_query(INSERT_MESSAGE_SQL)
        .bind::<BigInt, _>(chat.0)
        .bind::<Nullable<BigInt>, _>(author.map(|a| a.0))
        .bind::<Text, _>(kind.as_str())
        .bind::<Text, _>(text)
        .bind::<Nullable<Text>, _>(client_id)
        .bind::<Bool, _>(require_member)
        .get_result(conn)
        .await
        .optional()?;
    row.map(Inserted::try_from).transpose()
}
