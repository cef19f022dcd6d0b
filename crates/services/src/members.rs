//! Membership changes: joining, inviting, leaving, removing, roles and ownership. Each is one
//! transaction that first locks the chat row (see `lock_chat`), stores a system line
//! ("alice joined the group", "bob removed carol"), and after the commit invalidates the
//! membership cache and publishes `member.*` events plus the system line.

use crate::Store;
use chat_domain::{
    ChatId, ChatKind, DomainError, MemberRole, UserId, can_invite, can_join, can_post, can_remove,
    can_set_role,
};
use chat_domain::{ConflictReason, ForbiddenReason, NotFoundReason};
use chat_selectors::schema::{chat_members, chats};
use chat_selectors::{
    ChatEvent, UserBrief, chat_by_id, invalidate_chat_summaries, invalidate_members, membership,
    user_by_id,
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::error::foreign_key_violation;
use crate::transaction::{lock_chat, role_now, system_line};
use crate::{Result, publish};

/// `user` joins a public group.
///
/// Joining a group that everyone left (it has no owner) makes `user` its owner. Errors: `NotFound`
/// (no chat), `Forbidden` (private group, not a group), `Conflict` (already a member).
pub async fn join_group(store: &Store, user: UserId, chat: ChatId) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    can_join(
        view.kind,
        view.is_private,
        membership(store, chat, user).await?,
    )?;
    let user: UserBrief = user_by_id(store, user).await?.into();
    let line = format!("{} joined the group", user.username);
    add_member(store, chat, user, None, line).await
}

/// `actor` (owner or admin) adds `target` to a group, public or private.
/// Errors: `NotFound` (no chat; no user, door 001's sandbox users included), `Forbidden` (not
/// owner/admin), `Conflict` (already in).
pub async fn invite_member(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    target: UserId,
) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    can_invite(view.kind, membership(store, chat, actor).await?)?;
    let actor_name = user_by_id(store, actor).await?.username;
    let target = user_by_id(store, target).await?;
    if target.sandbox {
        return Err(DomainError::NotFound(NotFoundReason::User).into());
    }
    let line = format!("{actor_name} added {}", target.username);
    add_member(store, chat, target.into(), Some(actor), line).await
}

async fn add_member(
    store: &Store,
    chat: ChatId,
    user: UserBrief,
    by: Option<UserId>,
    line: String,
) -> Result<()> {
    let mut conn = store.conn().await?;
    let (since_seq, message) = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            let owner = lock_chat(conn, chat).await?;
            if let Some(actor) = by {
                // Re-checked under the chat lock: the cached role may be a moment old.
                can_invite(ChatKind::Group, role_now(conn, chat, actor).await?)?;
            }
            // A group left by everyone has no owner: whoever joins next takes it over.
            let role = match owner {
                None => {
                    diesel::update(chats::table.find(chat.0))
                        .set(chats::owner_id.eq(user.id.0))
                        .execute(conn)
                        .await?;
                    MemberRole::Owner
                }
                Some(_) => MemberRole::Member,
            };
            let inserted = diesel::insert_into(chat_members::table)
                .values((
                    chat_members::chat_id.eq(chat.0),
                    chat_members::user_id.eq(user.id.0),
                    chat_members::role.eq(role.as_str()),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                return Err(DomainError::Conflict(ConflictReason::UserAlreadyMember).into());
            }
            let message = system_line(conn, chat, &line).await?;
            // Nothing before (and including) the join line is unread for the new member.
            diesel::update(chat_members::table.find((chat.0, user.id.0)))
                .set(chat_members::last_read_seq.eq(message.message.seq))
                .execute(conn)
                .await?;
            Ok((message.message.seq - 1, message))
        })
        .await
        .map_err(|e| {
            // The user was deleted while their profile was still cached.
            if foreign_key_violation(&e) {
                DomainError::NotFound(NotFoundReason::User).into()
            } else {
                e
            }
        })?;
    drop(conn);
    invalidate_members(store, chat).await;
    publish(
        store,
        &ChatEvent::MemberJoined {
            chat_id: chat,
            user,
            by,
            since_seq,
        },
    )
    .await;
    publish(store, &message.created_event()).await;
    Ok(())
}

/// `user` leaves a group.
///
/// When the owner leaves, the longest-standing admin (else member) becomes owner; a group with no
/// members left keeps its history and has no owner. Errors: `NotFound` (no chat), `Forbidden` (not
/// a member, or not a group).
pub async fn leave_group(store: &Store, user: UserId, chat: ChatId) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    if view.kind != ChatKind::Group {
        return Err(DomainError::Forbidden(ForbiddenReason::LeaveNotGroup).into());
    }
    let user: UserBrief = user_by_id(store, user).await?.into();
    let line = format!("{} left the group", user.username);
    drop_member(store, chat, user, None, line).await
}

/// `actor` removes `target` from a group: the owner removes anyone, an admin plain members.
///
/// Errors: `NotFound` (no chat, or `target` not a member), `Forbidden` (by the role rules). A
/// non-member actor is refused before the target is looked at, so the answer cannot tell them who
/// is a member.
pub async fn remove_member(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    target: UserId,
) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    let actor_role = membership(store, chat, actor).await?;
    can_post(actor_role)?;
    let target_role = membership(store, chat, target)
        .await?
        .ok_or(DomainError::NotFound(NotFoundReason::Member))?;
    can_remove(view.kind, actor_role, target_role, actor == target)?;
    let actor_name = user_by_id(store, actor).await?.username;
    let target = user_by_id(store, target).await?;
    let line = format!("{actor_name} removed {}", target.username);
    drop_member(store, chat, target.into(), Some(actor), line).await
}

/// Hands ownership to the longest-standing admin, else the longest-standing member.
const PROMOTE_SUCCESSOR_SQL: &str = "
UPDATE chat_members SET role = 'owner'
WHERE chat_id = $1 AND user_id = (
    SELECT user_id FROM chat_members WHERE chat_id = $1
    ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id
    LIMIT 1)
RETURNING user_id";

async fn drop_member(
    store: &Store,
    chat: ChatId,
    user: UserBrief,
    by: Option<UserId>,
    line: String,
) -> Result<()> {
    let mut conn = store.conn().await?;
    let message = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            lock_chat(conn, chat).await?;
            if let Some(actor) = by {
                // Re-checked under the chat lock: roles may have changed since the cached check.
                let target = role_now(conn, chat, user.id)
                    .await?
                    .ok_or(DomainError::NotFound(NotFoundReason::Member))?;
                let actor_role = role_now(conn, chat, actor).await?;
                can_remove(ChatKind::Group, actor_role, target, actor == user.id)?;
            }
            let role: Option<String> =
                diesel::delete(chat_members::table.find((chat.0, user.id.0)))
                    .returning(chat_members::role)
                    .get_result(conn)
                    .await
                    .optional()?;
            let Some(role) = role else {
                return Err(DomainError::Forbidden(ForbiddenReason::NoLongerMember).into());
            };
            if role == MemberRole::Owner.as_str() {
                #[derive(QueryableByName)]
                struct Successor {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    user_id: i64,
                }
                let successor: Option<Successor> = diesel::sql_query(PROMOTE_SUCCESSOR_SQL)
                    .bind::<diesel::sql_types::BigInt, _>(chat.0)
                    .get_result(conn)
                    .await
                    .optional()?;
                diesel::update(chats::table.find(chat.0))
                    .set(chats::owner_id.eq(successor.map(|s| s.user_id)))
                    .execute(conn)
                    .await?;
            }
            system_line(conn, chat, &line).await
        })
        .await?;
    drop(conn);
    invalidate_members(store, chat).await;
    publish(
        store,
        &ChatEvent::MemberLeft {
            chat_id: chat,
            user,
            by,
        },
    )
    .await;
    publish(store, &message.created_event()).await;
    Ok(())
}

/// The owner gives `target` the role `role`: `admin` (promote), `member` (demote), or `owner` (hand
/// over ownership; the old owner becomes an admin).
///
/// Errors: `NotFound` (no chat; `target` not a member), `Forbidden` (not the owner), `Invalid`
/// (your own role).
pub async fn set_member_role(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    target: UserId,
    role: MemberRole,
) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    can_set_role(
        view.kind,
        membership(store, chat, actor).await?,
        actor == target,
    )?;
    require_target(store, chat, target).await?;
    let mut conn = store.conn().await?;
    conn.transaction::<_, crate::Error, _>(async |conn| {
        // Re-check under the chat lock: the cached "owner" may be a moment old.
        if lock_chat(conn, chat).await? != Some(actor.0) {
            return Err(DomainError::Forbidden(ForbiddenReason::RolesNotOwner).into());
        }
        let updated = diesel::update(chat_members::table.find((chat.0, target.0)))
            .set(chat_members::role.eq(role.as_str()))
            .execute(conn)
            .await?;
        if updated == 0 {
            return Err(DomainError::NotFound(NotFoundReason::Member).into());
        }
        if role == MemberRole::Owner {
            diesel::update(chat_members::table.find((chat.0, actor.0)))
                .set(chat_members::role.eq(MemberRole::Admin.as_str()))
                .execute(conn)
                .await?;
            diesel::update(chats::table.find(chat.0))
                .set(chats::owner_id.eq(target.0))
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await?;
    drop(conn);
    invalidate_members(store, chat).await;
    // The owner shows in chat lists.
    invalidate_chat_summaries(store, &[chat]).await;
    Ok(())
}

async fn require_target(store: &Store, chat: ChatId, target: UserId) -> Result<MemberRole> {
    Ok(membership(store, chat, target)
        .await?
        .ok_or(DomainError::NotFound(NotFoundReason::Member))?)
}
