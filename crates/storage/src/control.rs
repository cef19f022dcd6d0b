//! The control channel's events: what happens to a user or to the deployment rather than in a
//! chat, carried between instances by Redis.

use chat_domain::UserId;
use serde::{Deserialize, Serialize};

/// Something that happened to a user rather than in a chat, for every instance: JSON on the
/// channel `Keys::control_channel()`, tagged by `"event"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum ControlEvent {
    /// Every token of `user_id` issued before `not_before` (unix s; `i64::MAX`: all of them, the
    /// user is disabled or gone) is dead: sockets opened with such a token close.
    #[serde(rename = "sessions.revoked")]
    SessionsRevoked {
        /// Whose sessions.
        user_id: UserId,
        /// The new token cut-off, unix s.
        not_before: i64,
    },
    /// Events were published while some instance could not reach Redis (or were not published
    /// at all): every instance's sockets catch up from PostgreSQL.
    #[serde(rename = "catch_up")]
    CatchUp,
}
