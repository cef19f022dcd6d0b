//! The native gateway WebSocket `/api/v1/ws` over real sockets: live delivery, auth, loss-free
//! resume, idempotent sends, edits and deletes, membership changes on open sockets, presence,
//! read markers, backpressure, and bad input.

use std::collections::HashSet;
use std::time::Duration;

use chat_test_support::{TestApp, WsClient};
use serde_json::{Value, json};

/// Collects `message.created` frames of `chat` until `count` have arrived; other events skipped.
async fn created(socket: &mut WsClient, chat: i64, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < count {
        let frame = socket.recv_json().await;
        if frame["event"] == "message.created" && frame["chat_id"] == chat {
            out.push(frame);
        }
    }
    out
}

fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_then_live_messages_with_replies_carrying_the_request_id() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    let (mut a, ready) = app.gateway(&alice).await;
    assert_eq!(ready["user"], json!({"id": alice.id, "username": "alice"}));
    assert_eq!(
        ready["chats"][chat.to_string()],
        1,
        "the join line is seq 1"
    );
    let (mut b, _) = app.gateway(&bob).await;

    a.send_json(
        json!({"action": "send_message", "chat_id": chat, "message": "hi", "request_id": "r1"}),
    )
    .await;
    let sent = a.recv_event("message.sent").await;
    assert_eq!(sent["request_id"], "r1");
    assert_eq!(sent["seq"], 2);
    assert_eq!(sent["duplicate"], false);
    assert_eq!(sent["message"]["text"], "hi");
    let live = b.recv_event("message.created").await;
    assert_eq!(live["chat_id"], chat);
    assert_eq!(live["seq"], 2);
    assert_eq!(live["message"]["author"]["username"], "alice");
    // The sender got its message as the reply, not a second time as message.created.
    // Frames up to the pong may include bob's presence (his socket opened just
    // now), never a second copy of the message.
    a.send_json(json!({"action": "ping", "request_id": 7}))
        .await;
    loop {
        let next = a.recv_json().await;
        if next["event"] == "pong" {
            assert_eq!(next, json!({"event": "pong", "request_id": 7}));
            break;
        }
        assert_eq!(
            next["event"], "presence",
            "unexpected frame before the pong: {next}"
        );
    }

    b.send_json(
        json!({"action": "retrieve_message", "chat_id": chat, "number": 1, "request_id": "h"}),
    )
    .await;
    let page = b.recv_event("messages").await;
    assert_eq!(page["request_id"], "h");
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);

    b.send_json(json!({"action": "typing", "chat_id": chat}))
        .await;
    let typing = a.recv_event("typing").await;
    assert_eq!(typing["user"], json!({"id": bob.id, "username": "bob"}));
    assert!(typing["expires_in_ms"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_by_query_header_or_first_frame_and_refusals_close_with_a_reason() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    // First frame.
    let mut socket = app.ws("/api/v1/ws").await;
    socket
        .send_json(json!({"action": "auth", "token": alice.access}))
        .await;
    assert_eq!(socket.recv_json().await["event"], "ready");
    // Header.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{}/api/v1/ws",
            app.ws_base
        ))
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", alice.access).parse().unwrap(),
    );
    let (mut header_socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    use futures_util::StreamExt;
    let first = header_socket.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("\"ready\""));

    for path in ["/api/v1/ws?token=garbage".to_owned()] {
        let mut refused = app.ws(&path).await;
        let (frames, close) = refused.recv_close().await;
        assert_eq!(frames[0]["event"], "error");
        assert_eq!(frames[0]["code"], "not_authenticated");
        assert_eq!(u16::from(close.unwrap().code), 1008);
    }
    // A first frame that is not auth closes the socket.
    let mut anonymous = app.ws("/api/v1/ws").await;
    anonymous
        .send_json(json!({"action": "send_message", "chat_id": 1, "message": "x"}))
        .await;
    let (frames, close) = anonymous.recv_close().await;
    assert_eq!(frames[0]["code"], "not_authenticated");
    let close = close.unwrap();
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("auth"), "{}", close.reason);
    // An auth frame with a malformed resume point is refused naming `chats`, as `sync` does.
    let mut bad_sync = app.ws("/api/v1/ws").await;
    bad_sync
        .send_json(json!({"action": "auth", "token": alice.access, "sync": {"x": 1}}))
        .await;
    let (frames, close) = bad_sync.recv_close().await;
    assert_eq!(frames[0]["code"], "invalid", "{frames:?}");
    assert_eq!(frames[0]["detail"], "chats: Keys must be chat ids.");
    assert_eq!(u16::from(close.unwrap().code), 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_messages_even_while_new_ones_commit() {
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let chat = one.group(&alice, &[&bob]).await;
    let (mut b, ready) = one.gateway(&bob).await;
    let seen = ready["chats"][chat.to_string()].as_i64().unwrap();
    drop(b);

    // Bob is away: 30 messages are sent through the other instance.
    for i in 0..30 {
        two.send(&alice, chat, &format!("away {i}")).await;
    }
    // Bob reconnects asking to resume from what he saw; 30 more messages are committed on the
    // other instance meanwhile, before, during and after his replay.
    let sender = {
        let two_base = two.base.clone();
        let token = alice.access.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..30 {
                let response = http
                    .post(format!("{two_base}/api/v1/chats/{chat}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("during {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    b = one
        .ws(&format!(
            "/api/v1/ws?token={}&sync={chat}:{seen}",
            bob.access
        ))
        .await;
    let resumed = b.recv_json().await;
    assert_eq!(resumed["event"], "ready");
    assert!(resumed["chats"][chat.to_string()].as_i64().unwrap() >= seen + 30);
    let frames = created(&mut b, chat, 60).await;
    sender.await.unwrap();
    let seqs: Vec<i64> = frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (seen + 1..=seen + 60).collect();
    assert_eq!(seqs, expected, "each message once, in order");
    let texts: HashSet<&str> = frames
        .iter()
        .map(|f| f["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 60);
    let rest = b.drain(300).await;
    assert!(
        rest.iter().all(|f| f["event"] != "message.created"),
        "duplicates: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_replays_after_the_given_seq_and_answers_synced() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let chat = app.group(&alice, &[]).await;
    for i in 1..=5 {
        app.send(&alice, chat, &format!("m{i}")).await;
    }
    let (mut a, ready) = app.gateway(&alice).await;
    assert_eq!(ready["chats"][chat.to_string()], 5);
    a.send_json(json!({"action": "sync", "chats": {chat.to_string(): 2}, "request_id": 1}))
        .await;
    let frames = created(&mut a, chat, 3).await;
    assert_eq!(seqs(&frames), vec![3, 4, 5]);
    let synced = a.recv_event("synced").await;
    assert_eq!(
        synced,
        json!({"event": "synced", "request_id": 1, "chats": {chat.to_string(): 5}, "complete": true})
    );
    // Live again with no duplicate at the seam.
    app.send(&alice, chat, "m6").await;
    let live = a.recv_event("message.created").await;
    assert_eq!(live["seq"], 6);
    // A later sync never sends twice what this socket already sent, live or replayed, whatever
    // seq it names: nothing is sent, and synced says the client has 6.
    a.send_json(json!({"action": "sync", "chats": {chat.to_string(): 0}, "request_id": "again"}))
        .await;
    let synced = a.recv_json().await;
    assert_eq!(
        synced,
        json!({"event": "synced", "request_id": "again", "chats": {chat.to_string(): 6}, "complete": true})
    );
    // On a new socket: a sync replays after the seq it names, and never goes back below what
    // the socket sent (older history is `retrieve_message`).
    let (mut b, _) = app.gateway(&alice).await;
    b.send_json(json!({"action": "sync", "chats": {chat.to_string(): 4}, "request_id": "b1"}))
        .await;
    assert_eq!(seqs(&created(&mut b, chat, 2).await), vec![5, 6]);
    assert_eq!(b.recv_event("synced").await["chats"][chat.to_string()], 6);
    b.send_json(json!({"action": "sync", "chats": {chat.to_string(): 0}, "request_id": "b2"}))
        .await;
    assert_eq!(
        b.recv_json().await,
        json!({"event": "synced", "request_id": "b2", "chats": {chat.to_string(): 6}, "complete": true})
    );
    // A seq beyond last_seq or a chat one is not in is an error; the socket stays open.
    a.send_json(json!({"action": "sync", "chats": {chat.to_string(): 99}, "request_id": 2}))
        .await;
    let error = a.recv_event("error").await;
    assert_eq!(
        (error["request_id"].clone(), error["code"].clone()),
        (json!(2), json!("invalid"))
    );
    a.send_json(json!({"action": "sync", "chats": {"999999": 0}, "request_id": 3}))
        .await;
    assert_eq!(a.recv_event("error").await["code"], "forbidden");
    a.send_json(json!({"action": "ping"})).await;
    assert_eq!(a.recv_event("pong").await["event"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_id_is_one_message_over_rest_and_websocket_on_both_instances() {
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let chat = one.group(&alice, &[]).await;
    let (mut a1, _) = one.gateway(&alice).await;
    let (mut a2, _) = two.gateway(&alice).await;
    let frame = json!({"action": "send_message", "chat_id": chat, "message": "once", "client_id": "k-1", "request_id": "x"});
    a1.send_json(frame.clone()).await;
    let first = a1.recv_event("message.sent").await;
    assert_eq!(first["duplicate"], false);
    a2.send_json(frame).await;
    let again = a2.recv_event("message.sent").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"], first["message"]);
    let (status, rest) = two
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
            json!({"text": "once", "client_id": "k-1"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rest, first["message"]);
    let (_, page) = one
        .get(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
        )
        .await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["once"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletes_reach_live_sockets_and_only_the_author_may_make_them() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    let (mut b, _) = app.gateway(&bob).await;
    let message = app.send(&alice, chat, "typo").await;
    let seq = message["seq"].as_i64().unwrap();
    b.recv_event("message.created").await;
    let path = format!("/api/v1/chats/{chat}/messages/{seq}");

    let (status, _) = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&bob.access)
        .json(&json!({"text": "mine now"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 403);
    let response = app
        .http
        .patch(app.url(&path))
        .bearer_auth(&alice.access)
        .json(&json!({"text": "fixed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["text"], "fixed");
    assert!(edited["edited_at"].is_string());
    let updated = b.recv_event("message.updated").await;
    assert_eq!(updated["seq"], seq);
    assert_eq!(updated["message"]["text"], "fixed");

    let status = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&bob.access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    let status = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let deleted = b.recv_event("message.deleted").await;
    assert_eq!(deleted["message"]["deleted"], true);
    assert_eq!(deleted["message"]["text"], "");
    let (_, page) = app
        .get(&format!("/api/v1/chats/{chat}/messages"), Some(&bob.access))
        .await;
    let tombstone = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == seq)
        .unwrap()
        .clone();
    assert_eq!(
        (tombstone["deleted"].clone(), tombstone["text"].clone()),
        (json!(true), json!(""))
    );
    // A deleted message can be neither edited nor deleted again.
    let status = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_apply_to_open_sockets_at_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.group(&alice, &[&bob]).await;
    let (mut b, _) = app.gateway(&bob).await;
    let (mut c, ready) = app.gateway(&carol).await;
    assert_eq!(ready["chats"], json!({}));

    // Carol is added while connected: she starts receiving without reconnecting.
    app.post(
        &format!("/api/v1/chats/{chat}/members"),
        Some(&alice.access),
        json!({"user_id": carol.id}),
    )
    .await;
    let joined = c.recv_event("member.joined").await;
    assert_eq!(joined["user"]["id"], carol.id);
    assert_eq!(joined["by"], alice.id);
    let line = c.recv_event("message.created").await;
    assert_eq!(line["message"]["text"], "alice added carol");
    app.send(&alice, chat, "welcome").await;
    assert_eq!(
        c.recv_event("message.created").await["message"]["text"],
        "welcome"
    );

    // Bob is removed while connected: he is told, then receives nothing more of the chat.
    let status = app
        .http
        .delete(app.url(&format!("/api/v1/chats/{chat}/members/{}", bob.id)))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let mut frames = Vec::new();
    loop {
        let frame = b.recv_json().await;
        frames.push(frame.clone());
        if frame["event"] == "member.left" {
            break;
        }
    }
    assert_eq!(frames.last().unwrap()["user"]["id"], bob.id);
    app.send(&alice, chat, "bob cannot see this").await;
    assert_eq!(
        c.recv_event("message.created").await["message"]["text"],
        "alice removed bob"
    );
    assert_eq!(
        c.recv_event("message.created").await["message"]["text"],
        "bob cannot see this"
    );
    let after = b.drain(300).await;
    assert!(
        after.iter().all(|f| f["event"] != "message.created"),
        "{after:?}"
    );
    b.send_json(json!({"action": "send_message", "chat_id": chat, "message": "let me back"}))
        .await;
    assert_eq!(b.recv_event("error").await["code"], "forbidden");
}

/// The next presence event about `user` (a socket also hears about its own user).
async fn presence_of(socket: &mut WsClient, user: i64) -> Value {
    loop {
        let event = socket.recv_event("presence").await;
        if event["user_id"] == user {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_seen_across_instances_and_goes_offline_on_disconnect() {
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let chat = one.group(&alice, &[&bob]).await;
    let (mut a, _) = one.gateway(&alice).await;
    let (b, _) = two.gateway(&bob).await;
    let online = presence_of(&mut a, bob.id).await;
    assert_eq!(online["online"], true);
    a.send_json(json!({"action": "presence", "chat_id": chat, "request_id": "p"}))
        .await;
    let state = a.recv_event("online").await;
    let ids: HashSet<i64> = state["user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([alice.id, bob.id]));
    drop(b);
    let offline = presence_of(&mut a, bob.id).await;
    assert_eq!(offline["online"], false);
    a.send_json(json!({"action": "presence", "chat_id": chat}))
        .await;
    assert_eq!(a.recv_event("online").await["user_ids"], json!([alice.id]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_back_within_the_grace_period_never_shows_as_offline() {
    let env = chat_test_support::TestEnv::new().await;
    let mut settings = env.settings();
    settings.presence_grace_ms = 1_500;
    let one = TestApp::spawn_with(env.clone(), settings.clone()).await;
    let two = TestApp::spawn_with(env, settings).await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    one.group(&alice, &[&bob]).await;
    let (mut a, _) = one.gateway(&alice).await;
    let (b, _) = two.gateway(&bob).await;
    assert_eq!(presence_of(&mut a, bob.id).await["online"], true);
    // A reload: the socket closes and another opens, on the other instance, at once.
    drop(b);
    let (b, _) = one.gateway(&bob).await;
    let heard = a.drain(2_500).await;
    assert!(
        !heard
            .iter()
            .any(|f| f["event"] == "presence" && f["user_id"] == bob.id),
        "bob showed as gone and back: {heard:?}"
    );
    // Gone for good: offline once the grace period is over, not before.
    drop(b);
    let started = std::time::Instant::now();
    assert_eq!(presence_of(&mut a, bob.id).await["online"], false);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_400),
        "offline after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_markers_drive_unread_counts_and_never_move_back() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    for i in 0..4 {
        app.send(&alice, chat, &format!("m{i}")).await; // seqs 2..=5
    }
    let unread = |list: &Value| list[0]["unread_count"].as_i64().unwrap();
    let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
    assert_eq!(unread(&list), 4);
    let (mut a, _) = app.gateway(&alice).await;
    let (mut b, _) = app.gateway(&bob).await;
    b.send_json(json!({"action": "read", "chat_id": chat, "seq": 4, "request_id": "r"}))
        .await;
    assert_eq!(
        b.recv_event("ack").await,
        json!({"event": "ack", "action": "read", "request_id": "r"})
    );
    let receipt = a.recv_event("read").await;
    assert_eq!(
        (receipt["user_id"].clone(), receipt["seq"].clone()),
        (json!(bob.id), json!(4))
    );
    let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
    assert_eq!(unread(&list), 1);
    let status = app
        .http
        .post(app.url(&format!("/api/v1/chats/{chat}/read")))
        .bearer_auth(&bob.access)
        .json(&json!({"seq": 2}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
    assert_eq!(unread(&list), 1, "the marker never moves backwards");
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{chat}/read"),
            Some(&bob.access),
            json!({"seq": 6}),
        )
        .await;
    assert_eq!((status, body["code"].clone()), (400, json!("invalid")));
    b.send_json(json!({"action": "read", "chat_id": chat, "seq": 99, "request_id": 5}))
        .await;
    let error = b.recv_event("error").await;
    assert_eq!(
        (error["request_id"].clone(), error["code"].clone()),
        (json!(5), json!("invalid"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_events_with_the_request_id_and_the_socket_stays_open() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let chat = app.group(&alice, &[]).await;
    let (mut a, _) = app.gateway(&alice).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"action": "fly", "request_id": 1}), "unknown_action"),
        (json!({"request_id": 2}), "invalid"),
        (
            json!({"action": "send_message", "chat_id": chat, "request_id": 3}),
            "invalid",
        ),
        (
            json!({"action": "send_message", "chat_id": "x", "message": "m", "request_id": 4}),
            "invalid",
        ),
        (
            json!({"action": "send_message", "chat_id": 999999, "message": "m", "request_id": 5}),
            "forbidden",
        ),
        (
            json!({"action": "send_message", "chat_id": chat, "message": " ", "request_id": 6}),
            "invalid",
        ),
        (
            json!({"action": "send_message", "chat_id": chat, "message": "m", "client_id": 5, "request_id": 7}),
            "invalid",
        ),
        (
            json!({"action": "retrieve_message", "chat_id": chat, "number": 0, "request_id": 8}),
            "invalid",
        ),
        (
            json!({"action": "sync", "chats": [1], "request_id": 9}),
            "invalid",
        ),
        (
            json!({"action": "typing", "chat_id": 999999, "request_id": 10}),
            "forbidden",
        ),
        (
            json!({"action": "auth", "token": alice.access, "request_id": 11}),
            "invalid",
        ),
        // Wrong in two ways: not a member comes first, as it always did.
        (
            json!({"action": "send_message", "chat_id": 999999, "message": 5, "request_id": 12}),
            "forbidden",
        ),
        (
            json!({"action": "read", "chat_id": 999999, "seq": "x", "request_id": 13}),
            "forbidden",
        ),
    ];
    for (frame, code) in cases {
        let id = frame["request_id"].clone();
        a.send_json(frame.clone()).await;
        let error = a.recv_event("error").await;
        assert_eq!(error["request_id"], id, "{frame}");
        assert_eq!(error["code"], code, "{frame}: {error}");
        assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    a.send_text("{oops").await;
    assert_eq!(a.recv_event("error").await["code"], "invalid_json");
    a.send_json(json!({"action": "send_message", "chat_id": chat, "message": "alive"}))
        .await;
    assert_eq!(
        a.recv_event("message.sent").await["message"]["text"],
        "alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_its_state_released() {
    let env = chat_test_support::TestEnv::new().await;
    let settings = chat_api::Settings {
        ws_outbound_queue: 4,
        ws_write_timeout_ms: 500,
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.group(&alice, &[&bob]).await;
    let state = &app.server.as_ref().unwrap().state;

    // Bob's socket has a tiny receive buffer and he never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(app.base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(
        format!("{}/api/v1/ws?token={}", app.ws_base, bob.access),
        stream,
    )
    .await
    .unwrap();
    let subscriptions_with_bob = state.hub.subscription_count();
    assert_eq!(subscriptions_with_bob, 1);

    // 4096 four-byte characters: 16 KiB a frame, so socket buffers fill after a few hundred.
    let text = "\u{1D11E}".repeat(4096);
    for _ in 0..1000 {
        app.send(&alice, chat, &text).await;
        if state.hub.subscription_count() < subscriptions_with_bob {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while state.hub.subscription_count() >= subscriptions_with_bob {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow socket was not dropped");
    // Reading now, bob finds the frames that fit, then the end of the connection: a 1008 close
    // when it still fit behind them, else a reset (his own full pipe held the close back).
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .expect("connection still open")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                assert_eq!(u16::from(frame.expect("close code").code), 1008);
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    // The server is unaffected.
    app.send(&alice, chat, "still fine").await;
    let (mut fresh, _) = app.gateway(&bob).await;
    fresh.send_json(json!({"action": "ping"})).await;
    assert_eq!(fresh.recv_event("pong").await["event"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_absence_is_replayed_in_parts_of_at_most_1000() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let chat = app.group(&alice, &[]).await;
    // Test setup straight into the real database: 1,100 stored messages, seq 1..=1100.
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &app.env.database_url,
    )
    .await
    .unwrap();
    let setup = format!(
        "INSERT INTO messages (chat_id, seq, author_id, kind, text)
         SELECT {chat}, g, {author}, 'text', 'bulk ' || g FROM generate_series(1, 1100) g;
         UPDATE chats SET last_seq = 1100, last_message_at = now() WHERE id = {chat};",
        author = alice.id
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &setup)
        .await
        .unwrap();
    let mut a = app.ws("/api/v1/ws").await;
    a.send_json(json!({"action": "auth", "token": alice.access, "sync": {chat.to_string(): 0}}))
        .await;
    assert_eq!(a.recv_json().await["chats"][chat.to_string()], 1100);
    let first = created(&mut a, chat, 1000).await;
    assert_eq!(seqs(&first), (1..=1000).collect::<Vec<_>>());
    let synced = a.recv_event("synced").await;
    assert_eq!(
        (
            synced["chats"][chat.to_string()].clone(),
            synced["complete"].clone()
        ),
        (json!(1000), json!(false))
    );
    a.send_json(json!({"action": "sync", "chats": {chat.to_string(): 1000}}))
        .await;
    let rest = created(&mut a, chat, 100).await;
    assert_eq!(seqs(&rest), (1001..=1100).collect::<Vec<_>>());
    let synced = a.recv_event("synced").await;
    assert_eq!(
        (
            synced["chats"][chat.to_string()].clone(),
            synced["complete"].clone()
        ),
        (json!(1100), json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_created_while_connected_are_followed_at_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (mut a, ready) = app.gateway(&alice).await;
    assert_eq!(ready["chats"], json!({}));
    // Bob opens a direct chat with alice and writes: alice's open socket gets it.
    let (_, direct) = app
        .post(
            "/api/v1/chats/direct",
            Some(&bob.access),
            json!({"user_id": alice.id}),
        )
        .await;
    let direct = direct["id"].as_i64().unwrap();
    let joined = a.recv_event("member.joined").await;
    assert_eq!(joined["chat_id"], direct);
    app.send(&bob, direct, "hi alice").await;
    assert_eq!(
        a.recv_event("message.created").await["message"]["text"],
        "hi alice"
    );
    // Alice creates a group over REST and uses it from the same socket.
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Mine"}),
        )
        .await;
    let group = group["id"].as_i64().unwrap();
    loop {
        let joined = a.recv_event("member.joined").await;
        if joined["chat_id"] == group {
            break;
        }
    }
    a.send_json(json!({"action": "send_message", "chat_id": group, "message": "works"}))
        .await;
    assert_eq!(
        a.recv_event("message.sent").await["message"]["text"],
        "works"
    );
}
