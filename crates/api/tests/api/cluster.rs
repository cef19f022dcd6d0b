//! Two instances on a real Redis Cluster (3 masters, 3 replicas, started by the test): events
//! cross instances over sharded pub/sub, and a master killed during traffic loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_test_support::{RedisCluster, TestApp, TestEnv, TestUser, WsClient};
use serde_json::{Value, json};

/// Two instances of one deployment on `cluster`.
async fn pair(cluster: &RedisCluster) -> (TestApp, TestApp) {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.redis_cluster_urls = Some(cluster.urls().join(","));
    let one = TestApp::spawn_with(env.clone(), settings.clone()).await;
    let two = TestApp::spawn_with(env, settings).await;
    (one, two)
}

/// The channel of `chat`'s events, as the server names it.
fn chat_channel(env: &TestEnv, chat: i64) -> String {
    let keys = chat_selectors::Keys::new(&env.redis_prefix);
    keys.channel(keys.chat_topic(chat_selectors::ChatId(chat)))
}

/// How many connections listen to `channel` with `command` (`SHARDNUMSUB` or `NUMSUB`), asked
/// of `port`.
async fn subscribers(port: u16, command: &str, channel: &str) -> i64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg(command)
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_instances_over_sharded_pub_sub_of_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 1).await;
    let (one, two) = pair(&cluster).await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let carol = one.user("carol").await;
    let chat = one.group(&alice, &[&bob]).await;
    let (mut b, _) = two.gateway(&bob).await;

    // Messages committed through one instance reach a socket on the other, in order, once.
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(
            one.send(&alice, chat, &format!("m{i}")).await["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    for seq in &sent {
        let event = b.recv_event("message.created").await;
        assert_eq!(event["message"]["seq"].as_i64(), Some(*seq), "{event}");
    }

    // Fan-out is sharded pub/sub: the chat's channel has its subscribers on its slot's master
    // (instance two listens; one does not, it has no socket on the chat), and none in the
    // classic pub/sub that every node would broadcast.
    let channel = chat_channel(&one.env, chat);
    let master = cluster.master_of(&channel).await;
    assert_eq!(subscribers(master, "SHARDNUMSUB", &channel).await, 1);
    assert_eq!(subscribers(master, "NUMSUB", &channel).await, 0);

    // A join made on one instance opens the chat to the joiner's socket on the other (the
    // user's channel), once, and its messages follow.
    let (mut c, _) = two.gateway(&carol).await;
    let (status, body) = one
        .post(
            &format!("/api/v1/chats/{chat}/members"),
            Some(&alice.access),
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let joined = c.recv_event("member.joined").await;
    assert_eq!(joined["chat_id"], chat, "{joined}");
    let line = c.recv_event("message.created").await;
    assert_eq!(line["message"]["text"], "alice added carol", "{line}");
    let after = one.send(&alice, chat, "welcome").await;
    let got = c.recv_event("message.created").await;
    assert_eq!(got["message"]["id"], after["id"], "{got}");
    let extra = c.drain(300).await;
    assert!(
        !extra.iter().any(|e| e["event"] == "member.joined"),
        "the join arrived twice: {extra:?}"
    );

    // A revocation on one instance closes the socket on the other (the control channel).
    let (status, _) = one
        .post("/api/v1/auth/logout-all/", Some(&carol.access), json!({}))
        .await;
    assert_eq!(status, 204);
    let (_, close) = c.recv_close().await;
    let close = close.expect("closed without a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("revoked"), "{close:?}");
}

/// Sends `count` messages from `user` to `chat` through `app` over REST, one at a time, and
/// returns the seqs acknowledged (a send refused during a failover is counted as not sent).
async fn send_many(
    app: &TestApp,
    user: &TestUser,
    chat: i64,
    from: usize,
    count: usize,
) -> Vec<i64> {
    let mut acked = Vec::new();
    for i in from..from + count {
        let (status, body) = app
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                Some(&user.access),
                json!({"text": format!("n{i}")}),
            )
            .await;
        if status == 201 {
            acked.push(body["seq"].as_i64().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    acked
}

/// Reads `socket` until every seq of `want` arrived (or `limit` passed); returns how often each
/// message seq arrived, in arrival order.
async fn collect(socket: &mut WsClient, chat: i64, want: &[i64], limit: Duration) -> Vec<i64> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let last = want.iter().copied().max().unwrap_or(0);
    while got.last().is_none_or(|s| *s < last) && Instant::now() < deadline {
        for frame in socket.drain(200).await {
            if frame["event"] == "message.created" && frame["chat_id"] == chat {
                got.push(frame["message"]["seq"].as_i64().unwrap());
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_during_traffic_loses_no_delivery_after_the_failover() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let (one, two) = pair(&cluster).await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let chat = one.group(&alice, &[&bob]).await;
    let (mut b, ready) = two.gateway(&bob).await;
    let start = ready["chats"][chat.to_string()].as_i64().unwrap();
    let alice = Arc::new(alice);

    // Traffic through instance one while the master of the chat's channel dies.
    let before = send_many(&one, &alice, chat, 0, 30).await;
    let victim = cluster.master_of(&chat_channel(&one.env, chat)).await;
    let sender = {
        let (base, alice) = (one.base.clone(), alice.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acked = Vec::new();
            for i in 30..130 {
                let response = http
                    .post(format!("{base}/api/v1/chats/{chat}/messages"))
                    .bearer_auth(&alice.access)
                    .json(&json!({"text": format!("n{i}")}))
                    .send()
                    .await
                    .unwrap();
                if response.status() == 201 {
                    let body: Value = response.json().await.unwrap();
                    acked.push(body["seq"].as_i64().unwrap());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill(victim);
    let during = sender.await.unwrap();
    cluster.wait_until_ok(Duration::from_secs(30)).await;
    assert!(
        !cluster.master_ports().await.contains(&victim),
        "the killed master is still listed"
    );
    // After the failover, live delivery goes on.
    let after = send_many(&one, &alice, chat, 130, 20).await;

    let acked: Vec<i64> = before
        .iter()
        .chain(&during)
        .chain(&after)
        .copied()
        .collect();
    assert!(
        acked.len() >= 140,
        "only {} of 150 sends acknowledged",
        acked.len()
    );
    let got = collect(&mut b, chat, &acked, Duration::from_secs(30)).await;
    // Every message of the chat after the socket's start arrived exactly once, in seq order
    // (the ones published to the dead master were read back from PostgreSQL).
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for seq in &got {
        *counts.entry(*seq).or_default() += 1;
    }
    let last = *acked.iter().max().unwrap();
    let missing: Vec<i64> = (start + 1..=last)
        .filter(|s| !counts.contains_key(s))
        .collect();
    let twice: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
}
