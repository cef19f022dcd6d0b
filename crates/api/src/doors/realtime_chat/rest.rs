//! Door 002's REST routes.
//!
//! Success bodies keep the original's texts, typos included ("Succussfly"); errors are `{"detail"}`
//! with 400/403/404/409 (docs/doors.md decision: the original answered 500 for every domain error).

use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{GroupName, Title};
use chat_selectors::{
    friends_of, group_by_name, require_friend, require_member, user_by_id, user_by_username,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::CurrentUser;
use crate::doors::required;
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
/// A friend as door 002 lists it: `{"username"}`.
pub struct Username {
    username: String,
}

/// Lists the caller's friends (door 002).
///
/// `GET /api/v1/chat/list-friends` → 200 `[{"username"}]`.
#[utoipa::path(
    get,
    path = "/api/v1/chat/list-friends",
    tag = "door 002",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Username>)),
)]
pub async fn list_friends(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> ApiResult<web::Json<Vec<Username>>> {
    let friends = friends_of(&state.store, user.id).await?;
    Ok(web::Json(
        friends
            .into_iter()
            .map(|f| Username {
                username: f.username,
            })
            .collect(),
    ))
}

/// Adds a user to the caller's friend list (door 002).
///
/// `POST /api/v1/chat/add-friend/{username}` → 200 `"Succussfly added friend"`.
/// 404 unknown user, 409 already a friend, 400 yourself.
#[utoipa::path(
    post,
    path = "/api/v1/chat/add-friend/{username}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = String, content_type = "application/json", description = "the JSON string Succussfly added friend (sic)"),
        (status = 400, body = crate::error::ErrorBody, description = "yourself"),
        (status = 404, body = crate::error::ErrorBody, description = "no such user"),
        (status = 409, body = crate::error::ErrorBody, description = "already a friend"),
    ),
)]
pub async fn add_friend(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<&'static str>> {
    chat_services::add_friend(&state.store, user.id, &path).await?;
    Ok(web::Json("Succussfly added friend"))
}

/// Removes a user from the caller's friend list (door 002).
///
/// `POST /api/v1/chat/remove-friend/{username}` → 200 `"Succussfly removed friend"`.
/// 404 unknown user or not a friend.
#[utoipa::path(
    post,
    path = "/api/v1/chat/remove-friend/{username}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = String, content_type = "application/json", description = "the JSON string Succussfly removed friend (sic)"),
        (status = 403, body = crate::error::ErrorBody, description = "not a friend"),
        (status = 404, body = crate::error::ErrorBody, description = "no such user"),
    ),
)]
pub async fn remove_friend(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<&'static str>> {
    chat_services::remove_friend(&state.store, user.id, &path).await?;
    Ok(web::Json("Succussfly removed friend"))
}

/// Body of `create-group`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateGroupRequest {
    /// 1-64 characters of letters (any script), digits, `_ . -` (it is part of the socket URL);
    /// the pattern shows the ASCII part of the rule.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    name: Option<String>,
}

/// Creates a group by name (door 002).
///
/// `POST /api/v1/chat/create-group {"name"}` → 201
/// `{"name","users":[{"username"}],"chat":{"name","chat_type":"group","thread_id"}}`; the creator
/// is the owner and first member. 400 bad name, 409 taken.
#[utoipa::path(
    post,
    path = "/api/v1/chat/create-group",
    operation_id = "door002_create_group",
    tag = "door 002",
    security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses(
        (status = 201, description = "name, users and chat"),
        (status = 400, body = crate::error::ErrorBody, description = "bad name"),
        (status = 409, body = crate::error::ErrorBody, description = "taken"),
    ),
)]
pub async fn create_group(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Json<CreateGroupRequest>,
) -> ApiResult<HttpResponse> {
    let raw = required("name", body.into_inner().name)?;
    let name = GroupName::parse(&raw)?;
    let title = Title::parse(&raw)?;
    let chat =
        chat_services::create_group(&state.store, user.id, Some(&name), &title, false, &[]).await?;
    let owner = user_by_id(&state.store, user.id).await?;
    Ok(HttpResponse::Created().json(json!({
        "name": name.as_str(),
        "users": [{"username": owner.username}],
        "chat": {"name": name.as_str(), "chat_type": "group", "thread_id": chat.id},
    })))
}

/// Joins a group by name (door 002).
///
/// `POST /api/v1/chat/join-group/{name}` → 200 `"Succussfully joined."`. 404, 409 already in.
#[utoipa::path(
    post,
    path = "/api/v1/chat/join-group/{name}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, body = String, content_type = "application/json"),
        (status = 404, body = crate::error::ErrorBody, description = "no such group"),
        (status = 409, body = crate::error::ErrorBody, description = "already a member"),
    ),
)]
pub async fn join_group(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<&'static str>> {
    let chat = group_by_name(&state.store, &path).await?;
    chat_services::join_group(&state.store, user.id, chat.id).await?;
    Ok(web::Json("Succussfully joined."))
}

/// Leaves a group by name (door 002).
///
/// `POST /api/v1/chat/leave-group/{name}` → 200 `"Succussfully removed."`. 404, 403 not in.
#[utoipa::path(
    post,
    path = "/api/v1/chat/leave-group/{name}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, body = String, content_type = "application/json"),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
        (status = 404, body = crate::error::ErrorBody, description = "no such group"),
    ),
)]
pub async fn leave_group(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<&'static str>> {
    let chat = group_by_name(&state.store, &path).await?;
    chat_services::leave_group(&state.store, user.id, chat.id).await?;
    Ok(web::Json("Succussfully removed."))
}

/// Deletes a group the caller owns (door 002).
///
/// `POST /api/v1/chat/delete-group/{name}` → 200 with an empty body. 404, 403 not the owner.
#[utoipa::path(
    post,
    path = "/api/v1/chat/delete-group/{name}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "deleted"),
        (status = 403, body = crate::error::ErrorBody, description = "not the owner"),
        (status = 404, body = crate::error::ErrorBody, description = "no such group"),
    ),
)]
pub async fn delete_group(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let chat = group_by_name(&state.store, &path).await?;
    chat_services::delete_group(&state.store, user.id, chat.id).await?;
    Ok(HttpResponse::Ok().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
/// A WebSocket address: `{"url"}`.
pub struct SocketUrl {
    url: String,
}

/// A socket address on this server, carrying `token`: the scheme and host of `CHAT_PUBLIC_URL`
/// when set; else, behind a trusted proxy (`CHAT_TRUST_PROXY`), those it forwards
/// (`Forwarded`/`X-Forwarded-Host`/`X-Forwarded-Proto`); else the request's own `Host` on
/// this connection's scheme. A client's forwarded headers are never trusted by default: they
/// would point the token to any host.
fn socket_url(
    req: &HttpRequest,
    settings: &crate::config::Settings,
    path: &str,
    token: &str,
) -> SocketUrl {
    let (secure, host) = match &settings.public_url {
        Some(url) => {
            let url = url.trim_end_matches('/');
            match url.strip_prefix("https://") {
                Some(host) => (true, host.to_owned()),
                None => (false, url.trim_start_matches("http://").to_owned()),
            }
        }
        None if settings.trust_proxy => {
            let info = req.connection_info();
            (info.scheme() == "https", info.host().to_owned())
        }
        None => {
            let host = req
                .headers()
                .get(actix_web::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| req.uri().authority().map(|a| a.to_string()))
                .unwrap_or_else(|| req.app_config().host().to_owned());
            (req.app_config().secure(), host)
        }
    };
    let scheme = if secure { "wss" } else { "ws" };
    SocketUrl {
        url: format!("{scheme}://{host}{path}?token={token}"),
    }
}

/// Returns the WebSocket URL of the direct chat with a friend (door 002).
///
/// `GET /api/v1/chat/chat-friend/{username}` → 200 `{"url":"ws://<host>/ws/user/<username>/?token=<access>"}`.
/// 404 unknown user, 403 not in your friend list.
#[utoipa::path(
    get,
    path = "/api/v1/chat/chat-friend/{username}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = SocketUrl),
        (status = 403, body = crate::error::ErrorBody, description = "not a friend"),
        (status = 404, body = crate::error::ErrorBody, description = "no such user"),
    ),
)]
pub async fn chat_friend(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<SocketUrl>> {
    let friend = user_by_username(&state.store, &path).await?;
    require_friend(&state.store, user.id, friend.id).await?;
    Ok(web::Json(socket_url(
        &req,
        &state.settings,
        &format!("/ws/user/{}/", friend.username),
        &user.token,
    )))
}

/// Returns the WebSocket URL of a group (door 002).
///
/// `GET /api/v1/chat/chat-group/{name}` → 200 `{"url":"ws://<host>/ws/group/<name>/?token=<access>"}`.
/// 404 unknown group, 403 not a member.
#[utoipa::path(
    get,
    path = "/api/v1/chat/chat-group/{name}",
    tag = "door 002",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, body = SocketUrl),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
        (status = 404, body = crate::error::ErrorBody, description = "no such group"),
    ),
)]
pub async fn chat_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> ApiResult<web::Json<SocketUrl>> {
    let chat = group_by_name(&state.store, &path).await?;
    require_member(&state.store, chat.id, user.id).await?;
    let name = chat.name.unwrap_or_default();
    Ok(web::Json(socket_url(
        &req,
        &state.settings,
        &format!("/ws/group/{name}/"),
        &user.token,
    )))
}
