//! Chats: the chat list, direct chats, groups (browse, create, rename), joining and leaving.

use actix_web::{HttpResponse, web};
use chat_domain::{ChatId, DomainError, GroupName, Title, UserId};
use chat_selectors::{ChatListItem, ChatView, chat_by_id, chat_list, public_groups};
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::doors::{required, validated};
use crate::error::ApiResult;
use crate::state::AppState;

/// Query of `GET /api/v1/chats`.
#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
}

/// Lists the caller's chats, newest activity first, with unread counts.
///
/// `GET /api/v1/chats?limit=` → 200 the caller's chats, newest activity first, each with
/// `last_message` and `unread_count` (`limit` 1..=500, default 100).
#[utoipa::path(
    get,
    path = "/api/v1/chats",
    operation_id = "list_chats",
    tag = "chats",
    security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "chats, default 100"),
    ),
    responses(
        (status = 200, body = Vec<chat_selectors::ChatListItem>, description = "newest activity first"),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<Vec<ChatListItem>>> {
    let limit = bounded("limit", query.limit, 100, 500)?;
    Ok(web::Json(chat_list(&state.store, user.id, limit).await?))
}

pub(super) fn bounded(
    field: &str,
    value: Option<i64>,
    default: i64,
    max: i64,
) -> Result<i64, DomainError> {
    match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v),
        Some(_) => Err(DomainError::invalid(
            field,
            format!("Must be from 1 to {max}."),
        )),
    }
}

/// Body of `POST /api/v1/chats/direct`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DirectRequest {
    /// The other user's id (not your own: 400).
    #[schema(required = true, value_type = i64)]
    #[serde(default, deserialize_with = "crate::doors::integral")]
    user_id: Option<i64>,
}

/// Opens the direct chat with another user, creating it on first use.
///
/// `POST /api/v1/chats/direct {"user_id"}` → 201 the new direct chat, or 200 the existing one.
/// 400 for yourself, 404 for an unknown user.
#[utoipa::path(
    post,
    path = "/api/v1/chats/direct",
    tag = "chats",
    security(("bearer" = [])),
    request_body = DirectRequest,
    responses(
        (status = 200, body = chat_selectors::ChatView, description = "existing"),
        (status = 201, body = chat_selectors::ChatView, description = "created"),
        (status = 400, body = crate::error::ErrorBody, description = "yourself"),
        (status = 404, body = crate::error::ErrorBody, description = "no such user"),
    ),
)]
pub async fn open_direct(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Json<DirectRequest>,
) -> ApiResult<HttpResponse> {
    let other = UserId(required("user_id", body.user_id)?);
    let (chat, created) = chat_services::open_direct_chat(&state.store, user.id, other).await?;
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(chat))
}

/// Query of `GET /api/v1/chats/groups`.
#[derive(Deserialize)]
pub struct GroupsQuery {
    search: Option<String>,
    limit: Option<i64>,
}

/// Lists public groups anyone may join, newest first.
///
/// `GET /api/v1/chats/groups?search=&limit=` → 200 `[chat]` whose title or name contains
/// `search` (any case; absent: all); `limit` 1..=100, default 50.
#[utoipa::path(
    get,
    path = "/api/v1/chats/groups",
    tag = "chats",
    security(("bearer" = [])),
    params(
        ("search" = Option<String>, Query, description = "part of the title or name, any case"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "groups, default 50"),
    ),
    responses(
        (status = 200, body = Vec<chat_selectors::ChatView>, description = "public groups, newest first"),
        (status = 400, body = crate::error::ErrorBody, description = "bad limit"),
    ),
)]
pub async fn browse_groups(
    state: web::Data<AppState>,
    _user: CurrentUser,
    query: web::Query<GroupsQuery>,
) -> ApiResult<web::Json<Vec<ChatView>>> {
    let limit = bounded("limit", query.limit, 50, 100)?;
    let search = query.search.as_deref().unwrap_or("").trim();
    Ok(web::Json(public_groups(&state.store, search, limit).await?))
}

/// Body of `POST /api/v1/chats/groups`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct GroupRequest {
    /// 1-128 characters, not blank, no NUL.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128, pattern = r"\S")]
    title: Option<String>,
    /// A unique name, 1-64 characters of letters (any script), digits, `_ . -` (door 002 and 004
    /// use it in URLs and room lists); a generated one when absent. The pattern shows the ASCII
    /// part of the rule.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    name: Option<String>,
    /// Private groups are joined by invitation only. Default false.
    #[serde(default)]
    is_private: bool,
}

/// Creates a group owned by the caller.
///
/// `POST /api/v1/chats/groups {"title","name"?,"is_private"?}` → 201 the group; the caller is its
/// owner. 400 for a bad title/name, 409 for a taken name.
#[utoipa::path(
    post,
    path = "/api/v1/chats/groups",
    tag = "chats",
    security(("bearer" = [])),
    request_body = GroupRequest,
    responses(
        (status = 201, body = chat_selectors::ChatView),
        (status = 400, body = crate::error::ErrorBody, description = "bad title or name"),
        (status = 409, body = crate::error::ErrorBody, description = "name taken"),
    ),
)]
pub async fn create_group(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Json<GroupRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let title = required("title", body.title.as_deref()).and_then(Title::parse);
    let name = body.name.as_deref().map(GroupName::parse).transpose();
    let (title, name) = validated!(title, name)?;
    let chat = chat_services::create_group(
        &state.store,
        user.id,
        name.as_ref(),
        &title,
        body.is_private,
        &[],
    )
    .await?;
    Ok(HttpResponse::Created().json(chat))
}

/// Body of `PATCH /api/v1/chats/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenameRequest {
    /// 1-128 characters, not blank, no NUL.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128, pattern = r"\S")]
    title: Option<String>,
}

/// Renames a group (owners and admins).
///
/// `PATCH /api/v1/chats/{id} {"title"}` → 200 the chat with its new title (1-128 characters).
/// Owners and admins of a group; the members get a system line live. 400 for a bad title, 403
/// for a plain member, a non-member or a direct chat, 404 for no chat.
#[utoipa::path(
    patch,
    path = "/api/v1/chats/{id}",
    operation_id = "rename_chat",
    tag = "chats",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = RenameRequest,
    responses(
        (status = 200, body = chat_selectors::ChatView),
        (status = 400, body = crate::error::ErrorBody, description = "bad title"),
        (status = 403, body = crate::error::ErrorBody, description = "not owner or admin, or not a group"),
        (status = 404, body = crate::error::ErrorBody, description = "no chat"),
    ),
)]
pub async fn rename(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    body: web::Json<RenameRequest>,
) -> ApiResult<web::Json<ChatView>> {
    let chat = ChatId(path.into_inner());
    let title = required("title", body.title.as_deref()).and_then(Title::parse)?;
    chat_services::rename_group(&state.store, user.id, chat, &title).await?;
    Ok(web::Json(chat_by_id(&state.store, chat).await?))
}

/// Joins a public group.
///
/// `POST /api/v1/chats/{id}/join` → 200 the chat. 403 for a private group, 409 when already in.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/join",
    tag = "chats",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = chat_selectors::ChatView),
        (status = 403, body = crate::error::ErrorBody, description = "private group"),
        (status = 404, body = crate::error::ErrorBody, description = "no chat"),
        (status = 409, body = crate::error::ErrorBody, description = "already a member"),
    ),
)]
pub async fn join(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<ChatView>> {
    let chat = ChatId(path.into_inner());
    chat_services::join_group(&state.store, user.id, chat).await?;
    Ok(web::Json(chat_by_id(&state.store, chat).await?))
}

/// Answer of `POST /api/v1/chats/{id}/leave`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LeftResponse {
    chat_id: ChatId,
}

/// Leaves a group.
///
/// `POST /api/v1/chats/{id}/leave` → 200 `{"chat_id"}`. 403 when not a member.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/leave",
    tag = "chats",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = LeftResponse),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
        (status = 404, body = crate::error::ErrorBody, description = "no chat"),
    ),
)]
pub async fn leave(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<LeftResponse>> {
    let chat = ChatId(path.into_inner());
    chat_services::leave_group(&state.store, user.id, chat).await?;
    Ok(web::Json(LeftResponse { chat_id: chat }))
}
