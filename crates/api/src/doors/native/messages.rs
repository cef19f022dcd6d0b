//! Messages: history pages, sending, editing, deleting and read markers.

use crate::auth::CurrentUser;
use crate::doors::{required, validated};
use crate::error::ApiResult;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chat_domain::{ChatId, ClientId, MessageText};
use chat_selectors::{HistoryCursor, MessagePage, MessageView, message_history, require_member};
use serde::Deserialize;

use super::chats::bounded;

/// Query of the history route.
#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
}

/// Returns a page of a chat's messages, oldest first.
///
/// `GET /api/v1/chats/{id}/messages?before=&after=&limit=` → 200 `{"messages":[...],"has_more"}`,
/// oldest first: the newest `limit` (default 50, max 200), or those below `before` / above
/// `after`, or with both the window between them. 400 for a bad limit, 403 for non-members, 404
/// for no chat.
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path),
        ("before" = Option<i64>, Query, description = "only messages with a lower seq (scrolling back)"),
        ("after" = Option<i64>, Query, description = "only messages with a higher seq, from the oldest (catching up); with `before`: the window between them"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "messages, default 50"),
    ),
    responses(
        (status = 200, body = chat_selectors::MessagePage, description = "oldest first"),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
        (status = 404, body = crate::error::ErrorBody, description = "no chat"),
    ),
)]
pub async fn history(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> ApiResult<web::Json<MessagePage>> {
    let chat = ChatId(path.into_inner());
    let limit = bounded("limit", query.limit, 50, 200)?;
    let cursor = match (query.before, query.after) {
        (None, None) => HistoryCursor::Latest,
        (Some(before), None) => HistoryCursor::Before(before),
        (None, Some(after)) => HistoryCursor::After(after),
        (Some(before), Some(after)) => HistoryCursor::Between { after, before },
    };
    require_member(&state.store, chat, user.id).await?;
    Ok(web::Json(
        message_history(&state.store, chat, cursor, limit).await?,
    ))
}

/// Body of `POST /api/v1/chats/{id}/messages`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SendRequest {
    /// 1-4096 characters (`CHAT_MAX_MESSAGE_CHARS`), not blank, no NUL.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 4096, pattern = r"\S")]
    text: Option<String>,
    /// Your key for this send, 1-64 characters without control characters: sending it again
    /// returns the original message (200) instead of storing a second one.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    client_id: Option<String>,
}

/// Sends a message to a chat, once per client id (a resend returns the original).
///
/// `POST /api/v1/chats/{id}/messages {"text","client_id"?}` → 201 the stored message, or 200 the
/// original when `client_id` was sent before. 400 for blank/too long text, 403 for non-members.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = SendRequest,
    responses(
        (status = 201, body = chat_selectors::MessageView, description = "stored"),
        (status = 200, body = chat_selectors::MessageView, description = "the original (same client_id)"),
        (status = 400, body = crate::error::ErrorBody, description = "blank or too long"),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
        (status = 409, body = crate::error::ErrorBody, description = "this client_id was used for a message in another chat"),
        (status = 429, body = crate::error::ErrorBody, description = "over the send limit"),
    ),
)]
pub async fn send(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    body: web::Json<SendRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let max = state.settings.max_message_chars;
    let text = required("text", body.text.as_deref()).and_then(|t| MessageText::parse(t, max));
    let client_id = body.client_id.as_deref().map(ClientId::parse).transpose();
    let (text, client_id) = validated!(text, client_id)?;
    let chat = ChatId(path.into_inner());
    let sent =
        chat_services::send_message(&state.store, user.id, chat, &text, client_id.as_ref()).await?;
    Ok(if sent.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(sent.message))
}

/// Body of `PATCH /api/v1/chats/{id}/messages/{seq}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct EditRequest {
    /// The new text: 1-4096 characters, not blank, no NUL.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 4096, pattern = r"\S")]
    text: Option<String>,
}

/// Edits one of the caller's messages.
///
/// `PATCH /api/v1/chats/{id}/messages/{seq} {"text"}` → 200 the edited message (`edited_at`
/// set). Author only: 403 otherwise; 404 for no such (or a deleted) message.
#[utoipa::path(
    patch,
    path = "/api/v1/chats/{id}/messages/{seq}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("seq" = i64, Path)),
    request_body = EditRequest,
    responses(
        (status = 200, body = chat_selectors::MessageView),
        (status = 403, body = crate::error::ErrorBody, description = "not the author"),
        (status = 404, body = crate::error::ErrorBody, description = "no such message"),
    ),
)]
pub async fn edit(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(i64, i64)>,
    body: web::Json<EditRequest>,
) -> ApiResult<web::Json<MessageView>> {
    let (chat, seq) = path.into_inner();
    let max = state.settings.max_message_chars;
    let text = required("text", body.into_inner().text.as_deref())
        .and_then(|t| MessageText::parse(t, max))?;
    let message =
        chat_services::edit_message(&state.store, user.id, ChatId(chat), seq, &text).await?;
    Ok(web::Json(message))
}

/// Deletes one of the caller's messages, leaving a tombstone.
///
/// `DELETE /api/v1/chats/{id}/messages/{seq}` → 204; the message becomes a tombstone. Author
/// only: 403 otherwise; 404 for no such (or an already deleted) message.
#[utoipa::path(
    delete,
    path = "/api/v1/chats/{id}/messages/{seq}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("seq" = i64, Path)),
    responses(
        (status = 204, description = "tombstoned"),
        (status = 403, body = crate::error::ErrorBody, description = "not the author"),
        (status = 404, body = crate::error::ErrorBody, description = "no such message"),
    ),
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (chat, seq) = path.into_inner();
    chat_services::delete_message(&state.store, user.id, ChatId(chat), seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/v1/chats/{id}/read`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReadRequest {
    /// The seq read up to: at most the chat's `last_seq` (else 400); a lower one than the
    /// marker's changes nothing.
    #[schema(required = true, value_type = i64, minimum = 0)]
    #[serde(default, deserialize_with = "crate::doors::integral")]
    seq: Option<i64>,
}

/// Moves the caller's read marker in a chat.
///
/// `POST /api/v1/chats/{id}/read {"seq"}` → 204; the read marker moves to `seq` (never
/// backwards). 400 for a seq beyond the chat's `last_seq`, 403 for non-members.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/read",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body = ReadRequest,
    responses(
        (status = 204, description = "marker moved (never backwards)"),
        (status = 400, body = crate::error::ErrorBody, description = "beyond last_seq"),
        (status = 403, body = crate::error::ErrorBody, description = "not a member"),
    ),
)]
pub async fn read(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    body: web::Json<ReadRequest>,
) -> ApiResult<HttpResponse> {
    let seq = required("seq", body.into_inner().seq)?;
    chat_services::mark_read(&state.store, user.id, ChatId(path.into_inner()), seq).await?;
    Ok(HttpResponse::NoContent().finish())
}
