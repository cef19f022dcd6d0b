//! Every read of the chat core, returning view models, cached in Redis where hot (membership
//! checks, user profiles). Also home of what reads and writes share: the schema, the [`Store`]
//! (PostgreSQL pool + Redis), the Redis keyspace and the [`ChatEvent`]s carried between instances.
//!
//! Cache rule: services call the `invalidate_*` functions here after their transaction commits.
//! A Redis failure on a read is logged and the read falls back to PostgreSQL.

mod cache;
mod chats;
mod error;
mod events;
mod friends;
mod members;
mod messages;
pub mod presence;
pub mod redis_link;
pub mod schema;
mod store;
mod users;
mod writer_handle;

pub use chat_domain::{ChatId, MessageId, UserId};
pub use chats::{
    CHAT_LIST_MAX, ChatListItem, ChatMembers, ChatView, chat_by_id, chat_list, group_by_name,
    invalidate_chat_lists, invalidate_chat_summaries, public_groups, sandbox_chat,
    sandbox_chats_with_members,
};
pub use error::{Error, Result};
pub use events::{ChatEvent, ControlEvent, add_invalidations};
pub use friends::{friends_of, is_friend, require_friend};
pub use members::{
    MemberView, invalidate_members, is_member_now, member_ids, member_list, membership,
    require_member, user_chats,
};
pub use messages::{
    AuthorView, HistoryCursor, MessagePage, MessageRow, MessageView, message_by_client_id,
    message_by_seq, message_history, text_messages,
};
pub use redis_link::{RedisHealth, RedisLink};
pub use store::{
    DbConn, Keys, MIGRATIONS, Store, StoreConfig, run_migrations, run_migrations_until,
    with_tcp_timeouts,
};
pub use users::{
    Credentials, TOKENS_NOT_BEFORE_TTL_SECS, UserBrief, UserView, credentials_by_login,
    invalidate_user, sandbox_user, search_users, tokens_not_before, tokens_not_before_of,
    user_by_id, user_by_username,
};
pub use writer_handle::{MessageWrite, MessageWriter, WrittenMessage};
