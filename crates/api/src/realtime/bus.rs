//! The process's one Redis pub/sub subscriber: it listens to the topics the hub's sockets need
//! (`hub::Interests`) and to the control channel, and dispatches what arrives to the local
//! [`Hub`].
//!
//! Events travel on channels by shard (`chat_selectors::Keys::channel`): an instance hears
//! only the chats, users and support traffic its sockets need, not the whole deployment's. On one
//! Redis it uses `SUBSCRIBE`; on a Redis Cluster, sharded pub/sub (`SSUBSCRIBE`, Redis 7: each
//! channel lives on the master of its slot, so traffic splits across the masters instead of
//! being broadcast to every node), through the redis crate's cluster connection in RESP3, which
//! pushes the messages and follows failovers.
//!
//! No event lost in a switch: a socket's first subscription to a topic waits for Redis to
//! confirm it before the socket reads where its chats stand; a topic is dropped only after no
//! socket has needed it for `hub::LINGER`. When the connection is lost (or a cluster node fails
//! over), whatever was published meanwhile is not replayed live: once subscribed again, every
//! local socket catches up from PostgreSQL (`Hub::resync_all`), and each chat's seq makes any
//! remaining gap visible to the socket, which fills it from PostgreSQL. Revoked sockets are
//! closed by the periodic check, `super::sessions`.
//!
//! An event that goes out on two channels (a join, also on the joining user's channel; a
//! support message, also on the support channel) is delivered once: the full local audience
//! gets it from whichever copy arrives first, and the other copy is dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chat_selectors::{ChatEvent, ControlEvent, Keys, RedisClient, Topic};
use futures_util::StreamExt;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot};

use super::hub::{BusRequest, LINGER};
use super::{Event, Hub};
use crate::auth::CutOffs;

/// The longest wait between two connection attempts: after an outage, an instance hears events
/// again within this of Redis' return.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How often topics nobody needs any more are unsubscribed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs forever: subscribe to the control channel and the wanted topics, dispatch, follow the
/// hub's requests, reconnect on loss.
///
/// `ready` fires after the first successful subscription to the control channel (the server
/// starts serving only then).
pub async fn run_subscriber(
    client: RedisClient,
    hub: Arc<Hub>,
    cut_offs: Arc<CutOffs>,
    ready: oneshot::Sender<()>,
) {
    let Some(requests) = hub.interests().attach_bus() else {
        tracing::error!("a second event subscriber for one hub; not started");
        return;
    };
    let mut bus = Bus {
        keys: hub.keys().clone(),
        hub,
        cut_offs,
        requests,
        ready: Some(ready),
        seen: Seen::default(),
        was_connected: false,
    };
    bus.run(client).await;
}

struct Bus {
    keys: Keys,
    hub: Arc<Hub>,
    cut_offs: Arc<CutOffs>,
    requests: mpsc::UnboundedReceiver<BusRequest>,
    ready: Option<oneshot::Sender<()>>,
    seen: Seen,
    /// The current connection subscribed (the next reconnect starts from the shortest backoff).
    was_connected: bool,
}

impl Bus {
    /// The control channel and every wanted topic, as channel names.
    fn wanted_channels(&self) -> Vec<(Option<Topic>, String)> {
        std::iter::once((None, self.keys.control_channel()))
            .chain(
                self.hub
                    .interests()
                    .wanted()
                    .into_iter()
                    .map(|t| (Some(t), self.keys.channel(t))),
            )
            .collect()
    }

    /// Subscribed (again): the topics are live, the server may serve; after a loss, every
    /// socket catches up.
    fn subscribed(&mut self, topics: impl IntoIterator<Item = Topic>, after_loss: bool) {
        for topic in topics {
            self.hub.interests().confirmed(topic);
        }
        self.hub.interests().connected();
        self.was_connected = true;
        metrics::gauge!("chat_bus_topics").set(self.hub.interests().len() as f64);
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        if after_loss {
            // Whatever was published while this process was not subscribed is lost.
            self.hub.resync_all();
        }
    }

    fn lost(&self, error: &dyn std::fmt::Display) {
        self.hub.interests().lost();
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::warn!(%error, "event subscriber lost Redis; reconnecting");
    }

    /// Connects, serves, and reconnects with backoff (100 ms doubling to 1 s) when Redis drops.
    async fn run(&mut self, client: RedisClient) {
        let mut backoff = Duration::from_millis(100);
        let mut after_loss = false;
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            let session = match &client {
                RedisClient::Single(client) => {
                    self.session_single(client, after_loss, &mut sweep).await
                }
                RedisClient::Cluster(nodes) => {
                    self.session_cluster(nodes, after_loss, &mut sweep).await
                }
            };
            match session {
                Ok(()) => return,
                Err(error) => {
                    self.lost(&error);
                    after_loss = true;
                }
            }
            if std::mem::take(&mut self.was_connected) {
                backoff = Duration::from_millis(100);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            // Requests queued meanwhile are covered by the full subscription that follows.
            while self.requests.try_recv().is_ok() {}
        }
    }

    /// One connection's life: subscribe to everything wanted, then serve messages and requests
    /// until the connection breaks. `Ok` only when the hub is gone.
    async fn session_single(
        &mut self,
        client: &redis::Client,
        after_loss: bool,
        sweep: &mut tokio::time::Interval,
    ) -> redis::RedisResult<()> {
        let pubsub = client.get_async_pubsub().await?;
        let (mut sink, mut stream) = pubsub.split();
        let wanted = self.wanted_channels();
        let names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
        sink.subscribe(names).await?;
        tracing::info!(topics = wanted.len() - 1, "event subscriber connected");
        self.subscribed(wanted.iter().filter_map(|(t, _)| *t), after_loss);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => self.on_message(msg.get_channel_name(), msg.get_payload_bytes()),
                    None => return Err(redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection closed"))),
                },
                request = self.requests.recv() => match request {
                    Some(BusRequest::Subscribe(topic)) => {
                        sink.subscribe(self.keys.channel(topic)).await?;
                        self.subscribed([topic], false);
                    }
                    Some(BusRequest::Unsubscribe(topic)) => {
                        sink.unsubscribe(self.keys.channel(topic)).await?;
                        metrics::gauge!("chat_bus_topics").set(self.hub.interests().len() as f64);
                    }
                    None => return Ok(()),
                },
                _ = sweep.tick() => {
                    self.hub.interests().sweep(LINGER);
                    self.hub.forget_old();
                }
            }
        }
    }

    /// One Redis: `SUBSCRIBE` on a dedicated connection ([`Self::session_single`]); a Redis
    /// Cluster: `SSUBSCRIBE` through the cluster connection (RESP3 pushes), which reconnects to
    /// failed-over nodes by itself; every disconnection it reports is treated as a loss
    /// (sockets catch up once the topics are subscribed again).
    async fn session_cluster(
        &mut self,
        nodes: &[String],
        after_loss: bool,
        sweep: &mut tokio::time::Interval,
    ) -> redis::RedisResult<()> {
        let (tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let client = chat_selectors::redis_link::cluster_builder(nodes)
            .push_sender(tx)
            .build()?;
        let mut conn = client.get_async_connection().await?;
        let wanted = self.wanted_channels();
        ssubscribe_all(&mut conn, names_of(&wanted)).await?;
        tracing::info!(
            topics = wanted.len() - 1,
            "event subscriber connected to the Redis Cluster"
        );
        self.subscribed(wanted.iter().filter_map(|(t, _)| *t), after_loss);
        // Set when a node connection dropped: once the cluster answers again, every wanted
        // channel is subscribed anew (on whichever master owns its slot now) and the sockets
        // catch up.
        let mut repair = false;
        // Channels this process unsubscribed from, whose `sunsubscribe` push is no news.
        let mut leaving: HashSet<Vec<u8>> = HashSet::new();
        let mut retry = tokio::time::interval(MAX_BACKOFF);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => {
                        let expected = push.kind == PushKind::SUnsubscribe
                            && push.data.first().and_then(bytes_of).is_some_and(|c| leaving.remove(c));
                        if matches!(push.kind, PushKind::Disconnection | PushKind::SUnsubscribe) && !expected && !repair {
                            // A node went away, or a slot moved off the node we listened on.
                            tracing::warn!(kind = ?push.kind, "event subscriber lost a cluster node; re-subscribing");
                            self.hub.interests().lost();
                            repair = true;
                            retry.reset();
                        }
                        self.on_push(push);
                    }
                    None => return Err(redis::RedisError::from((redis::ErrorKind::Io, "cluster push channel closed"))),
                },
                _ = retry.tick(), if repair => {
                    let wanted = self.wanted_channels();
                    if ssubscribe_all(&mut conn, names_of(&wanted)).await.is_ok() {
                        repair = false;
                        self.subscribed(wanted.iter().filter_map(|(t, _)| *t), true);
                    }
                }
                request = self.requests.recv() => match request {
                    Some(BusRequest::Subscribe(topic)) => {
                        // During a repair (or after a failure) every wanted channel is subscribed
                        // anew, this one too; the sockets waiting for it catch up then.
                        if repair {
                            continue;
                        }
                        match ssubscribe_all(&mut conn, vec![self.keys.channel(topic)]).await {
                            Ok(()) => self.subscribed([topic], false),
                            Err(error) => {
                                tracing::warn!(%error, "sharded subscribe failed; retried");
                                self.hub.interests().lost();
                                repair = true;
                                retry.reset();
                            }
                        }
                    }
                    Some(BusRequest::Unsubscribe(topic)) => {
                        let channel = self.keys.channel(topic);
                        leaving.insert(channel.clone().into_bytes());
                        let _ = conn.sunsubscribe(channel).await;
                        metrics::gauge!("chat_bus_topics").set(self.hub.interests().len() as f64);
                    }
                    None => return Ok(()),
                },
                _ = sweep.tick() => {
                    self.hub.interests().sweep(LINGER);
                    self.hub.forget_old();
                }
            }
        }
    }

    fn on_push(&mut self, push: PushInfo) {
        if !matches!(push.kind, PushKind::SMessage | PushKind::Message) {
            return;
        }
        // [channel, payload]
        if let [channel, payload] = push.data.as_slice()
            && let (Some(channel), Some(payload)) = (bytes_of(channel), bytes_of(payload))
        {
            let channel = String::from_utf8_lossy(channel);
            self.on_message(&channel, payload);
        }
    }

    /// A message on `channel`: a control event, or a chat event for the hub.
    fn on_message(&mut self, channel: &str, payload: &[u8]) {
        match self.keys.topic_of(channel) {
            Some(Topic::Control) => control_event(&self.hub, &self.cut_offs, payload),
            Some(_) => self.dispatch(payload),
            None => {}
        }
    }

    fn dispatch(&mut self, payload: &[u8]) {
        match serde_json::from_slice::<ChatEvent>(payload) {
            Ok(event) => {
                metrics::counter!("chat_bus_events_total").increment(1);
                if !self.seen.first_time(&event) {
                    metrics::counter!("chat_bus_duplicates_total").increment(1);
                    return;
                }
                self.hub.dispatch(Arc::new(Event::new(event)));
            }
            Err(error) => tracing::error!(%error, "undecodable event on the bus; dropped"),
        }
    }
}

fn names_of(wanted: &[(Option<Topic>, String)]) -> Vec<String> {
    wanted.iter().map(|(_, name)| name.clone()).collect()
}

/// `SSUBSCRIBE`s `channels` one at a time (a cluster takes one slot per command).
async fn ssubscribe_all(
    conn: &mut redis::cluster_async::ClusterConnection,
    channels: Vec<String>,
) -> redis::RedisResult<()> {
    for channel in channels {
        conn.ssubscribe(channel).await?;
    }
    Ok(())
}

fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

/// The events sent on two channels that were delivered lately, so the second copy is dropped.
#[derive(Default)]
struct Seen {
    order: VecDeque<SeenKey>,
    keys: HashSet<SeenKey>,
}

/// A join (chat, user, the seq it started after) or a support message (chat, seq).
type SeenKey = (u8, i64, i64, i64);

/// How many two-channel events are remembered (far more than can arrive between two copies).
const SEEN: usize = 4096;

impl Seen {
    /// Whether `event` is new (always for events sent on one channel only).
    fn first_time(&mut self, event: &ChatEvent) -> bool {
        let key = match event {
            ChatEvent::MemberJoined {
                chat_id,
                user,
                since_seq,
                ..
            } => (0, chat_id.0, user.id.0, *since_seq),
            ChatEvent::MessageCreated {
                chat_id,
                message,
                support_customer: Some(_),
            } => (1, chat_id.0, message.seq, 0),
            _ => return true,
        };
        if !self.keys.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > SEEN
            && let Some(old) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        true
    }
}

fn control_event(hub: &Arc<Hub>, cut_offs: &CutOffs, payload: &[u8]) {
    match serde_json::from_slice::<ControlEvent>(payload) {
        Ok(ControlEvent::SessionsRevoked {
            user_id,
            not_before,
        }) => {
            cut_offs.revoked(user_id, not_before);
            let closed = hub.revoke(user_id, not_before);
            tracing::info!(user.id = %user_id, sockets = closed, "sessions revoked");
        }
        Ok(ControlEvent::CatchUp) => hub.resync_all(),
        Err(error) => tracing::error!(%error, "undecodable control event on the bus; dropped"),
    }
}
