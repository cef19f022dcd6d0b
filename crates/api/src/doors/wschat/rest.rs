//! Door 000's HTTP routes: sign-up, sign-in and creating a group.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{Email, Password, Title, Username};
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::state::AppState;

#[derive(Deserialize)]
struct SignUp {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// `POST /auth/sign-up {"username","email","password"}` → 200 `{"id":"<id>"}` (a string, as
/// observed); 400 bad input, 409 taken.
pub(super) async fn sign_up(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> PlainResult<HttpResponse> {
    if let Some(refused) = over_auth_limit(&state, &req).await {
        return Ok(refused);
    }
    let b: SignUp = body(&state, payload).await?;
    let missing = || bad("username, email and password are required");
    let username = Username::parse(&b.username.ok_or_else(missing)?)?;
    let email = Email::parse(&b.email.ok_or_else(missing)?)?;
    let password = Password::parse(&b.password.ok_or_else(missing)?)?;
    let user = chat_services::register(
        &state.store,
        &username,
        Some(&email),
        Some(&password),
        state.settings.bcrypt_cost,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({"id": user.id.to_string()})))
}

#[derive(Deserialize)]
struct SignIn {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `POST /auth/sign-in {"email"|"username","password"}` → 200 `{"token"}`; 401 bad credentials.
pub(super) async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> PlainResult<HttpResponse> {
    if let Some(refused) = over_auth_limit(&state, &req).await {
        return Ok(refused);
    }
    let b: SignIn = body(&state, payload).await?;
    let login = b
        .email
        .or(b.username)
        .ok_or_else(|| bad("email (or username) and password are required"))?;
    let password = b
        .password
        .ok_or_else(|| bad("email (or username) and password are required"))?;
    let user =
        chat_services::authenticate(&state.store, &login, &password, state.settings.bcrypt_cost)
            .await?;
    let token = state.jwt.issue_door(user.user.id, user.tokens_not_before);
    Ok(HttpResponse::Ok().json(json!({"token": token})))
}

#[derive(Deserialize)]
struct TitleQuery {
    title: Option<String>,
}

/// `POST /group_chat?title=<title>` → 200 `{"idGroup":"<id>"}`; the creator is the group's
/// admin (owner) and first member. The group is public: others join by connecting to it.
pub(super) async fn group_chat(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> PlainResult<HttpResponse> {
    let (user, _) = current_user(&req, &state).await?;
    let query = web::Query::<TitleQuery>::from_query(req.query_string())
        .map_err(|_| bad("title is required"))?;
    let title = Title::parse(
        &query
            .into_inner()
            .title
            .ok_or_else(|| bad("title is required"))?,
    )?;
    let group =
        chat_services::create_group(&state.store, user.id, None, &title, false, &[]).await?;
    Ok(HttpResponse::Ok().json(json!({"idGroup": group.id.to_string()})))
}
