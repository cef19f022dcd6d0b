//! The door 003 socket session: JSON-RPC frames in, replies and live messages out.

use super::*;

pub(super) struct SupportSocket {
    pub(super) state: AppState,
    pub(super) conn: Arc<Connection>,
    pub(super) opened: Instant,
    /// Ids of the messages this socket sent recently (not pushed back to it).
    pub(super) sent: std::collections::VecDeque<chat_domain::MessageId>,
    pub(super) session: Option<Authenticated>,
}

pub(super) fn reply(id: &Value, result: Value) -> String {
    json!({"error": null, "result": result, "id": id}).to_string()
}

pub(super) fn rpc_error(id: &Value, code: u8) -> String {
    let message = match code {
        1 => "Incorrect argument.",
        2 => "Unknown method.",
        4 => "Too many requests.",
        _ => "Not authorized.",
    };
    json!({"error": {"code": code, "message": message}, "result": null, "id": id}).to_string()
}

/// A support message on the wire.
pub(super) fn message_json(message: &MessageView, customer: UserId) -> Value {
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
pub(super) fn text_param(params: &[Value], max_chars: usize) -> Option<MessageText> {
    params
        .first()
        .and_then(Value::as_str)
        .and_then(|t| MessageText::parse(t, max_chars).ok())
}

/// A customer id param: a number or a numeric string.
pub(super) fn id_param(value: Option<&Value>) -> Option<UserId> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .map(UserId)
}

/// A `message.auth` with a missing, bad, expired or revoked token: the envelope's error 3 "Not
/// authorized." (so the client sees why), then close 1008 "authentication failed".
pub(super) async fn refuse_auth(out: &mut Outbox<'_>, id: &Value) -> Flow {
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
                self.state.hub.ready_for_chats([chat]).await;
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
        if watch.is_some() {
            self.state.hub.ready_for_support().await;
        }
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
    type Done = ();

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

    async fn on_event(&mut self, event: &Arc<Event>, out: &mut Outbox<'_>) -> Flow {
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
