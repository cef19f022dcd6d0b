//! Accounts and sessions: sign-up, password check, refresh-token issue/rotation/revocation,
//! ending every session of a user, disabling users. Access tokens (JWT) are minted by the api
//! crate; this crate owns what is stored.
//!
//! Refresh tokens are 32 random bytes (base64url, 43 characters), stored as their SHA-256 only.
//! Rotation revokes the used token; presenting a revoked token again ends every session of
//! that user (reuse detection, RFC 9700 §4.14.2).
//!
//! Every user has a token cut-off (`users.tokens_not_before`, unix s): a token issued before it
//! is dead on every door. Ending all sessions moves it to the next second, revokes the refresh
//! tokens, replaces the cached cut-off and tells every instance (the control channel), which
//! closes the user's open sockets.

mod tokens;
pub use tokens::*;

use crate::Store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{ConflictReason, NotFoundReason, UnauthorizedReason};
use chat_domain::{DomainError, Email, Password, UserId, Username};
use chat_selectors::schema::{refresh_tokens, users};
use chat_selectors::{
    ControlEvent, UserView, credentials_by_login, invalidate_chat_summaries, invalidate_user,
    user_by_id, user_by_username, user_chats,
};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::unique_violation;
use crate::{Error, Result};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task: {e}")))
}

/// Creates a user with a bcrypt hash of `password` (computed off the async workers).
///
/// `email` may be `None` for doors that don't ask for one; `password` `None` creates a user who
/// cannot log in until given one. Errors: `Conflict` when the username (its canonical form, or a
/// lookalike: `chat_domain::Username`) or the email is taken (case-insensitively).
pub async fn register(
    store: &Store,
    username: &Username,
    email: Option<&Email>,
    password: Option<&Password>,
    bcrypt_cost: u32,
) -> Result<UserView> {
    let hash = match password {
        Some(password) => {
            let secret = bcrypt_input(password.expose());
            let hash = blocking(move || bcrypt::non_truncating_hash(secret, bcrypt_cost))
                .await?
                .map_err(|e| Error::Internal(format!("bcrypt: {e}")))?;
            Some(hash)
        }
        None => None,
    };
    insert_user(store, username, email, hash, false).await
}

/// Creates a user of door 001's sandbox: no password, no email, a namespace of its own (a sandbox
/// user named like a user of the other doors is another person).
///
/// Errors: `Conflict` when the name (or a lookalike) is taken in the sandbox.
pub async fn register_sandbox_user(store: &Store, username: &Username) -> Result<UserView> {
    insert_user(store, username, None, None, true).await
}

async fn insert_user(
    store: &Store,
    username: &Username,
    email: Option<&Email>,
    hash: Option<String>,
    sandbox: bool,
) -> Result<UserView> {
    let [skeleton, upper] = username.skeletons();
    let mut conn = store.conn().await?;
    let id: Result<i64> = diesel::insert_into(users::table)
        .values((
            users::username.eq(username.as_str()),
            users::username_key.eq(username.key()),
            users::username_skeleton.eq(skeleton),
            users::username_skeleton_upper.eq(upper),
            users::email.eq(email.map(Email::as_str)),
            users::password_hash.eq(hash),
            users::sandbox.eq(sandbox),
        ))
        .returning(users::id)
        .get_result(&mut conn)
        .await
        .map_err(Error::from);
    drop(conn);
    let id = id.map_err(username_conflict)?;
    user_by_id(store, UserId(id)).await
}

/// A unique violation on `users` as the conflict it is (email, the name, a lookalike name).
fn username_conflict(error: Error) -> Error {
    match unique_violation(&error) {
        Some(c) if c.contains("email") => DomainError::Conflict(ConflictReason::EmailTaken).into(),
        Some(c) if c.contains("skeleton") => {
            DomainError::Conflict(ConflictReason::UsernameLookalike).into()
        }
        Some(_) => DomainError::Conflict(ConflictReason::UsernameTaken).into(),
        None => error,
    }
}

/// A user who proved their password, with the time their new tokens are issued at (never
/// before their token cut-off).
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The user.
    pub user: UserView,
    /// Unix seconds before which their tokens are dead (see the module docs).
    pub tokens_not_before: i64,
}

/// Checks a login (username in any spelling, or email when it contains `@`) and password.
///
/// Errors: `Unauthorized(BadCredentials)` for an unknown
/// login, a wrong password, a user without a password or a disabled user — the same answer and
/// about the same time for each (an unknown login costs one bcrypt hash at `bcrypt_cost`).
pub async fn authenticate(
    store: &Store,
    login: &str,
    password: &str,
    bcrypt_cost: u32,
) -> Result<LoggedIn> {
    let found = credentials_by_login(store, login).await?;
    let secret = bcrypt_input(password);
    let (user, hash) = match found {
        Some(c) if !c.disabled => (Some((c.user, c.tokens_not_before)), c.password_hash),
        _ => (None, None),
    };
    let ok = blocking(move || match hash {
        Some(hash) => bcrypt::verify(secret, &hash).unwrap_or(false),
        None => {
            // Spend the time a check would have taken, then refuse.
            let _ = bcrypt::hash(secret, bcrypt_cost);
            false
        }
    })
    .await?;
    match user {
        Some((user, tokens_not_before)) if ok => Ok(LoggedIn {
            user,
            tokens_not_before,
        }),
        _ => Err(DomainError::Unauthorized(UnauthorizedReason::BadCredentials).into()),
    }
}

/// Renames `user`. Errors: `Conflict` when the name (its canonical form, or a lookalike) is
/// taken.
pub async fn rename_user(store: &Store, user: UserId, username: &Username) -> Result<UserView> {
    let [skeleton, upper] = username.skeletons();
    let mut conn = store.conn().await?;
    let updated = diesel::update(users::table.find(user.0))
        .set((
            users::username.eq(username.as_str()),
            users::username_key.eq(username.key()),
            users::username_skeleton.eq(skeleton),
            users::username_skeleton_upper.eq(upper),
        ))
        .execute(&mut conn)
        .await
        .map_err(Error::from);
    drop(conn);
    match updated {
        Ok(0) => return Err(DomainError::NotFound(NotFoundReason::User).into()),
        Ok(_) => {}
        Err(e) => return Err(username_conflict(e)),
    }
    invalidate_user(store, user).await;
    // The name shows in other users' chat lists (as a peer, as an author).
    let chats: Vec<_> = user_chats(store, user)
        .await?
        .into_iter()
        .map(|(chat, _)| chat)
        .collect();
    invalidate_chat_summaries(store, &chats).await;
    user_by_id(store, user).await
}
