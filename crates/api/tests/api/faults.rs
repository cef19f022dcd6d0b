//! Serving through faults (issue "Keep serving through Redis and PostgreSQL faults"): a Redis
//! outage stalls nothing and loses nothing, a PostgreSQL outage is answered fast with "try again"
//! (503 + Retry-After, close 1013), a write whose outcome is unknown says so (503, retry with the
//! same `client_id`), and an instance that dies takes its users' presence with it. Each test has
//! its own Redis server (`PrivateRedis`) or refuses its own database's connections: the machine's
//! shared servers are never touched.

use std::time::{Duration, Instant};

use chat_test_support::{PrivateRedis, TestApp, TestEnv, WsClient, admin_execute};
use serde_json::{Value, json};

fn settings_on(env: &TestEnv, redis: &PrivateRedis) -> chat_api::Settings {
    chat_api::Settings {
        redis_url: redis.url(),
        ..env.settings()
    }
}

/// The texts of the `message.created` frames of `chat` that `socket` receives within `ms`, in
/// the order they came, with their seqs.
async fn received(socket: &mut WsClient, chat: i64, ms: u64) -> Vec<(i64, String)> {
    socket
        .drain(ms)
        .await
        .into_iter()
        .filter(|f| f["event"] == "message.created" && f["chat_id"] == chat)
        .map(|f| {
            (
                f["seq"].as_i64().unwrap(),
                f["message"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The next `presence` frame about `user` on `socket`, waiting up to 45 s (an instance's death
/// is noticed when its heartbeat expires); fails the test with `missing` when none comes.
async fn next_presence_of(socket: &mut WsClient, user: i64, missing: &str) -> Value {
    let started = Instant::now();
    loop {
        let frames = socket.drain(1000).await;
        if let Some(f) = frames
            .into_iter()
            .find(|f| f["event"] == "presence" && f["user_id"] == user)
        {
            return f;
        }
        assert!(started.elapsed() < Duration::from_secs(45), "{missing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_stalls_no_send_and_loses_no_message() {
    let mut redis = PrivateRedis::start().await;
    let env = TestEnv::new().await;
    let a = TestApp::spawn_with(env.clone(), settings_on(&env, &redis)).await;
    let b = TestApp::spawn_with(env.clone(), settings_on(&env, &redis)).await;
    let alice = a.user("alice").await;
    let bob = a.user("bob").await;
    let carol = a.user("carol").await;
    let chat = a.group(&alice, &[&bob, &carol]).await;
    a.send(&alice, chat, "before").await;
    // Bob listens on the other instance and stays idle through the outage.
    let (mut bob_socket, _) = b.gateway(&bob).await;
    assert_eq!(received(&mut bob_socket, chat, 300).await.len(), 0);

    redis.kill();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        a.send(&alice, chat, &format!("during {i}")).await;
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a send waited {slowest:?} for Redis"
    );
    // A new socket opens without Redis, and sends over it are acknowledged.
    let (mut carol_socket, ready) = a.gateway(&carol).await;
    assert!(ready["chats"][chat.to_string()].is_i64(), "{ready}");
    carol_socket
        .send_json(json!({"action": "send_message", "chat_id": chat, "message": "via socket", "client_id": "c-1", "request_id": 1}))
        .await;
    let sent = carol_socket.recv_event("message.sent").await;
    assert_eq!(sent["duplicate"], false, "{sent}");

    redis.restart().await;
    // Bob's idle socket ends with every message, in order, once: caught up from PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut got = Vec::new();
    while got.len() < 6 && Instant::now() < deadline {
        got.extend(received(&mut bob_socket, chat, 250).await);
    }
    let seqs: Vec<i64> = got.iter().map(|(seq, _)| *seq).collect();
    let first = seqs.first().copied().unwrap_or(0);
    assert_eq!(
        seqs,
        (first..first + 6).collect::<Vec<_>>(),
        "bob got {got:?}"
    );
    assert_eq!(got.last().map(|(_, t)| t.as_str()), Some("via socket"));
    // And live delivery works again.
    a.send(&alice, chat, "after").await;
    let after = received(&mut bob_socket, chat, 2000).await;
    assert_eq!(
        after.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["after"]
    );
    // Readiness says "degraded", not "unavailable", while Redis is out.
    redis.kill();
    let (status, body) = a.get("/readyz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("degraded")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_answered_fast_with_try_again() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let chat = app.group(&alice, &[]).await;
    let db = app.env.db_name.clone();
    admin_execute(&format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .await;

    let started = Instant::now();
    let response = app
        .http
        .post(app.url(&format!("/api/v1/chats/{chat}/messages")))
        .bearer_auth(&alice.access)
        .json(&json!({"text": "while down", "client_id": "d-1"}))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        waited < Duration::from_secs(3),
        "the refusal took {waited:?}"
    );
    // A new socket is told to try again later (1013), not that it broke a rule (1008).
    let mut socket = app.ws(&format!("/api/v1/ws?token={}", alice.access)).await;
    let (frames, close) = socket.recv_close().await;
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013, "{frames:?} {close:?}");
    assert_eq!(frames[0]["code"], "unavailable", "{frames:?}");

    admin_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = app
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                Some(&alice.access),
                json!({"text": "while down", "client_id": "d-1"}),
            )
            .await;
        if status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sends did not come back: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_outcome_is_unknown_is_503_and_safe_to_retry() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let chat = app.group(&alice, &[]).await;
    let url = app.env.database_url.clone();
    let sql = |s: String| {
        let url = url.clone();
        async move {
            use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            conn.batch_execute(&s).await.unwrap();
        }
    };
    // Inserts now take 3 s: time to cut the writer's connection mid-statement.
    sql(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$;
         CREATE TRIGGER slow_insert BEFORE INSERT ON messages
           FOR EACH ROW EXECUTE FUNCTION slow_insert();"
            .into(),
    )
    .await;
    let sending = {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/api/v1/chats/{chat}/messages")),
            alice.access.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"text": "maybe", "client_id": "u-1"}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    sql("DO $$ BEGIN
           IF (SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()
                 AND wait_event = 'PgSleep') t) = 0 THEN
             RAISE EXCEPTION 'no insert running';
           END IF;
         END $$"
        .into())
    .await;
    let response = sending.await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("client_id"),
        "{body}"
    );
    // The retry with the same client_id stores it once.
    sql("DROP TRIGGER slow_insert ON messages".into()).await;
    let (status, message) = app
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
            json!({"text": "maybe", "client_id": "u-1"}),
        )
        .await;
    assert!(matches!(status, 200 | 201), "{status} {message}");
    let (status, again) = app
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
            json!({"text": "maybe", "client_id": "u-1"}),
        )
        .await;
    assert_eq!((status, again["id"].clone()), (200, message["id"].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_dies_takes_its_users_presence_with_it() {
    let env = TestEnv::new().await;
    let mut a = TestApp::spawn_with(env.clone(), env.settings()).await;
    let b = TestApp::spawn_with(env.clone(), env.settings()).await;
    let alice = a.user("alice").await;
    let bob = a.user("bob").await;
    let chat = a.group(&alice, &[&bob]).await;
    let (mut bob_socket, _) = b.gateway(&bob).await;
    let (_alice_socket, _) = a.gateway(&alice).await;
    let online = loop {
        let frame = bob_socket.recv_event("presence").await;
        if frame["user_id"] == alice.id {
            break frame;
        }
    };
    assert_eq!(online["online"], true, "{online}");
    // Instance A dies like a killed process: no goodbye from its sockets.
    a.server.take().unwrap().crash().await;
    let offline = next_presence_of(&mut bob_socket, alice.id, "no offline event for alice").await;
    assert_eq!(offline["online"], false, "{offline}");
    assert_eq!(offline["chat_id"], chat);
    // What the others ask says so too.
    bob_socket
        .send_json(json!({"action": "presence", "chat_id": chat}))
        .await;
    let answer = bob_socket.recv_event("online").await;
    assert_eq!(answer["user_ids"], json!([bob.id]), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_left_an_instance_that_died_in_the_grace_period_is_said_offline_by_the_others() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // Longer than the test: only the instance's death can make the offline come.
    settings.presence_grace_ms = 120_000;
    let mut a = TestApp::spawn_with(env.clone(), settings.clone()).await;
    let b = TestApp::spawn_with(env.clone(), settings).await;
    let alice = a.user("alice").await;
    let bob = a.user("bob").await;
    let chat = a.group(&alice, &[&bob]).await;
    let (mut bob_socket, _) = b.gateway(&bob).await;
    let (alice_socket, _) = a.gateway(&alice).await;
    loop {
        let frame = bob_socket.recv_event("presence").await;
        if frame["user_id"] == alice.id {
            assert_eq!(frame["online"], true, "{frame}");
            break;
        }
    }
    // Alice leaves; her instance dies before her grace period is over, taking the pending
    // check with it.
    drop(alice_socket);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.server.take().unwrap().crash().await;
    let offline = next_presence_of(&mut bob_socket, alice.id, "alice was never said offline").await;
    assert_eq!(offline["online"], false, "{offline}");
    assert_eq!(offline["chat_id"], chat);
}
