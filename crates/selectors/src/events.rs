//! Events carried between server instances over Redis pub/sub, after the write that caused them
//! has committed (typing and presence are never stored). JSON on
//! the channels of `Keys::channel` (by shard of chats), tagged by `"event"`.

use serde::{Deserialize, Serialize};

use crate::{ChatId, MessageView, UserBrief, UserId};

/// Something that happened in a chat, for every member connected to any instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum ChatEvent {
    /// A message (text or system line) was committed with the chat's next `seq`.
    #[serde(rename = "message.created")]
    MessageCreated {
        /// The chat.
        chat_id: ChatId,
        /// The stored message.
        message: MessageView,
        /// For a customer's support chat (door 003), the customer: support messages also reach
        /// every unbound operator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        support_customer: Option<UserId>,
    },
    /// A message's text was edited by its author.
    #[serde(rename = "message.updated")]
    MessageUpdated {
        /// The chat.
        chat_id: ChatId,
        /// The message as it is now.
        message: MessageView,
    },
    /// A message was deleted; `message` is its tombstone (`deleted: true`, empty text).
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// The chat.
        chat_id: ChatId,
        /// The tombstone.
        message: MessageView,
    },
    /// A user became a member (joined, or was added by `by`). Also delivered to that user's own
    /// sockets, which start receiving the chat at once.
    #[serde(rename = "member.joined")]
    MemberJoined {
        /// The chat.
        chat_id: ChatId,
        /// Who joined.
        user: UserBrief,
        /// Who added them (`None`: they joined by themselves).
        by: Option<UserId>,
        /// The chat's `last_seq` just before the join: the new member receives what follows.
        since_seq: i64,
    },
    /// A user stopped being a member (left, or was removed by `by`): their sockets stop
    /// receiving the chat.
    #[serde(rename = "member.left")]
    MemberLeft {
        /// The chat.
        chat_id: ChatId,
        /// Who left.
        user: UserBrief,
        /// Who removed them (`None`: they left by themselves).
        by: Option<UserId>,
    },
    /// A member is typing; clients show it for `expires_in_ms` unless renewed.
    #[serde(rename = "typing")]
    Typing {
        /// The chat.
        chat_id: ChatId,
        /// Who is typing.
        user: UserBrief,
        /// How long the indicator lasts, ms.
        expires_in_ms: u64,
    },
    /// A member's read marker moved forward.
    #[serde(rename = "read")]
    Read {
        /// The chat.
        chat_id: ChatId,
        /// Whose marker.
        user_id: UserId,
        /// The highest seq they have read.
        seq: i64,
    },
    /// A member came online (first socket) or went offline (last socket closed).
    #[serde(rename = "presence")]
    Presence {
        /// The chat.
        chat_id: ChatId,
        /// Who.
        user_id: UserId,
        /// Online now?
        online: bool,
    },
    /// The chat was deleted: every socket on it is told and stops receiving it.
    #[serde(rename = "chat.deleted")]
    ChatDeleted {
        /// The chat.
        chat_id: ChatId,
    },
}

impl ChatEvent {
    /// The chat the event belongs to (the fan-out key).
    pub fn chat_id(&self) -> ChatId {
        match self {
            Self::MessageCreated { chat_id, .. }
            | Self::MessageUpdated { chat_id, .. }
            | Self::MessageDeleted { chat_id, .. }
            | Self::MemberJoined { chat_id, .. }
            | Self::MemberLeft { chat_id, .. }
            | Self::Typing { chat_id, .. }
            | Self::Read { chat_id, .. }
            | Self::Presence { chat_id, .. }
            | Self::ChatDeleted { chat_id } => *chat_id,
        }
    }
}

/// Appends to `pipe` the cache invalidations `event` calls for (generation bumps of the chat lists
/// it changes), so a service publishes and invalidates in one round trip, invalidation first.
///
/// A message, edit or delete makes its chat's summary stale; a join, leave or read makes that
/// user's own list stale.
pub fn add_invalidations(pipe: &mut redis::Pipeline, keys: &crate::Keys, event: &ChatEvent) {
    let key = match event {
        ChatEvent::MessageCreated { chat_id, .. }
        | ChatEvent::MessageUpdated { chat_id, .. }
        | ChatEvent::MessageDeleted { chat_id, .. } => keys.chat_summary_gen(*chat_id),
        ChatEvent::MemberJoined { user, .. } | ChatEvent::MemberLeft { user, .. } => {
            keys.chat_list_gen(user.id)
        }
        ChatEvent::Read { user_id, .. } => keys.chat_list_gen(*user_id),
        // Whoever still lists a deleted chat (even one who joined as it was deleted) drops it.
        ChatEvent::ChatDeleted { chat_id } => keys.chat_summary_gen(*chat_id),
        ChatEvent::Typing { .. } | ChatEvent::Presence { .. } => return,
    };
    pipe.set(key, rand::random::<u64>()).ignore();
}
