//! Accounts and sessions: sign-up, password check, refresh-token issue/rotation/revocation.
//! Access tokens (JWT) are minted by the api crate; this crate owns what is stored.
//!
//! Refresh tokens are 32 random bytes (base64url, 43 characters), stored as their SHA-256 only.
//! Rotation revokes the used token; presenting a revoked token again revokes every session of
//! that user (reuse detection, RFC 9700 §4.14.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{DomainError, Email, Password, UserId, Username};
use chat_selectors::schema::{refresh_tokens, users};
use chat_selectors::{
    Store, UserView, credentials_by_login, invalidate_chat_summaries, invalidate_user, user_by_id,
    user_chats,
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

/// Creates a user with a bcrypt hash of `password` (computed off the async workers). `email` may
/// be `None` for doors that don't ask for one; `password` `None` creates a user who cannot log in
/// until given one (door 001 users). Errors: `Conflict` when the username or email is taken
/// (case-insensitively).
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
    let mut conn = store.conn().await?;
    let id: Result<i64> = diesel::insert_into(users::table)
        .values((
            users::username.eq(username.as_str()),
            users::email.eq(email.map(Email::as_str)),
            users::password_hash.eq(hash),
        ))
        .returning(users::id)
        .get_result(&mut conn)
        .await
        .map_err(Error::from);
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            return Err(match unique_violation(&e) {
                Some(c) if c.contains("email") => {
                    DomainError::Conflict("A user with that email already exists.".into()).into()
                }
                Some(_) => {
                    DomainError::Conflict("A user with that username already exists.".into()).into()
                }
                None => e,
            });
        }
    };
    drop(conn);
    Ok(user_by_id(store, UserId(id)).await?)
}

/// Checks a login (username, or email when it contains `@`) and password.
/// Errors: `Unauthorized("No active account found with the given credentials")` for an unknown
/// login, a wrong password, or a user without a password — the same answer and about the same
/// time for each (an unknown login costs one bcrypt hash at `bcrypt_cost`).
pub async fn authenticate(
    store: &Store,
    login: &str,
    password: &str,
    bcrypt_cost: u32,
) -> Result<UserView> {
    let found = credentials_by_login(store, login).await?;
    let secret = bcrypt_input(password);
    let (user, hash) = match found {
        Some(c) => (Some(c.user), c.password_hash),
        None => (None, None),
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
        Some(user) if ok => Ok(user),
        _ => Err(DomainError::Unauthorized(
            "No active account found with the given credentials".into(),
        )
        .into()),
    }
}

/// What bcrypt is given for `password`: the password itself when bcrypt can read all of it (at
/// most 71 bytes plus its terminator), else `sha256:` and the base64 SHA-256 of the whole
/// password (51 bytes) — the scheme of passlib's `bcrypt_sha256` — so no byte is ever dropped.
fn bcrypt_input(password: &str) -> Vec<u8> {
    if password.len() <= 71 {
        password.as_bytes().to_vec()
    } else {
        let digest =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()));
        format!("sha256:{digest}").into_bytes()
    }
}

fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn invalid_refresh() -> Error {
    DomainError::Unauthorized("Token is invalid or expired".into()).into()
}

/// Stores a new refresh token for `user`, valid `ttl_secs` seconds, and returns it.
pub async fn issue_refresh_token(store: &Store, user: UserId, ttl_secs: u64) -> Result<String> {
    let (token, hash) = new_token();
    let mut conn = store.conn().await?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(user.0),
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::expires_at.eq(Utc::now() + Duration::seconds(ttl_secs as i64)),
        ))
        .execute(&mut conn)
        .await?;
    Ok(token)
}

/// Exchanges a live refresh token for a new one (the old one is revoked in the same
/// transaction). Returns the user and the new token.
/// Errors: `Unauthorized("Token is invalid or expired")` for an unknown, expired or revoked
/// token; a revoked token also revokes every other session of its user.
pub async fn rotate_refresh_token(
    store: &Store,
    token: &str,
    ttl_secs: u64,
) -> Result<(UserId, String)> {
    let hash = token_hash(token);
    let (new_token, new_hash) = new_token();
    let mut conn = store.conn().await?;
    let outcome: Result<std::result::Result<i64, Option<i64>>> = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            let now = Utc::now();
            let live: Option<i64> = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .filter(refresh_tokens::revoked_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(now)),
            )
            .set(refresh_tokens::revoked_at.eq(now))
            .returning(refresh_tokens::user_id)
            .get_result(conn)
            .await
            .optional()?;
            let Some(user_id) = live else {
                let reused: Option<i64> = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .filter(refresh_tokens::revoked_at.is_not_null())
                    .select(refresh_tokens::user_id)
                    .first(conn)
                    .await
                    .optional()?;
                return Ok(Err(reused));
            };
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::user_id.eq(user_id),
                    refresh_tokens::token_hash.eq(&new_hash),
                    refresh_tokens::expires_at.eq(now + Duration::seconds(ttl_secs as i64)),
                ))
                .execute(conn)
                .await?;
            Ok(Ok(user_id))
        })
        .await;
    match outcome? {
        Ok(user_id) => Ok((UserId(user_id), new_token)),
        Err(Some(reused_by)) => {
            tracing::warn!(
                user.id = reused_by,
                "revoked refresh token presented; revoking all sessions"
            );
            diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::user_id.eq(reused_by))
                    .filter(refresh_tokens::revoked_at.is_null()),
            )
            .set(refresh_tokens::revoked_at.eq(Utc::now()))
            .execute(&mut conn)
            .await?;
            Err(invalid_refresh())
        }
        Err(None) => Err(invalid_refresh()),
    }
}

/// Revokes a live refresh token (logout). Errors: `Unauthorized` when it is not live.
pub async fn revoke_refresh_token(store: &Store, token: &str) -> Result<()> {
    let mut conn = store.conn().await?;
    let revoked = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash(token)))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::expires_at.gt(Utc::now())),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(&mut conn)
    .await?;
    if revoked == 0 {
        return Err(invalid_refresh());
    }
    Ok(())
}

/// Renames `user`. Errors: `Conflict` when the name is taken (case-insensitively).
pub async fn rename_user(store: &Store, user: UserId, username: &Username) -> Result<UserView> {
    let mut conn = store.conn().await?;
    let updated = diesel::update(users::table.find(user.0))
        .set(users::username.eq(username.as_str()))
        .execute(&mut conn)
        .await
        .map_err(Error::from);
    drop(conn);
    match updated {
        Ok(0) => return Err(DomainError::NotFound("User not found.".into()).into()),
        Ok(_) => {}
        Err(e) if unique_violation(&e).is_some() => {
            return Err(
                DomainError::Conflict("A user with that username already exists.".into()).into(),
            );
        }
        Err(e) => return Err(e),
    }
    invalidate_user(store, user).await;
    // The name shows in other users' chat lists (as a peer, as an author).
    let chats: Vec<_> = user_chats(store, user)
        .await?
        .into_iter()
        .map(|(chat, _)| chat)
        .collect();
    invalidate_chat_summaries(store, &chats).await;
    Ok(user_by_id(store, user).await?)
}
