//! Door 002, "Real Time Chat App" (seed 002, Django Channels).
//!
//! REST under `/api/v1/chat/` (no trailing slash), errors `{"detail"}`, and the WebSockets
//! `/ws/group/<name>/` and `/ws/user/<username>/` with `send_message` / `retrieve_message`
//! (docs/doors.md, "Door 002").

pub mod rest;
mod ws;

use actix_web::web;
use chat_selectors::{MessageView, UserView};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::resource;

/// Mounts door 002's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/chat/list-friends").get(rest::list_friends))
        .service(resource("/api/v1/chat/add-friend/{username}").post(rest::add_friend))
        .service(resource("/api/v1/chat/remove-friend/{username}").post(rest::remove_friend))
        .service(resource("/api/v1/chat/create-group").post(rest::create_group))
        .service(resource("/api/v1/chat/join-group/{name}").post(rest::join_group))
        .service(resource("/api/v1/chat/leave-group/{name}").post(rest::leave_group))
        .service(resource("/api/v1/chat/delete-group/{name}").post(rest::delete_group))
        .service(resource("/api/v1/chat/chat-friend/{username}").get(rest::chat_friend))
        .service(resource("/api/v1/chat/chat-group/{name}").get(rest::chat_group))
        .service(resource("/ws/group/{name}/").get(ws::group_socket))
        .service(resource("/ws/user/{username}/").get(ws::user_socket));
}

/// The username door 002 shows for system lines (joins, leaves), which have no author.
const SYSTEM_USERNAME: &str = "system";

/// A message as door 002 shows it: `{"id","content","timestamp","from_user":{"username"}}`,
/// `timestamp` RFC 3339 UTC with microseconds (Django REST framework's format).
fn message_json(message: &MessageView) -> Value {
    let author = message
        .author
        .as_ref()
        .map_or(SYSTEM_USERNAME, |a| a.username.as_str());
    json!({
        "id": message.id,
        "content": message.text,
        "timestamp": message.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "from_user": {"username": author},
    })
}

/// The broadcast of `message` to a group (`peer: None`) or direct socket: `{"message":{...}}`
/// or `{"data":{...,"to_user"}}` (seed 002).
pub(crate) fn broadcast_frame(
    message: &MessageView,
    me: &UserView,
    peer: &Option<UserView>,
) -> String {
    match peer {
        None => json!({"message": message_json(message)}).to_string(),
        Some(peer) => json!({"data": direct_json(message, me, peer)}).to_string(),
    }
}

/// A direct message: the group shape plus `"to_user":{"username"}`, the member who is not the
/// author (the same for both members, so the frame is rendered once).
pub(crate) fn direct_json(message: &MessageView, me: &UserView, peer: &UserView) -> Value {
    let mut value = message_json(message);
    let to = match &message.author {
        Some(author) if author.id == me.id => &peer.username,
        _ => &me.username,
    };
    value["to_user"] = json!({"username": to});
    value
}
