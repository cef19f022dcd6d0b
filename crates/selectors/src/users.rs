//! User reads: profiles (cached in Redis, 5 min), lookups by name, login credentials (never
//! cached), and the token cut-off every authenticated request checks (cached 5 s, replaced at
//! once by the services that move it).
//!
//! Names are found by their canonical form (`chat_domain::Username::key_of`), never by
//! PostgreSQL's `lower()`; lookups by name see the users of the main namespace only (door 001's
//! sandbox users have their own).

use chat_domain::NotFoundReason;
use chat_domain::{DomainError, UserRole, Username};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::schema::users;
use crate::{Result, Store, UserId, cache};

/// How long a cached profile lives, in seconds (renames invalidate it at once).
const PROFILE_TTL_SECS: u64 = 300;

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: UserId,
    /// Username, in the case given at sign-up.
    pub username: String,
    /// Email, where given.
    pub email: Option<String>,
    /// Server role.
    pub role: UserRole,
    /// Sign-up time (UTC).
    pub created_at: DateTime<Utc>,
    /// Created through door 001 (no authentication): reachable only from door 001.
    pub sandbox: bool,
}

/// Just enough of a user to show them: `{"id","username"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserBrief {
    /// Id.
    pub id: UserId,
    /// Username.
    pub username: String,
}

impl From<UserView> for UserBrief {
    fn from(user: UserView) -> Self {
        Self {
            id: user.id,
            username: user.username,
        }
    }
}

/// A user and their password hash, for logging in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: UserView,
    /// bcrypt hash; `None` for users created without a password (they cannot log in).
    pub password_hash: Option<String>,
    /// Disabled by an operator (`chat-server disable-user`): cannot log in.
    pub disabled: bool,
    /// Tokens issued before this time (unix s) are dead; new ones are issued at or after it.
    pub tokens_not_before: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i64,
    username: String,
    email: Option<String>,
    password_hash: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    sandbox: bool,
    tokens_not_before: i64,
    disabled_at: Option<DateTime<Utc>>,
}

impl UserRow {
    fn into_credentials(self) -> Result<Credentials> {
        let role = UserRole::parse(&self.role).map_err(|_| {
            crate::Error::Internal(format!("user {} has role {:?}", self.id, self.role))
        })?;
        Ok(Credentials {
            user: UserView {
                id: UserId(self.id),
                username: self.username,
                email: self.email,
                role,
                created_at: self.created_at,
                sandbox: self.sandbox,
            },
            password_hash: self.password_hash,
            disabled: self.disabled_at.is_some(),
            tokens_not_before: self.tokens_not_before,
        })
    }
}

diesel::define_sql_function!(
    #[sql_name = "lower"]
    fn lower_nullable(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>
);

/// What a socket needs to open, read together: the user, their token cut-off and every chat
/// they are in with its `last_seq` ([`socket_start`]).
#[derive(Debug, Clone)]
pub struct SocketStart {
    /// The user.
    pub user: UserView,
    /// Unix seconds before which the user's tokens are dead; `None` when no token is valid
    /// (the user is disabled).
    pub tokens_not_before: Option<i64>,
    /// Each chat the user is a member of, with its `last_seq`.
    pub chats: Vec<(crate::ChatId, i64)>,
}

/// The user `id`, their token cut-off and their chats with each chat's `last_seq`, in one query.
///
/// From PostgreSQL, never a cache: a reconnect storm costs one statement per socket, not three,
/// and the cut-off read is the freshest there is. Errors: `NotFound(User)`.
pub async fn socket_start(store: &Store, id: UserId) -> Result<SocketStart> {
    use crate::schema::{chat_members, chats};
    let mut conn = store.conn().await?;
    let rows: Vec<(UserRow, Option<i64>, Option<i64>)> = users::table
        .left_join(chat_members::table)
        .left_join(chats::table.on(chats::id.nullable().eq(chat_members::chat_id.nullable())))
        .filter(users::id.eq(id.0))
        .select((
            UserRow::as_select(),
            chats::id.nullable(),
            chats::last_seq.nullable(),
        ))
        .load(&mut conn)
        .await?;
    drop(conn);
    let chats = rows
        .iter()
        .filter_map(|(_, chat, seq)| Some((crate::ChatId((*chat)?), (*seq)?)))
        .collect();
    let row = rows
        .into_iter()
        .next()
        .ok_or(DomainError::NotFound(NotFoundReason::User))?
        .0;
    let credentials = row.into_credentials()?;
    Ok(SocketStart {
        tokens_not_before: (!credentials.disabled).then_some(credentials.tokens_not_before),
        user: credentials.user,
        chats,
    })
}

/// A user's profile by id, read through the Redis cache. Errors: `NotFound(User)`.
pub async fn user_by_id(store: &Store, id: UserId) -> Result<UserView> {
    let key = store.keys.user(id);
    if let Some(user) = cache::get_json::<UserView>(store, &key).await {
        return Ok(user);
    }
    let mut conn = store.conn().await?;
    let row: Option<UserRow> = users::table
        .find(id.0)
        .select(UserRow::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    let user = row
        .ok_or(DomainError::NotFound(NotFoundReason::User))?
        .into_credentials()?
        .user;
    cache::set_json(store, &key, &user, PROFILE_TTL_SECS).await;
    Ok(user)
}

/// Drops a cached profile; services call it after committing a change to the user.
pub async fn invalidate_user(store: &Store, id: UserId) {
    cache::delete(store, &store.keys.user(id)).await;
}

/// A user of the main namespace by username, in any spelling of the same name (its canonical
/// form). Errors: `NotFound(User)`.
pub async fn user_by_username(store: &Store, username: &str) -> Result<UserView> {
    if username.contains('\0') {
        // PostgreSQL text cannot hold NUL: no user can have such a name.
        return Err(DomainError::NotFound(NotFoundReason::User).into());
    }
    let mut conn = store.conn().await?;
    let row: Option<UserRow> = users::table
        .filter(users::username_key.eq(Username::key_of(username)))
        .filter(users::sandbox.eq(false))
        .select(UserRow::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    Ok(row
        .ok_or(DomainError::NotFound(NotFoundReason::User))?
        .into_credentials()?
        .user)
}

/// The user of the main namespace whose username (any spelling of it) or, when `login` contains
/// `@`, email matches `login`, with their password hash.
///
/// Emails compare case-insensitively by PostgreSQL's `lower()` on both sides (one mapping, so no
/// two accounts answer to one login). `None` when there is no such user.
pub async fn credentials_by_login(store: &Store, login: &str) -> Result<Option<Credentials>> {
    if login.contains('\0') {
        return Ok(None);
    }
    let mut conn = store.conn().await?;
    let query = users::table
        .select(UserRow::as_select())
        .filter(users::sandbox.eq(false))
        .into_boxed();
    let query = if login.contains('@') {
        query.filter(lower_nullable(users::email).eq(lower_nullable(Some(login.to_owned()))))
    } else {
        query.filter(users::username_key.eq(Username::key_of(login)))
    };
    query
        .first::<UserRow>(&mut conn)
        .await
        .optional()?
        .map(UserRow::into_credentials)
        .transpose()
}

/// Users of the main namespace whose canonical username starts with the canonical form of `prefix`
/// (so any case finds them), shortest names first, at most `limit`.
///
/// Uses the `text_pattern_ops` index; `%` and `_` in `prefix` match themselves.
pub async fn search_users(store: &Store, prefix: &str, limit: i64) -> Result<Vec<UserBrief>> {
    if prefix.contains('\0') {
        return Ok(Vec::new());
    }
    let escaped = Username::key_of(prefix)
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, String)> = users::table
        .filter(users::username_key.like(format!("{escaped}%")))
        .filter(users::sandbox.eq(false))
        .order((
            diesel::dsl::sql::<diesel::sql_types::Integer>("length(username)"),
            users::username.asc(),
        ))
        .limit(limit)
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

/// How long a cached token cut-off lives, in seconds.
///
/// The services that move it (logout-all, refresh-token reuse, disable-user) replace the cached
/// value at once; only a change made behind the server's back (a row deleted by hand) waits this
/// long. Short, since a miss costs just one primary-key read per user.
pub const TOKENS_NOT_BEFORE_TTL_SECS: u64 = 5;

/// Unix seconds before which `user`'s tokens are dead, or `None` when no token of theirs is valid
/// at all (disabled, or no such user).
///
/// Read through Redis (5 s), else PostgreSQL; a Redis fault falls back to PostgreSQL. A fill never
/// overwrites a value a service has just set (`SET NX`), so a read racing a revocation cannot bring
/// the old cut-off back.
pub async fn tokens_not_before(store: &Store, user: UserId) -> Result<Option<i64>> {
    use redis::AsyncCommands;
    let key = store.keys.tokens_not_before(user);
    let mut redis = store.redis();
    match redis.get::<_, Option<i64>>(&key).await {
        Ok(Some(value)) => return Ok((value >= 0).then_some(value)),
        Ok(None) => {}
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "token cut-off read failed; using the database");
        }
    }
    let mut conn = store.conn().await?;
    let row: Option<(i64, Option<DateTime<Utc>>)> = users::table
        .find(user.0)
        .select((users::tokens_not_before, users::disabled_at))
        .first(&mut conn)
        .await
        .optional()?;
    drop(conn);
    let value = match row {
        Some((not_before, None)) => Some(not_before),
        _ => None,
    };
    let stored = value.unwrap_or(-1);
    let filled: redis::RedisResult<()> = redis::cmd("SET")
        .arg(&key)
        .arg(stored)
        .arg("NX")
        .arg("EX")
        .arg(TOKENS_NOT_BEFORE_TTL_SECS)
        .query_async(&mut redis)
        .await;
    if let Err(error) = filled {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::warn!(%error, "token cut-off cache write failed");
    }
    Ok(value)
}

/// The token cut-offs of many users at once, from PostgreSQL (the periodic check of open sockets).
///
/// `(user, cut-off)` for each given user that exists and is not disabled; users absent from the
/// answer have no valid token.
pub async fn tokens_not_before_of(store: &Store, ids: &[UserId]) -> Result<Vec<(UserId, i64)>> {
    let ids: Vec<i64> = ids.iter().map(|u| u.0).collect();
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, i64)> = users::table
        .filter(users::id.eq_any(ids))
        .filter(users::disabled_at.is_null())
        .select((users::id, users::tokens_not_before))
        .load(&mut conn)
        .await?;
    Ok(rows.into_iter().map(|(id, nb)| (UserId(id), nb)).collect())
}

/// A user of door 001's sandbox by id. Errors: `NotFound(User)` for any other id
/// (door 001 reaches nothing else).
pub async fn sandbox_user(store: &Store, id: UserId) -> Result<UserView> {
    match user_by_id(store, id).await {
        Ok(user) if user.sandbox => Ok(user),
        Ok(_) => Err(DomainError::NotFound(NotFoundReason::User).into()),
        Err(e) => Err(e),
    }
}
