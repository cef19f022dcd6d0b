//! Every write of the chat core. One async function per use case, one PostgreSQL transaction
//! each; after the commit, caches are invalidated and [`ChatEvent`]s are published to every
//! instance through Redis. A refused request changes nothing.

mod auth;
mod chats;
mod error;
mod events;
mod friends;
mod members;
mod messages;
pub mod presence;
pub mod rate;
mod store;
mod support;
mod transaction;
mod writer;

pub use auth::{
    CUT_OFF_MARGIN_SECS, LoggedIn, authenticate, disable_user, enable_user, issue_refresh_token,
    register, register_sandbox_user, rename_user, revoke_refresh_token, revoke_sessions,
    rotate_refresh_token,
};
pub use chat_selectors::ChatEvent;
pub use chats::{create_group, create_sandbox_chat, delete_group, open_direct_chat, rename_group};
pub use error::{Error, Result, transient_database_fault};
pub use events::publish;
pub use friends::{add_friend, remove_friend};
pub use members::{invite_member, join_group, leave_group, remove_member, set_member_role};
pub use messages::{
    PendingSend, Sent, delete_message, edit_message, mark_read, post_system_line, queue_send,
    send_message, send_sandbox_message, take_send_quota,
};
pub use store::Store;
pub use support::{is_operator, operator_send, set_user_role, support_chat, support_send};
pub use writer::{DEFAULT_WRITERS, Inserted, MAX_BATCH, QUEUE_CAPACITY, start_writer};
