//! Sending messages: gapless `seq` per chat, idempotent by `(author, client_id)`.

use chat_domain::{
    ChatId, ClientId, DomainError, MessageKind, MessageText, UserId, can_change_message,
};
use chat_domain::{ConflictReason, ForbiddenReason, NotFoundReason};
use chat_selectors::schema::{chat_members, chats, messages};
use chat_selectors::{
    ChatEvent, MessageView, message_by_client_id, message_by_seq, require_member,
};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::Store;
use crate::error::unique_violation;
use crate::writer::{Inserted, Queued, queue_message, write_message};
use crate::{Error, Result, publish};

/// The outcome of a send.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stored message.
    pub message: MessageView,
    /// `false` when `client_id` matched an earlier send and that message is returned instead.
    pub created: bool,
}

/// Stores a text message from `author` in `chat` and publishes it to every instance after the
/// commit.
///
/// The same `(author, client_id)` returns the original message with `created: false`, forever and
/// on every instance (a unique index, not a cache). With a started writer ([`crate::start_writer`])
/// the message is stored together with concurrent sends in one statement; either way it is answered
/// only after its commit. Errors: `RateLimited` (over `send_per_min` this minute), `NotFound` (no
/// such chat), `Forbidden` (not a member), `Conflict` (`client_id` already used in another chat).
pub async fn send_message(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
    client_id: Option<&ClientId>,
) -> Result<Sent> {
    queue_send(store, author, chat, text, client_id)
        .await
        .outcome()
        .await
}

/// The first half of [`send_message`]: counts the send and hands it to the writer.
///
/// It does not wait for the commit. Sends queued one after the other by one caller are
/// stored in that order within a chat, so a socket may have several in flight and answer them in
/// order as their outcomes come (issue "Fan-out at scale", pipelined sends). Without a writer
/// the message is written before this returns.
pub async fn queue_send(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
    client_id: Option<&ClientId>,
) -> PendingSend {
    let state = match take_send_quota(store, author).await {
        Err(limited) => PendingState::Refused(limited),
        Ok(()) => PendingState::Queued(queue_text(store, author, chat, text, client_id).await),
    };
    PendingSend {
        store: store.clone(),
        author,
        chat,
        client_id: client_id.map(|id| id.as_str().to_owned()),
        state,
    }
}

/// A send queued by [`queue_send`]; [`PendingSend::outcome`] waits for its commit.
pub struct PendingSend {
    store: Store,
    author: UserId,
    chat: ChatId,
    client_id: Option<String>,
    state: PendingState,
}

enum PendingState {
    /// Over the send limit: not queued.
    Refused(Error),
    Queued(Queued),
}

impl PendingSend {
    /// The chat the send went to.
    pub fn chat(&self) -> ChatId {
        self.chat
    }

    /// The outcome, once committed (or refused): as [`send_message`]'s. Owns what it needs, so
    /// it can be awaited apart from the caller (`'static`).
    pub async fn outcome(self) -> Result<Sent> {
        let Self {
            store,
            author,
            chat,
            client_id,
            state,
        } = self;
        let client_id = client_id.as_deref();
        match state {
            PendingState::Refused(limited) => {
                // A retry of an earlier send is not a new message: it still gets its original.
                if let Some(id) = client_id
                    && let Some(message) = message_by_client_id(&store, author, id).await?
                    && message.chat_id == chat
                {
                    return Ok(Sent {
                        message,
                        created: false,
                    });
                }
                Err(limited)
            }
            PendingState::Queued(queued) => {
                explain(&store, author, chat, client_id, queued.inserted().await).await
            }
        }
    }
}

/// Stores a text message of door 001's sandbox, as [`send_message`] but without the per-user
/// send limit.
///
/// Door 001 has no authentication, so anyone may write as any of its users and a per-user quota
/// limits no one; the door limits its callers by address instead (`CHAT_AVITO_RATE_PER_MIN`).
/// Errors: as [`send_message`]'s, but never `RateLimited`.
pub async fn send_sandbox_message(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
) -> Result<Sent> {
    send_within_quota(store, author, chat, text, None).await
}

/// Counts one send of `author` against `send_per_min` (every door's sends, and door 004's
/// join/leave lines, which are stored like messages). Errors: `RateLimited`.
pub async fn take_send_quota(store: &Store, author: UserId) -> Result<()> {
    crate::rate::take(store, &format!("send:{author}"), store.send_per_min).await
}

/// `send_message` once the send was counted against the limit.
pub(crate) async fn send_within_quota(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
    client_id: Option<&ClientId>,
) -> Result<Sent> {
    let queued = queue_text(store, author, chat, text, client_id).await;
    let client_id = client_id.map(ClientId::as_str);
    explain(store, author, chat, client_id, queued.inserted().await).await
}

/// Hands a member's text message to the writer. No membership pre-check: the insert itself
/// stores only a member's message (and uses no seq otherwise), and a refusal is explained by
/// [`explain`]. One cache round trip less per send.
async fn queue_text(
    store: &Store,
    author: UserId,
    chat: ChatId,
    text: &MessageText,
    client_id: Option<&ClientId>,
) -> Queued {
    let client_id = client_id.map(ClientId::as_str);
    queue_message(
        store,
        chat,
        Some(author),
        MessageKind::Text,
        text.as_str(),
        client_id,
        true,
    )
    .await
}

/// A send's outcome from the writer's answer: the stored message, the earlier one of a repeated
/// `client_id`, or why it was refused.
async fn explain(
    store: &Store,
    author: UserId,
    chat: ChatId,
    client_id: Option<&str>,
    inserted: Result<Option<Inserted>>,
) -> Result<Sent> {
    match inserted {
        Ok(Some(inserted)) => {
            metrics::counter!("chat_messages_accepted_total").increment(1);
            Ok(Sent {
                message: inserted.message,
                created: true,
            })
        }
        // Refused or a repeat: a non-member (or a missing chat) is told so first, whatever the
        // `client_id`, as when membership was checked before the insert.
        Ok(None) => match client_id {
            Some(client_id) => {
                require_member(store, chat, author).await?;
                earlier_send(store, author, chat, client_id).await
            }
            None => Err(not_member_or_missing(store, chat, author).await),
        },
        Err(e) if unique_violation(&e).is_some() && client_id.is_some() => {
            require_member(store, chat, author).await?;
            earlier_send(store, author, chat, client_id.unwrap_or_default()).await
        }
        Err(e) => Err(e),
    }
}

/// The earlier message sent with `client_id`, or why the send was refused.
async fn earlier_send(
    store: &Store,
    author: UserId,
    chat: ChatId,
    client_id: &str,
) -> Result<Sent> {
    match message_by_client_id(store, author, client_id).await? {
        Some(message) if message.chat_id == chat => Ok(Sent {
            message,
            created: false,
        }),
        Some(_) => Err(DomainError::Conflict(ConflictReason::ClientIdElsewhere).into()),
        None => Err(not_member_or_missing(store, chat, author).await),
    }
}

/// Why a member check that passed a moment ago now fails (left or deleted meanwhile).
async fn not_member_or_missing(store: &Store, chat: ChatId, author: UserId) -> Error {
    match require_member(store, chat, author).await {
        Err(e) => e,
        Ok(_) => DomainError::Forbidden(ForbiddenReason::NotMember).into(),
    }
}

/// The author edits the text of message `seq`; publishes `message.updated`.
/// Errors: `NotFound` (no chat or message, or deleted), `Forbidden` (not the author, not a
/// member, a system line).
pub async fn edit_message(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    seq: i64,
    text: &MessageText,
) -> Result<MessageView> {
    change_message(store, actor, chat, seq, Some(text)).await
}

/// The author deletes message `seq`, leaving a tombstone (history shows `deleted: true`, no
/// text); publishes `message.deleted`. Errors as for [`edit_message`].
pub async fn delete_message(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    seq: i64,
) -> Result<MessageView> {
    change_message(store, actor, chat, seq, None).await
}

async fn change_message(
    store: &Store,
    actor: UserId,
    chat: ChatId,
    seq: i64,
    text: Option<&MessageText>,
) -> Result<MessageView> {
    require_member(store, chat, actor).await?;
    let current = message_by_seq(store, chat, seq).await?;
    can_change_message(
        actor,
        current.author.as_ref().map(|a| a.id),
        current.kind,
        current.deleted,
    )?;
    let mut conn = store.conn().await?;
    let target = messages::table
        .filter(messages::chat_id.eq(chat.0))
        .filter(messages::seq.eq(seq))
        .filter(messages::author_id.eq(actor.0))
        .filter(messages::deleted_at.is_null());
    let now = chrono::Utc::now();
    let changed = match text {
        Some(text) => {
            diesel::update(target)
                .set((
                    messages::text.eq(text.as_str()),
                    messages::edited_at.eq(now),
                ))
                .execute(&mut conn)
                .await?
        }
        None => {
            diesel::update(target)
                .set((messages::text.eq(""), messages::deleted_at.eq(now)))
                .execute(&mut conn)
                .await?
        }
    };
    drop(conn);
    if changed == 0 {
        // Deleted (or changed hands) between the check and the update.
        return Err(DomainError::NotFound(NotFoundReason::Message).into());
    }
    let message = message_by_seq(store, chat, seq).await?;
    let event = match text {
        Some(_) => ChatEvent::MessageUpdated {
            chat_id: chat,
            message: message.clone(),
        },
        None => ChatEvent::MessageDeleted {
            chat_id: chat,
            message: message.clone(),
        },
    };
    publish(store, &event).await;
    Ok(message)
}

/// Moves `user`'s read marker in `chat` to `seq`; it never moves backwards (a lower `seq` is
/// accepted and changes nothing).
///
/// Publishes `read` when it moved. Errors: `NotFound`/`Forbidden` (not a member), `Invalid{"seq"}`
/// beyond the chat's `last_seq` or below 0.
pub async fn mark_read(store: &Store, user: UserId, chat: ChatId, seq: i64) -> Result<()> {
    require_member(store, chat, user).await?;
    let mut conn = store.conn().await?;
    let last_seq: i64 = chats::table
        .find(chat.0)
        .select(chats::last_seq)
        .first(&mut conn)
        .await?;
    if !(0..=last_seq).contains(&seq) {
        return Err(DomainError::invalid(
            "seq",
            format!("Must be from 0 to the chat's last_seq ({last_seq})."),
        )
        .into());
    }
    let moved = diesel::update(
        chat_members::table
            .find((chat.0, user.0))
            .filter(chat_members::last_read_seq.lt(seq)),
    )
    .set(chat_members::last_read_seq.eq(seq))
    .execute(&mut conn)
    .await?;
    drop(conn);
    if moved > 0 {
        publish(
            store,
            &ChatEvent::Read {
                chat_id: chat,
                user_id: user,
                seq,
            },
        )
        .await;
    }
    Ok(())
}

/// Stores a system line (no author) in `chat` (through the writer when started), published
/// after its commit, e.g. door 004's "alice joined the room". Errors: `NotFound` when the chat does not exist.
pub async fn post_system_line(store: &Store, chat: ChatId, text: &str) -> Result<MessageView> {
    let message = write_message(store, chat, None, MessageKind::System, text, None, false)
        .await?
        .ok_or(DomainError::NotFound(NotFoundReason::Chat))?;
    Ok(message.message)
}
