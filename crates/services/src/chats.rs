//! Chat writes: direct chats (one per pair, race-free), creating and deleting groups.
//! Membership changes are in `members.rs`.

use crate::Store;
use chat_domain::{
    ChatId, ChatKind, ChatName, DomainError, GroupName, MemberRole, Title, UserId, can_delete_chat,
    can_rename,
};
use chat_domain::{ConflictReason, ForbiddenReason, NotFoundReason};
use chat_selectors::schema::{chat_members, chats, users};
use chat_selectors::{
    ChatEvent, ChatView, chat_by_id, invalidate_chat_lists, invalidate_chat_summaries,
    invalidate_members, member_ids, membership, user_by_id,
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::error::{foreign_key_violation, unique_violation};
use crate::transaction::{lock_chat, role_now, system_line};
use crate::{Error, Result, publish};

/// Publishes `member.joined` for each member of a chat just created, so their open sockets
/// start following it (`since_seq` 0: everything in it is new to them).
async fn announce_new_chat(
    store: &Store,
    chat_id: ChatId,
    members: &[UserId],
    by: Option<UserId>,
) -> Result<()> {
    for member in members {
        let user = user_by_id(store, *member).await?.into();
        publish(
            store,
            &ChatEvent::MemberJoined {
                chat_id,
                user,
                by,
                since_seq: 0,
            },
        )
        .await;
    }
    Ok(())
}

/// Opens the direct chat between `me` and `other`, creating it (with both as members) when it does
/// not exist yet.
///
/// Returns the chat and whether it was created. Concurrent calls for the same pair get the same
/// chat (a unique `(lo, hi)` pair). Errors: `Invalid{"user_id"}` for yourself, `NotFound` for an
/// unknown user (door 001's sandbox users included, and one deleted while its profile was still
/// cached).
pub async fn open_direct_chat(
    store: &Store,
    me: UserId,
    other: UserId,
) -> Result<(ChatView, bool)> {
    if me == other {
        return Err(DomainError::invalid(
            "user_id",
            "You cannot open a direct chat with yourself.",
        )
        .into());
    }
    if user_by_id(store, other).await?.sandbox {
        return Err(user_not_found());
    }
    let (lo, hi) = if me < other { (me, other) } else { (other, me) };
    let mut conn = store.conn().await?;
    let created: Option<i64> = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            let id: Option<i64> = diesel::insert_into(chats::table)
                .values((
                    chats::kind.eq(ChatKind::Direct.as_str()),
                    chats::direct_user_lo.eq(lo.0),
                    chats::direct_user_hi.eq(hi.0),
                ))
                .on_conflict((chats::direct_user_lo, chats::direct_user_hi))
                .do_nothing()
                .returning(chats::id)
                .get_result(conn)
                .await
                .optional()?;
            if let Some(id) = id {
                diesel::insert_into(chat_members::table)
                    .values(&vec![
                        (chat_members::chat_id.eq(id), chat_members::user_id.eq(lo.0)),
                        (chat_members::chat_id.eq(id), chat_members::user_id.eq(hi.0)),
                    ])
                    .execute(conn)
                    .await?;
            }
            crate::Result::Ok(id)
        })
        .await
        .map_err(|e| {
            if foreign_key_violation(&e) {
                user_not_found()
            } else {
                e
            }
        })?;
    let chat_id = match created {
        Some(id) => {
            invalidate_members(store, ChatId(id)).await;
            invalidate_chat_lists(store, &[lo, hi]).await;
            ChatId(id)
        }
        None => chats::table
            .filter(chats::direct_user_lo.eq(lo.0))
            .filter(chats::direct_user_hi.eq(hi.0))
            .select(chats::id)
            .first(&mut conn)
            .await
            .map(ChatId)?,
    };
    drop(conn);
    if created.is_some() {
        announce_new_chat(store, chat_id, &[lo, hi], Some(me)).await?;
    }
    Ok((chat_by_id(store, chat_id).await?, created.is_some()))
}

/// Creates a group owned by `owner` (who becomes its first member, role owner), with `members`
/// (others; duplicates and the owner ignored) as plain members from the start.
///
/// Errors: `Conflict` when `name` is taken, `NotFound` when a member does not exist.
pub async fn create_group(
    store: &Store,
    owner: UserId,
    name: Option<&GroupName>,
    title: &Title,
    is_private: bool,
    members: &[UserId],
) -> Result<ChatView> {
    insert_group(store, owner, name, title, is_private, members, false).await
}

/// Creates a chat of door 001's sandbox: a private group titled `name` (unique among door 001's
/// chats), owned by the first of `users`, all of whom must be sandbox users (door 001 reaches no
/// one else).
///
/// Errors: `NotFound(User)` when any user is unknown or not in the sandbox (nothing
/// created), `Conflict(ChatNameTaken)` when the name is taken.
pub async fn create_sandbox_chat(
    store: &Store,
    name: &ChatName,
    users: &[UserId],
) -> Result<ChatView> {
    let Some(owner) = users.first().copied() else {
        return Err(DomainError::invalid("users", "Must not be empty.").into());
    };
    insert_group(store, owner, None, &name.title(), true, users, true).await
}

fn user_not_found() -> Error {
    DomainError::NotFound(NotFoundReason::User).into()
}

async fn insert_group(
    store: &Store,
    owner: UserId,
    name: Option<&GroupName>,
    title: &Title,
    is_private: bool,
    members: &[UserId],
    sandbox: bool,
) -> Result<ChatView> {
    let mut others: Vec<UserId> = members.iter().copied().filter(|m| *m != owner).collect();
    others.sort();
    others.dedup();
    let mut conn = store.conn().await?;
    let id: Result<i64> = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            // Every member in the chat's own namespace: the main doors' users in main chats,
            // door 001's in its sandbox (both ways, an id of the other side is unknown).
            let everyone: Vec<i64> = std::iter::once(owner)
                .chain(others.iter().copied())
                .map(|u| u.0)
                .collect();
            let matching: i64 = users::table
                .filter(users::id.eq_any(&everyone))
                .filter(users::sandbox.eq(sandbox))
                .count()
                .get_result(conn)
                .await?;
            if matching != everyone.len() as i64 {
                return Err(user_not_found());
            }
            let id: i64 = diesel::insert_into(chats::table)
                .values((
                    chats::kind.eq(ChatKind::Group.as_str()),
                    chats::name.eq(name.map(GroupName::as_str)),
                    chats::title.eq(title.as_str()),
                    chats::is_private.eq(is_private),
                    chats::owner_id.eq(owner.0),
                    chats::sandbox.eq(sandbox),
                ))
                .returning(chats::id)
                .get_result(conn)
                .await?;
            diesel::insert_into(chat_members::table)
                .values((
                    chat_members::chat_id.eq(id),
                    chat_members::user_id.eq(owner.0),
                    chat_members::role.eq(MemberRole::Owner.as_str()),
                ))
                .execute(conn)
                .await?;
            let rows: Vec<_> = others
                .iter()
                .map(|m| (chat_members::chat_id.eq(id), chat_members::user_id.eq(m.0)))
                .collect();
            diesel::insert_into(chat_members::table)
                .values(&rows)
                .execute(conn)
                .await?;
            Ok(id)
        })
        .await;
    let id = match id {
        Ok(id) => ChatId(id),
        Err(e) if foreign_key_violation(&e) => return Err(user_not_found()),
        Err(e) if unique_violation(&e).is_some() => {
            let reason = if sandbox {
                ConflictReason::ChatNameTaken
            } else {
                ConflictReason::GroupNameTaken
            };
            return Err(DomainError::Conflict(reason).into());
        }
        Err(e) => return Err(e),
    };
    drop(conn);
    invalidate_members(store, id).await;
    let everyone: Vec<UserId> = std::iter::once(owner).chain(others).collect();
    invalidate_chat_lists(store, &everyone).await;
    announce_new_chat(store, id, &everyone, None).await?;
    chat_by_id(store, id).await
}

/// `actor` (owner or admin) gives a group a new title; the members see a system line ("alice
/// renamed the group to “Team”") live and in history, and their chat lists show the new title.
///
/// The same title again changes nothing and writes no line. Errors: `NotFound` (no chat),
/// `Forbidden` (not owner/admin, not a group).
pub async fn rename_group(store: &Store, actor: UserId, chat: ChatId, title: &Title) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    can_rename(view.kind, membership(store, chat, actor).await?)?;
    let actor_name = user_by_id(store, actor).await?.username;
    let line = format!("{actor_name} renamed the group to “{}”", title.as_str());
    let mut conn = store.conn().await?;
    let message = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            lock_chat(conn, chat).await?;
            // Re-checked under the chat lock: the cached role may be a moment old.
            can_rename(ChatKind::Group, role_now(conn, chat, actor).await?)?;
            let changed = diesel::update(chats::table.find(chat.0))
                .filter(chats::title.is_distinct_from(title.as_str()))
                .set(chats::title.eq(title.as_str()))
                .execute(conn)
                .await?;
            if changed == 0 {
                return Ok(None);
            }
            Ok(Some(system_line(conn, chat, &line).await?))
        })
        .await?;
    drop(conn);
    if let Some(message) = message {
        invalidate_chat_summaries(store, &[chat]).await;
        publish(store, &message.created_event()).await;
    }
    Ok(())
}

/// Deletes a group with its members and history; only its owner may.
/// Errors: `NotFound` (no chat), `Forbidden` (not the owner, not a group).
pub async fn delete_group(store: &Store, user: UserId, chat: ChatId) -> Result<()> {
    let view = chat_by_id(store, chat).await?;
    can_delete_chat(view.kind, membership(store, chat, user).await?)?;
    let members = member_ids(store, chat).await?;
    let mut conn = store.conn().await?;
    // The cached role said "owner"; the delete itself checks it again, in the same statement.
    let deleted = diesel::delete(
        chats::table.find(chat.0).filter(diesel::dsl::exists(
            chat_members::table
                .filter(chat_members::chat_id.eq(chat.0))
                .filter(chat_members::user_id.eq(user.0))
                .filter(chat_members::role.eq(MemberRole::Owner.as_str())),
        )),
    )
    .execute(&mut conn)
    .await?;
    drop(conn);
    if deleted == 0 {
        return Err(DomainError::Forbidden(ForbiddenReason::DeleteNotOwner).into());
    }
    invalidate_members(store, chat).await;
    invalidate_chat_lists(store, &members).await;
    publish(store, &ChatEvent::ChatDeleted { chat_id: chat }).await;
    Ok(())
}
