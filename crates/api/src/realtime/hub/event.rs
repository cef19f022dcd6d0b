//! A bus event as the hub hands it out, with its frames rendered once per door kind.

use super::*;

/// The wire formats a chat event is rendered into; each is rendered at most once per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Door 002 group broadcast `{"message":{...}}`.
    Door002Group = 0,
    /// Door 002 direct broadcast `{"data":{...}}`.
    Door002Direct = 1,
    /// The native gateway's event frame.
    Gateway = 2,
    /// Door 004's `{"username","text","timestamp"}`.
    Rooms = 3,
    /// Door 000's `{"id","date","username","message"}`.
    WsChat = 4,
    /// Door 003's push `{"error":null,"result":{"message":{...}},"id"}`.
    Support = 5,
}

pub(super) const FRAME_KINDS: usize = 6;

/// Over how long [`Hub::resync_all`] spreads its notifications.
pub const RESYNC_SPREAD: std::time::Duration = std::time::Duration::from_millis(500);

/// A committed chat event as delivered to local sockets, with its rendered frames cached.
#[derive(Debug)]
pub struct Event {
    /// What happened.
    pub chat_event: ChatEvent,
    /// A new message's commit time, µs since the Unix epoch (for the fan-out delay).
    created_micros: Option<i64>,
    frames: [OnceLock<Option<ByteString>>; FRAME_KINDS],
}

impl Event {
    /// Wraps an event received from the bus.
    pub fn new(chat_event: ChatEvent) -> Self {
        let created_micros = match &chat_event {
            ChatEvent::MessageCreated { message, .. } => {
                Some(message.created_at.timestamp_micros())
            }
            _ => None,
        };
        Self {
            chat_event,
            created_micros,
            frames: Default::default(),
        }
    }

    /// A new message's commit time, µs since the Unix epoch; `None` for other events.
    pub fn created_micros(&self) -> Option<i64> {
        self.created_micros
    }

    /// The event's frame in `kind`'s format, rendered by `render` on first use and shared by every
    /// socket after that (`None`: this event has no frame in that format).
    pub fn frame(
        &self,
        kind: FrameKind,
        render: impl FnOnce(&ChatEvent) -> Option<String>,
    ) -> Option<ByteString> {
        self.frames[kind as usize]
            .get_or_init(|| render(&self.chat_event).map(ByteString::from))
            .clone()
    }
}
