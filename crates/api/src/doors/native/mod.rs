//! The native door, `/api/v1` (docs/native-api.md, "REST"): JSON over HTTP with bearer JWTs;
//! errors `{"detail","code"[,"fields"]}`. Its auth routes are seed 002's, so 002 clients log in
//! unchanged.

pub mod auth;
pub mod chats;
pub mod gateway;
pub mod members;
pub mod messages;

use actix_web::web;

use super::resource;

/// Mounts the native routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/auth/register/").post(auth::register))
        .service(resource("/api/v1/auth/login/").post(auth::login))
        .service(resource("/api/v1/auth/login/refresh/").post(auth::refresh))
        .service(resource("/api/v1/auth/logout/").post(auth::logout))
        .service(resource("/api/v1/auth/logout-all/").post(auth::logout_all))
        .service(
            resource("/api/v1/users/me")
                .get(auth::me)
                .patch(auth::rename),
        )
        .service(resource("/api/v1/users").get(auth::search))
        .service(resource("/api/v1/ws").get(gateway::socket))
        .service(resource("/api/v1/chats").get(chats::list))
        .service(resource("/api/v1/chats/direct").post(chats::open_direct))
        .service(
            resource("/api/v1/chats/groups")
                .get(chats::browse_groups)
                .post(chats::create_group),
        )
        .service(resource("/api/v1/chats/{id}").patch(chats::rename))
        .service(resource("/api/v1/chats/{id}/join").post(chats::join))
        .service(resource("/api/v1/chats/{id}/leave").post(chats::leave))
        .service(
            resource("/api/v1/chats/{id}/messages")
                .get(messages::history)
                .post(messages::send),
        )
        .service(
            resource("/api/v1/chats/{id}/messages/{seq}")
                .patch(messages::edit)
                .delete(messages::delete),
        )
        .service(resource("/api/v1/chats/{id}/read").post(messages::read))
        .service(
            resource("/api/v1/chats/{id}/members")
                .get(members::list)
                .post(members::invite),
        )
        .service(
            resource("/api/v1/chats/{id}/members/{user_id}")
                .delete(members::remove)
                .patch(members::set_role),
        );
}
