//! The gateway's frames: what a client may send, parsed into typed actions, and what the server
//! renders (docs/native-api.md, "Client → server actions" and "Server → client events").
//!
//! A client frame is parsed in two steps: first its `action` tag (a missing or non-string tag is
//! `invalid{"action"}`, an unknown one `unknown_action`), then the action's own fields. A field of
//! the wrong type is `invalid{"<field>": ["Must be an integer." | "Must be a string." | ...]}`;
//! fields the server does not know are ignored.

use actix_web::http::StatusCode;
use chat_domain::{ChatId, DomainError, ForbiddenReason};
use chat_selectors::{ChatEvent, MessageView};
use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::Error as _};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::realtime::{Event, FrameKind};

/// Per-chat seqs a client asks to resume from, in the order given.
pub type Resume = Vec<(ChatId, i64)>;

/// The `action` of a client frame (the first parsing step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Auth,
    SendMessage,
    RetrieveMessage,
    Sync,
    Typing,
    Read,
    Presence,
    Ping,
}

/// A client frame of an authenticated socket, with its fields typed.
#[derive(Debug)]
pub enum ClientFrame {
    /// `{"action":"auth"}` again: refused, the socket is authenticated already.
    Auth,
    /// `{"action":"send_message","chat_id","message","client_id"?}`.
    SendMessage(SendMessage),
    /// `{"action":"retrieve_message","chat_id","number"?,"before"?}`.
    RetrieveMessage(RetrieveMessage),
    /// `{"action":"sync","chats":{"<chat_id>": <seq>}}`.
    Sync(SyncFrame),
    /// `{"action":"typing","chat_id"}`.
    Typing(InChat),
    /// `{"action":"read","chat_id","seq"}`.
    Read(ReadFrame),
    /// `{"action":"presence","chat_id"}`.
    Presence(InChat),
    /// `{"action":"ping"}`.
    Ping,
}

/// The fields of `send_message`.
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    /// The chat; required.
    #[serde(default, deserialize_with = "integer")]
    pub chat_id: Option<i64>,
    /// The text; required.
    #[serde(default, deserialize_with = "string")]
    pub message: Option<String>,
    /// The client's idempotency key; optional.
    #[serde(default, deserialize_with = "string")]
    pub client_id: Option<String>,
}

/// The fields of `retrieve_message`.
#[derive(Debug, Deserialize)]
pub struct RetrieveMessage {
    /// The chat; required.
    #[serde(default, deserialize_with = "integer")]
    pub chat_id: Option<i64>,
    /// How many messages, 1..=200 (default 50).
    #[serde(default, deserialize_with = "integer")]
    pub number: Option<i64>,
    /// Only messages with a lower seq.
    #[serde(default, deserialize_with = "integer")]
    pub before: Option<i64>,
}

/// The fields of `sync`.
#[derive(Debug, Deserialize)]
pub struct SyncFrame {
    /// Where the client stands per chat; required.
    #[serde(default, deserialize_with = "resume")]
    pub chats: Option<Resume>,
}

/// The fields of an action about one chat (`typing`, `presence`).
#[derive(Debug, Deserialize)]
pub struct InChat {
    /// The chat; required.
    #[serde(default, deserialize_with = "integer")]
    pub chat_id: Option<i64>,
}

/// The fields of `read`.
#[derive(Debug, Deserialize)]
pub struct ReadFrame {
    /// The chat; required.
    #[serde(default, deserialize_with = "integer")]
    pub chat_id: Option<i64>,
    /// The read marker's new seq; required.
    #[serde(default, deserialize_with = "integer")]
    pub seq: Option<i64>,
}

/// The first frame of a socket opened without a token: `{"action":"auth","token","sync"?}`.
#[derive(Debug, Deserialize)]
pub struct AuthFrame {
    /// The access token.
    pub token: String,
    /// Where to resume; optional.
    #[serde(default, deserialize_with = "resume")]
    pub sync: Option<Resume>,
}

impl ClientFrame {
    /// Parses a frame already read as JSON.
    ///
    /// For an action about a chat, its `chat_id` is read and passed to `in_chat` (the membership
    /// check) before any other field, so a refusal comes before a malformed field, as it always
    /// did. Errors: see the module documentation, and `in_chat`'s.
    pub fn parse(
        frame: Value,
        in_chat: impl FnOnce(Option<i64>) -> Result<ChatId, ApiError>,
    ) -> Result<Self, ApiError> {
        let action = action(&frame)?;
        if matches!(
            action,
            Action::SendMessage
                | Action::RetrieveMessage
                | Action::Typing
                | Action::Read
                | Action::Presence
        ) {
            let chat: InChat = fields(frame.clone())?;
            in_chat(chat.chat_id)?;
        }
        Ok(match action {
            Action::Auth => Self::Auth,
            Action::SendMessage => Self::SendMessage(fields(frame)?),
            Action::RetrieveMessage => Self::RetrieveMessage(fields(frame)?),
            Action::Sync => Self::Sync(fields(frame)?),
            Action::Typing => Self::Typing(fields(frame)?),
            Action::Read => Self::Read(fields(frame)?),
            Action::Presence => Self::Presence(fields(frame)?),
            Action::Ping => Self::Ping,
        })
    }
}

impl AuthFrame {
    /// The auth frame in `text`, or `None` when `text` is not JSON, not an `auth` action or has
    /// no string `token`.
    ///
    /// Errors: a malformed `sync` (`invalid{"chats"}`).
    pub fn parse(text: &str) -> Result<Option<Self>, ApiError> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return Ok(None);
        };
        let has_token = matches!(frame.get("token"), Some(Value::String(_)));
        match action(&frame) {
            // A bad `sync` is reported as the `sync` action reports it: `invalid{"chats"}`.
            Ok(Action::Auth) if has_token => fields_named(frame, &[("sync", "chats")]).map(Some),
            _ => Ok(None),
        }
    }
}

/// The frame's tag. Errors: `invalid{"action"}`, `unknown_action`.
fn action(frame: &Value) -> Result<Action, ApiError> {
    let Some(tag @ Value::String(name)) = frame.get("action") else {
        return Err(invalid("action", "Must be a string."));
    };
    Action::deserialize(tag).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_action",
            format!(
                "Unknown action {name:?}: use send_message, retrieve_message, sync, typing, read, presence or ping."
            ),
        )
    })
}

/// An action's fields. Errors: `invalid{"<field>": [problem]}` for the first field in error.
fn fields<T: DeserializeOwned>(frame: Value) -> Result<T, ApiError> {
    fields_named(frame, &[])
}

/// [`fields`], reporting a field in error under another name where `names` says (key → name).
fn fields_named<T: DeserializeOwned>(frame: Value, names: &[(&str, &str)]) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(frame).map_err(|e| {
        let field = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => "action".to_owned(),
        };
        let field = names
            .iter()
            .find(|(key, _)| *key == field)
            .map_or(field.as_str(), |(_, name)| name);
        invalid(field, &e.into_inner().to_string())
    })
}

/// An optional JSON integer (`null` counts as missing). Errors: "Must be an integer."
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("Must be an integer.")),
    }
}

/// An optional JSON string (`null` counts as missing). Errors: "Must be a string."
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(D::Error::custom("Must be a string.")),
    }
}

/// `{"<chat_id>": <seq>, ...}` (`null` counts as missing). Errors: the problem as text.
fn resume<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Resume>, D::Error> {
    let wanted = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(wanted)) => wanted,
        Some(_) => return Err(D::Error::custom(NOT_A_RESUME_OBJECT)),
    };
    wanted
        .iter()
        .map(|(id, seq)| {
            let chat = id
                .parse::<i64>()
                .map(ChatId)
                .map_err(|_| D::Error::custom("Keys must be chat ids."))?;
            let seq = seq
                .as_i64()
                .filter(|s| *s >= 0)
                .ok_or_else(|| D::Error::custom("Values must be seqs (integers >= 0)."))?;
            Ok((chat, seq))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The problem with a `sync` that is missing or not an object.
pub const NOT_A_RESUME_OBJECT: &str = "Must be an object of chat_id: last_seq.";

/// A message event as the gateway sends it, live or replayed: the event with the message's
/// `seq` repeated at the top (docs/native-api.md, "Server → client events").
#[derive(serde::Serialize)]
struct MessageEventFrame<'a> {
    event: &'static str,
    chat_id: ChatId,
    seq: i64,
    message: &'a MessageView,
}

/// The gateway frame of `event` (`None` if it cannot be serialized).
///
/// Message events become `{"event","chat_id","seq","message"}`, everything else is the bus
/// event as it is. Written straight from the event, with no intermediate `serde_json::Value` (it
/// is rendered once per event and process, on the fan-out path; see `benches/frames.rs`).
pub fn event_frame(event: &ChatEvent) -> Option<String> {
    let (name, chat_id, message) = match event {
        ChatEvent::MessageCreated {
            chat_id, message, ..
        } => ("message.created", chat_id, message),
        ChatEvent::MessageUpdated { chat_id, message } => ("message.updated", chat_id, message),
        ChatEvent::MessageDeleted { chat_id, message } => ("message.deleted", chat_id, message),
        other => return serde_json::to_string(other).ok(),
    };
    message_frame(name, *chat_id, message)
}

fn message_frame(name: &'static str, chat_id: ChatId, message: &MessageView) -> Option<String> {
    serde_json::to_string(&MessageEventFrame {
        event: name,
        chat_id,
        seq: message.seq,
        message,
    })
    .ok()
}

/// The gateway frame of a bus event, rendered once for every gateway socket of this process.
pub fn shared_frame(event: &Event) -> bytestring::ByteString {
    event
        .frame(FrameKind::Gateway, event_frame)
        .unwrap_or_default()
}

/// A replayed message, in the same shape as a live `message.created`.
pub fn created_frame(chat: ChatId, message: &MessageView) -> String {
    message_frame("message.created", chat, message).unwrap_or_default()
}

/// `value` with the client's `request_id` (any JSON) echoed, as text.
pub fn with_request_id(mut value: Value, request_id: Option<&Value>) -> String {
    if let Some(id) = request_id {
        value["request_id"] = id.clone();
    }
    value.to_string()
}

/// `{"event":"ack","action","request_id"?}`.
pub fn ack(request_id: Option<&Value>, action: &str) -> String {
    with_request_id(json!({"event": "ack", "action": action}), request_id)
}

/// `{"event":"error","request_id"?,"code","detail","retry_after"?}`.
///
/// `retry_after` is in seconds, present when over a rate limit.
pub fn error_frame(request_id: Option<&Value>, error: &ApiError) -> String {
    let mut frame = json!({"event": "error", "code": error.code(), "detail": error.detail()});
    if let Some(secs) = error.retry_after() {
        frame["retry_after"] = json!(secs);
    }
    with_request_id(frame, request_id)
}

/// `invalid{field: [problem]}`.
pub fn invalid(field: &str, problem: &str) -> ApiError {
    DomainError::invalid(field, problem).into()
}

/// The refusal of an action in a chat the user is not in.
pub fn forbidden_chat() -> ApiError {
    DomainError::Forbidden(ForbiddenReason::NotMember).into()
}
