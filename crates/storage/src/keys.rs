//! The Redis keyspace: every key and channel name of a deployment, under one prefix (so several
//! deployments, or tests, share one Redis).

use std::sync::Arc;

use chat_domain::{ChatId, UserId};

/// Every Redis key and channel name this deployment uses, under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    /// Keys under `prefix` (for example `chat:`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel carrying every chat event between instances.
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The membership generation of a chat: a random value replaced after every committed
    /// membership change, so cached entries of other generations are ignored.
    pub fn chat_members_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v1:{chat}:members:gen", self.prefix)
    }

    /// One user's cached membership in a chat: `"<generation>:<role or ->"`.
    pub fn chat_member(&self, chat: ChatId, user: UserId) -> String {
        format!("{}chat:v1:{chat}:member:{user}", self.prefix)
    }

    /// A user's live connections (presence): a sorted set of connection tokens scored by their
    /// expiry time (unix ms). The user is online while any score lies in the future.
    pub fn presence(&self, user: UserId) -> String {
        format!("{}presence:v1:{user}", self.prefix)
    }

    /// The generation of a chat's summary in chat lists (last message, `last_seq)`: replaced after
    /// every committed message, edit or delete in the chat.
    pub fn chat_summary_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v1:{chat}:summary:gen", self.prefix)
    }

    /// The generation of a user's own part of their chat list (which chats, read markers):
    /// replaced after the user joins, leaves, reads, or a chat of theirs is created or deleted.
    pub fn chat_list_gen(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:chats:gen", self.prefix)
    }

    /// A user's cached chat list (JSON, stamped with the generations it was computed under).
    pub fn chat_list(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:chats", self.prefix)
    }

    /// A rate-limit counter of `subject` (e.g. `send:42`, `auth:10.0.0.1`) in the minute `window`.
    pub fn rate(&self, subject: &str, window: u64) -> String {
        format!("{}rate:v1:{subject}:{window}", self.prefix)
    }

    /// A cached user profile (JSON of `UserView`; v2 since it carries `sandbox`, so no profile
    /// cached by an older release is read as a main-namespace user).
    pub fn user(&self, user: UserId) -> String {
        format!("{}user:v2:{user}", self.prefix)
    }

    /// A user's cached token cut-off: unix seconds before which their tokens are dead, `-1`
    /// when no token is valid (disabled or gone). See `chat_selectors::tokens_not_before`.
    pub fn tokens_not_before(&self, user: UserId) -> String {
        format!("{}user:v1:{user}:nbf", self.prefix)
    }

    /// The live instances (presence): a sorted set of instance ids scored by the expiry (unix
    /// ms) of their last heartbeat. An instance past it has died without saying so.
    pub fn presence_instances(&self) -> String {
        format!("{}presence:v1:instances", self.prefix)
    }

    /// The users that have (or had) a presence entry made by `instance`: whom to check when it
    /// dies.
    pub fn presence_instance_users(&self, instance: &str) -> String {
        format!("{}presence:v1:instance:{instance}:users", self.prefix)
    }

    /// The pub/sub channel carrying events about users rather than chats (sessions revoked).
    pub fn control_channel(&self) -> String {
        format!("{}control", self.prefix)
    }

    /// Present for 2 s after `user`'s last published typing event in `chat` (the throttle).
    pub fn typing(&self, chat: ChatId, user: UserId) -> String {
        format!("{}typing:v1:{chat}:{user}", self.prefix)
    }
}
