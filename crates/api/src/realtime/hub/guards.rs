//! The RAII guards a socket holds: dropping one unsubscribes, unregisters or untracks it.

use super::*;

/// A socket's subscription to one chat; dropping it unsubscribes (every exit path cleans up).
#[derive(Debug)]
pub struct Subscription {
    pub(super) hub: Arc<Hub>,
    pub(super) chat: ChatId,
    pub(super) conn_id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut chats = self.hub.chats.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = chats.get_mut(&self.chat) {
            conns.retain(|c| c.id != self.conn_id);
            if conns.is_empty() {
                chats.remove(&self.chat);
            }
        }
        drop(chats);
        self.hub
            .interests
            .release(self.hub.keys.chat_topic(self.chat));
    }
}

/// A socket's registration for events about its user; dropping it unregisters.
#[derive(Debug)]
pub struct UserRegistration {
    pub(super) hub: Arc<Hub>,
    pub(super) user: UserId,
    pub(super) conn_id: u64,
}

impl Drop for UserRegistration {
    fn drop(&mut self) {
        let mut users = self.hub.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = users.get_mut(&self.user) {
            conns.retain(|c| c.id != self.conn_id);
            if conns.is_empty() {
                users.remove(&self.user);
            }
        }
        drop(users);
        self.hub
            .interests
            .release(self.hub.keys.user_topic(self.user));
    }
}

/// A socket tracked for revocation; dropping it stops tracking.
#[derive(Debug)]
pub struct SessionGuard {
    pub(super) hub: Arc<Hub>,
    pub(super) user: UserId,
    pub(super) conn_id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.hub.sessions.write().unwrap_or_else(|e| e.into_inner());
        if let Some(tracked) = sessions.get_mut(&self.user) {
            tracked.retain(|t| t.conn.id != self.conn_id);
            if tracked.is_empty() {
                sessions.remove(&self.user);
            }
        }
    }
}

/// A socket's watch on every support chat; dropping it stops the watch.
#[derive(Debug)]
pub struct SupportWatch {
    pub(super) hub: Arc<Hub>,
    pub(super) conn_id: u64,
}

impl Drop for SupportWatch {
    fn drop(&mut self) {
        let mut watchers = self.hub.support.write().unwrap_or_else(|e| e.into_inner());
        watchers.retain(|c| c.id != self.conn_id);
        drop(watchers);
        self.hub.interests.release(chat_selectors::Topic::Support);
    }
}
