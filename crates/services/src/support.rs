//! Support chats (door 003): one per customer, created on first use; operators (role `operator`
//! or `admin`) answer any customer and become members of the chats they answer.

use crate::Store;
use chat_domain::{
    ChatId, ChatKind, DomainError, MemberRole, MessageText, UserId, UserRole, Username,
};
use chat_domain::{ForbiddenReason, NotFoundReason};
use chat_selectors::schema::{chat_members, chats, users};
use chat_selectors::{
    ChatEvent, ChatView, UserView, chat_by_id, invalidate_chat_lists, invalidate_members,
    invalidate_user, user_by_id, user_by_username,
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::messages::{send_within_quota, take_send_quota};
use crate::{Result, Sent, publish};

/// The customer's support chat, created (with the customer as its member) on first use.
///
/// Race-free: `support_user_id` is unique. Errors: `NotFound(User)` for no such
/// customer — door 001's sandbox users included (support does not reach them), and one deleted
/// while their profile was still cached.
pub async fn support_chat(store: &Store, customer: UserId) -> Result<ChatView> {
    let not_found = || -> crate::Error { DomainError::NotFound(NotFoundReason::User).into() };
    if user_by_id(store, customer).await?.sandbox {
        return Err(not_found());
    }
    let mut conn = store.conn().await?;
    let created: Option<i64> = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            let id: Option<i64> = diesel::insert_into(chats::table)
                .values((
                    chats::kind.eq(ChatKind::Support.as_str()),
                    chats::title.eq("Support"),
                    chats::is_private.eq(true),
                    chats::support_user_id.eq(customer.0),
                ))
                .on_conflict(chats::support_user_id)
                .do_nothing()
                .returning(chats::id)
                .get_result(conn)
                .await
                .optional()?;
            if let Some(id) = id {
                diesel::insert_into(chat_members::table)
                    .values((
                        chat_members::chat_id.eq(id),
                        chat_members::user_id.eq(customer.0),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(id)
        })
        .await
        .map_err(|e| {
            if crate::error::foreign_key_violation(&e) {
                not_found()
            } else {
                e
            }
        })?;
    let id = match created {
        Some(id) => id,
        None => {
            chats::table
                .filter(chats::support_user_id.eq(customer.0))
                .select(chats::id)
                .first(&mut conn)
                .await?
        }
    };
    drop(conn);
    let chat = ChatId(id);
    if created.is_some() {
        joined(store, chat, customer, None).await?;
    }
    chat_by_id(store, chat).await
}

async fn joined(store: &Store, chat: ChatId, user: UserId, by: Option<UserId>) -> Result<()> {
    invalidate_members(store, chat).await;
    invalidate_chat_lists(store, &[user]).await;
    let user = user_by_id(store, user).await?.into();
    publish(
        store,
        &ChatEvent::MemberJoined {
            chat_id: chat,
            user,
            by,
            since_seq: 0,
        },
    )
    .await;
    Ok(())
}

/// A customer writes to support. Errors as for `send_message`.
pub async fn support_send(store: &Store, customer: UserId, text: &MessageText) -> Result<Sent> {
    // Counted first: over the limit, not even the chat is created.
    take_send_quota(store, customer).await?;
    let chat = support_chat(store, customer).await?;
    send_within_quota(store, customer, chat.id, text, None).await
}

/// Whether `user` answers support chats (role `operator` or `admin`).
pub fn is_operator(user: &UserView) -> bool {
    matches!(user.role, UserRole::Operator | UserRole::Admin)
}

/// Operator `operator` answers `customer`, joining the customer's support chat (as admin) first if
/// needed.
///
/// Errors: `Forbidden` (not an operator), `NotFound` (no such customer, or one of door 001's
/// sandbox), `Invalid` (answering oneself).
pub async fn operator_send(
    store: &Store,
    operator: UserId,
    customer: UserId,
    text: &MessageText,
) -> Result<Sent> {
    if !is_operator(&user_by_id(store, operator).await?) {
        return Err(DomainError::Forbidden(ForbiddenReason::NotOperator).into());
    }
    if operator == customer {
        return Err(DomainError::invalid("customer", "Operators cannot answer themselves.").into());
    }
    if user_by_id(store, customer).await?.sandbox {
        return Err(DomainError::NotFound(NotFoundReason::User).into());
    }
    // Counted first: over the limit, nothing is created or joined.
    take_send_quota(store, operator).await?;
    let chat = support_chat(store, customer).await?;
    let mut conn = store.conn().await?;
    let added = diesel::insert_into(chat_members::table)
        .values((
            chat_members::chat_id.eq(chat.id.0),
            chat_members::user_id.eq(operator.0),
            chat_members::role.eq(MemberRole::Admin.as_str()),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    drop(conn);
    if added > 0 {
        joined(store, chat.id, operator, Some(operator)).await?;
    }
    send_within_quota(store, operator, chat.id, text, None).await
}

/// Gives the user `username` the server role `role` (the `create-operator` / `create-admin`
/// commands). Errors: `NotFound` for an unknown user.
pub async fn set_user_role(store: &Store, username: &Username, role: UserRole) -> Result<UserView> {
    let user = user_by_username(store, username.as_str()).await?;
    let mut conn = store.conn().await?;
    diesel::update(users::table.find(user.id.0))
        .set(users::role.eq(role.as_str()))
        .execute(&mut conn)
        .await?;
    drop(conn);
    invalidate_user(store, user.id).await;
    user_by_id(store, user.id).await
}
