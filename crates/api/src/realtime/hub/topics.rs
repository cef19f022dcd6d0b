//! Which event channels this instance listens to: a topic (a shard of chats, a shard of users,
//! the support channel) is wanted while a local socket needs it, and the bus subscribes to it.
//!
//! Each socket's subscription to a chat, registration for its user and support watch holds one
//! reference to its topic. The first reference asks the bus to subscribe; [`Interests::ready`]
//! waits until Redis has confirmed it, so a socket reads where its chats stand only once what
//! follows is sure to arrive live. A topic nobody needs any more is dropped after
//! [`LINGER`] (a reconnecting client finds it still there). Without a bus (unit tests), every
//! topic counts as live at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chat_selectors::Topic;
use tokio::sync::{mpsc, watch};

/// How long a topic no socket needs stays subscribed.
pub const LINGER: Duration = Duration::from_secs(30);

/// How long [`Interests::ready`] waits for Redis to confirm a subscription. Past it the socket
/// goes on: a Redis that does not answer is an outage, after which every socket catches up from
/// PostgreSQL anyway.
pub const READY_WAIT: Duration = Duration::from_secs(2);

/// What the bus is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusRequest {
    /// Start listening to a topic.
    Subscribe(Topic),
    /// Stop listening to a topic.
    Unsubscribe(Topic),
}

#[derive(Debug)]
struct Interest {
    /// Local sockets (subscriptions, registrations, watches) that need the topic.
    refs: usize,
    /// Since when Redis has confirmed the subscription (`None`: not live).
    live: Option<Instant>,
    /// Since when no socket needs it.
    idle_since: Option<Instant>,
}

/// The topics this instance wants, shared by the hub (which counts references) and the bus
/// (which subscribes).
#[derive(Debug)]
pub struct Interests {
    wanted: Mutex<HashMap<Topic, Interest>>,
    /// Moves whenever a topic goes live or the bus connects or disconnects.
    changed: watch::Sender<u64>,
    /// Whether the bus is subscribed (false while it reconnects).
    connected: AtomicBool,
    bus: OnceLock<mpsc::UnboundedSender<BusRequest>>,
}

impl Default for Interests {
    fn default() -> Self {
        Self {
            wanted: Mutex::default(),
            changed: watch::Sender::new(0),
            connected: AtomicBool::new(false),
            bus: OnceLock::new(),
        }
    }
}

impl Interests {
    fn lock(&self) -> MutexGuard<'_, HashMap<Topic, Interest>> {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects the bus: from now on topics are live only once it confirms them. Returns the
    /// requests to serve (once; `None` when a bus is attached already).
    pub fn attach_bus(&self) -> Option<mpsc::UnboundedReceiver<BusRequest>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.bus.set(tx).ok().map(|()| rx)
    }

    /// One more local socket needs `topic`; the first asks the bus to subscribe. Returns since
    /// when the topic has been heard without a break (`None`: not live yet), read with the
    /// reference taken, so the topic cannot be dropped in between.
    pub fn acquire(&self, topic: Topic) -> Option<Instant> {
        let mut wanted = self.lock();
        let interest = wanted.entry(topic).or_insert_with(|| {
            let live = match self.bus.get() {
                Some(bus) => {
                    let _ = bus.send(BusRequest::Subscribe(topic));
                    None
                }
                None => Some(Instant::now()),
            };
            Interest {
                refs: 0,
                live,
                idle_since: None,
            }
        });
        interest.refs += 1;
        interest.idle_since = None;
        interest.live
    }

    /// One local socket less needs `topic` (dropped after [`LINGER`] when none does).
    pub fn release(&self, topic: Topic) {
        let mut wanted = self.lock();
        if let Some(interest) = wanted.get_mut(&topic) {
            interest.refs = interest.refs.saturating_sub(1);
            if interest.refs == 0 {
                interest.idle_since = Some(Instant::now());
            }
        }
    }

    /// Unsubscribes from the topics no socket has needed for `linger`. Returns how many.
    pub fn sweep(&self, linger: Duration) -> usize {
        let mut wanted = self.lock();
        let idle: Vec<Topic> = wanted
            .iter()
            .filter(|(_, i)| i.refs == 0 && i.idle_since.is_some_and(|t| t.elapsed() >= linger))
            .map(|(topic, _)| *topic)
            .collect();
        for topic in &idle {
            wanted.remove(topic);
            if let Some(bus) = self.bus.get() {
                let _ = bus.send(BusRequest::Unsubscribe(*topic));
            }
        }
        idle.len()
    }

    /// Redis confirmed the subscription to `topic` (the bus is connected).
    pub fn confirmed(&self, topic: Topic) {
        if let Some(interest) = self.lock().get_mut(&topic) {
            interest.live.get_or_insert_with(Instant::now);
        }
        self.connected.store(true, Ordering::Release);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The bus is subscribed to the control channel and every wanted topic.
    pub fn connected(&self) {
        self.connected.store(true, Ordering::Release);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The bus lost its connection: nothing is live until it subscribes again, and nobody waits
    /// for it meanwhile (the sockets catch up once it is back).
    pub fn lost(&self) {
        self.connected.store(false, Ordering::Release);
        for interest in self.lock().values_mut() {
            interest.live = None;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Since when this instance has heard `topic` without a break (`None`: it does not).
    pub fn live_since(&self, topic: Topic) -> Option<Instant> {
        self.lock().get(&topic).and_then(|interest| interest.live)
    }

    /// Every topic wanted now (what the bus subscribes to after reconnecting).
    pub fn wanted(&self) -> Vec<Topic> {
        self.lock().keys().copied().collect()
    }

    /// How many topics are wanted.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no topic is wanted.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn all_live(&self, topics: &[Topic]) -> bool {
        let wanted = self.lock();
        topics
            .iter()
            .all(|t| wanted.get(t).is_none_or(|interest| interest.live.is_some()))
    }

    /// Waits until every one of `topics` is live, however long that takes (a topic nobody holds
    /// any more counts as live). For catching a socket up once a slow subscription is in place.
    pub async fn live(&self, topics: &[Topic]) {
        let mut changes = self.changed.subscribe();
        while !self.all_live(topics) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until every one of `topics` is live (at most [`READY_WAIT`]); returns whether they
    /// are. A topic nobody holds counts as live. Returns `false` at once while the bus is
    /// disconnected (Redis down: a socket opens without waiting, and catches up once the bus is
    /// back).
    pub async fn ready(&self, topics: &[Topic]) -> bool {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            if self.all_live(topics) {
                return true;
            }
            if self.bus.get().is_some() && !self.connected.load(Ordering::Acquire) {
                return false;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.all_live(topics),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reference_subscribes_and_ready_waits_for_the_confirmation() {
        let interests = Interests::default();
        let mut bus = interests.attach_bus().unwrap();
        interests.connected();
        interests.acquire(Topic::Chats(3));
        interests.acquire(Topic::Chats(3));
        assert_eq!(
            bus.try_recv().ok(),
            Some(BusRequest::Subscribe(Topic::Chats(3)))
        );
        assert!(bus.try_recv().is_err(), "subscribed once for two sockets");
        assert!(!interests.all_live(&[Topic::Chats(3)]));
        let waiting = interests.ready(&[Topic::Chats(3)]);
        interests.confirmed(Topic::Chats(3));
        assert!(waiting.await);
    }

    #[tokio::test]
    async fn a_topic_is_dropped_only_after_its_last_reference_and_the_linger() {
        let interests = Interests::default();
        let mut bus = interests.attach_bus().unwrap();
        interests.acquire(Topic::Users(1));
        interests.acquire(Topic::Users(1));
        interests.release(Topic::Users(1));
        assert_eq!(
            interests.sweep(Duration::ZERO),
            0,
            "one socket still needs it"
        );
        interests.release(Topic::Users(1));
        assert_eq!(interests.sweep(Duration::from_secs(60)), 0, "lingers");
        assert_eq!(interests.sweep(Duration::ZERO), 1);
        let requests: Vec<_> = std::iter::from_fn(|| bus.try_recv().ok()).collect();
        assert_eq!(
            requests,
            [
                BusRequest::Subscribe(Topic::Users(1)),
                BusRequest::Unsubscribe(Topic::Users(1))
            ]
        );
        assert!(interests.is_empty());
    }

    #[tokio::test]
    async fn without_a_bus_everything_is_live_and_a_lost_bus_is_not() {
        let detached = Interests::default();
        detached.acquire(Topic::Support);
        assert!(detached.ready(&[Topic::Support]).await);
        let interests = Interests::default();
        let _bus = interests.attach_bus();
        interests.acquire(Topic::Support);
        interests.confirmed(Topic::Support);
        interests.lost();
        assert!(!interests.all_live(&[Topic::Support]));
        assert_eq!(interests.wanted(), vec![Topic::Support]);
        let started = std::time::Instant::now();
        assert!(!interests.ready(&[Topic::Support]).await);
        assert!(
            started.elapsed() < READY_WAIT / 2,
            "waited for a bus that is down"
        );
    }
}
