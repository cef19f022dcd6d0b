//! Message reads: history pages by `seq` cursor, and lookups for idempotent sends.

use chat_domain::NotFoundReason;
use chat_domain::{DomainError, MessageKind};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::schema::{messages, users};
use crate::{ChatId, Error, MessageId, Result, Store, UserId};

/// A message's author on the wire: `{"id","username"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthorView {
    /// Author's id.
    pub id: UserId,
    /// Author's username at read time.
    pub username: String,
}

/// A stored message, in the native door's wire shape (docs/native-api.md, "REST": a message).
/// A deleted message is a tombstone: `deleted: true` and an empty `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageView {
    /// Global id.
    pub id: MessageId,
    /// The chat.
    pub chat_id: ChatId,
    /// Position in the chat: 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// `None` for system lines.
    pub author: Option<AuthorView>,
    /// `text` or `system`.
    pub kind: MessageKind,
    /// The text ("" once deleted).
    pub text: String,
    /// The sender's idempotency key, where given.
    pub client_id: Option<String>,
    /// Commit time (UTC).
    pub created_at: DateTime<Utc>,
    /// Last edit time, if edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Whether the message was deleted.
    pub deleted: bool,
}

/// The columns of a message plus its author's username, in `MessageRow` order.
pub(crate) type MessageColumns = (
    messages::id,
    messages::chat_id,
    messages::seq,
    messages::author_id,
    diesel::dsl::Nullable<users::username>,
    messages::kind,
    messages::text,
    messages::client_id,
    messages::created_at,
    messages::edited_at,
    messages::deleted_at,
);

/// Select list for `messages LEFT JOIN users ON author`.
pub(crate) fn message_columns() -> MessageColumns {
    (
        messages::id,
        messages::chat_id,
        messages::seq,
        messages::author_id,
        users::username.nullable(),
        messages::kind,
        messages::text,
        messages::client_id,
        messages::created_at,
        messages::edited_at,
        messages::deleted_at,
    )
}

/// A message row joined with its author's username.
///
/// Read by the DSL (positional) and by raw SQL (by column name: `id, chat_id, seq, author_id,
/// author_username, kind, text, client_id, created_at, edited_at, deleted_at`).
#[derive(Queryable, QueryableByName)]
pub struct MessageRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    chat_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    author_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    author_username: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    client_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    edited_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    deleted_at: Option<DateTime<Utc>>,
}

impl MessageRow {
    /// The wire view. Errors: `Internal` for an unknown stored kind.
    pub fn into_view(self) -> Result<MessageView> {
        let kind = MessageKind::parse(&self.kind).map_err(|_| {
            Error::Internal(format!("message {} has kind {:?}", self.id, self.kind))
        })?;
        let author = match (self.author_id, self.author_username) {
            (Some(id), Some(username)) => Some(AuthorView {
                id: UserId(id),
                username,
            }),
            _ => None,
        };
        let deleted = self.deleted_at.is_some();
        Ok(MessageView {
            id: MessageId(self.id),
            chat_id: ChatId(self.chat_id),
            seq: self.seq,
            author,
            kind,
            text: if deleted { String::new() } else { self.text },
            client_id: self.client_id,
            created_at: self.created_at,
            edited_at: self.edited_at,
            deleted,
        })
    }
}

/// Where a history page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    /// The newest messages.
    Latest,
    /// Messages with `seq` below this one (scrolling back).
    Before(i64),
    /// Messages with `seq` above this one (catching up).
    After(i64),
    /// Messages with `seq` strictly between `after` and `before`, from the oldest (filling a
    /// gap); none when `before <= after + 1`.
    Between {
        /// Exclusive lower bound.
        after: i64,
        /// Exclusive upper bound.
        before: i64,
    },
}

/// One page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    /// The messages, ascending `seq`.
    pub messages: Vec<MessageView>,
    /// Whether more messages exist beyond the page in the direction read.
    pub has_more: bool,
}

/// A page of at most `limit` messages of the chat (the caller checks membership and bounds
/// `limit`). One indexed range scan on `(chat_id, seq)`, author names joined in the same query.
pub async fn message_history(
    store: &Store,
    chat: ChatId,
    cursor: HistoryCursor,
    limit: i64,
) -> Result<MessagePage> {
    let mut conn = store.conn().await?;
    // One static query per cursor (not a boxed one): diesel prepares each once per connection,
    // so a page costs PostgreSQL no parse and plan (a reconnect storm resumes thousands).
    let page = messages::table
        .left_join(users::table)
        .filter(messages::chat_id.eq(chat.0))
        .select(message_columns())
        .limit(limit + 1);
    let mut rows: Vec<MessageRow> = match cursor {
        HistoryCursor::Latest => page.order(messages::seq.desc()).load(&mut conn).await?,
        HistoryCursor::Before(seq) => {
            page.filter(messages::seq.lt(seq))
                .order(messages::seq.desc())
                .load(&mut conn)
                .await?
        }
        HistoryCursor::After(seq) => {
            page.filter(messages::seq.gt(seq))
                .order(messages::seq.asc())
                .load(&mut conn)
                .await?
        }
        HistoryCursor::Between { after, before } => {
            page.filter(messages::seq.gt(after))
                .filter(messages::seq.lt(before))
                .order(messages::seq.asc())
                .load(&mut conn)
                .await?
        }
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !matches!(
        cursor,
        HistoryCursor::After(_) | HistoryCursor::Between { .. }
    ) {
        rows.reverse();
    }
    let messages = rows
        .into_iter()
        .map(MessageRow::into_view)
        .collect::<Result<_>>()?;
    Ok(MessagePage { messages, has_more })
}

/// The message `author` sent with `client_id`, if any (idempotent sends).
pub async fn message_by_client_id(
    store: &Store,
    author: UserId,
    client_id: &str,
) -> Result<Option<MessageView>> {
    let mut conn = store.conn().await?;
    messages::table
        .left_join(users::table)
        .filter(messages::author_id.eq(author.0))
        .filter(messages::client_id.eq(client_id))
        .select(message_columns())
        .first::<MessageRow>(&mut conn)
        .await
        .optional()?
        .map(MessageRow::into_view)
        .transpose()
}

/// The message with `seq` in `chat`. Errors: `NotFound(Message)`.
pub async fn message_by_seq(store: &Store, chat: ChatId, seq: i64) -> Result<MessageView> {
    let mut conn = store.conn().await?;
    messages::table
        .left_join(users::table)
        .filter(messages::chat_id.eq(chat.0))
        .filter(messages::seq.eq(seq))
        .select(message_columns())
        .first::<MessageRow>(&mut conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound(NotFoundReason::Message))?
        .into_view()
}

/// The chat's newest `limit` text messages (no system lines, no tombstones), oldest first.
pub async fn text_messages(store: &Store, chat: ChatId, limit: i64) -> Result<Vec<MessageView>> {
    let mut conn = store.conn().await?;
    let mut rows: Vec<MessageRow> = messages::table
        .left_join(users::table)
        .filter(messages::chat_id.eq(chat.0))
        .filter(messages::kind.eq(MessageKind::Text.as_str()))
        .filter(messages::deleted_at.is_null())
        .order(messages::seq.desc())
        .limit(limit)
        .select(message_columns())
        .load(&mut conn)
        .await?;
    rows.reverse();
    rows.into_iter().map(MessageRow::into_view).collect()
}
