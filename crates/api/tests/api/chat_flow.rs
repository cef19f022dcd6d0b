//! The chat core end to end over real HTTP and WebSockets: accounts and tokens, friends, groups,
//! direct chats, history, the chat list, idempotent sends, live delivery (also across two
//! instances through Redis).

use chat_test_support::{TestApp, TestUser};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_refresh_rotates_and_logout_revokes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let (status, me) = app.get("/api/v1/users/me", Some(&alice.access)).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");

    // Log in by email too, case-insensitively.
    let (status, _) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "ALICE@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, pair) = app
        .post(
            "/api/v1/auth/login/refresh/",
            None,
            json!({"refresh": alice.refresh}),
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    let new_refresh = pair["refresh"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, alice.refresh);
    let (status, _) = app
        .get("/api/v1/users/me", Some(pair["access"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);

    // The used token is dead; presenting it again also revokes the rotated one (reuse detection).
    let (status, body) = app
        .post(
            "/api/v1/auth/login/refresh/",
            None,
            json!({"refresh": alice.refresh}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/auth/login/refresh/",
            None,
            json!({"refresh": new_refresh}),
        )
        .await;
    assert_eq!(status, 401);

    // Logout revokes a live session.
    let (status, tokens) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
    let refresh = tokens["refresh"].as_str().unwrap();
    let (status, _) = app
        .post("/api/v1/auth/logout/", None, json!({"refresh": refresh}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .post(
            "/api/v1/auth/login/refresh/",
            None,
            json!({"refresh": refresh}),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_and_door_002_group_routes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let (status, body) = app
        .post(
            "/api/v1/chat/add-friend/bob",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!((status, body), (200, json!("Succussfly added friend")));
    let (status, body) = app
        .get("/api/v1/chat/list-friends", Some(&alice.access))
        .await;
    assert_eq!((status, body), (200, json!([{"username": "bob"}])));
    // One-way: bob's list is still empty.
    let (_, body) = app
        .get("/api/v1/chat/list-friends", Some(&bob.access))
        .await;
    assert_eq!(body, json!([]));

    let (status, url) = app
        .get("/api/v1/chat/chat-friend/bob", Some(&alice.access))
        .await;
    assert_eq!(status, 200);
    let expected = format!("{}/ws/user/bob/?token={}", app.ws_base, alice.access);
    assert_eq!(url["url"], expected.as_str());

    let (status, group) = app
        .post(
            "/api/v1/chat/create-group",
            Some(&alice.access),
            json!({"name": "rustaceans"}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["name"], "rustaceans");
    assert_eq!(group["users"], json!([{"username": "alice"}]));
    assert_eq!(group["chat"]["chat_type"], "group");
    assert!(group["chat"]["thread_id"].is_i64());

    let (status, body) = app
        .post(
            "/api/v1/chat/join-group/rustaceans",
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!((status, body), (200, json!("Succussfully joined.")));
    let (status, url) = app
        .get("/api/v1/chat/chat-group/rustaceans", Some(&bob.access))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        url["url"],
        format!("{}/ws/group/rustaceans/?token={}", app.ws_base, bob.access).as_str()
    );

    // Only the owner deletes; leaving works; then the group is gone.
    let (status, _) = app
        .post(
            "/api/v1/chat/delete-group/rustaceans",
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            "/api/v1/chat/leave-group/rustaceans",
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!((status, body), (200, json!("Succussfully removed.")));
    let (status, _) = app
        .post(
            "/api/v1/chat/delete-group/rustaceans",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get("/api/v1/chat/chat-group/rustaceans", Some(&alice.access))
        .await;
    assert_eq!(status, 404);

    let (status, body) = app
        .post(
            "/api/v1/chat/remove-friend/bob",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!((status, body), (200, json!("Succussfly removed friend")));
    let (_, body) = app
        .get("/api/v1/chat/list-friends", Some(&alice.access))
        .await;
    assert_eq!(body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_chat_is_one_per_pair_even_when_opened_concurrently() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let opens = (0..8).map(|i| {
        let (me, other) = if i % 2 == 0 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        app.post(
            "/api/v1/chats/direct",
            Some(&me.access),
            json!({"user_id": other.id}),
        )
    });
    let results = futures_util::future::join_all(opens).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 201));
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b)| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, chat) = &results[0];
    assert_eq!(chat["kind"], "direct");
}

async fn send(app: &TestApp, user: &TestUser, chat: i64, text: &str) -> serde_json::Value {
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&user.access),
            json!({"text": text}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_get_gapless_seqs_history_pages_and_the_chat_list_orders_by_activity() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Team", "name": "team"}),
        )
        .await;
    let group = group["id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/chats/{group}/join"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, direct) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    let direct = direct["id"].as_i64().unwrap();

    // seq 1 is bob's join line; then five messages.
    for i in 1..=5 {
        let m = send(&app, &alice, group, &format!("m{i}")).await;
        assert_eq!(m["seq"], i + 1);
        assert_eq!(m["author"], json!({"id": alice.id, "username": "alice"}));
        assert_eq!(m["kind"], "text");
        assert_eq!(m["deleted"], false);
    }
    let (status, page) = app
        .get(
            &format!("/api/v1/chats/{group}/messages?limit=3"),
            Some(&bob.access),
        )
        .await;
    assert_eq!(status, 200);
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5, 6]);
    assert_eq!(page["has_more"], true);
    let (_, page) = app
        .get(
            &format!("/api/v1/chats/{group}/messages?before=4&limit=3"),
            Some(&bob.access),
        )
        .await;
    let first = &page["messages"][0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "system");
    assert_eq!(first["author"], serde_json::Value::Null);
    assert_eq!(first["text"], "bob joined the group");
    assert_eq!(page["has_more"], false);
    let (_, page) = app
        .get(
            &format!("/api/v1/chats/{group}/messages?after=4"),
            Some(&bob.access),
        )
        .await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["m4", "m5"]);
    // Both cursors: the window strictly between them, oldest first (filling a gap).
    let window = |query: &'static str| {
        let app = &app;
        let bob = &bob;
        async move {
            let (status, page) = app
                .get(
                    &format!("/api/v1/chats/{group}/messages?{query}"),
                    Some(&bob.access),
                )
                .await;
            assert_eq!(status, 200, "{page}");
            let seqs: Vec<i64> = page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (seqs, page["has_more"].as_bool().unwrap())
        }
    };
    assert_eq!(window("after=1&before=5").await, (vec![2, 3, 4], false));
    assert_eq!(window("after=1&before=6&limit=2").await, (vec![2, 3], true));
    assert_eq!(window("after=4&before=5").await, (vec![], false));
    assert_eq!(window("after=5&before=2").await, (vec![], false));

    // The direct chat becomes the most recently active.
    send(&app, &bob, direct, "hi alice").await;
    let (status, list) = app.get("/api/v1/chats", Some(&alice.access)).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], direct);
    assert_eq!(list[0]["peer"], json!({"id": bob.id, "username": "bob"}));
    assert_eq!(list[0]["last_message"]["text"], "hi alice");
    assert_eq!(list[0]["unread_count"], 1);
    assert_eq!(list[1]["id"], group);
    assert_eq!(list[1]["last_message"]["text"], "m5");
    assert_eq!(
        list[1]["unread_count"], 0,
        "alice wrote the last message: nothing is unread for her"
    );

    // Bob's own message and his own join line are not unread for him; alice's five are.
    let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
    assert_eq!(list[0]["id"], direct);
    assert_eq!(list[0]["unread_count"], 0);
    assert_eq!(
        list[0]["peer"],
        json!({"id": alice.id, "username": "alice"})
    );
    assert_eq!(list[1]["unread_count"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_id_returns_the_original_message_and_uses_no_seq() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Solo"}),
        )
        .await;
    let group = group["id"].as_i64().unwrap();
    let path = format!("/api/v1/chats/{group}/messages");
    let body = json!({"text": "once", "client_id": "c-1"});
    let (first_status, first) = app.post(&path, Some(&alice.access), body.clone()).await;
    assert_eq!(first_status, 201);
    let retries = futures_util::future::join_all(
        (0..4).map(|_| app.post(&path, Some(&alice.access), body.clone())),
    )
    .await;
    for (status, again) in retries {
        assert_eq!(status, 200);
        assert_eq!(again, first);
    }
    let (_, next) = app
        .post(&path, Some(&alice.access), json!({"text": "twice"}))
        .await;
    assert_eq!(
        next["seq"],
        first["seq"].as_i64().unwrap() + 1,
        "a retry consumed a seq"
    );
    let (_, page) = app.get(&path, Some(&alice.access)).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
}

/// Two chats with neighbouring ids are written by different writer tasks, so the same
/// `client_id` sent to both at once races between two batch statements: the loser fails on the
/// unique index, its batch is written again one message at a time, and each send still gets its
/// honest answer (the original, or 409 for the other chat) with no seq used by a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_id_raced_into_two_chats_is_stored_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut chats = Vec::new();
    for title in ["One", "Two"] {
        let (_, chat) = app
            .post(
                "/api/v1/chats/groups",
                Some(&alice.access),
                json!({"title": title}),
            )
            .await;
        chats.push(chat["id"].as_i64().unwrap());
    }
    let mut stored = 0;
    for round in 0..10 {
        let body = json!({"text": "raced", "client_id": format!("race-{round}")});
        let sends = (0..6).map(|i| {
            let path = format!("/api/v1/chats/{}/messages", chats[i % 2]);
            let body = body.clone();
            let app = &app;
            let alice = &alice;
            async move { app.post(&path, Some(&alice.access), body).await }
        });
        let answers = futures_util::future::join_all(sends).await;
        let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
        assert_eq!(created.len(), 1, "round {round}: {answers:?}");
        let original = &created[0].1;
        for (status, body) in &answers {
            if body["chat_id"] == original["chat_id"] {
                assert!(*status == 201 || *status == 200, "{status}: {body}");
                assert_eq!(body, original);
            } else {
                assert_eq!(*status, 409, "round {round}: {body}");
            }
        }
        stored += 1;
    }
    let mut total = 0;
    for chat in chats {
        let (_, page) = app
            .get(
                &format!("/api/v1/chats/{chat}/messages?limit=200"),
                Some(&alice.access),
            )
            .await;
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        total += seqs.len();
    }
    assert_eq!(total, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_chat_live_in_a_group_and_retrieve_history() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.create_group_002(&alice, "live").await;
    app.join_group_002(&bob, "live").await;

    let mut a = app.group_socket(&alice, "live").await;
    let mut b = app.group_socket(&bob, "live").await;
    a.send_json(json!({"action": "send_message", "message": "hello bob"}))
        .await;
    for socket in [&mut a, &mut b] {
        let frame = socket.recv_json().await;
        let message = &frame["message"];
        assert_eq!(message["content"], "hello bob");
        assert_eq!(message["from_user"], json!({"username": "alice"}));
        assert!(message["id"].is_i64());
        assert!(message["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    b.send_json(json!({"action": "send_message", "message": "hi alice"}))
        .await;
    assert_eq!(a.recv_json().await["message"]["content"], "hi alice");
    assert_eq!(b.recv_json().await["message"]["content"], "hi alice");

    b.send_json(json!({"action": "retrieve_message", "number": 2}))
        .await;
    let frame = b.recv_json().await;
    assert_eq!(frame["action"], "retrieve_message");
    assert_eq!(frame["to_user"], "bob");
    let contents: Vec<&str> = frame["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, vec!["hi alice", "hello bob"], "newest first");
    assert_eq!(
        frame["data"]["meta"],
        json!({"number_msgs": 2, "has_more": true})
    );
    // `number` defaults to 10: all three lines (bob's join line included).
    b.send_json(json!({"action": "retrieve_message"})).await;
    assert_eq!(
        b.recv_json().await["data"]["meta"],
        json!({"number_msgs": 3, "has_more": false})
    );
    a.expect_silence(200).await;

    // A message sent over REST reaches the sockets too.
    let (_, chat) = app.get("/api/v1/chats", Some(&alice.access)).await;
    let id = chat[0]["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/chats/{id}/messages"),
        Some(&alice.access),
        json!({"text": "via rest"}),
    )
    .await;
    assert_eq!(a.recv_json().await["message"]["content"], "via rest");
    assert_eq!(b.recv_json().await["message"]["content"], "via rest");

    // Leaving closes the leaver's socket with the door's disconnect frame.
    app.post(
        "/api/v1/chat/leave-group/live",
        Some(&bob.access),
        json!({}),
    )
    .await;
    let (frames, close) = b.recv_close().await;
    assert!(
        frames.iter().any(|f| f["action"] == "disconect"),
        "{frames:?}"
    );
    assert_eq!(u16::from(close.unwrap().code), 1008);
    let left = a.recv_json().await;
    assert_eq!(left["message"]["content"], "bob left the group", "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_chat_live_in_a_direct_chat() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.befriend(&alice, &bob).await;
    let mut a = app.user_socket(&alice, &bob).await;
    let mut b = app.user_socket(&bob, &alice).await;
    a.send_json(json!({"action": "send_message", "message": "psst"}))
        .await;
    for socket in [&mut a, &mut b] {
        let data = socket.recv_json().await["data"].clone();
        assert_eq!(data["content"], "psst");
        assert_eq!(data["from_user"], json!({"username": "alice"}));
        assert_eq!(data["to_user"], json!({"username": "bob"}));
    }
    b.send_json(json!({"action": "send_message", "message": "yes?"}))
        .await;
    let data = a.recv_json().await["data"].clone();
    assert_eq!(data["to_user"], json!({"username": "alice"}));
    b.recv_json().await;
    a.send_json(json!({"action": "retrieve_message"})).await;
    let frame = a.recv_json().await;
    let contents: Vec<&str> = frame["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, vec!["yes?", "psst"]);
    assert_eq!(frame["meta"], json!({"number_msgs": 2, "has_more": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_instances_chat_through_redis() {
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    one.create_group_002(&alice, "across").await;
    // Bob joins through the other instance: the membership cache is shared and invalidated.
    let (status, _) = two
        .post(
            "/api/v1/chat/join-group/across",
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let mut a = one.group_socket(&alice, "across").await;
    let mut b = two.group_socket(&bob, "across").await;
    a.send_json(json!({"action": "send_message", "message": "from one"}))
        .await;
    assert_eq!(b.recv_json().await["message"]["content"], "from one");
    assert_eq!(a.recv_json().await["message"]["content"], "from one");
    b.send_json(json!({"action": "send_message", "message": "from two"}))
        .await;
    assert_eq!(a.recv_json().await["message"]["content"], "from two");
    assert_eq!(b.recv_json().await["message"]["content"], "from two");

    // Direct chat across instances.
    one.befriend(&alice, &bob).await;
    let mut da = one.user_socket(&alice, &bob).await;
    let mut db = two.user_socket(&bob, &alice).await;
    db.send_json(json!({"action": "send_message", "message": "dm across"}))
        .await;
    let data = da.recv_json().await["data"].clone();
    assert_eq!(data["content"], "dm across");
    assert_eq!(data["to_user"], json!({"username": "alice"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_while_sending_never_fails_the_server() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    for round in 0..5 {
        let name = format!("g{round}");
        app.create_group_002(&alice, &name).await;
        app.join_group_002(&bob, &name).await;
        let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
        let path = format!("/api/v1/chats/{}/messages", list[0]["id"]);
        let sends =
            (0..10).map(|i| app.post(&path, Some(&bob.access), json!({"text": format!("m{i}")})));
        let leave_path = format!("/api/v1/chat/leave-group/{name}");
        let leave = app.post(&leave_path, Some(&bob.access), json!({}));
        let (sent, (left, _)) = tokio::join!(futures_util::future::join_all(sends), leave);
        assert_eq!(left, 200);
        for (status, body) in sent {
            assert!(status == 201 || status == 403, "{status}: {body}");
        }
        // Seqs stay gapless whatever interleaving happened.
        let (_, page) = app
            .get(&format!("{path}?limit=200"), Some(&alice.access))
            .await;
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_passes_on_when_the_owner_leaves() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.create_group_002(&alice, "club").await;
    app.join_group_002(&bob, "club").await;
    app.join_group_002(&carol, "club").await;
    app.post(
        "/api/v1/chat/leave-group/club",
        Some(&alice.access),
        json!({}),
    )
    .await;
    // Bob, the longest-standing member, is the owner now: carol may not delete, bob may leave.
    let (status, _) = app
        .post(
            "/api/v1/chat/delete-group/club",
            Some(&carol.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    app.post(
        "/api/v1/chat/leave-group/club",
        Some(&bob.access),
        json!({}),
    )
    .await;
    app.post(
        "/api/v1/chat/leave-group/club",
        Some(&carol.access),
        json!({}),
    )
    .await;
    // Everyone left: the next to join takes the group over and can delete it.
    app.join_group_002(&alice, "club").await;
    let (status, _) = app
        .post(
            "/api/v1/chat/delete-group/club",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_the_process_serves() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket_with_1012() {
    let mut app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.create_group_002(&alice, "g").await;
    let (mut gateway, _) = app.gateway(&alice).await;
    let mut door_002 = app.group_socket(&alice, "g").await;
    let server = app.server.take().unwrap();
    let stopping = tokio::spawn(server.stop());
    for socket in [&mut gateway, &mut door_002] {
        let (_, close) = socket.recv_close().await;
        let close = close.expect("a close frame");
        assert_eq!(u16::from(close.code), 1012);
    }
    tokio::time::timeout(std::time::Duration::from_secs(15), stopping)
        .await
        .expect("stop is bounded")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_the_database_and_redis() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/readyz", None).await,
        (200, json!({"status": "ready"}))
    );
    // An instance whose PostgreSQL is gone answers 503 and names it (its database is dropped).
    let env = chat_test_support::TestEnv::new().await;
    let broken = TestApp::spawn_with(env.clone(), env.settings()).await;
    let mut admin = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &env.database_url
            .replace(&format!("/{}", env.db_name), "/postgres"),
    )
    .await
    .unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {} WITH (FORCE)", env.db_name)),
        &mut admin,
    )
    .await
    .unwrap();
    let (status, body) = broken.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().starts_with("database"),
        "{body}"
    );
    assert_eq!(
        broken.get("/healthz", None).await.0,
        200,
        "the process itself is up"
    );
}
