//! The OpenAPI 3.1 document of the native door and door 002's REST routes.
//!
//! Generated from the handlers' `#[utoipa::path]` annotations, served at `/api-docs/openapi.json`,
//! with Swagger UI (bundled, works offline) at `/docs/`.
//!
//! "Authorize" with an access token from `POST /api/v1/auth/login/` to try every route from the
//! page. The WebSocket protocols are described in docs/native-api.md and docs/doors.md; their
//! endpoints are in the document too.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::doors::{native, realtime_chat};

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "chat-server", description = "The native REST API and door 002 (Real Time Chat App) REST routes, and the WebSocket endpoints (tag `websocket`; their frames are described in docs/native-api.md and docs/doors.md)."),
    paths(
        native::auth::register, native::auth::login, native::auth::refresh, native::auth::logout,
        native::auth::logout_all,
        native::auth::me, native::auth::rename, native::auth::search,
        native::chats::list, native::chats::open_direct, native::chats::browse_groups,
        native::chats::create_group,
        native::chats::rename,
        native::chats::join, native::chats::leave, native::messages::history, native::messages::send,
        native::messages::edit, native::messages::delete, native::messages::read,
        native::members::list, native::members::invite, native::members::remove,
        native::members::set_role,
        realtime_chat::rest::list_friends, realtime_chat::rest::add_friend,
        realtime_chat::rest::remove_friend, realtime_chat::rest::create_group,
        realtime_chat::rest::join_group, realtime_chat::rest::leave_group,
        realtime_chat::rest::delete_group, realtime_chat::rest::chat_friend,
        realtime_chat::rest::chat_group,
    ),
    modifiers(&BearerAuth, &CommonResponses, &WebSockets)
)]
pub struct ApiDoc;

/// Describes the WebSocket endpoints (added after [`CommonResponses`]: a handshake has answers of
/// its own). OpenAPI has no words for frames: each points to its frame reference in the
/// repository's docs (`docs/native-api.md`, `docs/doors.md`). Tagged `websocket`.
struct WebSockets;

impl Modify for WebSockets {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::{Object, Required, ResponseBuilder, Type};
        let param = |name: &str, place: ParameterIn, required: bool, text: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(place)
                .required(if required {
                    Required::True
                } else {
                    Required::False
                })
                .schema(Some(Object::with_type(Type::String)))
                .description(Some(text))
                .build()
        };
        let token = || {
            param(
                "token",
                ParameterIn::Query,
                false,
                "The access token, when it is not in `Authorization: Bearer` (browsers cannot set \
                 headers on a WebSocket).",
            )
        };
        let socket = |id: &str, summary: &str, description: &str, params: Vec<_>| {
            OperationBuilder::new()
                .operation_id(Some(id))
                .tag("websocket")
                .summary(Some(summary))
                .description(Some(description))
                .parameters(Some(params))
                .response(
                    "101",
                    ResponseBuilder::new()
                        .description("Switching Protocols: the WebSocket is open (RFC 6455).")
                        .build(),
                )
                .response(
                    "400",
                    ResponseBuilder::new()
                        .description("Not a WebSocket handshake (no `Upgrade: websocket`).")
                        .build(),
                )
                .build()
        };
        let gateway = socket(
            "gateway",
            "Opens the gateway WebSocket: live events and sends for every chat of the user.",
            "Authenticate with `?token=`, `Authorization: Bearer`, or a first frame \
             `{\"action\":\"auth\",\"token\":\"...\"}` within 10 s. The first server frame is \
             `ready`. A bad token gets an `error` frame (`not_authenticated`), then close 1008. \
             Frames, resume, error codes and close codes: docs/native-api.md, \"The gateway \
             WebSocket\".",
            vec![
                token(),
                param(
                    "sync",
                    ParameterIn::Query,
                    false,
                    "Resume point `<chat_id>:<last seq>,...`: what you missed is replayed after \
                     `ready`, then `synced`.",
                ),
            ],
        );
        let group = socket(
            "door002_group_socket",
            "Opens door 002's WebSocket of a group.",
            "Frames `send_message` / `retrieve_message`; a refusal is `{\"action\":\"disconect\"}` \
             then close 1008. Reference: docs/doors.md, \"Door 002\".",
            vec![
                param("name", ParameterIn::Path, true, "The group's name."),
                token(),
            ],
        );
        let direct = socket(
            "door002_direct_socket",
            "Opens door 002's WebSocket of the direct chat with a friend.",
            "Both users must have each other in their friend lists. Reference: docs/doors.md, \
             \"Door 002\".",
            vec![
                param(
                    "username",
                    ParameterIn::Path,
                    true,
                    "The friend's username.",
                ),
                token(),
            ],
        );
        for (path, operation) in [
            ("/api/v1/ws", gateway),
            ("/ws/group/{name}/", group),
            ("/ws/user/{username}/", direct),
        ] {
            openapi.paths.paths.insert(
                path.to_owned(),
                utoipa::openapi::PathItem::new(HttpMethod::Get, operation),
            );
        }
    }
}

/// Adds the answers every route of a kind can give, so that each operation lists every status
/// the server may answer with (each with its `ErrorBody`), not only its own: 400 (malformed
/// JSON, a missing or invalid field or query parameter) with a body or a query, 404 with a path
/// parameter (no such chat, message or user; a non-numeric id), 401 with a bearer token, 413 and
/// 415 with a body, 503 (PostgreSQL unavailable) everywhere. A route's own description of a
/// status is kept.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{RefOr, Type};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let location = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(|p| match p {
                        RefOr::T(p) => p.parameter_in == place,
                        RefOr::Ref(_) => false,
                    })
                };
                let (path, query) = (location(ParameterIn::Path), location(ParameterIn::Query));
                let body = operation.request_body.is_some();
                let bearer = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |status: &str, description: &str, header: Option<(&str, &str)>| {
                    if operation.responses.responses.contains_key(status) {
                        return;
                    }
                    let mut response = utoipa::openapi::ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                                .build(),
                        );
                    if let Some((name, text)) = header {
                        let schema = utoipa::openapi::Object::with_type(match name {
                            "Retry-After" => Type::Integer,
                            _ => Type::String,
                        });
                        response = response.header(
                            name,
                            utoipa::openapi::HeaderBuilder::new()
                                .schema(Some(schema))
                                .description(Some(text))
                                .build(),
                        );
                    }
                    operation
                        .responses
                        .responses
                        .insert(status.to_owned(), RefOr::T(response.build()));
                };
                if body || query {
                    add(
                        "400",
                        "Bad input: malformed JSON or a wrong type (`invalid_json`), a missing or \
                         invalid field or query parameter (`invalid`, with `fields`).",
                        None,
                    );
                }
                if bearer {
                    add(
                        "401",
                        "No, a bad, an expired or a revoked access token (`not_authenticated`); an \
                         expired one adds `messages: [{\"message\": \"Token is expired\"}]`.",
                        Some((
                            "WWW-Authenticate",
                            "`Bearer`, or for an expired token `Bearer error=\"invalid_token\", \
                             error_description=\"The access token expired\"` (RFC 6750 §3).",
                        )),
                    );
                }
                if path {
                    add(
                        "404",
                        "No such chat, message, user or group, or a non-numeric id (`not_found`).",
                        None,
                    );
                }
                if body {
                    add(
                        "413",
                        "A body over `CHAT_MAX_BODY_BYTES` (`too_large`).",
                        None,
                    );
                    add(
                        "415",
                        "A body that is not `Content-Type: application/json` \
                         (`unsupported_media_type`).",
                        None,
                    );
                }
                add(
                    "503",
                    "PostgreSQL is unavailable, or the outcome of a write is unknown \
                     (`unavailable`): retry after `Retry-After` seconds (a send with the same \
                     `client_id` is never stored twice).",
                    Some(("Retry-After", "Seconds to wait before retrying: 1.")),
                );
            }
        }
    }
}

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
