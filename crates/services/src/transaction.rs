//! Steps that run inside a chat change's transaction, shared by the chat and member use cases:
//! the chat's row lock, a member's role as stored, a system line.

use chat_domain::{ChatId, DomainError, MemberRole, MessageKind, NotFoundReason, UserId};
use chat_selectors::schema::{chat_members, chats};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Result;
use crate::writer::{Inserted, insert_message};

/// Locks the chat's row for the rest of the transaction and returns its owner. Every membership
/// change takes this lock first, as sends do (their `UPDATE chats`), so the two never wait on
/// each other in opposite orders (no deadlock between leaving and sending).
/// Errors: `NotFound` when the chat is gone.
pub(crate) async fn lock_chat(
    conn: &mut diesel_async::AsyncPgConnection,
    chat: ChatId,
) -> Result<Option<i64>> {
    let owner: Option<Option<i64>> = chats::table
        .find(chat.0)
        .select(chats::owner_id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    owner.ok_or_else(|| DomainError::NotFound(NotFoundReason::Chat).into())
}

/// A member's role as stored now (inside the caller's transaction), bypassing the cache.
pub(crate) async fn role_now(
    conn: &mut AsyncPgConnection,
    chat: ChatId,
    user: UserId,
) -> Result<Option<MemberRole>> {
    let role: Option<String> = chat_members::table
        .find((chat.0, user.0))
        .select(chat_members::role)
        .first(conn)
        .await
        .optional()?;
    Ok(role.and_then(|r| MemberRole::parse(&r).ok()))
}

pub(crate) async fn system_line(
    conn: &mut AsyncPgConnection,
    chat: ChatId,
    text: &str,
) -> Result<Inserted> {
    insert_message(conn, chat, None, MessageKind::System, text, None, false)
        .await?
        .ok_or_else(|| DomainError::NotFound(NotFoundReason::Chat).into())
}
