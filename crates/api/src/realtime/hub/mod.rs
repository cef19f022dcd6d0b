mod event;
pub use event::*;

mod guards;
pub use guards::*;

mod topics;
pub use topics::{BusRequest, Interests, LINGER};

/// How long the hub remembers the last seq of each chat it heard (`Hub::subscribe_seen`); a
/// socket that took longer between reading its chats and subscribing reads them again.
pub const RECENT: Duration = Duration::from_secs(10);

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use chat_domain::{ChatId, UserId};
use chat_selectors::{ChatEvent, Keys, Topic};
use futures_util::task::AtomicWaker;
use tokio::sync::mpsc;

/// One socket's delivery end: its bounded queue, and the hub's signals to it (its queue
/// overflowed, its session was revoked, it should catch up from PostgreSQL).
#[derive(Debug)]
pub struct Connection {
    id: u64,
    /// The socket's user.
    pub user: UserId,
    tx: mpsc::Sender<Arc<Event>>,
    /// Raised [`Signal`]s, one bit each.
    signals: AtomicU8,
    /// The socket's task, waiting for a signal.
    signalled: AtomicWaker,
    /// Whether the socket's door can catch up from PostgreSQL what a full queue dropped.
    repairable: AtomicBool,
}

/// What the hub tells a socket besides its events, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The token this socket was opened with is dead (logout-all, refresh-token reuse,
    /// disable-user, on any instance): the session is to be closed with 1008.
    Revoked = 1,
    /// The socket's queue was full for an event that cannot be read back: the client reads too
    /// slowly and is to be disconnected (a slow reader must not grow memory without limit).
    Overflowed = 2,
    /// Events may have been lost on their way to this socket (a full queue dropped new
    /// messages, or Redis was down or slow): the door catches its chats up from PostgreSQL.
    Resync = 4,
}

impl Connection {
    /// Queues `event` without waiting; a full queue does not grow. A new message dropped for a
    /// socket whose door can catch up ([`Self::repair_overflow`]) is read from PostgreSQL
    /// instead; any other full socket is told it overflowed.
    fn offer(&self, event: &Arc<Event>) -> bool {
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Only a new message can be read back from PostgreSQL; an edit, a deletion or
                // someone else's join or leave dropped here would be lost: close then.
                let message = matches!(event.chat_event, ChatEvent::MessageCreated { .. });
                if message && self.repairable.load(Ordering::Relaxed) {
                    metrics::counter!("chat_websocket_queue_overflows_total", "outcome" => "caught_up")
                        .increment(1);
                    self.raise(Signal::Resync);
                } else {
                    metrics::counter!("chat_websocket_queue_overflows_total", "outcome" => "closed")
                        .increment(1);
                    self.raise(Signal::Overflowed);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Raises `signal` for the socket's task ([`Self::signal`]).
    pub(crate) fn raise(&self, signal: Signal) {
        self.signals.fetch_or(signal as u8, Ordering::AcqRel);
        self.signalled.wake();
    }

    /// From now on a new message that finds the queue full makes the socket catch up from
    /// PostgreSQL ([`Signal::Resync`]) instead of closing it: for doors whose `on_resync`
    /// delivers the chats' missed messages in order. A burst of messages bigger than the queue
    /// (a batch of a busy chat) then costs a database read, not the connection; a client that
    /// really does not read is still closed by the write timeout, and any other event that finds
    /// the queue full still closes it (1008).
    pub fn repair_overflow(&self) {
        self.repairable.store(true, Ordering::Relaxed);
    }

    /// The most urgent raised signal, taken (the others stay raised); pending while none is.
    /// One task waits on a connection's signals: its socket's.
    pub fn poll_signal(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Signal> {
        if self.signals.load(Ordering::Acquire) == 0 {
            self.signalled.register(cx.waker());
        }
        let raised = self.signals.load(Ordering::Acquire);
        for signal in [Signal::Revoked, Signal::Overflowed, Signal::Resync] {
            if raised & signal as u8 != 0 {
                self.signals.fetch_and(!(signal as u8), Ordering::AcqRel);
                return std::task::Poll::Ready(signal);
            }
        }
        std::task::Poll::Pending
    }

    /// Waits for the next signal ([`Self::poll_signal`]).
    pub async fn signal(&self) -> Signal {
        std::future::poll_fn(|cx| self.poll_signal(cx)).await
    }
}

/// A socket tracked under its user, with the issue time of the token it was opened with.
#[derive(Debug)]
struct Tracked {
    conn: Arc<Connection>,
    issued_at: i64,
}

/// The sockets of this process by chat. Cheap to share (`Arc<Hub>`); locks are held only to copy
/// or edit the subscriber lists, never across an await.
///
/// It also keeps which event topics its sockets need ([`Interests`]): a socket's subscription
/// to a chat holds its chat's shard, a registration its user's shard, a support watch the
/// support channel; the bus listens to exactly those.
#[derive(Debug, Default)]
pub struct Hub {
    keys: Keys,
    interests: Interests,
    /// The highest seq of each chat's new messages heard lately, and when: a socket that read
    /// where its chats stand before subscribing learns from it what it missed in between.
    recent: Mutex<HashMap<ChatId, (i64, Instant)>>,
    chats: RwLock<HashMap<ChatId, Vec<Arc<Connection>>>>,
    users: RwLock<HashMap<UserId, Vec<Arc<Connection>>>>,
    /// Sockets that receive every support chat's new messages (door 003's unbound operators).
    support: RwLock<Vec<Arc<Connection>>>,
    /// Every authenticated socket of every door by user, for revocation.
    sessions: RwLock<HashMap<UserId, Vec<Tracked>>>,
    next_id: AtomicU64,
    instance: InstanceId,
}

/// This process's random id among the instances of a deployment (presence entries carry it).
#[derive(Debug)]
struct InstanceId(String);

impl Default for InstanceId {
    fn default() -> Self {
        Self(format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff))
    }
}

impl Hub {
    /// A hub whose topics are those of `keys` (its event shards).
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            ..Self::default()
        }
    }

    /// The topics the local sockets need, for the bus.
    pub fn interests(&self) -> &Interests {
        &self.interests
    }

    /// The keyspace (event shards) the hub's topics come from.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Waits until this instance listens to every chat of `chats` (their shards' subscriptions
    /// confirmed by Redis; at most `topics::READY_WAIT`), so that what is published from now on
    /// reaches the sockets subscribed to them. Call it after [`Self::subscribe`] and before
    /// reading where the chats stand. Returns whether they are live.
    pub async fn ready_for_chats(&self, chats: impl IntoIterator<Item = ChatId>) -> bool {
        let mut topics: Vec<Topic> = chats.into_iter().map(|c| self.keys.chat_topic(c)).collect();
        topics.sort_unstable();
        topics.dedup();
        self.interests.ready(&topics).await
    }

    /// [`Self::ready_for_chats`] for the topics of events about `user` ([`Self::register_user`]).
    pub async fn ready_for_user(&self, user: UserId) -> bool {
        self.interests.ready(&[self.keys.user_topic(user)]).await
    }

    /// [`Self::ready_for_chats`] for every support chat's messages ([`Self::watch_support`]).
    pub async fn ready_for_support(&self) -> bool {
        self.interests.ready(&[Topic::Support]).await
    }

    /// This instance's id (random per process).
    pub fn instance(&self) -> &str {
        &self.instance.0
    }

    /// A new connection for `user` delivering into `tx` (the socket's bounded queue).
    pub fn connect(&self, user: UserId, tx: mpsc::Sender<Arc<Event>>) -> Arc<Connection> {
        Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            tx,
            signals: AtomicU8::new(0),
            signalled: AtomicWaker::new(),
            repairable: AtomicBool::new(false),
        })
    }

    /// Tells every tracked socket to catch up from PostgreSQL (events were lost: see
    /// `crate::realtime::bus`), spread over about [`RESYNC_SPREAD`] so that thousands of sockets
    /// do not query the database at the same instant. Returns at once.
    pub fn resync_all(self: &Arc<Self>) {
        let conns: Vec<Arc<Connection>> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .map(|t| t.conn.clone())
            .collect();
        if conns.is_empty() {
            return;
        }
        tracing::info!(sockets = conns.len(), "sockets catch up after lost events");
        tokio::spawn(async move {
            const STEPS: u32 = 20;
            let per_step = conns.len().div_ceil(STEPS as usize).max(1);
            for chunk in conns.chunks(per_step) {
                for conn in chunk {
                    conn.raise(Signal::Resync);
                }
                tokio::time::sleep(RESYNC_SPREAD / STEPS).await;
            }
        });
    }

    /// Tracks `conn` as a session of `user` opened with a token issued at `issued_at` (unix s),
    /// until the guard is dropped: [`Hub::revoke`] reaches it. Every door tracks each socket once
    /// it knows its user.
    pub fn track(
        self: &Arc<Self>,
        user: UserId,
        issued_at: i64,
        conn: &Arc<Connection>,
    ) -> SessionGuard {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user)
            .or_default()
            .push(Tracked {
                conn: conn.clone(),
                issued_at,
            });
        SessionGuard {
            hub: self.clone(),
            user,
            conn_id: conn.id,
        }
    }

    /// Closes `user`'s sockets opened with a token issued before `not_before` (unix s;
    /// `i64::MAX`: all of them). Returns how many were told to close.
    pub fn revoke(&self, user: UserId, not_before: i64) -> usize {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let mut closed = 0;
        for tracked in sessions.get(&user).into_iter().flatten() {
            if tracked.issued_at < not_before {
                tracked.conn.raise(Signal::Revoked);
                closed += 1;
            }
        }
        closed
    }

    /// The users with at least one tracked socket here.
    pub fn session_users(&self) -> Vec<UserId> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Starts delivering `chat`'s events to `conn` until the returned guard is dropped.
    pub fn subscribe(self: &Arc<Self>, chat: ChatId, conn: &Arc<Connection>) -> Subscription {
        self.subscribe_seen(chat, conn).0
    }

    /// [`Self::subscribe`], also returning what the socket must read itself: the highest seq of
    /// the chat's new messages this instance heard within [`RECENT`] before the subscription
    /// (offered to the socket's queue from then on), and since when the instance has heard the
    /// chat's shard without a break (`None`: it does not yet, so what is published until it does
    /// reaches nobody here).
    pub fn subscribe_seen(
        self: &Arc<Self>,
        chat: ChatId,
        conn: &Arc<Connection>,
    ) -> (Subscription, Option<i64>, Option<Instant>) {
        // The shard first: once the subscription holds it, it cannot be dropped.
        let listening_since = self.interests.acquire(self.keys.chat_topic(chat));
        let mut chats = self.chats.write().unwrap_or_else(|e| e.into_inner());
        chats.entry(chat).or_default().push(conn.clone());
        let seen = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&chat)
            .map(|(seq, _)| *seq);
        drop(chats);
        let subscription = Subscription {
            hub: self.clone(),
            chat,
            conn_id: conn.id,
        };
        (subscription, seen, listening_since)
    }

    /// Since when this instance has heard `chat`'s shard without a break (`None`: it does not).
    pub fn listening_since(&self, chat: ChatId) -> Option<Instant> {
        self.interests.live_since(self.keys.chat_topic(chat))
    }

    /// Makes `conn` catch up from PostgreSQL ([`Signal::Resync`]) once this instance listens to
    /// every chat of `chats`: for a socket whose wait for a subscription ran out
    /// (`topics::READY_WAIT`), so whatever was published before it took effect is not lost.
    pub fn resync_when_live(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        chats: impl IntoIterator<Item = ChatId>,
    ) {
        let topics: Vec<Topic> = chats.into_iter().map(|c| self.keys.chat_topic(c)).collect();
        let (hub, conn) = (self.clone(), Arc::downgrade(conn));
        tokio::spawn(async move {
            hub.interests.live(&topics).await;
            if let Some(conn) = conn.upgrade() {
                conn.raise(Signal::Resync);
            }
        });
    }

    /// Forgets the new messages heard more than [`RECENT`] ago.
    pub fn forget_old(&self) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, at)| at.elapsed() < RECENT);
    }

    /// Also delivers events about `conn.user` (a `member.joined` for a chat the socket is not on
    /// yet) until the returned guard is dropped. Gateway sockets register; per-chat door sockets
    /// don't need to.
    pub fn register_user(self: &Arc<Self>, conn: &Arc<Connection>) -> UserRegistration {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(conn.user)
            .or_default()
            .push(conn.clone());
        let _ = self.interests.acquire(self.keys.user_topic(conn.user));
        UserRegistration {
            hub: self.clone(),
            user: conn.user,
            conn_id: conn.id,
        }
    }

    /// Also delivers every support chat's new messages to `conn` until the guard is dropped.
    pub fn watch_support(self: &Arc<Self>, conn: &Arc<Connection>) -> SupportWatch {
        self.support
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn.clone());
        let _ = self.interests.acquire(Topic::Support);
        SupportWatch {
            hub: self.clone(),
            conn_id: conn.id,
        }
    }

    /// Hands `event` to every local socket on its chat — for `member.joined` also to the joining
    /// user's registered sockets not on the chat yet, for a support chat's message also to the
    /// support watchers not on it — without waiting: a socket whose queue is full is told to
    /// disconnect (its `overflowed()` resolves). Returns how many queues took it.
    pub fn dispatch(&self, event: Arc<Event>) -> usize {
        let joining = match &event.chat_event {
            ChatEvent::MemberJoined { user, .. } => Some(user.id),
            _ => None,
        };
        let support = matches!(
            &event.chat_event,
            ChatEvent::MessageCreated {
                support_customer: Some(_),
                ..
            }
        );
        let mut delivered = 0;
        let mut reached = Vec::new();
        {
            let chats = self.chats.read().unwrap_or_else(|e| e.into_inner());
            // Noted under the subscribers' lock: a socket subscribing now either is offered the
            // event or finds it here (`subscribe_seen`).
            if let ChatEvent::MessageCreated {
                chat_id, message, ..
            } = &event.chat_event
            {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                let entry = recent
                    .entry(*chat_id)
                    .or_insert((message.seq, Instant::now()));
                *entry = (entry.0.max(message.seq), Instant::now());
            }
            for conn in chats.get(&event.chat_event.chat_id()).into_iter().flatten() {
                delivered += usize::from(conn.offer(&event));
                if joining == Some(conn.user) || support {
                    reached.push(conn.id);
                }
            }
        }
        if support {
            let watchers = self.support.read().unwrap_or_else(|e| e.into_inner());
            for conn in watchers.iter().filter(|c| !reached.contains(&c.id)) {
                delivered += usize::from(conn.offer(&event));
            }
        }
        if let Some(user) = joining {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            for conn in users.get(&user).into_iter().flatten() {
                if !reached.contains(&conn.id) {
                    delivered += usize::from(conn.offer(&event));
                }
            }
        }
        metrics::counter!("chat_deliveries_total").increment(delivered as u64);
        delivered
    }

    /// Number of (socket, chat) subscriptions held, for tests and metrics.
    pub fn subscription_count(&self) -> usize {
        self.chats
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests;
