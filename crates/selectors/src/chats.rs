//! Chat reads: a chat by id or name, the direct chat of a pair, and a user's chat list.

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

/// A chat by id. Errors: `NotFound("Chat not found.")`.
pub async fn chat_by_id(store: &Store, id: ChatId) -> Result<ChatView> {
    find_chat(store, id, false).await
}

/// A chat of door 001's sandbox by id. Errors: `NotFound("Chat not found.")` for any other id
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
    row.ok_or_else(|| DomainError::NotFound(NotFoundReason::Chat))?
        .into_view()
}

/// Public groups (anyone may join) whose title or name contains `search` (any case; empty: all),
/// newest first, at most `limit`. Door 001's sandbox chats are not listed. Feeds the web
/// client's "browse groups"; `%` and `_` in `search` match themselves.
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

/// A group by its unique name. Errors: `NotFound("Group not found.")`.
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
    row.ok_or_else(|| DomainError::NotFound(NotFoundReason::Group))?
        .into_view()
}

/// One entry of a user's chat list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatListItem {
    /// The chat.
    #[serde(flatten)]
    pub chat: ChatView,
    /// For a direct chat, the other user.
    pub peer: Option<UserBrief>,
    /// The newest message, if any.
    pub last_message: Option<MessageView>,
    /// Messages after the user's read marker: `last_seq - last_read_seq`, O(1) per chat.
    pub unread_count: i64,
}

#[derive(QueryableByName)]
struct ChatListRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Bool)]
    is_private: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    owner_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_message_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    last_read_seq: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    peer_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    peer_username: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lm_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lm_author_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    lm_author_username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lm_kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lm_text: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lm_client_id: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    lm_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    lm_edited_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    lm_deleted_at: Option<DateTime<Utc>>,
}

/// One query for the whole list: memberships → chats, the direct peer, the last message (by the
/// unique `(chat_id, seq)` index) and its author.
const CHAT_LIST_SQL: &str = "
SELECT c.id, c.kind, c.name, c.title, c.is_private, c.owner_id, c.last_seq, c.last_message_at,
       c.created_at, m.last_read_seq,
       p.id AS peer_id, p.username AS peer_username,
       lm.id AS lm_id, lm.author_id AS lm_author_id, la.username AS lm_author_username,
       lm.kind AS lm_kind, lm.text AS lm_text, lm.client_id AS lm_client_id,
       lm.created_at AS lm_created_at, lm.edited_at AS lm_edited_at, lm.deleted_at AS lm_deleted_at
FROM chat_members m
JOIN chats c ON c.id = m.chat_id
LEFT JOIN users p ON c.kind = 'direct'
     AND p.id = CASE WHEN c.direct_user_lo = m.user_id THEN c.direct_user_hi ELSE c.direct_user_lo END
LEFT JOIN messages lm ON lm.chat_id = c.id AND lm.seq = c.last_seq
LEFT JOIN users la ON la.id = lm.author_id
WHERE m.user_id = $1
ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC
LIMIT $2";

/// Longest chat list computed and cached; `limit` slices it.
pub const CHAT_LIST_MAX: i64 = 500;
/// How long a cached chat list lives at most, in seconds.
const CHAT_LIST_TTL_SECS: u64 = 600;

/// A cached chat list with the generations it was computed under.
#[derive(Serialize, Deserialize)]
struct CachedChatList {
    user_gen: u64,
    chat_gens: Vec<(ChatId, u64)>,
    items: Vec<ChatListItem>,
}

/// The user's chats, newest activity first (a chat with no message by its creation time), each
/// with its last message and unread count; at most `limit` (<= [`CHAT_LIST_MAX`]) entries.
///
/// Read through Redis: a cached list is served while the user's list generation and every
/// listed chat's summary generation are unchanged (two round trips). Otherwise it is computed in
/// one query — no N+1 — under generations read *before* the query, so a write racing with it
/// leaves the new entry already stale rather than wrongly valid.
pub async fn chat_list(store: &Store, user: UserId, limit: i64) -> Result<Vec<ChatListItem>> {
    let limit = limit.clamp(0, CHAT_LIST_MAX) as usize;
    let list_key = store.keys.chat_list(user);
    let user_gen_key = store.keys.chat_list_gen(user);
    if let Some(cached) = cache::get_json::<CachedChatList>(store, &list_key).await {
        let mut keys = vec![user_gen_key.clone()];
        keys.extend(
            cached
                .chat_gens
                .iter()
                .map(|(chat, _)| store.keys.chat_summary_gen(*chat)),
        );
        if let Some(current) = cache::generations(store, &keys).await {
            let stamped =
                std::iter::once(cached.user_gen).chain(cached.chat_gens.iter().map(|(_, g)| *g));
            if current.iter().copied().eq(stamped) {
                return Ok(cached.items.into_iter().take(limit).collect());
            }
        }
    }

    // Generations first (of the user, and of the chats they are in now), then the query.
    let mut conn = store.conn().await?;
    let chat_ids: Vec<i64> = crate::schema::chat_members::table
        .filter(crate::schema::chat_members::user_id.eq(user.0))
        .select(crate::schema::chat_members::chat_id)
        .load(&mut conn)
        .await?;
    let mut keys = vec![user_gen_key];
    keys.extend(
        chat_ids
            .iter()
            .map(|id| store.keys.chat_summary_gen(ChatId(*id))),
    );
    let gens = cache::generations(store, &keys).await;
    let rows: Vec<ChatListRow> = diesel::sql_query(CHAT_LIST_SQL)
        .bind::<BigInt, _>(user.0)
        .bind::<BigInt, _>(CHAT_LIST_MAX)
        .load(&mut conn)
        .await?;
    drop(conn);
    let items = rows
        .into_iter()
        .map(ChatListRow::into_item)
        .collect::<Result<Vec<_>>>()?;
    if let Some(gens) = gens {
        let chat_gens: Vec<(ChatId, u64)> = chat_ids
            .iter()
            .map(|id| ChatId(*id))
            .zip(gens[1..].iter().copied())
            .collect();
        // A chat the user joined between the two reads has no stamp: don't cache that list.
        if items
            .iter()
            .all(|item| chat_gens.iter().any(|(id, _)| *id == item.chat.id))
        {
            let entry = CachedChatList {
                user_gen: gens[0],
                chat_gens,
                items: items.clone(),
            };
            cache::set_json(store, &list_key, &entry, CHAT_LIST_TTL_SECS).await;
        }
    }
    Ok(items.into_iter().take(limit).collect())
}

/// Invalidates the cached chat lists of `users` (their own part changed: joined, left, read,
/// a chat of theirs was created or deleted). Services call it after the commit.
pub async fn invalidate_chat_lists(store: &Store, users: &[UserId]) {
    let keys: Vec<String> = users.iter().map(|u| store.keys.chat_list_gen(*u)).collect();
    cache::bump(store, &keys).await;
}

/// Invalidates the chats' summaries in every cached chat list (a message was created, edited or
/// deleted, or a name shown in them changed). Services call it after the commit.
pub async fn invalidate_chat_summaries(store: &Store, chats: &[ChatId]) {
    let keys: Vec<String> = chats
        .iter()
        .map(|c| store.keys.chat_summary_gen(*c))
        .collect();
    cache::bump(store, &keys).await;
}

impl ChatListRow {
    fn into_item(self) -> Result<ChatListItem> {
        let last_message = match (self.lm_id, self.lm_kind, self.lm_created_at) {
            (Some(id), Some(kind), Some(created_at)) => {
                let deleted = self.lm_deleted_at.is_some();
                Some(MessageView {
                    id: MessageId(id),
                    chat_id: ChatId(self.id),
                    seq: self.last_seq,
                    author: self
                        .lm_author_id
                        .zip(self.lm_author_username)
                        .map(|(id, username)| AuthorView {
                            id: UserId(id),
                            username,
                        }),
                    kind: MessageKind::parse(&kind)
                        .map_err(|_| Error::Internal(format!("message {id} has kind {kind:?}")))?,
                    text: if deleted {
                        String::new()
                    } else {
                        self.lm_text.unwrap_or_default()
                    },
                    client_id: self.lm_client_id,
                    created_at,
                    edited_at: self.lm_edited_at,
                    deleted,
                })
            }
            _ => None,
        };
        let peer = self
            .peer_id
            .zip(self.peer_username)
            .map(|(id, username)| UserBrief {
                id: UserId(id),
                username,
            });
        let unread_count = (self.last_seq - self.last_read_seq).max(0);
        let chat = ChatRow {
            id: self.id,
            kind: self.kind,
            name: self.name,
            title: self.title,
            is_private: self.is_private,
            owner_id: self.owner_id,
            last_seq: self.last_seq,
            last_message_at: self.last_message_at,
            created_at: self.created_at,
        }
        .into_view()?;
        Ok(ChatListItem {
            chat,
            peer,
            last_message,
            unread_count,
        })
    }
}

/// A chat with its members' ids (door 001's chat shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMembers {
    /// Id.
    pub id: ChatId,
    /// Its name (door 001 keeps a chat's name as its title, unique among door 001's chats).
    pub name: String,
    /// Member ids, ascending.
    pub users: Vec<UserId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct ChatMembersRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Array<BigInt>)]
    users: Vec<i64>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// The user's door-001 (sandbox) chats with their member ids, the chat with the newest message
/// first (a chat with no message by its creation time), at most `limit`. One query.
pub async fn sandbox_chats_with_members(
    store: &Store,
    user: UserId,
    limit: i64,
) -> Result<Vec<ChatMembers>> {
    let mut conn = store.conn().await?;
    let rows: Vec<ChatMembersRow> = diesel::sql_query(
        "SELECT c.id, c.title AS name, c.created_at,
                ARRAY(SELECT m2.user_id FROM chat_members m2 WHERE m2.chat_id = c.id ORDER BY m2.user_id) AS users
         FROM chat_members m JOIN chats c ON c.id = m.chat_id
         WHERE m.user_id = $1 AND c.sandbox
         ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC
         LIMIT $2",
    )
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChatMembers {
            id: ChatId(r.id),
            name: r.name,
            users: r.users.into_iter().map(UserId).collect(),
            created_at: r.created_at,
        })
        .collect())
}
