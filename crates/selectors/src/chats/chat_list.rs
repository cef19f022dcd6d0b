//! A user's chat list: every chat with its last message and unread count, cached in Redis.

use super::*;

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
pub(super) struct ChatListRow {
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
pub(super) const CHAT_LIST_SQL: &str = "
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
pub(super) const CHAT_LIST_TTL_SECS: u64 = 600;

/// A cached chat list with the generations it was computed under.
#[derive(Serialize, Deserialize)]
pub(super) struct CachedChatList {
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
