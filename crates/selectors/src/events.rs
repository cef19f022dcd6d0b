//! Events carried between server instances over Redis pub/sub, after the write that caused them
//! has committed. JSON on the channel `Keys::events_channel()`, tagged by `"event"`.

use serde::{Deserialize, Serialize};

use crate::{ChatId, MessageView, UserId};

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
    },
    /// A user became a member.
    #[serde(rename = "member.joined")]
    MemberJoined {
        /// The chat.
        chat_id: ChatId,
        /// Who joined.
        user_id: UserId,
    },
    /// A user stopped being a member (left or was removed): their sockets stop receiving the chat.
    #[serde(rename = "member.left")]
    MemberLeft {
        /// The chat.
        chat_id: ChatId,
        /// Who left.
        user_id: UserId,
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
            | Self::MemberJoined { chat_id, .. }
            | Self::MemberLeft { chat_id, .. }
            | Self::ChatDeleted { chat_id } => *chat_id,
        }
    }
}
