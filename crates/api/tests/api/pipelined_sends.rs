//! A fast sender is not a slow reader (issue "Fan-out at scale", item 0): sockets that send flat
//! out while reading promptly keep their connection, every send is stored once and in order, and
//! the gateway answers pipelined sends in send order with everything of the chat before each.

use std::collections::HashMap;
use std::time::Duration;

use chat_test_support::{TestApp, TestUser, WsClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// An app whose sockets may send as fast as they like, with a short event queue (64 events) so
/// that a socket loop that stops draining it while sends wait is caught at once.
async fn app() -> TestApp {
    let env = chat_test_support::TestEnv::new().await;
    let settings = chat_api::Settings {
        ws_frames_per_sec: 0,
        ws_outbound_queue: 64,
        db_pool_size: 8,
        ..env.settings()
    };
    TestApp::spawn_with(env, settings).await
}

/// What one socket saw: its text frames, and whether the server closed it (the close frame).
struct Seen {
    frames: Vec<Value>,
    closed: Option<String>,
}

/// Sends `frames` flat out on `socket` while reading it, until `done(&frames so far)` or 20 s.
async fn send_and_read(
    socket: WsClient,
    frames: Vec<Value>,
    done: impl Fn(&[Value]) -> bool + Send + 'static,
) -> Seen {
    let (mut sink, mut stream) = socket.stream.split();
    let writer = tokio::spawn(async move {
        for frame in frames {
            if sink
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        sink
    });
    let mut seen = Seen {
        frames: Vec::new(),
        closed: None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&seen.frames) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                seen.frames.push(serde_json::from_str(&text).unwrap())
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                seen.closed = Some(format!("{frame:?}"));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                seen.closed = Some(format!("error: {e}"));
                break;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = writer.await;
    seen
}

/// The `(sender, n)` pairs of door-002 broadcasts `"<sender>:<n>"`, in arrival order.
fn broadcasts(frames: &[Value]) -> Vec<(u64, u64)> {
    frames
        .iter()
        .filter_map(|f| f["message"]["content"].as_str())
        .filter_map(|text| {
            let (sender, n) = text.split_once(':')?;
            Some((sender.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_002_senders_flat_out_into_one_group_are_not_closed_and_every_send_is_stored_in_order()
{
    const SENDERS: u64 = 10;
    const READERS: u64 = 3;
    const EACH: u64 = 100;
    let app = app().await;
    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..SENDERS + READERS {
        users.push(app.user(&format!("user{i}")).await);
    }
    app.create_group_002(&users[0], "busy").await;
    for user in &users[1..] {
        app.join_group_002(user, "busy").await;
    }
    let mut sockets = Vec::new();
    for user in &users {
        sockets.push(app.group_socket(user, "busy").await);
    }
    let total = (SENDERS * EACH) as usize;
    let mut runs = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let i = i as u64;
        let frames: Vec<Value> = if i < SENDERS {
            (1..=EACH)
                .map(|n| json!({"action": "send_message", "message": format!("{i}:{n}")}))
                .collect()
        } else {
            Vec::new()
        };
        runs.push(tokio::spawn(send_and_read(socket, frames, move |seen| {
            broadcasts(seen).len() >= total
        })));
    }
    for (i, run) in runs.into_iter().enumerate() {
        let seen = run.await.unwrap();
        assert_eq!(seen.closed, None, "socket {i} was closed");
        let errors: Vec<&Value> = seen
            .frames
            .iter()
            .filter(|f| f["action"] == "error")
            .collect();
        assert!(errors.is_empty(), "socket {i} got errors: {errors:?}");
        let got = broadcasts(&seen.frames);
        assert_eq!(
            got.len(),
            total,
            "socket {i} got {} of {total} messages",
            got.len()
        );
        let mut last: HashMap<u64, u64> = HashMap::new();
        for (sender, n) in got {
            let before = last.insert(sender, n).unwrap_or(0);
            assert_eq!(
                n,
                before + 1,
                "socket {i}: sender {sender}'s messages out of order"
            );
        }
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.env.store().await.conn().await.unwrap();
    let stored: Count = diesel::sql_query("SELECT count(*) AS n FROM messages WHERE kind = 'text'")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.n, total as i64, "every send stored once");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_sends_in_flight_are_answered_in_send_order_each_after_the_chat_before_it() {
    const OWN: i64 = 150;
    const OTHER: i64 = 100;
    let app = app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    let (alice_socket, _) = app.gateway(&alice).await;
    let (bob_socket, _) = app.gateway(&bob).await;
    let send = |n: i64, who: &str| {
        json!({"action": "send_message", "chat_id": chat, "message": format!("{who} {n}"),
               "client_id": format!("{who}-{n}"), "request_id": n})
    };
    let alice_frames: Vec<Value> = (1..=OWN).map(|n| send(n, "alice")).collect();
    let bob_frames: Vec<Value> = (1..=OTHER).map(|n| send(n, "bob")).collect();
    let all = (OWN + OTHER) as usize;
    let messages = |frames: &[Value]| {
        frames
            .iter()
            .filter(|f| f["event"] == "message.sent" || f["event"] == "message.created")
            .count()
    };
    let alice_run = tokio::spawn(send_and_read(alice_socket, alice_frames, move |f| {
        messages(f) >= all
    }));
    let bob_run = tokio::spawn(send_and_read(bob_socket, bob_frames, move |f| {
        messages(f) >= all
    }));
    for (who, own, run) in [("alice", OWN, alice_run), ("bob", OTHER, bob_run)] {
        let seen = run.await.unwrap();
        assert_eq!(seen.closed, None, "{who}'s socket was closed");
        let mut seqs = Vec::new();
        let mut acks = Vec::new();
        for frame in &seen.frames {
            match frame["event"].as_str() {
                Some("message.sent") => {
                    assert_eq!(frame["duplicate"], false, "{frame}");
                    acks.push(frame["request_id"].as_i64().unwrap());
                    seqs.push(frame["seq"].as_i64().unwrap());
                }
                Some("message.created") => {
                    let text = frame["message"]["text"].as_str().unwrap();
                    assert!(
                        !text.starts_with(who),
                        "{who} got its own message again: {frame}"
                    );
                    seqs.push(frame["seq"].as_i64().unwrap());
                }
                Some("error") => panic!("{who}: {frame}"),
                _ => {}
            }
        }
        assert_eq!(
            acks,
            (1..=own).collect::<Vec<_>>(),
            "{who}'s acks in send order"
        );
        let first = seqs.first().copied().unwrap_or(0);
        let expected: Vec<i64> = (first..first + all as i64).collect();
        if seqs != expected {
            let at = seqs
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(seqs.len());
            panic!(
                "{who} does not see the chat once in seq order: {} frames, first difference at {at}: {:?}",
                seqs.len(),
                &seqs[at.saturating_sub(3)..(at + 3).min(seqs.len())]
            );
        }
    }
}
