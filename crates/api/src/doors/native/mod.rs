//! The native door, `/api/v1` (docs/native-api.md, "REST"): JSON over HTTP with bearer JWTs;
//! errors `{"detail","code"[,"fields"]}`. Its auth routes are seed 002's, so 002 clients log in
//! unchanged.

pub mod auth;
pub mod chats;
pub mod gateway;
pub mod members;

use actix_web::web;

use super::resource;

/// Mounts the native routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/auth/register/").route(web::post().to(auth::register)))
        .service(resource("/api/v1/auth/login/").route(web::post().to(auth::login)))
        .service(resource("/api/v1/auth/login/refresh/").route(web::post().to(auth::refresh)))
        .service(resource("/api/v1/auth/logout/").route(web::post().to(auth::logout)))
        .service(resource("/api/v1/auth/logout-all/").route(web::post().to(auth::logout_all)))
        .service(
            resource("/api/v1/users/me")
                .route(web::get().to(auth::me))
                .route(web::patch().to(auth::rename)),
        )
        .service(resource("/api/v1/users").route(web::get().to(auth::search)))
        .service(resource("/api/v1/ws").route(web::get().to(gateway::socket)))
        .service(resource("/api/v1/chats").route(web::get().to(chats::list)))
        .service(resource("/api/v1/chats/direct").route(web::post().to(chats::open_direct)))
        .service(
            resource("/api/v1/chats/groups")
                .route(web::get().to(chats::browse_groups))
                .route(web::post().to(chats::create_group)),
        )
        .service(resource("/api/v1/chats/{id}").route(web::patch().to(chats::rename)))
        .service(resource("/api/v1/chats/{id}/join").route(web::post().to(chats::join)))
        .service(resource("/api/v1/chats/{id}/leave").route(web::post().to(chats::leave)))
        .service(
            resource("/api/v1/chats/{id}/messages")
                .route(web::get().to(chats::history))
                .route(web::post().to(chats::send)),
        )
        .service(
            resource("/api/v1/chats/{id}/messages/{seq}")
                .route(web::patch().to(chats::edit))
                .route(web::delete().to(chats::delete)),
        )
        .service(resource("/api/v1/chats/{id}/read").route(web::post().to(chats::read)))
        .service(
            resource("/api/v1/chats/{id}/members")
                .route(web::get().to(members::list))
                .route(web::post().to(members::invite)),
        )
        .service(
            resource("/api/v1/chats/{id}/members/{user_id}")
                .route(web::delete().to(members::remove))
                .route(web::patch().to(members::set_role)),
        );
}
