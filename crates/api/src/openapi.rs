//! The OpenAPI 3.1 document of the native door and door 002's REST routes, generated from the
//! handlers' `#[utoipa::path]` annotations, served at `/api-docs/openapi.json`, with Swagger UI
//! (bundled, works offline) at `/docs/`. "Authorize" with an access token from
//! `POST /api/v1/auth/login/` to try every route from the page. The WebSocket protocols are
//! described in the README.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::doors::{native, realtime_chat};

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "chat-server", description = "Native REST API and door 002 (Real Time Chat App) REST routes. WebSockets: see the README."),
    paths(
        native::auth::register, native::auth::login, native::auth::refresh, native::auth::logout,
        native::auth::logout_all,
        native::auth::me, native::auth::rename, native::auth::search,
        native::chats::list, native::chats::open_direct, native::chats::browse_groups,
        native::chats::create_group,
        native::chats::rename,
        native::chats::join, native::chats::leave, native::chats::history, native::chats::send,
        native::chats::edit, native::chats::delete, native::chats::read,
        native::members::list, native::members::invite, native::members::remove,
        native::members::set_role,
        realtime_chat::rest::list_friends, realtime_chat::rest::add_friend,
        realtime_chat::rest::remove_friend, realtime_chat::rest::create_group,
        realtime_chat::rest::join_group, realtime_chat::rest::leave_group,
        realtime_chat::rest::delete_group, realtime_chat::rest::chat_friend,
        realtime_chat::rest::chat_group,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Mounts `/api-docs/openapi.json`, Swagger UI at `/docs/`, and `/docs` → `/docs/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()))
        .service(web::resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        })));
}
