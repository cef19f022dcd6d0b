//! Every read of the chat core, returning view models, cached in Redis where hot (membership
//! checks, user profiles). Also home of the [`ChatEvent`]s carried between instances; the storage
//! plumbing (pool, schema, Redis, keyspace) is `chat-storage`'s.
//!
//! Cache rule: services call the `invalidate_*` functions here after their transaction commits.
//! A Redis failure on a read is logged and the read falls back to PostgreSQL.

mod cache;
mod chats;
mod events;
mod friends;
mod members;
mod messages;
pub mod presence;
mod sandbox;
mod users;

pub use chat_domain::{ChatId, MessageId, UserId};
/// The storage plumbing the reads run on (re-exported: callers of the reads need it too).
pub use chat_storage::{
    ControlEvent, DEFAULT_EVENT_SHARDS, DbConn, Error, Keys, MIGRATIONS, RedisClient, RedisHealth,
    RedisLink, Result, Store, StoreConfig, Topic, redis_link, run_migrations, run_migrations_until,
    schema, with_tcp_timeouts,
};
pub use chats::{
    CHAT_LIST_MAX, ChatListItem, ChatView, chat_by_id, chat_list, group_by_name,
    invalidate_chat_lists, invalidate_chat_summaries, public_groups, sandbox_chat,
};
pub use events::{ChatEvent, add_invalidations};
pub use friends::{friends_of, is_friend, require_friend};
pub use members::{
    MemberView, invalidate_members, is_member_now, member_ids, member_list, membership,
    require_member, user_chats,
};
pub use messages::{
    AuthorView, HistoryCursor, MessagePage, MessageRow, MessageView, message_by_client_id,
    message_by_seq, message_history, text_messages,
};
pub use sandbox::{
    ChatMembers, SandboxMessage, require_sandbox_users, sandbox_chat_ids, sandbox_chats,
    sandbox_messages,
};
pub use users::{
    Credentials, SocketStart, TOKENS_NOT_BEFORE_TTL_SECS, UserBrief, UserView,
    credentials_by_login, invalidate_user, sandbox_user, search_users, socket_start,
    tokens_not_before, tokens_not_before_of, user_by_id, user_by_username,
};
