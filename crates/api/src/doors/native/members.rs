//! Group membership: list, invite, remove, change roles.

use actix_web::{HttpResponse, web};
use chat_domain::{ChatId, DomainError, MemberRole, UserId};
use chat_selectors::{MemberView, member_list, require_member};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::doors::required;
use crate::error::ApiResult;
use crate::state::AppState;

/// Lists a chat's members, owner first.
///
/// `GET /api/v1/chats/{id}/members` → 200 `[{"user":{"id","username"},"role","joined_at","last_read_seq"}]`,
/// owner first. 403 for non-members.
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}/members",
    operation_id = "list_members",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = Vec<chat_selectors::MemberView>, description = "owner first"),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
) -> ApiResult<web::Json<Vec<MemberView>>> {
    let chat = ChatId(path.into_inner());
    require_member(&state.store, chat, user.id).await?;
    Ok(web::Json(member_list(&state.store, chat).await?))
}

/// Body of `POST /api/v1/chats/{id}/members`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct InviteRequest {
    /// The user to add.
    #[schema(required = true, value_type = i64)]
    #[serde(default, deserialize_with = "crate::doors::integral")]
    user_id: Option<i64>,
}

/// Adds a user to a group (owners and admins).
///
/// `POST /api/v1/chats/{id}/members {"user_id"}` → 201; owner or admin adds a user to a group
/// (private ones too). 403 for others, 404 unknown user, 409 already a member.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/members",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "added"),
        (status = 403, body = crate::error::ErrorBody, description = "not owner or admin"),
        (status = 404, body = crate::error::ErrorBody, description = "no such user"),
        (status = 409, body = crate::error::ErrorBody, description = "already a member"),
    ),
)]
pub async fn invite(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    body: web::Json<InviteRequest>,
) -> ApiResult<HttpResponse> {
    let target = UserId(required("user_id", body.into_inner().user_id)?);
    chat_services::invite_member(&state.store, user.id, ChatId(path.into_inner()), target).await?;
    Ok(HttpResponse::Created().finish())
}

/// Removes a member from a group (owners, and admins for plain members).
///
/// `DELETE /api/v1/chats/{id}/members/{user_id}` → 204; the owner removes anyone, an admin plain
/// members. 403 otherwise (and for yourself: leave instead), 404 not a member.
#[utoipa::path(
    delete,
    path = "/api/v1/chats/{id}/members/{user_id}",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 403, body = crate::error::ErrorBody, description = "by the role rules"),
        (status = 404, body = crate::error::ErrorBody, description = "not a member"),
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (chat, target) = path.into_inner();
    chat_services::remove_member(&state.store, user.id, ChatId(chat), UserId(target)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `PATCH /api/v1/chats/{id}/members/{user_id}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RoleRequest {
    /// `admin`, `member`, or `owner` (hands ownership over; you become an admin).
    #[schema(required = true, value_type = String, pattern = "^(admin|member|owner)$")]
    role: Option<String>,
}

/// Changes a member's role or hands over ownership (the owner only).
///
/// `PATCH /api/v1/chats/{id}/members/{user_id} {"role":"admin"|"member"|"owner"}` → 204; the
/// owner promotes, demotes, or hands over ownership (`owner`; they become an admin).
/// 403 for others, 404 not a member, 400 bad role or your own.
#[utoipa::path(
    patch,
    path = "/api/v1/chats/{id}/members/{user_id}",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    request_body = RoleRequest,
    responses(
        (status = 204, description = "changed"),
        (status = 400, body = crate::error::ErrorBody, description = "bad role or your own"),
        (status = 403, body = crate::error::ErrorBody, description = "not the owner"),
        (status = 404, body = crate::error::ErrorBody, description = "not a member"),
    ),
)]
pub async fn set_role(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(i64, i64)>,
    body: web::Json<RoleRequest>,
) -> ApiResult<HttpResponse> {
    let (chat, target) = path.into_inner();
    let role = required("role", body.into_inner().role)?;
    let role = MemberRole::parse(&role)
        .map_err(|_| DomainError::invalid("role", "Must be \"owner\", \"admin\" or \"member\"."))?;
    chat_services::set_member_role(&state.store, user.id, ChatId(chat), UserId(target), role)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
