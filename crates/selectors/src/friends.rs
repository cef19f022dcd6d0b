//! Contact lists (seed 002's one-way friends).

use chat_domain::ForbiddenReason;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::{friendships, users};
use chat_domain::DomainError;

use crate::{Result, Store, UserBrief, UserId};

/// The users in `user`'s contact list, by username.
pub async fn friends_of(store: &Store, user: UserId) -> Result<Vec<UserBrief>> {
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, String)> = friendships::table
        .inner_join(users::table.on(users::id.eq(friendships::friend_id)))
        .filter(friendships::user_id.eq(user.0))
        .order(users::username.asc())
        .select((users::id, users::username))
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, username)| UserBrief {
            id: UserId(id),
            username,
        })
        .collect())
}

/// Is `friend` in `user`'s contact list?
pub async fn is_friend(store: &Store, user: UserId, friend: UserId) -> Result<bool> {
    let mut conn = store.conn().await?;
    let found = diesel::select(diesel::dsl::exists(
        friendships::table
            .filter(friendships::user_id.eq(user.0))
            .filter(friendships::friend_id.eq(friend.0)),
    ))
    .get_result(&mut conn)
    .await?;
    Ok(found)
}

/// For actions that need `friend` in `user`'s contact list (door 002's direct chats).
/// Errors: `Forbidden(NotFriend)`.
pub async fn require_friend(store: &Store, user: UserId, friend: UserId) -> Result<()> {
    if is_friend(store, user, friend).await? {
        Ok(())
    } else {
        Err(DomainError::Forbidden(ForbiddenReason::NotFriend).into())
    }
}
