//! Door 001, "SIMPLE HTTP CHAT" (the Avito trainee task, seed 001): five `POST` routes with JSON
//! bodies and no auth.
//!
//! Errors are `{"error": "<description>"}` with 400 (bad body or field), 403 (author not in the
//! chat), 404 (unknown user/chat/author), 409 (duplicate username or chat name), 413 (body over
//! `CHAT_MAX_BODY_BYTES`) — docs/doors.md, "Door 001".
//!
//! Anyone who reaches it acts as any of its users, so it is off by default
//! (`CHAT_DOOR_AVITO=true` turns it on), is served only on its own listener
//! (`CHAT_AVITO_LISTEN`, loopback by default), and is a sandbox: it creates, lists, reads and
//! writes only its own users and chats. A user or chat id of another door is answered as unknown
//! (404), its usernames are a namespace of their own (an anonymous caller takes no name from the
//! other doors), its chats take no group name of theirs, and its sends spend only its own users'
//! send quota. The other doors do not reach its users or chats either.
//!
//! Decisions where the task is silent: usernames follow the native rules (3–32 characters of
//! letters, digits, `_ . -`, canonical like every username), chat names the group-name rules
//! (1–64 of the same), unique among door 001's chats; a chat is a private group whose first
//! listed user is its owner; `/messages/get` lists text messages only (no deleted ones), at most
//! the newest 10 000; `/chats/get` at most 500 chats; a chat is created with at most 1000 users.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use chat_domain::{ChatId, DomainError, GroupName, MessageText, Title, UserId, Username};
use chat_selectors::{sandbox_chat, sandbox_chats_with_members, sandbox_user, text_messages};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Most messages `/messages/get` returns (the newest ones).
const MAX_MESSAGES: i64 = 10_000;
/// Most chats `/chats/get` returns (the most recently active).
const MAX_CHATS: i64 = 500;
/// Most users a chat is created with.
const MAX_CHAT_USERS: usize = 1_000;

/// Mounts door 001's routes (on its own listener), bodies limited to `max_body_bytes`.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    for (path, handler) in [
        ("/users/add", web::post().to(add_user)),
        ("/chats/add", web::post().to(add_chat)),
        ("/messages/add", web::post().to(add_message)),
        ("/chats/get", web::post().to(get_chats)),
        ("/messages/get", web::post().to(get_messages)),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body_bytes)
                        .error_handler(|err, _| {
                            use actix_web::error::JsonPayloadError as E;
                            let status = match err {
                                E::Overflow { .. } | E::OverflowKnownLength { .. } => {
                                    StatusCode::PAYLOAD_TOO_LARGE
                                }
                                _ => StatusCode::BAD_REQUEST,
                            };
                            AvitoError(status, format!("invalid body: {err}"), None).into()
                        }),
                )
                .route(handler)
                .default_service(web::to(|| async {
                    AvitoError(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method not allowed: use POST".into(),
                        None,
                    )
                    .error_response()
                })),
        );
    }
}

/// Unknown routes on door 001's own listener: 404 `{"error": "not found"}`.
pub async fn not_found() -> HttpResponse {
    AvitoError(StatusCode::NOT_FOUND, "not found".into(), None).error_response()
}

/// An error in door 001's format: `{"error": "<description>"}`.
#[derive(Debug)]
struct AvitoError(StatusCode, String, Option<u64>);

impl std::fmt::Display for AvitoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl ResponseError for AvitoError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.0);
        if let Some(secs) = self.2 {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(json!({"error": self.1}))
    }
}

impl From<ApiError> for AvitoError {
    fn from(error: ApiError) -> Self {
        Self(
            error.status(),
            error.detail().to_owned(),
            error.retry_after(),
        )
    }
}

macro_rules! via_api_error {
    ($($t:ty),+) => {$(
        impl From<$t> for AvitoError {
            fn from(error: $t) -> Self {
                ApiError::from(error).into()
            }
        }
    )+};
}
via_api_error!(DomainError, chat_services::Error);

type AvitoResult<T> = Result<T, AvitoError>;

/// An id given as a JSON number or a numeric string (the task allows either).
#[derive(Debug, Clone, Copy)]
struct FlexId(i64);

impl<'de> Deserialize<'de> for FlexId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(s) => s
                .trim()
                .parse()
                .map(Self)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a numeric id"))),
        }
    }
}

fn required<T>(field: &str, value: Option<T>) -> AvitoResult<T> {
    value.ok_or_else(|| {
        AvitoError(
            StatusCode::BAD_REQUEST,
            format!("{field} is required"),
            None,
        )
    })
}

fn created(id: i64) -> HttpResponse {
    HttpResponse::Created().json(json!({"id": id}))
}

/// Body of `/users/add`.
#[derive(Deserialize)]
struct AddUser {
    username: Option<String>,
}

/// `POST /users/add {"username"}` → 201 `{"id"}`: a user of the sandbox; 409 when the name (or a
/// lookalike) is taken there.
async fn add_user(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AddUser>,
) -> AvitoResult<HttpResponse> {
    let error_body = |e: &ApiError| json!({"error": e.detail()}).to_string();
    if let Some(refused) = super::auth_limited(&state, &req, "application/json", error_body).await {
        return Ok(refused);
    }
    let username = Username::parse(&required("username", body.into_inner().username)?)?;
    let user = chat_services::register_sandbox_user(&state.store, &username).await?;
    Ok(created(user.id.0))
}

/// Body of `/chats/add`.
#[derive(Deserialize)]
struct AddChat {
    name: Option<String>,
    users: Option<Vec<FlexId>>,
}

/// `POST /chats/add {"name","users":[id,...]}` → 201 `{"id"}`. Users de-duplicated; 404 when
/// any is unknown or not a door 001 user (nothing created), 409 when the name is taken.
async fn add_chat(
    state: web::Data<AppState>,
    body: web::Json<AddChat>,
) -> AvitoResult<HttpResponse> {
    let body = body.into_inner();
    let raw_name = required("name", body.name)?;
    GroupName::parse(&raw_name)?;
    let title = Title::parse(&raw_name)?;
    let users: Vec<UserId> = required("users", body.users)?
        .into_iter()
        .map(|id| UserId(id.0))
        .collect();
    if users.is_empty() {
        return Err(AvitoError(
            StatusCode::BAD_REQUEST,
            "users must not be empty".into(),
            None,
        ));
    }
    if users.len() > MAX_CHAT_USERS {
        let problem = format!("a chat takes at most {MAX_CHAT_USERS} users");
        return Err(AvitoError(StatusCode::BAD_REQUEST, problem, None));
    }
    let chat = chat_services::create_sandbox_chat(&state.store, &title, &users).await?;
    Ok(created(chat.id.0))
}

/// Body of `/messages/add`.
#[derive(Deserialize)]
struct AddMessage {
    chat: Option<FlexId>,
    author: Option<FlexId>,
    text: Option<String>,
}

/// `POST /messages/add {"chat","author","text"}` → 201 `{"id"}`; 404 unknown chat or author (or
/// one of another door), 403 author not in the chat, 400 blank or too long text.
async fn add_message(
    state: web::Data<AppState>,
    body: web::Json<AddMessage>,
) -> AvitoResult<HttpResponse> {
    let body = body.into_inner();
    let chat = ChatId(required("chat", body.chat)?.0);
    let author = UserId(required("author", body.author)?.0);
    let text = MessageText::parse(
        &required("text", body.text)?,
        state.settings.max_message_chars,
    )?;
    sandbox_chat(&state.store, chat).await?;
    sandbox_user(&state.store, author).await?;
    let sent = chat_services::send_message(&state.store, author, chat, &text, None).await?;
    Ok(created(sent.message.id.0))
}

/// Body of `/chats/get`.
#[derive(Deserialize)]
struct GetChats {
    user: Option<FlexId>,
}

/// `POST /chats/get {"user"}` → 200 `[{"id","name","users":[ids],"created_at"}]`, the chat with
/// the newest message first; 404 unknown user (or one of another door).
async fn get_chats(
    state: web::Data<AppState>,
    body: web::Json<GetChats>,
) -> AvitoResult<HttpResponse> {
    let user = UserId(required("user", body.into_inner().user)?.0);
    sandbox_user(&state.store, user).await?;
    Ok(HttpResponse::Ok().json(sandbox_chats_with_members(&state.store, user, MAX_CHATS).await?))
}

/// Body of `/messages/get`.
#[derive(Deserialize)]
struct GetMessages {
    chat: Option<FlexId>,
}

/// `POST /messages/get {"chat"}` → 200 `[{"id","chat","author","text","created_at"}]`, oldest
/// first; 404 unknown chat (or one of another door).
async fn get_messages(
    state: web::Data<AppState>,
    body: web::Json<GetMessages>,
) -> AvitoResult<HttpResponse> {
    let chat = ChatId(required("chat", body.into_inner().chat)?.0);
    sandbox_chat(&state.store, chat).await?;
    let messages: Vec<_> = text_messages(&state.store, chat, MAX_MESSAGES)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "chat": m.chat_id,
                "author": m.author.map(|a| a.id),
                "text": m.text,
                "created_at": m.created_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(messages))
}
