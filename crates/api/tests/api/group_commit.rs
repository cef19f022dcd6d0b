//! Group commit: concurrent sends are stored together by the message writer, and every send is
//! still answered after its own commit with the same outcome as alone — gapless seqs per chat,
//! idempotent `client_id`, refusals that use no seq.

use std::collections::{BTreeMap, HashMap};

use chat_test_support::{TestApp, TestUser};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

/// One send to fire concurrently: who, where, what.
struct Send {
    user: TestUser,
    chat: i64,
    body: Value,
}

/// Fires every send at once, each in its own task; the answers in the order of `sends`.
async fn burst(app: &TestApp, sends: Vec<Send>) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = sends
        .into_iter()
        .map(|send| {
            let request = app
                .http
                .post(app.url(&format!("/api/v1/chats/{}/messages", send.chat)))
                .bearer_auth(&send.user.access)
                .json(&send.body);
            tokio::spawn(async move {
                let response = request.send().await.expect("request failed");
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("send task panicked"));
    }
    answers
}

/// The whole history of `chat`, oldest first.
async fn history(app: &TestApp, user: &TestUser, chat: i64) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/chats/{chat}/messages?after={after}&limit=200"),
                Some(&user.access),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let page_messages = page["messages"].as_array().unwrap().clone();
        let Some(last) = page_messages.last() else {
            return messages;
        };
        after = last["seq"].as_i64().unwrap();
        messages.extend(page_messages);
    }
}

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

/// Asserts that `chat`'s history is seq 1..=n without gap or duplicate, `created_at` never goes
/// backwards along seq, and that each of `acknowledged` is in it exactly as it was answered.
/// Returns the history.
async fn assert_gapless_with(
    app: &TestApp,
    reader: &TestUser,
    chat: i64,
    acknowledged: &[&Value],
) -> Vec<Value> {
    let messages = history(app, reader, chat).await;
    let seqs = seqs(&messages);
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "chat {chat}: seqs not gapless"
    );
    let created: Vec<&str> = messages
        .iter()
        .map(|m| m["created_at"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| chrono_ge(w[1], w[0])),
        "chat {chat}: created_at goes backwards along seq: {created:?}"
    );
    for ack in acknowledged {
        let seq = ack["seq"].as_i64().unwrap();
        assert_eq!(
            &messages[(seq - 1) as usize],
            *ack,
            "chat {chat}: acknowledged message differs from history"
        );
    }
    messages
}

fn chrono_ge(a: &str, b: &str) -> bool {
    let a = chrono::DateTime::parse_from_rfc3339(a).unwrap();
    let b = chrono::DateTime::parse_from_rfc3339(b).unwrap();
    a >= b
}

/// A group owned by the first of `names`, the others joined (one join line each); returns the
/// chat id and the users.
async fn group(app: &TestApp, names: &[&str]) -> (i64, Vec<TestUser>) {
    let mut users = Vec::new();
    for name in names {
        users.push(app.user(name).await);
    }
    let (status, chat) = app
        .post(
            "/api/v1/chats/groups",
            Some(&users[0].access),
            json!({"title": "Busy"}),
        )
        .await;
    assert_eq!(status, 201, "{chat}");
    let chat = chat["id"].as_i64().unwrap();
    for user in &users[1..] {
        let (status, body) = app
            .post(
                &format!("/api/v1/chats/{chat}/join"),
                Some(&user.access),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    (chat, users)
}

fn metric(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

/// No batch statement of this process fell back to one statement per message. Nothing in this
/// file's tests makes the database refuse a batch (repeated `client_id`s never share a statement,
/// one chat is written by one writer), so a retry means the batch statement is broken — which
/// the one-by-one fallback would otherwise hide. The metrics are process-wide: the tests that
/// read them run in a process of their own (`own_process!`), where no other test's faults count.
fn assert_no_batch_was_retried(metrics: &str) {
    assert_eq!(
        metric(metrics, "chat_writer_batches_retried_total"),
        0.0,
        "a batch statement failed and was retried one by one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sends_to_one_chat_all_land_gaplessly() {
    if chat_test_support::own_process!() {
        return;
    }
    let app = TestApp::spawn().await;
    let (chat, users) = group(&app, &["alice", "bob", "carol", "dave"]).await;
    let before = history(&app, &users[0], chat).await.len() as i64;
    assert_eq!(before, 3, "three join lines");

    let sends = (0..200)
        .map(|i| Send {
            user: users[i % users.len()].clone(),
            chat,
            body: json!({"text": format!("m{i}")}),
        })
        .collect();
    let answers = burst(&app, sends).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 201, "send {i}: {body}");
        assert_eq!(body["text"], format!("m{i}"));
        assert_eq!(body["author"]["id"], users[i % users.len()].id);
    }
    let mut acked: Vec<i64> = answers
        .iter()
        .map(|(_, m)| m["seq"].as_i64().unwrap())
        .collect();
    acked.sort();
    assert_eq!(acked, (before + 1..=before + 200).collect::<Vec<_>>());
    let acknowledged: Vec<&Value> = answers.iter().map(|(_, m)| m).collect();
    let messages = assert_gapless_with(&app, &users[0], chat, &acknowledged).await;
    assert_eq!(messages.len(), 203);

    // Each author's read marker sits on their own newest message: what came after is unread.
    let last_seq = before + 200;
    for user in &users {
        let own_newest = answers
            .iter()
            .filter(|(_, m)| m["author"]["id"] == user.id)
            .map(|(_, m)| m["seq"].as_i64().unwrap())
            .max()
            .unwrap();
        let (_, list) = app.get("/api/v1/chats", Some(&user.access)).await;
        assert_eq!(list[0]["id"], chat);
        assert_eq!(list[0]["last_message"]["seq"], last_seq);
        assert_eq!(
            list[0]["unread_count"],
            last_seq - own_newest,
            "{}'s read marker",
            user.username
        );
    }

    // The sends were batched: some statement stored more than one message.
    let metrics = metrics(&app).await;
    let batches = metric(&metrics, "chat_writer_batch_size_count");
    let singles = metric(&metrics, "chat_writer_batch_size_bucket{le=\"1\"}");
    assert!(
        batches > singles,
        "no batch held more than one message: {batches} batches, {singles} of one"
    );
    assert_no_batch_was_retried(&metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_id_sent_many_times_in_a_burst_is_stored_once() {
    if chat_test_support::own_process!() {
        return;
    }
    let app = TestApp::spawn().await;
    let (chat, users) = group(&app, &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let mut sends = Vec::new();
    for i in 0..40 {
        // The same client_id 40 times, interleaved with bob's plain sends and his own pairs of
        // repeated client_ids.
        sends.push(Send {
            user: alice.clone(),
            chat,
            body: json!({"text": "once", "client_id": "same"}),
        });
        sends.push(Send {
            user: bob.clone(),
            chat,
            body: if i % 2 == 0 {
                json!({"text": format!("b{i}")})
            } else {
                json!({"text": "pair", "client_id": format!("pair-{}", i % 10)})
            },
        });
    }
    let answers = burst(&app, sends).await;
    let same: Vec<&(u16, Value)> = answers.iter().step_by(2).collect();
    let created: Vec<_> = same.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(created.len(), 1, "{same:?}");
    let original = &created[0].1;
    for (status, body) in &same {
        assert!(*status == 201 || *status == 200, "{status}: {body}");
        assert_eq!(
            body, original,
            "every answer carries the one stored message"
        );
    }
    let mut pairs: HashMap<String, Vec<&(u16, Value)>> = HashMap::new();
    for answer in answers.iter().skip(1).step_by(2) {
        assert!(answer.0 == 201 || answer.0 == 200, "{answer:?}");
        if let Some(client_id) = answer.1["client_id"].as_str() {
            pairs.entry(client_id.to_owned()).or_default().push(answer);
        }
    }
    assert_eq!(pairs.len(), 5);
    for (client_id, answers) in &pairs {
        assert_eq!(answers.len(), 4);
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 201).count(),
            1,
            "{client_id}: {answers:?}"
        );
        assert!(answers.iter().all(|(_, m)| m == &answers[0].1));
    }

    let stored: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, m)| m)
        .collect();
    let messages = assert_gapless_with(&app, alice, chat, &stored).await;
    // The join line, "once", 20 plain sends, 5 pairs: no seq used by a repeat.
    assert_eq!(messages.len(), 1 + 1 + 20 + 5);
    assert_eq!(
        messages.iter().filter(|m| m["client_id"] == "same").count(),
        1
    );
    assert_no_batch_was_retried(&metrics(&app).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_in_a_burst_are_refused_and_use_no_seq() {
    if chat_test_support::own_process!() {
        return;
    }
    let app = TestApp::spawn().await;
    let (chat, users) = group(&app, &["alice", "bob", "carol"]).await;
    let eve = app.user("eve").await;
    let carol = users[2].clone();
    // Carol's membership is cached as she sends; then she is removed behind the cache's back, so
    // her sends pass the early check and are refused by the writer's statement itself.
    app.send(&carol, chat, "before").await;
    let mut conn = AsyncPgConnection::establish(&app.env.database_url)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "DELETE FROM chat_members WHERE chat_id = {chat} AND user_id = {}",
        carol.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let before = history(&app, &users[0], chat).await.len() as i64;

    let mut sends = Vec::new();
    for i in 0..90 {
        let user = match i % 9 {
            0 | 3 | 6 => carol.clone(),
            4 => eve.clone(),
            n if n % 2 == 0 => users[0].clone(),
            _ => users[1].clone(),
        };
        sends.push(Send {
            user,
            chat,
            body: json!({"text": format!("m{i}")}),
        });
    }
    let answers = burst(&app, sends).await;
    let mut stored = Vec::new();
    for (i, (status, body)) in answers.iter().enumerate() {
        match i % 9 {
            0 | 3 | 6 | 4 => assert_eq!(*status, 403, "send {i}: {body}"),
            _ => {
                assert_eq!(*status, 201, "send {i}: {body}");
                stored.push(body);
            }
        }
    }
    let messages = assert_gapless_with(&app, &users[0], chat, &stored).await;
    assert_eq!(messages.len() as i64, before + stored.len() as i64);
    assert!(
        messages
            .iter()
            .all(|m| m["author"]["id"] != carol.id || m["text"] == "before")
    );
    assert_no_batch_was_retried(&metrics(&app).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_across_many_chats_are_gapless_per_chat() {
    if chat_test_support::own_process!() {
        return;
    }
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut chats = Vec::new();
    for i in 0..24 {
        let (status, chat) = app
            .post(
                "/api/v1/chats/groups",
                Some(&alice.access),
                json!({"title": format!("g{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{chat}");
        let chat = chat["id"].as_i64().unwrap();
        let (status, _) = app
            .post(
                &format!("/api/v1/chats/{chat}/join"),
                Some(&bob.access),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        chats.push(chat);
    }
    let mut sends = Vec::new();
    for round in 0..8 {
        for (n, chat) in chats.iter().enumerate() {
            sends.push(Send {
                user: if (round + n) % 2 == 0 {
                    alice.clone()
                } else {
                    bob.clone()
                },
                chat: *chat,
                body: json!({"text": format!("r{round}")}),
            });
        }
    }
    let answers = burst(&app, sends).await;
    let mut per_chat: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        per_chat
            .entry(body["chat_id"].as_i64().unwrap())
            .or_default()
            .push(body);
    }
    assert_eq!(per_chat.len(), chats.len());
    for (chat, acknowledged) in &per_chat {
        let messages = assert_gapless_with(&app, &alice, *chat, acknowledged).await;
        assert_eq!(
            messages.len(),
            1 + 8,
            "chat {chat}: the join line and 8 sends"
        );
    }
    assert_no_batch_was_retried(&metrics(&app).await);
}

/// A refused send is explained as before the writer: someone who is not (or no longer) a member
/// hears 403 even when the `client_id` was used before — not the stored message, not a conflict.
#[tokio::test]
async fn a_non_member_reusing_a_client_id_is_refused_as_a_non_member() {
    let app = TestApp::spawn().await;
    let (chat, users) = group(&app, &["owner_a", "leaver_b"]).await;
    let (other, _) = group(&app, &["owner_c"]).await;
    let leaver = &users[1];
    let path = format!("/api/v1/chats/{chat}/messages");
    let body = json!({"text": "hello", "client_id": "k-1"});
    let (status, first) = app.post(&path, Some(&leaver.access), body.clone()).await;
    assert_eq!(status, 201, "{first}");
    // The retry while still a member gets the original.
    let (status, again) = app.post(&path, Some(&leaver.access), body.clone()).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    let (status, left) = app
        .post(
            &format!("/api/v1/chats/{chat}/leave"),
            Some(&leaver.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{left}");
    let (status, refused) = app.post(&path, Some(&leaver.access), body.clone()).await;
    assert_eq!(status, 403, "{refused}");
    // Another chat she is not in, with the same client_id: 403, not 409.
    let (status, refused) = app
        .post(
            &format!("/api/v1/chats/{other}/messages"),
            Some(&leaver.access),
            body,
        )
        .await;
    assert_eq!(status, 403, "{refused}");
}
