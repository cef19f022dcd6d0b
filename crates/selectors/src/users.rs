//! User reads: profiles (cached in Redis, 5 min), lookups by name, login credentials (never cached).

use chat_domain::{DomainError, UserRole};
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
            },
            password_hash: self.password_hash,
        })
    }
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
diesel::define_sql_function!(
    #[sql_name = "lower"]
    fn lower_nullable(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>
);

/// A user's profile by id, read through the Redis cache. Errors: `NotFound("User not found.")`.
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
        .ok_or_else(|| DomainError::NotFound("User not found.".into()))?
        .into_credentials()?
        .user;
    cache::set_json(store, &key, &user, PROFILE_TTL_SECS).await;
    Ok(user)
}

/// Drops a cached profile; services call it after committing a change to the user.
pub async fn invalidate_user(store: &Store, id: UserId) {
    cache::delete(store, &store.keys.user(id)).await;
}

/// A user by username (case-insensitive). Errors: `NotFound("User not found.")`.
pub async fn user_by_username(store: &Store, username: &str) -> Result<UserView> {
    if username.contains('\0') {
        // PostgreSQL text cannot hold NUL: no user can have such a name.
        return Err(DomainError::NotFound("User not found.".into()).into());
    }
    let mut conn = store.conn().await?;
    let row: Option<UserRow> = users::table
        .filter(lower(users::username).eq(username.to_lowercase()))
        .select(UserRow::as_select())
        .first(&mut conn)
        .await
        .optional()?;
    Ok(row
        .ok_or_else(|| DomainError::NotFound("User not found.".into()))?
        .into_credentials()?
        .user)
}

/// The user whose username or (when `login` contains `@`) email matches `login`,
/// case-insensitively, with their password hash. `None` when there is no such user.
pub async fn credentials_by_login(store: &Store, login: &str) -> Result<Option<Credentials>> {
    if login.contains('\0') {
        return Ok(None);
    }
    let mut conn = store.conn().await?;
    let wanted = login.to_lowercase();
    let query = users::table.select(UserRow::as_select()).into_boxed();
    let query = if login.contains('@') {
        query.filter(lower_nullable(users::email).eq(wanted))
    } else {
        query.filter(lower(users::username).eq(wanted))
    };
    query
        .first::<UserRow>(&mut conn)
        .await
        .optional()?
        .map(UserRow::into_credentials)
        .transpose()
}

/// Users whose username starts with `prefix` (case-insensitive), shortest names first, at most
/// `limit`. Uses the `text_pattern_ops` index; `%` and `_` in `prefix` match themselves.
pub async fn search_users(store: &Store, prefix: &str, limit: i64) -> Result<Vec<UserBrief>> {
    if prefix.contains('\0') {
        return Ok(Vec::new());
    }
    let escaped = prefix
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let mut conn = store.conn().await?;
    let rows: Vec<(i64, String)> = users::table
        .filter(lower(users::username).like(format!("{escaped}%")))
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
