//! Contact list writes (seed 002: "add friend", "remove friend").

use crate::Store;
use chat_domain::{ConflictReason, ForbiddenReason, NotFoundReason};
use chat_domain::{DomainError, UserId};
use chat_selectors::{schema::friendships, user_by_username};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Result;

/// Puts the user named `friend` into `user`'s contact list.
/// Errors: `NotFound` (no such user in the main namespace, also one deleted meanwhile),
/// `Invalid` (yourself), `Conflict` (already there).
pub async fn add_friend(store: &Store, user: UserId, friend: &str) -> Result<()> {
    let friend = user_by_username(store, friend).await?;
    if friend.id == user {
        return Err(
            DomainError::invalid("username", "You cannot add yourself as a friend.").into(),
        );
    }
    let mut conn = store.conn().await?;
    let inserted = diesel::insert_into(friendships::table)
        .values((
            friendships::user_id.eq(user.0),
            friendships::friend_id.eq(friend.id.0),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await
        .map_err(crate::Error::from)
        .map_err(|e| {
            // Deleted between the lookup and the insert.
            if crate::error::foreign_key_violation(&e) {
                DomainError::NotFound(NotFoundReason::User).into()
            } else {
                e
            }
        })?;
    if inserted == 0 {
        return Err(DomainError::Conflict(ConflictReason::AlreadyFriend).into());
    }
    Ok(())
}

/// Takes the user named `friend` out of `user`'s contact list.
/// Errors: `NotFound` (no such user), `Forbidden` (not in the list; docs/doors.md door 002: 403
/// "not a friend").
pub async fn remove_friend(store: &Store, user: UserId, friend: &str) -> Result<()> {
    let friend = user_by_username(store, friend).await?;
    let mut conn = store.conn().await?;
    let deleted = diesel::delete(
        friendships::table
            .filter(friendships::user_id.eq(user.0))
            .filter(friendships::friend_id.eq(friend.id.0)),
    )
    .execute(&mut conn)
    .await?;
    if deleted == 0 {
        return Err(DomainError::Forbidden(ForbiddenReason::NotFriend).into());
    }
    Ok(())
}
