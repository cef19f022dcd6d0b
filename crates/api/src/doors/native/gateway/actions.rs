//! What the gateway does with each client action (docs/native-api.md, "Client → server actions").

use chat_domain::{ChatId, ClientId, MessageText};
use chat_selectors::{
    HistoryCursor, chat_by_id, member_ids, message_history, presence::online_users,
};
use serde_json::{Value, json};

use super::frames::{
    ClientFrame, NOT_A_RESUME_OBJECT, Resume, ack, created_frame, forbidden_chat, invalid,
    with_request_id,
};
use super::session::Gateway;
use crate::error::ApiError;
use crate::realtime::ordered::{Replayed, replay};
use crate::realtime::socket::{Flow, Outbox};

/// How long a typing indicator lasts, ms.
const TYPING_MS: u64 = 6_000;

/// Most messages one `sync` replays (the rest follows on the next `sync`), so a long absence
/// cannot hold the socket's event queue past its limit.
pub const SYNC_MAX: i64 = 1_000;

impl Gateway {
    /// Carries out one client frame.
    ///
    /// `Err` is a refusal, answered with an error frame by the caller; `Ok(Err(_))` ends the
    /// session.
    pub(super) async fn act(
        &mut self,
        frame: ClientFrame,
        request_id: Option<&Value>,
        out: &mut Outbox<'_>,
    ) -> Result<Flow, ApiError> {
        Ok(match frame {
            ClientFrame::SendMessage(send) => {
                let chat = self.member_chat(send.chat_id)?;
                let max = self.state.settings.max_message_chars;
                let text = send
                    .message
                    .ok_or_else(|| invalid("message", "Must be a string."))?;
                let text = MessageText::parse(&text, max)?;
                let client_id = send.client_id.as_deref().map(ClientId::parse).transpose()?;
                self.queue_send(chat, &text, client_id.as_ref(), request_id)
                    .await;
                Ok(())
            }
            ClientFrame::RetrieveMessage(retrieve) => {
                let chat = self.member_chat(retrieve.chat_id)?;
                let number = retrieve.number.unwrap_or(50);
                if !(1..=200).contains(&number) {
                    return Err(invalid("number", "Must be from 1 to 200."));
                }
                let cursor = match retrieve.before {
                    Some(before) => HistoryCursor::Before(before),
                    None => HistoryCursor::Latest,
                };
                let page = message_history(&self.state.store, chat, cursor, number).await?;
                let reply = with_request_id(
                    json!({"event": "messages", "chat_id": chat, "messages": page.messages, "has_more": page.has_more}),
                    request_id,
                );
                out.send(reply).await
            }
            ClientFrame::Sync(sync) => {
                let wanted = sync
                    .chats
                    .ok_or_else(|| invalid("chats", NOT_A_RESUME_OBJECT))?;
                self.sync(wanted, request_id, out).await?
            }
            ClientFrame::Typing(typing) => {
                let chat = self.member_chat(typing.chat_id)?;
                // Published at most once per user and chat every 2 s; acknowledged every time.
                chat_services::presence::typing(&self.state.store, chat, self.brief(), TYPING_MS)
                    .await;
                out.send(ack(request_id, "typing")).await
            }
            ClientFrame::Read(read) => {
                let chat = self.member_chat(read.chat_id)?;
                let seq = read
                    .seq
                    .ok_or_else(|| invalid("seq", "This field is required."))?;
                chat_services::mark_read(&self.state.store, self.user.id, chat, seq).await?;
                out.send(ack(request_id, "read")).await
            }
            ClientFrame::Presence(presence) => {
                let chat = self.member_chat(presence.chat_id)?;
                let members = member_ids(&self.state.store, chat).await?;
                let online = online_users(&self.state.store, &members).await?;
                out.send(with_request_id(
                    json!({"event": "online", "chat_id": chat, "user_ids": online}),
                    request_id,
                ))
                .await
            }
            ClientFrame::Ping => {
                out.send(with_request_id(json!({"event": "pong"}), request_id))
                    .await
            }
            ClientFrame::Auth => return Err(ApiError::bad_request("Already authenticated.")),
        })
    }

    /// Replays what the client lacks, then answers `synced`.
    ///
    /// Per requested chat: the messages after the client's seq (or after what an earlier replay
    /// of this socket sent, if later) up to the chat's `live_from` (what this socket did not send
    /// live), at most [`SYNC_MAX`] in all; then
    /// `{"event":"synced","chats":{"<chat_id>": <seq the client now has>},"complete"}`. Moves no
    /// delivery mark: nothing is ever sent twice. Errors (before anything is sent): a chat the
    /// user is not in (`forbidden`), a seq beyond the chat's `last_seq` (`invalid`).
    pub(super) async fn sync(
        &mut self,
        wanted: Resume,
        request_id: Option<&Value>,
        out: &mut Outbox<'_>,
    ) -> Result<Flow, ApiError> {
        for (chat, seq) in &wanted {
            let Some(followed) = self.chats.get(chat) else {
                return Err(forbidden_chat());
            };
            // A seq this socket knows to exist needs no look-up (a resume after a reconnect).
            if *seq <= followed.live_from.max(followed.order.delivered()) {
                continue;
            }
            let last_seq = chat_by_id(&self.state.store, *chat).await?.last_seq;
            if *seq > last_seq {
                return Err(invalid(
                    "chats",
                    &format!("seq {seq} of chat {chat} is beyond its last_seq {last_seq}."),
                ));
            }
        }
        let mut budget = SYNC_MAX;
        let mut complete = true;
        let mut synced = serde_json::Map::new();
        for (chat, seq) in wanted {
            let Some((upto, replayed)) = self.chats.get(&chat).map(|f| (f.live_from, f.replayed))
            else {
                continue;
            };
            let from = seq.max(replayed);
            let render = |m: &chat_selectors::MessageView| created_frame(chat, m);
            let Replayed {
                last,
                sent,
                exhausted,
            } = match replay(&self.state.store, chat, from, upto, budget, render, out).await {
                Ok(replayed) => replayed,
                Err(stop) => return Ok(Err(stop)),
            };
            budget -= sent;
            if let Some(followed) = self.chats.get_mut(&chat) {
                followed.replayed = followed.replayed.max(last);
            }
            let at = if exhausted { upto } else { last };
            // Caught up to live_from: the client now has all this socket delivered, too.
            let reached = if at >= upto {
                self.chats.get(&chat).map_or(at, |f| f.order.delivered())
            } else {
                at
            };
            complete &= at >= upto;
            synced.insert(chat.to_string(), json!(reached));
        }
        let reply = json!({"event": "synced", "chats": synced, "complete": complete});
        Ok(out.send(with_request_id(reply, request_id)).await)
    }

    /// The chat of an action, if the user follows it.
    ///
    /// Errors: `invalid{"chat_id"}` when missing, `forbidden` when not a member.
    pub(super) fn member_chat(&self, chat_id: Option<i64>) -> Result<ChatId, ApiError> {
        let chat = ChatId(chat_id.ok_or_else(|| invalid("chat_id", "This field is required."))?);
        if self.chats.contains_key(&chat) {
            Ok(chat)
        } else {
            Err(forbidden_chat())
        }
    }
}
