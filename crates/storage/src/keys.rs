//! The Redis keyspace: every key and channel name of a deployment, under one prefix (so several
//! deployments, or tests, share one Redis).
//!
//! Keys carry a Redis Cluster hash tag (the part in braces decides the slot): `{c<chat>}` for a
//! chat's keys, `{u<user>}` for a user's, `{i<instance>}` for an instance's, so that what one
//! operation touches stays on one slot (a membership lookup reads a chat's generation and entry
//! together; a presence transaction touches one user's key). On a single Redis the braces are
//! just characters. The prefix itself must not contain braces (checked by the configuration).
//!
//! Live events travel on channels by shard ([`Keys::chat_channel`], [`Keys::user_channel`]): an
//! instance listens only to the shards of the chats and users it has sockets for.

use std::sync::Arc;

use chat_domain::{ChatId, UserId};

/// Shards of the event channels unless configured: a chat's events go to the channel of shard
/// `chat_id mod shards`, events for a user's own sockets to `user_id mod shards`.
pub const DEFAULT_EVENT_SHARDS: u32 = 1024;

/// Every Redis key and channel name this deployment uses, under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Arc<str>,
    shards: u32,
}

/// A pub/sub channel of the deployment: what an instance listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// The events of the chats of one shard.
    Chats(u32),
    /// Events for the sockets of the users of one shard (a `member.joined` that opens a chat to
    /// them).
    Users(u32),
    /// New messages of every support chat (door 003's unbound operators).
    Support,
    /// Control events: sessions revoked, catch up (every instance listens).
    Control,
}

impl Default for Keys {
    /// Keys without a prefix, [`DEFAULT_EVENT_SHARDS`] shards (tests).
    fn default() -> Self {
        Self::new("")
    }
}

impl Keys {
    /// Keys under `prefix` (for example `chat:`), with [`DEFAULT_EVENT_SHARDS`] event shards.
    pub fn new(prefix: &str) -> Self {
        Self::with_shards(prefix, DEFAULT_EVENT_SHARDS)
    }

    /// Keys under `prefix` with `shards` event shards (at least 1). Every instance of a
    /// deployment must use the same number, or events miss the instances that listen elsewhere.
    pub fn with_shards(prefix: &str, shards: u32) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many shards the event channels have.
    pub fn event_shards(&self) -> u32 {
        self.shards
    }

    /// The topic carrying `chat`'s events.
    pub fn chat_topic(&self, chat: ChatId) -> Topic {
        Topic::Chats(chat.0.rem_euclid(i64::from(self.shards)) as u32)
    }

    /// The topic carrying events for `user`'s own sockets.
    pub fn user_topic(&self, user: UserId) -> Topic {
        Topic::Users(user.0.rem_euclid(i64::from(self.shards)) as u32)
    }

    /// The channel name of `topic`.
    pub fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Chats(shard) => format!("{}events:c{shard}", self.prefix),
            Topic::Users(shard) => format!("{}events:u{shard}", self.prefix),
            Topic::Support => format!("{}events:support", self.prefix),
            Topic::Control => format!("{}control", self.prefix),
        }
    }

    /// The channel of control events ([`Topic::Control`]).
    pub fn control_channel(&self) -> String {
        self.channel(Topic::Control)
    }

    /// The topic of a channel name ([`Self::channel`]'s inverse); `None` for another channel.
    pub fn topic_of(&self, channel: &str) -> Option<Topic> {
        let rest = channel.strip_prefix(&*self.prefix)?;
        if rest == "control" {
            return Some(Topic::Control);
        }
        let rest = rest.strip_prefix("events:")?;
        if rest == "support" {
            return Some(Topic::Support);
        }
        let shard = |s: &str| s.parse::<u32>().ok().filter(|n| *n < self.shards);
        if let Some(n) = rest.strip_prefix('c') {
            return shard(n).map(Topic::Chats);
        }
        rest.strip_prefix('u').and_then(shard).map(Topic::Users)
    }

    /// The membership generation of a chat: a random value replaced after every committed
    /// membership change, so cached entries of other generations are ignored.
    pub fn chat_members_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v2:{{c{chat}}}:members:gen", self.prefix)
    }

    /// One user's cached membership in a chat: `"<generation>:<role or ->"` (on the chat's slot).
    pub fn chat_member(&self, chat: ChatId, user: UserId) -> String {
        format!("{}chat:v2:{{c{chat}}}:member:{user}", self.prefix)
    }

    /// A user's live connections (presence): a sorted set of connection tokens scored by their
    /// expiry time (unix ms). The user is online while any score lies in the future.
    pub fn presence(&self, user: UserId) -> String {
        format!("{}presence:v2:{{u{user}}}", self.prefix)
    }

    /// What the others were last told about `user`'s presence: `online` or `offline` (on the
    /// slot of [`Self::presence`]).
    pub fn presence_said(&self, user: UserId) -> String {
        format!("{}presence:v2:{{u{user}}}:said", self.prefix)
    }

    /// The generation of a chat's summary in chat lists (last message, `last_seq)`: replaced after
    /// every committed message, edit or delete in the chat.
    pub fn chat_summary_gen(&self, chat: ChatId) -> String {
        format!("{}chat:v2:{{c{chat}}}:summary:gen", self.prefix)
    }

    /// The generation of a user's own part of their chat list (which chats, read markers):
    /// replaced after the user joins, leaves, reads, or a chat of theirs is created or deleted.
    pub fn chat_list_gen(&self, user: UserId) -> String {
        format!("{}user:v2:{{u{user}}}:chats:gen", self.prefix)
    }

    /// A user's cached chat list (JSON, stamped with the generations it was computed under).
    pub fn chat_list(&self, user: UserId) -> String {
        format!("{}user:v2:{{u{user}}}:chats", self.prefix)
    }

    /// A rate-limit counter of `subject` (e.g. `send:42`, `auth:10.0.0.1`) in the minute `window`.
    pub fn rate(&self, subject: &str, window: u64) -> String {
        format!("{}rate:v2:{{r{subject}}}:{window}", self.prefix)
    }

    /// A cached user profile (JSON of `UserView`; v3 since keys carry hash tags, v2 since it
    /// carries `sandbox`, so no profile cached by an older release is read as a main-namespace
    /// user).
    pub fn user(&self, user: UserId) -> String {
        format!("{}user:v3:{{u{user}}}", self.prefix)
    }

    /// A user's cached token cut-off: unix seconds before which their tokens are dead, `-1`
    /// when no token is valid (disabled or gone). See `chat_selectors::tokens_not_before`.
    pub fn tokens_not_before(&self, user: UserId) -> String {
        format!("{}user:v2:{{u{user}}}:nbf", self.prefix)
    }

    /// The live instances (presence): a sorted set of instance ids scored by the expiry (unix
    /// ms) of their last heartbeat. An instance past it has died without saying so.
    pub fn presence_instances(&self) -> String {
        format!("{}presence:v2:instances", self.prefix)
    }

    /// The users that have (or had) a presence entry made by `instance`: whom to check when it
    /// dies.
    pub fn presence_instance_users(&self, instance: &str) -> String {
        format!("{}presence:v2:instance:{{i{instance}}}:users", self.prefix)
    }

    /// Present for 2 s after `user`'s last published typing event in `chat` (the throttle).
    pub fn typing(&self, chat: ChatId, user: UserId) -> String {
        format!("{}typing:v2:{{c{chat}}}:{user}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_topic_and_back() {
        let keys = Keys::with_shards("p:", 16);
        assert_eq!(keys.chat_topic(ChatId(35)), Topic::Chats(3));
        assert_eq!(keys.user_topic(UserId(16)), Topic::Users(0));
        for topic in [
            Topic::Chats(15),
            Topic::Users(2),
            Topic::Support,
            Topic::Control,
        ] {
            assert_eq!(keys.topic_of(&keys.channel(topic)), Some(topic));
        }
        assert_eq!(keys.topic_of("p:events:c16"), None, "past the shards");
        assert_eq!(keys.topic_of("q:events:c1"), None, "another deployment");
    }

    #[test]
    fn a_chats_keys_share_one_hash_tag_and_so_one_cluster_slot() {
        let keys = Keys::new("p:");
        let tag = |key: &str| {
            let open = key.find('{').map(|i| i + 1).unwrap_or(0);
            let close = key[open..].find('}').map(|i| open + i).unwrap_or(key.len());
            key[open..close].to_owned()
        };
        let chat = ChatId(7);
        assert_eq!(tag(&keys.chat_members_gen(chat)), "c7");
        assert_eq!(tag(&keys.chat_member(chat, UserId(3))), "c7");
        assert_eq!(tag(&keys.chat_summary_gen(chat)), "c7");
        assert_eq!(tag(&keys.chat_list(UserId(3))), "u3");
        assert_eq!(tag(&keys.chat_list_gen(UserId(3))), "u3");
        assert_eq!(tag(&keys.presence(UserId(3))), "u3");
    }
}
