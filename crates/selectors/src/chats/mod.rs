//! Chat reads: a chat by id or name, the direct chat of a pair, and a user's chat list.

mod chat_list;
pub use chat_list::*;

use chat_domain::NotFoundReason;
use chat_domain::{ChatKind, DomainError, MessageKind};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::schema::chats;
use crate::{
    AuthorView, ChatId, Error, MessageId, MessageView, Result, Store, UserBrief, UserId, cache,
};

/// A chat's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatView {
    /// Id.
    pub id: ChatId,
    /// `direct`, `group` or `support`.
    pub kind: ChatKind,
    /// Unique address of a group, where it has one.
    pub name: Option<String>,
    /// Display title ("" for direct chats).
    pub title: String,
    /// Private groups are invite only.
    pub is_private: bool,
    /// The group's owner.
    pub owner_id: Option<UserId>,
    /// `seq` of the newest message (0: none yet).
    pub last_seq: i64,
    /// Time of the newest message.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = chats)]
struct ChatRow {
    id: i64,
    kind: String,
    name: Option<String>,
    title: String,
    is_private: bool,
    owner_id: Option<i64>,
    last_seq: i64,
    last_message_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl ChatRow {
    fn into_view(self) -> Result<ChatView> {
        Ok(ChatView {
            id: ChatId(self.id),
            kind: ChatKind::parse(&self.kind).map_err(|_| {
                Error::Internal(format!("chat {} has kind {:?}", self.id, self.kind))
            })?,
            name: self.name,
            title: self.title,
            is_private: self.is_private,
            owner_id: self.owner_id.map(UserId),
            last_seq: self.last_seq,
            last_message_at: self.last_message_at,
            created_at: self.created_at,
        })
    }
}

/// A chat by id. Errors: `NotFound(Chat)`.
pub async fn chat_by_id(store: &Store, id: ChatId) -> Result<ChatView> {
    find_chat(store, id, false).await
}

/// A chat of door 001's sandbox by id. Errors: `NotFound(Chat)` for any other id
/// (door 001 reaches nothing else).
pub async fn sandbox_chat(store: &Store, id: ChatId) -> Result<ChatView> {
    find_chat(store, id, true).await
}

async fn find_chat(store: &Store, id: ChatId, sandbox_only: bool) -> Result<ChatView> {
    let mut conn = store.conn().await?;
    let mut query = chats::table
        .find(id.0)
        .select(ChatRow::as_select())
        .into_boxed();
    if sandbox_only {
        query = query.filter(chats::sandbox.eq(true));
    }
    let row: Option<ChatRow> = query.first(&mut conn).await.optional()?;
    row.ok_or(DomainError::NotFound(NotFoundReason::Chat))?
        .into_view()
}

/// Public groups (anyone may join) whose title or name contains `search` (any case; empty: all),
/// newest first, at most `limit`.
///
/// Door 001's sandbox chats are not listed. Feeds the web client's "browse groups"; `%` and `_` in
/// `search` match themselves.
pub async fn public_groups(store: &Store, search: &str, limit: i64) -> Result<Vec<ChatView>> {
    if search.contains('\0') {
        return Ok(Vec::new());
    }
    let pattern = format!(
        "%{}%",
        search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut conn = store.conn().await?;
    let rows: Vec<ChatRow> = chats::table
        .filter(chats::kind.eq(ChatKind::Group.as_str()))
        .filter(chats::is_private.eq(false))
        .filter(chats::sandbox.eq(false))
        .filter(
            chats::title
                .ilike(pattern.clone())
                .or(chats::name.ilike(pattern)),
        )
        .order(chats::id.desc())
        .limit(limit)
        .select(ChatRow::as_select())
        .load(&mut conn)
        .await?;
    rows.into_iter().map(ChatRow::into_view).collect()
}

/// A group by its unique name. Errors: `NotFound(Group)`.
pub async fn group_by_name(store: &Store, name: &str) -> Result<ChatView> {
    if name.contains('\0') {
        return Err(DomainError::NotFound(NotFoundReason::Group).into());
    }
    let mut conn = store.conn().await?;
    let row: Option<ChatRow> = chats::table
        .filter(chats::name.eq(name))
        .filter(chats::kind.eq(ChatKind::Group.as_str()))
        .select(ChatRow::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    row.ok_or(DomainError::NotFound(NotFoundReason::Group))?
        .into_view()
}
