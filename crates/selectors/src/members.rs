//! Membership checks, the hottest read of all (every send and every socket checks one).
//!
//! Cached per (chat, user) as `"<generation>:<role|->"` (5 min TTL). Each chat has a
//! generation, a random 64-bit value replaced after every committed membership change; an entry
//! stamped with any other generation is ignored. Because the generation is read *before*
//! PostgreSQL, an entry filled from a read that raced with a change is stamped with the old
//! generation and never served again. Random values (not a counter) mean that a generation key
//! lost to eviction or a Redis restart can never come back as an old value and revive stale
//! entries. Left open: between a commit and its invalidation (one Redis round trip) the old
//! answer can still be served; sends re-check membership inside their SQL statement anyway.

use chat_domain::ForbiddenReason;
use chat_domain::MemberRole;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use redis::AsyncCommands;

use crate::schema::{chat_members, chats, users};
use crate::{ChatId, Error, Result, Store, UserBrief, UserId};

const MEMBER_TTL_SECS: u64 = 300;

/// The user's role in the chat, or `None` when they are not a member.
pub async fn membership(store: &Store, chat: ChatId, user: UserId) -> Result<Option<MemberRole>> {
    let gen_key = store.keys.chat_members_gen(chat);
    let entry_key = store.keys.chat_member(chat, user);
    let mut redis = store.redis();
    let cached = redis
        .mget::<_, (Option<u64>, Option<String>)>(&[&gen_key, &entry_key])
        .await;
    let generation = match cached {
        Ok((Some(generation), entry)) => {
            if let Some(role) = entry.as_deref().and_then(|e| parse_entry(e, generation)) {
                return Ok(role);
            }
            Some(generation)
        }
        // No generation yet (or it was lost): start one; whoever wins the SET NX sets it.
        Ok((None, _)) => crate::cache::generations(store, std::slice::from_ref(&gen_key))
            .await
            .and_then(|g| g.into_iter().next()),
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "membership cache read failed; using the database");
            None
        }
    };

    let mut conn = store.conn().await?;
    let role: Option<String> = chat_members::table
        .find((chat.0, user.0))
        .select(chat_members::role)
        .first(&mut conn)
        .await
        .optional()?;
    let role = role
        .map(|r| MemberRole::parse(&r))
        .transpose()
        .map_err(|_| Error::Internal(format!("chat {chat} member {user} has an unknown role")))?;
    if let Some(generation) = generation {
        let entry = format!("{generation}:{}", role.map_or("-", MemberRole::as_str));
        if let Err(error) = redis
            .set_ex::<_, _, ()>(&entry_key, entry, MEMBER_TTL_SECS)
            .await
        {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "membership cache write failed");
        }
    }
    Ok(role)
}

/// The user's role in the chat, for actions only members may take (read history, post).
///
/// Errors: `NotFound(Chat)` when the chat does not exist, `Forbidden(NotMember)`
/// when the user is not a member.
pub async fn require_member(store: &Store, chat: ChatId, user: UserId) -> Result<MemberRole> {
    if let Some(role) = membership(store, chat, user).await? {
        return Ok(role);
    }
    crate::chat_by_id(store, chat).await?;
    Err(chat_domain::DomainError::Forbidden(ForbiddenReason::NotMember).into())
}

/// `Some(answer)` when the entry belongs to `generation`.
fn parse_entry(entry: &str, generation: u64) -> Option<Option<MemberRole>> {
    let (entry_gen, role) = entry.split_once(':')?;
    if entry_gen.parse::<u64>().ok()? != generation {
        return None;
    }
    match role {
        "-" => Some(None),
        role => MemberRole::parse(role).ok().map(Some),
    }
}

/// Invalidates every cached membership of the chat by giving it a new random generation;
/// services call it after committing a membership change. A Redis fault is logged: entries then
/// expire within 5 min.
pub async fn invalidate_members(store: &Store, chat: ChatId) {
    crate::cache::bump(store, &[store.keys.chat_members_gen(chat)]).await;
}

/// Ids of every member of the chat, by join time.
pub async fn member_ids(store: &Store, chat: ChatId) -> Result<Vec<UserId>> {
    let mut conn = store.conn().await?;
    let ids: Vec<i64> = chat_members::table
        .filter(chat_members::chat_id.eq(chat.0))
        .order(chat_members::joined_at.asc())
        .select(chat_members::user_id)
        .load(&mut conn)
        .await?;
    Ok(ids.into_iter().map(UserId).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_other_generations_are_ignored() {
        assert_eq!(parse_entry("3:owner", 3), Some(Some(MemberRole::Owner)));
        assert_eq!(parse_entry("3:-", 3), Some(None));
        assert_eq!(parse_entry("2:owner", 3), None);
        assert_eq!(parse_entry("garbage", 3), None);
    }
}

/// A member as listed: `{"user":{"id","username"},"role","joined_at","last_read_seq"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// Who.
    pub user: UserBrief,
    /// Their role.
    pub role: MemberRole,
    /// When they joined (UTC).
    pub joined_at: chrono::DateTime<chrono::Utc>,
    /// Their read marker.
    pub last_read_seq: i64,
}

/// The chat's members, owner first, then admins, then members, each by join time. One query.
pub async fn member_list(store: &Store, chat: ChatId) -> Result<Vec<MemberView>> {
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, String, String, chrono::DateTime<chrono::Utc>, i64)> = chat_members::table
        .inner_join(users::table)
        .filter(chat_members::chat_id.eq(chat.0))
        .order(chat_members::joined_at.asc())
        .select((
            users::id,
            users::username,
            chat_members::role,
            chat_members::joined_at,
            chat_members::last_read_seq,
        ))
        .load(&mut conn)
        .await?;
    let mut members = rows
        .into_iter()
        .map(|(id, username, role, joined_at, last_read_seq)| {
            let role = MemberRole::parse(&role).map_err(|_| {
                Error::Internal(format!("chat {chat} member {id} has role {role:?}"))
            })?;
            Ok(MemberView {
                user: UserBrief {
                    id: UserId(id),
                    username,
                },
                role,
                joined_at,
                last_read_seq,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    members.sort_by_key(|m| match m.role {
        MemberRole::Owner => 0,
        MemberRole::Admin => 1,
        MemberRole::Member => 2,
    });
    Ok(members)
}

/// Every chat `user` is a member of, with its current `last_seq` (what a gateway socket
/// subscribes to on connect).
pub async fn user_chats(store: &Store, user: UserId) -> Result<Vec<(ChatId, i64)>> {
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, i64)> = chat_members::table
        .inner_join(chats::table)
        .filter(chat_members::user_id.eq(user.0))
        .select((chats::id, chats::last_seq))
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, seq)| (ChatId(id), seq))
        .collect())
}

/// Whether `user` is a member of `chat` right now, read from PostgreSQL (never the cache): for
/// deciding on events that may arrive out of order.
pub async fn is_member_now(store: &Store, chat: ChatId, user: UserId) -> Result<bool> {
    let mut conn = store.conn().await?;
    let found = diesel::select(diesel::dsl::exists(
        chat_members::table.find((chat.0, user.0)),
    ))
    .get_result(&mut conn)
    .await?;
    Ok(found)
}
