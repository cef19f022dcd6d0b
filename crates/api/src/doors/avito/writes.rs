//! Door 001's writes: `/users/add`, `/chats/add`, `/messages/add`, each answering 201 `{"id"}`.
//!
//! When a request is wrong in several ways, the answer names the first problem in this order:
//! the body's shape and its ids' types (400), an unknown id (404), the author not in the chat
//! (403), then a missing, mistyped or invalid name or text (400) — so a client that sends an
//! unknown id hears about the id.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{ChatId, ChatName, MessageText, UserId, Username};
use chat_selectors::{require_member, require_sandbox_users, sandbox_chat, sandbox_user};
use serde_json::json;

use super::AvitoResult;
use super::body::{Body, bad, required};
use crate::state::AppState;

/// Most users a chat is created with.
const MAX_CHAT_USERS: usize = 1_000;

fn created(id: i64) -> HttpResponse {
    HttpResponse::Created().json(json!({"id": id}))
}

/// `POST /users/add {"username"}` → 201 `{"id"}`: a user of the sandbox, its name free text
/// (1–64 characters, RFC 8266); 409 when the name (in any case, or a lookalike) is taken there.
pub(super) async fn add_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> AvitoResult<HttpResponse> {
    let body = Body::read(&state, &req, payload).await?;
    let username = Username::parse_nickname(required("username", body.text("username")?)?)?;
    let user = chat_services::register_sandbox_user(&state.store, &username).await?;
    Ok(created(user.id.0))
}

/// `POST /chats/add {"name","users":[id,...]}` → 201 `{"id"}`. Users de-duplicated, at most
/// 1000; 404 when any is unknown or not a door 001 user (nothing created, and said before a
/// problem with the name), 409 when the name is taken.
pub(super) async fn add_chat(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> AvitoResult<HttpResponse> {
    let body = Body::read(&state, &req, payload).await?;
    let users: Vec<UserId> = required("users", body.ids("users", "user")?)?
        .into_iter()
        .map(UserId)
        .collect();
    if users.is_empty() {
        return Err(bad("users: Must list at least one user.".into()));
    }
    if users.len() > MAX_CHAT_USERS {
        return Err(bad(format!(
            "users: A chat takes at most {MAX_CHAT_USERS} users, not {}.",
            users.len()
        )));
    }
    let name = body
        .text("name")
        .and_then(|name| required("name", name))
        .and_then(|name| ChatName::parse(name).map_err(Into::into));
    let name = match name {
        Ok(name) => name,
        Err(problem) => {
            // An unknown user is the first thing to tell.
            require_sandbox_users(&state.store, &users).await?;
            return Err(problem);
        }
    };
    let chat = chat_services::create_sandbox_chat(&state.store, &name, &users).await?;
    Ok(created(chat.id.0))
}

/// `POST /messages/add {"chat","author","text"}` → 201 `{"id"}`; 404 unknown chat or author (or
/// one of another door), 403 author not in the chat, 400 blank or too long text.
pub(super) async fn add_message(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> AvitoResult<HttpResponse> {
    let body = Body::read(&state, &req, payload).await?;
    let chat = ChatId(required("chat", body.id("chat", "chat")?)?);
    let author = UserId(required("author", body.id("author", "user")?)?);
    sandbox_chat(&state.store, chat).await?;
    sandbox_user(&state.store, author).await?;
    require_member(&state.store, chat, author).await?;
    let text = required("text", body.text("text")?)?;
    let text = MessageText::parse(text, state.settings.max_message_chars)?;
    let sent = chat_services::send_sandbox_message(&state.store, author, chat, &text).await?;
    Ok(created(sent.message.id.0))
}
