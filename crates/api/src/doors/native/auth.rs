//! Sign-up, log-in, token refresh with rotation, log-out (one session, or every session of the
//! user on every door), and the caller's profile.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{DomainError, Email, Password, Username};
use chat_selectors::{UserBrief, UserView, search_users, user_by_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, limit_auth};
use crate::doors::{required, validated};
use crate::error::ApiResult;
use crate::state::AppState;

/// A user on the wire: `{"id","username","email","created_at"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserResponse {
    id: i64,
    username: String,
    email: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<UserView> for UserResponse {
    fn from(user: UserView) -> Self {
        Self {
            id: user.id.0,
            username: user.username,
            email: user.email,
            created_at: user.created_at,
        }
    }
}

/// Body of `POST /api/v1/auth/register/`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// 3-32 characters of letters (any script), digits, `_ . -`; unique by its canonical form
    /// (RFC 8265), lookalikes of taken or reserved names refused (409). The pattern shows the
    /// ASCII part of the rule.
    #[schema(required = true, value_type = String, min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    username: Option<String>,
    /// An address with a local part, `@` and a dotted domain (not starting or ending with a
    /// dot), at most 254 characters, no whitespace or control characters.
    #[schema(required = true, value_type = String, max_length = 254, pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s.\u0000-\u001f\u007f-\u009f][^@\s\u0000-\u001f\u007f-\u009f]*\.[^@\s\u0000-\u001f\u007f-\u009f]*[^@\s.\u0000-\u001f\u007f-\u009f]$")]
    email: Option<String>,
    /// 8-128 bytes (UTF-8), no NUL; the pattern shows the printable-ASCII part of the rule.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128, pattern = "^[ -~]+$")]
    password: Option<String>,
    /// The same password again.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 128, pattern = "^[ -~]+$")]
    password2: Option<String>,
}

/// Registers a new user.
///
/// `POST /api/v1/auth/register/` → 201 user. 400 with `fields` for every bad field at once;
/// 409 when the username or email is taken.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register/",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = UserResponse, description = "registered"),
        (status = 400, body = crate::error::ErrorBody, description = "invalid fields"),
        (status = 409, body = crate::error::ErrorBody, description = "username or email taken"),
        (status = 429, body = crate::error::ErrorBody, description = "too many attempts"),
    ),
)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    limit_auth(&state, &req).await?;
    let body = body.into_inner();
    let username = required("username", body.username.as_deref()).and_then(Username::parse);
    let email = required("email", body.email.as_deref()).and_then(Email::parse);
    let password = required("password", body.password.as_deref()).and_then(Password::parse);
    let password2 = required("password2", body.password2.as_deref()).and_then(|p2| {
        match body.password.as_deref() {
            Some(p) if p != p2 => Err(DomainError::invalid("password2", "Passwords do not match.")),
            _ => Ok(()),
        }
    });
    let (username, email, password, ()) = validated!(username, email, password, password2)?;
    let user = chat_services::register(
        &state.store,
        &username,
        Some(&email),
        Some(&password),
        state.settings.bcrypt_cost,
    )
    .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

/// Body of `POST /api/v1/auth/login/`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// The username or the email address.
    #[schema(required = true, value_type = String)]
    username: Option<String>,
    /// The password.
    #[schema(required = true, value_type = String)]
    password: Option<String>,
}

/// A token pair: `{"access","refresh"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    access: String,
    refresh: String,
}

/// Logs in with a username or email and a password, returning an access and a refresh token.
///
/// `POST /api/v1/auth/login/` (`username` may be an email) → 200 `{"access","refresh"}`;
/// 400 for missing fields, 401 for wrong credentials.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair, description = "access and refresh tokens"),
        (status = 401, body = crate::error::ErrorBody, description = "bad credentials"),
        (status = 429, body = crate::error::ErrorBody, description = "too many attempts"),
    ),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult<web::Json<TokenPair>> {
    limit_auth(&state, &req).await?;
    let body = body.into_inner();
    let login = required("username", body.username);
    let password = required("password", body.password);
    let (login, password) = validated!(login, password)?;
    let logged_in =
        chat_services::authenticate(&state.store, &login, &password, state.settings.bcrypt_cost)
            .await?;
    let user = logged_in.user.id;
    let refresh =
        chat_services::issue_refresh_token(&state.store, user, state.settings.refresh_ttl_secs)
            .await?;
    Ok(web::Json(TokenPair {
        access: state.jwt.issue(user, logged_in.tokens_not_before),
        refresh,
    }))
}

/// Body of the refresh and logout routes.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// A refresh token from the login or the last refresh.
    #[schema(required = true, value_type = String)]
    refresh: Option<String>,
}

/// Trades a refresh token for a new token pair (the old refresh token stops working).
///
/// `POST /api/v1/auth/login/refresh/` → 200 a new `{"access","refresh"}`; the presented refresh
/// token stops working. 401 for an unknown, expired or already used token; an already rotated,
/// unexpired one (a stolen copy, RFC 9700 §4.14.2) also ends every session of its user, as
/// logout-all does, once per token. 429 over the per-address limit of logins
/// (`CHAT_RATE_AUTH_PER_MIN`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login/refresh/",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair, description = "a new pair; the old refresh token is dead"),
        (status = 401, body = crate::error::ErrorBody, description = "unknown, expired or used token"),
        (status = 429, body = crate::error::ErrorBody, description = "too many attempts"),
    ),
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<web::Json<TokenPair>> {
    // Counted like logins: refresh tokens cannot be guessed or replayed at speed.
    limit_auth(&state, &req).await?;
    let token = required("refresh", body.into_inner().refresh)?;
    let (user, refresh, not_before) =
        chat_services::rotate_refresh_token(&state.store, &token, state.settings.refresh_ttl_secs)
            .await?;
    Ok(web::Json(TokenPair {
        access: state.jwt.issue(user, not_before),
        refresh,
    }))
}

/// Revokes one refresh token (logs out one session).
///
/// `POST /api/v1/auth/logout/` → 204; the refresh token is revoked. 401 when it is not live.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout/",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "revoked"),
        (status = 401, body = crate::error::ErrorBody, description = "not a live token"),
    ),
)]
pub async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = required("refresh", body.into_inner().refresh)?;
    chat_services::revoke_refresh_token(&state.store, &token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the caller on every door and instance.
///
/// `POST /api/v1/auth/logout-all/` (bearer) → 204: every session of the caller ends — each
/// access and refresh token, and the tokens of doors 000, 003 and 004, fail on every door and
/// instance from now on, and their open sockets close (1008 "session revoked") within seconds.
/// Logging in again works at once. 401 without a valid token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all/",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "every session ended"),
        (status = 401, body = crate::error::ErrorBody, description = "no or bad token"),
    ),
)]
pub async fn logout_all(state: web::Data<AppState>, user: CurrentUser) -> ApiResult<HttpResponse> {
    let not_before = chat_services::revoke_sessions(&state.store, user.id).await?;
    // This instance at once, before it answers (the others hear it over the bus).
    state.cut_offs.revoked(user.id, not_before);
    state.hub.revoke(user.id, not_before);
    Ok(HttpResponse::NoContent().finish())
}

/// Returns the caller's profile.
///
/// `GET /api/v1/users/me` → 200 the caller's profile.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = crate::error::ErrorBody, description = "no or bad token"),
    ),
)]
pub async fn me(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> ApiResult<web::Json<UserResponse>> {
    Ok(web::Json(user_by_id(&state.store, user.id).await?.into()))
}

/// Body of `PATCH /api/v1/users/me`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UsernameRequest {
    /// The new username, as at registration.
    #[schema(required = true, value_type = String, min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    username: Option<String>,
}

/// Changes the caller's username.
///
/// `PATCH /api/v1/users/me {"username"}` → 200 the renamed user. 400 bad name, 409 taken.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    operation_id = "rename_me",
    tag = "users",
    security(("bearer" = [])),
    request_body = UsernameRequest,
    responses(
        (status = 200, body = UserResponse),
        (status = 400, body = crate::error::ErrorBody, description = "bad name"),
        (status = 409, body = crate::error::ErrorBody, description = "taken"),
    ),
)]
pub async fn rename(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Json<UsernameRequest>,
) -> ApiResult<web::Json<UserResponse>> {
    let username =
        required("username", body.into_inner().username.as_deref()).and_then(Username::parse)?;
    Ok(web::Json(
        chat_services::rename_user(&state.store, user.id, &username)
            .await?
            .into(),
    ))
}

/// Query of `GET /api/v1/users`.
#[derive(Deserialize)]
pub struct SearchQuery {
    search: Option<String>,
    limit: Option<i64>,
}

/// Finds users whose username starts with a prefix.
///
/// `GET /api/v1/users?search=<prefix>&limit=` → 200 `[{"id","username"}]`: usernames starting
/// with the prefix (case-insensitive), shortest first; `limit` 1..=100, default 20.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("search" = String, Query, description = "username prefix, any case (empty: the shortest names)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "results, default 20"),
    ),
    responses(
        (status = 200, body = Vec<chat_selectors::UserBrief>),
        (status = 400, body = crate::error::ErrorBody, description = "missing search or bad limit"),
    ),
)]
pub async fn search(
    state: web::Data<AppState>,
    _user: CurrentUser,
    query: web::Query<SearchQuery>,
) -> ApiResult<web::Json<Vec<UserBrief>>> {
    let query = query.into_inner();
    let prefix = required("search", query.search)?;
    let limit = match query.limit {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n,
        Some(_) => return Err(DomainError::invalid("limit", "Must be from 1 to 100.").into()),
    };
    Ok(web::Json(search_users(&state.store, &prefix, limit).await?))
}
