//! Door 003, the support chat microservice (seed 003): `POST /v1/auth/` and the JSON-RPC style
//! WebSocket `/v1/ws/` (docs/doors.md, "Door 003"). A customer talks to "support"; operators
//! (role `operator` or `admin`, made with `chat-server create-operator <username>`) answer.
//! Every customer has one support chat in the shared core.
//!
//! Frames: `{"method","params":[...],"id"}` in, `{"error","result","id"}` out. Error codes:
//! 1 "Incorrect argument." (wrong params, also invalid JSON), 2 "Unknown method.", 3 "Not
//! authorized." (before `message.auth`, or a method of the other role), 4 "Too many requests."
//! (over the per-user send limit; our addition). A message:
//! `{"message_id","message_text","invader_name","is_from_support","created","user_id"}` —
//! `invader_name` the operator's name ("" for the customer), `created` unix seconds, `user_id`
//! the customer (our addition: an unbound operator needs it to answer).
//!
//! Decisions: a socket not authenticated 10 s after opening is closed at the next heartbeat; history is the newest 200 text messages;
//! a sender is not pushed its own message (it has the reply); join lines are not shown; tokens
//! live `CHAT_DOOR_TOKEN_TTL_SECS`; an auth body over `CHAT_MAX_BODY_BYTES` is 413 (empty, like
//! the route's other refusals); a frame over the socket's rate limit gets code 4.

use crate::auth::TokenUserError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::CloseCode;
use chat_domain::{ChatId, MessageKind, MessageText, UserId};
use chat_selectors::{ChatEvent, MessageView, UserView, text_messages, user_by_id};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::realtime::socket::{Flow, Outbox, SocketDoor, SocketLimits, Stop, drive, upgrade};
use crate::realtime::{Connection, Event, FrameKind, SessionGuard, Subscription, SupportWatch};
use crate::state::AppState;

/// How long a socket may stay unauthenticated.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How many of the newest messages `message.auth` returns.
const HISTORY: i64 = 200;

/// Mounts door 003's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/auth/")
            .route(web::post().to(auth))
            .default_service(web::to(not_found)),
    )
    .service(web::resource("/v1/ws/").route(web::get().to(socket)));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// `POST /v1/auth/ {"user_name","password"}` → 200 `{"error":null,"result":{"token"},"id":<user id>}`;
/// the right shape with wrong credentials → 403, empty; anything else → 404, empty.
async fn auth(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Over the limit: 429 with an empty body, like the route's other refusals.
    if let Some(refused) =
        crate::doors::auth_limited(&state, &req, "text/plain", |_| String::new()).await
    {
        return Ok(refused);
    }
    let raw = match crate::doors::read_body(&state, payload).await {
        Ok(raw) => raw,
        Err(crate::doors::BodyError::TooLarge(_)) => {
            return Ok(HttpResponse::PayloadTooLarge().finish());
        }
        Err(crate::doors::BodyError::Broken(_)) => return Ok(HttpResponse::NotFound().finish()),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let (Some(name), Some(password)) = (
        body.get("user_name").and_then(Value::as_str),
        body.get("password").and_then(Value::as_str),
    ) else {
        return Ok(HttpResponse::NotFound().finish());
    };
    match chat_services::authenticate(&state.store, name, password, state.settings.bcrypt_cost)
        .await
    {
        Ok(logged_in) => {
            let user = logged_in.user.id;
            let token = state.jwt.issue_door(user, logged_in.tokens_not_before);
            Ok(HttpResponse::Ok()
                .json(json!({"error": null, "result": {"token": token}, "id": user})))
        }
        Err(chat_services::Error::Domain(_)) => Ok(HttpResponse::Forbidden().finish()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/ws/`: the support socket; authenticate with `message.auth` first.
async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (response, session, stream) = upgrade(&req, body)?;
    let state = state.get_ref().clone();
    let limits = SocketLimits::new(&state);
    let (tx, rx) = mpsc::channel(limits.queue);
    // The user is unknown until `message.auth`; this door needs no per-user delivery, so the
    // hub connection is not keyed by user.
    let conn = state.hub.connect(UserId(0), tx);
    let door = SupportSocket {
        state,
        conn: conn.clone(),
        opened: Instant::now(),
        sent: std::collections::VecDeque::new(),
        session: None,
    };
    actix_web::rt::spawn(drive(session, stream, conn, rx, door, limits).in_current_span());
    Ok(response)
}

/// What an authenticated socket is.
struct Authenticated {
    user: UserView,
    operator: bool,
    /// The customer whose chat this socket follows (the customer's own; a bound operator's).
    customer: Option<UserId>,
    /// The chat and highest seq the `message.auth` history held.
    replayed: Option<(ChatId, i64)>,
    _subscription: Option<Subscription>,
    _watch: Option<SupportWatch>,
    _session: SessionGuard,
}

struct SupportSocket {
    state: AppState,
    conn: Arc<Connection>,
    opened: Instant,
    /// Ids of the messages this socket sent recently (not pushed back to it).
    sent: std::collections::VecDeque<chat_domain::MessageId>,
    session: Option<Authenticated>,
}

fn reply(id: &Value, result: Value) -> String {
    json!({"error": null, "result": result, "id": id}).to_string()
}

fn rpc_error(id: &Value, code: u8) -> String {
    let message = match code {
        1 => "Incorrect argument.",
        2 => "Unknown method.",
        4 => "Too many requests.",
        _ => "Not authorized.",
    };
    json!({"error": {"code": code, "message": message}, "result": null, "id": id}).to_string()
}

/// A support message on the wire.
fn message_json(message: &MessageView, customer: UserId) -> Value {
    let from_support = message.author.as_ref().is_some_and(|a| a.id != customer);
    let invader = match &message.author {
        Some(author) if from_support => author.username.as_str(),
        _ => "",
    };
    json!({
        "message_id": message.id,
        "message_text": message.text,
        "invader_name": invader,
        "is_from_support": from_support,
        "created": message.created_at.timestamp(),
        "user_id": customer,
    })
}

/// The text param: a non-blank string within the limit, else error code 1.
fn text_param(params: &[Value], max_chars: usize) -> Option<MessageText> {
    params
        .first()
        .and_then(Value::as_str)
        .and_then(|t| MessageText::parse(t, max_chars).ok())
}

/// A customer id param: a number or a numeric string.
fn id_param(value: Option<&Value>) -> Option<UserId> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .map(UserId)
}

/// A `message.auth` with a missing, bad, expired or revoked token: the envelope's error 3 "Not
/// authorized." (so the client sees why), then close 1008 "authentication failed".
async fn refuse_auth(out: &mut Outbox<'_>, id: &Value) -> Flow {
    out.send(rpc_error(id, 3)).await?;
    Err(Stop::close(CloseCode::Policy, "authentication failed"))
}

impl SupportSocket {
    async fn authenticate(&mut self, id: &Value, params: &[Value], out: &mut Outbox<'_>) -> Flow {
        let Some(token) = params.first().and_then(Value::as_str) else {
            return refuse_auth(out, id).await;
        };
        // A fault (not a refusal) closes with 1011: the client retries, it is not told its
        // token is bad.
        let fault = || {
            Err(Stop::close(
                CloseCode::Error,
                "temporary failure: try again",
            ))
        };
        let (user, verified) = match crate::auth::token_user(&self.state, token).await {
            Ok(found) => found,
            Err(TokenUserError::Refused(_)) => return refuse_auth(out, id).await,
            Err(TokenUserError::Fault(_)) => return fault(),
        };
        let operator = chat_services::is_operator(&user);
        let customer = if operator {
            match params.get(1) {
                None | Some(Value::Null) => None,
                bound => match id_param(bound) {
                    Some(customer)
                        if user_by_id(&self.state.store, customer)
                            .await
                            .is_ok_and(|c| !c.sandbox) =>
                    {
                        Some(customer)
                    }
                    _ => return out.send(rpc_error(id, 1)).await,
                },
            }
        } else {
            Some(user.id)
        };
        let (subscription, messages, replayed) = match customer {
            Some(customer) => {
                let chat = match chat_services::support_chat(&self.state.store, customer).await {
                    Ok(chat) => chat.id,
                    Err(e) => return self.fail(out, id, e.into()).await,
                };
                let subscription = self.state.hub.subscribe(chat, &self.conn);
                let history = match text_messages(&self.state.store, chat, HISTORY).await {
                    Ok(history) => history,
                    Err(e) => return self.fail(out, id, e.into()).await,
                };
                let messages: Vec<Value> =
                    history.iter().map(|m| message_json(m, customer)).collect();
                let replayed = history.last().map(|m| (chat, m.seq));
                (
                    Some(subscription),
                    if messages.is_empty() {
                        Value::Null
                    } else {
                        json!(messages)
                    },
                    replayed,
                )
            }
            None => (None, Value::Null, None),
        };
        let watch =
            (operator && customer.is_none()).then(|| self.state.hub.watch_support(&self.conn));
        let tracked = self
            .state
            .hub
            .track(user.id, verified.issued_at, &self.conn);
        crate::auth::confirm_session(&self.state, verified).await;
        self.session = Some(Authenticated {
            user,
            operator,
            customer,
            replayed,
            _subscription: subscription,
            _watch: watch,
            _session: tracked,
        });
        out.send(reply(id, json!({"messages": messages}))).await
    }

    /// An infrastructure fault: logged by `ApiError`, answered with code 1 (the envelope has no
    /// other code for it), the socket stays.
    async fn fail(&self, out: &mut Outbox<'_>, id: &Value, error: ApiError) -> Flow {
        tracing::warn!(error = %error, "support request failed");
        out.send(rpc_error(id, 1)).await
    }

    async fn send(
        &mut self,
        id: &Value,
        params: &[Value],
        operator_send: bool,
        out: &mut Outbox<'_>,
    ) -> Flow {
        let Some(session) = &self.session else {
            return out.send(rpc_error(id, 3)).await;
        };
        if session.operator != operator_send {
            return out.send(rpc_error(id, 3)).await;
        }
        let Some(text) = text_param(params, self.state.settings.max_message_chars) else {
            return out.send(rpc_error(id, 1)).await;
        };
        let store = &self.state.store;
        let (sent, customer) = if operator_send {
            let customer = match params.get(1) {
                None | Some(Value::Null) => session.customer,
                explicit => id_param(explicit),
            };
            let Some(customer) = customer else {
                return out.send(rpc_error(id, 1)).await;
            };
            (
                chat_services::operator_send(store, session.user.id, customer, &text).await,
                customer,
            )
        } else {
            if params.len() != 1 {
                return out.send(rpc_error(id, 1)).await;
            }
            (
                chat_services::support_send(store, session.user.id, &text).await,
                session.user.id,
            )
        };
        match sent {
            Ok(sent) => {
                if self.sent.len() == 64 {
                    self.sent.pop_front();
                }
                self.sent.push_back(sent.message.id);
                out.send(reply(
                    id,
                    json!({"message": message_json(&sent.message, customer)}),
                ))
                .await
            }
            Err(chat_services::Error::Domain(chat_domain::DomainError::RateLimited { .. })) => {
                out.send(rpc_error(id, 4)).await
            }
            Err(chat_services::Error::Domain(_)) => out.send(rpc_error(id, 1)).await,
            Err(e) => self.fail(out, id, e.into()).await,
        }
    }
}

impl SocketDoor for SupportSocket {
    const NAME: &'static str = "door_003";

    async fn on_text(&mut self, text: &str, out: &mut Outbox<'_>) -> Flow {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return out.send(rpc_error(&Value::Null, 1)).await;
        };
        let id = frame.get("id").cloned().unwrap_or(Value::Null);
        let method = frame.get("method").and_then(Value::as_str);
        if self.session.is_none() && method != Some("message.auth") {
            return out.send(rpc_error(&id, 3)).await;
        }
        let params: &[Value] = match frame.get("params") {
            Some(Value::Array(params)) => params,
            None | Some(Value::Null) => &[],
            Some(_) => return out.send(rpc_error(&id, 1)).await,
        };
        match method {
            Some("message.auth") if self.session.is_none() => {
                self.authenticate(&id, params, out).await
            }
            Some("message.auth") => out.send(rpc_error(&id, 1)).await,
            Some("message.send") => self.send(&id, params, false, out).await,
            Some("message.operatorSend") => self.send(&id, params, true, out).await,
            _ => out.send(rpc_error(&id, 2)).await,
        }
    }

    async fn on_binary(&mut self, out: &mut Outbox<'_>) -> Flow {
        out.send(rpc_error(&Value::Null, 1)).await
    }

    async fn on_flood(&mut self, _retry_after: Duration, out: &mut Outbox<'_>) -> Flow {
        out.send(rpc_error(&Value::Null, 4)).await
    }

    async fn on_event(&mut self, event: &Event, out: &mut Outbox<'_>) -> Flow {
        let Some(session) = &self.session else {
            return Ok(());
        };
        let ChatEvent::MessageCreated {
            message,
            support_customer: Some(customer),
            ..
        } = &event.chat_event
        else {
            return Ok(());
        };
        // Not to the socket that sent it (it had the reply; the user's other sockets do get it),
        // nor what the history at `message.auth` already held.
        let own = self.sent.contains(&message.id);
        let replayed = session
            .replayed
            .is_some_and(|(chat, seq)| message.chat_id == chat && message.seq <= seq);
        if own || replayed || message.kind != MessageKind::Text {
            return Ok(());
        }
        let frame = event.frame(FrameKind::Support, |_| {
            Some(json!({"error": null, "result": {"message": message_json(message, *customer)}, "id": message.id}).to_string())
        });
        match frame {
            Some(frame) => out.send(frame).await,
            None => Ok(()),
        }
    }

    async fn on_heartbeat(&mut self) -> Flow {
        if self.session.is_none() && self.opened.elapsed() > AUTH_TIMEOUT {
            return Err(Stop::close(CloseCode::Policy, "authentication timeout"));
        }
        Ok(())
    }
}
