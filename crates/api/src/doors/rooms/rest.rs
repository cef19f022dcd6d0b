//! Door 004's HTTP routes: accounts, profile, rooms, joining and invitations (plain-text errors, as the original).

use super::*;

#[derive(Deserialize)]
pub(super) struct RegisterBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// `POST /register {"username","email","password"}` → 201 `{"id","username","email","created-at"}`.
pub(super) async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    if let Some(refused) = over_auth_limit(&state, &req).await {
        return Ok(refused);
    }
    let b: RegisterBody = body(&state, payload).await?;
    let (name, email, password) = (field(b.username)?, field(b.email)?, field(b.password)?);
    if name.is_empty() || email.is_empty() || password.is_empty() {
        return Err(bad("missing fields"));
    }
    let email = Email::parse(&email).map_err(|_| bad("invalid email"))?;
    let name = username(&name, TAKEN_AT_SIGN_UP)?;
    // The domain rule (8–128 bytes, no NUL), in door 004's words.
    let password =
        Password::parse(&password).map_err(|_| bad("password must be 8-128 characters long"))?;
    let user = chat_services::register(
        &state.store,
        &name,
        Some(&email),
        Some(&password),
        state.settings.bcrypt_cost,
    )
    .await
    .map_err(|e| match e {
        Domain(DomainError::Conflict(
            ConflictReason::UsernameTaken
            | ConflictReason::EmailTaken
            | ConflictReason::UsernameLookalike,
        )) => RoomsError::new(StatusCode::CONFLICT, TAKEN_AT_SIGN_UP),
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(profile_json(&user)))
}

#[derive(Deserialize)]
pub(super) struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

/// `PUT /login {"email","password"}` → 200 `{"token"}`; 401 `user not found` / `invalid password`.
pub(super) async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    if let Some(refused) = over_auth_limit(&state, &req).await {
        return Ok(refused);
    }
    let b: LoginBody = body(&state, payload).await?;
    let (email, password) = (field(b.email)?, field(b.password)?);
    if email.is_empty() || password.is_empty() {
        return Err(bad("missing fields"));
    }
    if !email.contains('@') || credentials_by_login(&state.store, &email).await?.is_none() {
        return Err(unauthorized("user not found"));
    }
    let user =
        chat_services::authenticate(&state.store, &email, &password, state.settings.bcrypt_cost)
            .await
            .map_err(|e| match e {
                chat_services::Error::Domain(_) => unauthorized("invalid password"),
                other => other.into(),
            })?;
    let token = state.jwt.issue_door(user.user.id, user.tokens_not_before);
    Ok(HttpResponse::Ok().json(json!({"token": token})))
}

/// `GET /profile` → 200 `{"id","username","email","created-at"}`.
pub(super) async fn profile(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> RoomsResult<HttpResponse> {
    let user = current_user(&req, &state).await?;
    Ok(HttpResponse::Ok().json(profile_json(&user)))
}

#[derive(Deserialize)]
pub(super) struct ChangeNameBody {
    username: Option<String>,
}

/// `PUT /change-name {"username"}` → 200 `{"message":"name change succeed"}`.
pub(super) async fn change_name(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    let user = current_user(&req, &state).await?;
    let name = field(body::<ChangeNameBody>(&state, payload).await?.username)?;
    if name.is_empty() {
        return Err(bad("missing fields"));
    }
    let name = username(&name, NAME_TAKEN)?;
    if name.as_str() == user.username {
        return Err(bad("new name matches the current"));
    }
    chat_services::rename_user(&state.store, user.id, &name)
        .await
        .map_err(|e| match e {
            Domain(DomainError::Conflict(
                ConflictReason::UsernameTaken | ConflictReason::UsernameLookalike,
            )) => RoomsError::new(StatusCode::CONFLICT, NAME_TAKEN),
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(json!({"message": "name change succeed"})))
}

#[derive(Deserialize)]
pub(super) struct CreateRoomBody {
    name: Option<String>,
    #[serde(default)]
    is_private: bool,
}

/// `POST /create-room {"name","is_private"}` → 201 `{"id","name","is_private","creator_id"}`.
pub(super) async fn create_room(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    let user = current_user(&req, &state).await?;
    let b: CreateRoomBody = body(&state, payload).await?;
    let name = field(b.name)?;
    if name.is_empty() {
        return Err(bad("missing fields"));
    }
    if !valid_name(&name) {
        return Err(bad(NAME_RULE));
    }
    let (group, title) = (
        GroupName::parse(&name).map_err(|_| bad(NAME_RULE))?,
        Title::parse(&name).map_err(|_| bad(NAME_RULE))?,
    );
    let room = chat_services::create_group(
        &state.store,
        user.id,
        Some(&group),
        &title,
        b.is_private,
        &[],
    )
    .await
    .map_err(|e| match e {
        Domain(DomainError::Conflict(ConflictReason::GroupNameTaken)) => {
            RoomsError::new(StatusCode::CONFLICT, "room with same name already exists")
        }
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(json!({
        "id": room.id, "name": name, "is_private": room.is_private, "creator_id": user.id,
    })))
}

#[derive(Deserialize)]
pub(super) struct JoinBody {
    room_id: Option<i64>,
}

/// A room by id. Errors: 401 `room not found` (the original's status).
pub(super) async fn room(state: &AppState, id: i64) -> RoomsResult<chat_selectors::ChatView> {
    match chat_by_id(&state.store, ChatId(id)).await {
        Ok(chat) if chat.kind == ChatKind::Group => Ok(chat),
        Ok(_) | Err(chat_selectors::Error::Domain(_)) => Err(unauthorized("room not found")),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /join {"room_id"}` → 200 `{"message":"join succeed"}`; public rooms only.
pub(super) async fn join(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    let user = current_user(&req, &state).await?;
    let room = room(
        &state,
        field(body::<JoinBody>(&state, payload).await?.room_id)?,
    )
    .await?;
    chat_services::join_group(&state.store, user.id, room.id)
        .await
        .map_err(|e| match e {
            // UserAlreadyMember: two joins of one user racing (the second fails on insert).
            Domain(DomainError::Conflict(
                ConflictReason::AlreadyMember | ConflictReason::UserAlreadyMember,
            )) => RoomsError::new(StatusCode::CONFLICT, "user is already a member of room"),
            Domain(DomainError::Forbidden(ForbiddenReason::PrivateGroup)) => {
                unauthorized("room is private")
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(json!({"message": "join succeed"})))
}

#[derive(Deserialize)]
pub(super) struct InviteBody {
    room_id: Option<i64>,
    user_id: Option<i64>,
}

/// `PUT /invite {"room_id","user_id"}` → 200 `{"message":"invite succeed"}`; the room's creator
/// (owner; admins made through the native API too) only.
pub(super) async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> RoomsResult<HttpResponse> {
    let user = current_user(&req, &state).await?;
    let b: InviteBody = body(&state, payload).await?;
    let (room_id, target) = (field(b.room_id)?, UserId(field(b.user_id)?));
    let room = room(&state, room_id).await?;
    match user_by_id(&state.store, target).await {
        Ok(user) if !user.sandbox => {}
        Ok(_) | Err(chat_selectors::Error::Domain(_)) => {
            return Err(unauthorized("user not found"));
        }
        Err(e) => return Err(e.into()),
    }
    chat_services::invite_member(&state.store, user.id, room.id, target)
        .await
        .map_err(|e| match e {
            Domain(DomainError::Conflict(ConflictReason::UserAlreadyMember)) => {
                RoomsError::new(StatusCode::CONFLICT, "user is already a member of room")
            }
            Domain(DomainError::Forbidden(ForbiddenReason::AddNotAdmin)) => {
                RoomsError::new(StatusCode::FORBIDDEN, "only creator can invite to room")
            }
            // Chat: the room was deleted while the invitation was on its way (as the original,
            // which answered every lookup failure of an invite this way).
            Domain(DomainError::NotFound(NotFoundReason::User | NotFoundReason::Chat)) => {
                unauthorized("user not found")
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(json!({"message": "invite succeed"})))
}
