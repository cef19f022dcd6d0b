//! Door 001 as outside clients of its task use it (issue "Door 001 as outside clients use it"):
//! free-text names, whole lists past any cap, limits of its own that fit a bulk API, and the HTTP
//! details those clients' suites check.

use super::door_avito::{id, post};
use chat_test_support::TestApp;
use serde_json::{Value, json};

async fn user(app: &TestApp, door: &str, name: &str) -> i64 {
    let (status, body) = post(app, door, "/users/add", json!({"username": name})).await;
    assert_eq!(status, 201, "{name}: {body}");
    id(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_names_and_usernames_are_free_text_as_the_task_has_them() {
    let (app, door) = TestApp::spawn_door001().await;
    let anna = user(&app, &door, "Anna Petrova").await;
    let u2 = user(&app, &door, "  user   2 ").await;
    let pizza = user(&app, &door, "🍕").await;
    // Usernames are unique whatever their case and spacing.
    for taken in ["anna petrova", "ANNA  PETROVA", "user 2"] {
        let (status, body) = post(&app, &door, "/users/add", json!({"username": taken})).await;
        assert_eq!(status, 409, "{taken}: {body}");
    }

    let mut chats = Vec::new();
    for name in ["klassnij chatik", "Chat #1!", "🍕 lovers", "Классный чатик"] {
        let (status, body) = post(
            &app,
            &door,
            "/chats/add",
            json!({"name": name, "users": [anna, u2, pizza]}),
        )
        .await;
        assert_eq!(status, 201, "{name}: {body}");
        chats.push((id(&body), name));
    }
    // Unique after trimming and collapsing spaces; another case is another name.
    let (status, body) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "  klassnij   chatik ", "users": [anna]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "KLASSNIJ CHATIK", "users": [anna]}),
    )
    .await;
    assert_eq!(status, 201);
    for (bad, why) in [
        ("", "empty"),
        ("   ", "blank"),
        ("line\nbreak", "a control character"),
        (&*"я".repeat(129), "129 characters"),
    ] {
        let (status, body) = post(
            &app,
            &door,
            "/chats/add",
            json!({"name": bad, "users": [anna]}),
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("name: Must be 1-128 characters"),
            "{body}"
        );
    }
    let (status, _) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "я".repeat(128), "users": [anna]}),
    )
    .await;
    assert_eq!(status, 201, "128 characters is the documented limit");

    // The names come back as stored.
    let (_, listed) = post(&app, &door, "/chats/get", json!({"user": u2})).await;
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = chats.iter().map(|(_, name)| *name).collect();
    want.sort_unstable();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_and_every_chat_comes_back_past_the_old_caps() {
    let (app, door) = TestApp::spawn_door001().await;
    let (u1, u2) = (user(&app, &door, "u1").await, user(&app, &door, "u2").await);
    let (_, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "big", "users": [u1, u2]}),
    )
    .await;
    let chat = id(&chat);
    // 10,050 stored messages (over the old cap of 10,000 and five pages of 2,000), straight
    // into the real database, then two more through the door.
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &app.env.database_url,
    )
    .await
    .unwrap();
    let setup = format!(
        "INSERT INTO messages (chat_id, seq, author_id, kind, text)
         SELECT {chat}, g, CASE WHEN g % 2 = 0 THEN {u2} ELSE {u1} END, 'text', 'bulk ' || g
         FROM generate_series(1, 10050) g;
         UPDATE chats SET last_seq = 10050, last_message_at = now() WHERE id = {chat};"
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &setup)
        .await
        .unwrap();
    for text in ["after 1", "after 2"] {
        let (status, _) = post(
            &app,
            &door,
            "/messages/add",
            json!({"chat": chat, "author": u1, "text": text}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let response = app
        .http
        .post(format!("{door}/messages/get"))
        .json(&json!({"chat": chat}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["transfer-encoding"],
        "chunked",
        "streamed"
    );
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(messages.len(), 10_052, "every message, none cut off");
    assert_eq!(messages[0]["text"], "bulk 1");
    assert_eq!(messages[0]["author"], u1);
    assert_eq!(messages[1]["author"], u2);
    assert_eq!(messages[10_049]["text"], "bulk 10050");
    assert_eq!(messages[10_051]["text"], "after 2");
    let ids: Vec<i64> = messages.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, once each"
    );
    assert!(messages.iter().all(|m| m["chat"] == chat));
    assert_eq!(
        messages[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["author", "chat", "created_at", "id", "text"]
    );

    // 501 chats (over the old cap of 500, three pages of 200): every one listed once, the chat
    // with the newest message first.
    let mut created = vec![chat];
    for n in 0..500 {
        let (status, body) = post(
            &app,
            &door,
            "/chats/add",
            json!({"name": format!("chat {n}"), "users": [u2, u1]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        created.push(id(&body));
    }
    let (status, _) = post(
        &app,
        &door,
        "/messages/add",
        json!({"chat": created[7], "author": u1, "text": "newest"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, listed) = post(&app, &door, "/chats/get", json!({"user": u1})).await;
    assert_eq!(status, 200);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 501);
    assert_eq!(
        listed[0]["id"], created[7],
        "the chat with the newest message first"
    );
    assert_eq!(listed[0]["users"], json!([u1, u2]));
    let mut ids: Vec<i64> = listed.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    created.sort_unstable();
    assert_eq!(ids, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_001_has_limits_of_its_own_fit_for_bulk_use() {
    // The interactive doors' limits set tight, door 001's own at 40 a minute.
    let (app, door) = TestApp::spawn_door001_with(|s| {
        s.rate_auth_per_min = 2;
        s.rate_send_per_min = 2;
        s.avito_rate_per_min = 40;
    })
    .await;
    // Far past the login limit: users of a bulk client are not logins.
    let mut users = Vec::new();
    for n in 0..25 {
        users.push(user(&app, &door, &format!("bulk {n}")).await);
    }
    let (status, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "bulk chat", "users": users}),
    )
    .await;
    assert_eq!(status, 201, "{chat}");
    let chat = id(&chat);
    // Past the per-user send limit: door 001's sends have none.
    for n in 0..5 {
        let (status, body) = post(
            &app,
            &door,
            "/messages/add",
            json!({"chat": chat, "author": users[0], "text": format!("m{n}")}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // 31 requests so far; the 41st in this minute is refused, in the door's format.
    let mut refused = None;
    for n in 0..12 {
        let response = app
            .http
            .post(format!("{door}/users/add"))
            .json(&json!({"username": format!("late {n}")}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry));
            refused = Some((n, response.json::<Value>().await.unwrap()));
            break;
        }
        assert_eq!(response.status(), 201);
    }
    let (at, body) = refused.expect("the 41st request of the minute is refused");
    // Unless the minute turned over meanwhile, the 41st (n = 9) was the first refused.
    assert!(at >= 9, "refused too early, at the {}th", 32 + at);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("CHAT_AVITO_RATE_PER_MIN"),
        "{body}"
    );
    // The refused request created nothing.
    let mut conn = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &app.env.database_url,
    )
    .await
    .unwrap();
    let stored = diesel_async::RunQueryDsl::load::<Count>(
        diesel::sql_query("SELECT count(*) AS n FROM users WHERE username = $1")
            .bind::<diesel::sql_types::Text, _>(format!("late {at}")),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(stored[0].n, 0);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_details_outside_suites_check() {
    let (app, door) = TestApp::spawn_door001_with(|s| s.max_body_bytes = 128 * 1024).await;
    let u1 = user(&app, &door, "user_1").await;
    let u2 = user(&app, &door, "user_2").await;
    let (_, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "chat 1", "users": [u1]}),
    )
    .await;
    let chat = id(&chat);

    // 405 says what is allowed (RFC 9110 §15.5.6).
    for path in ["/users/add", "/chats/get", "/messages/get"] {
        let response = app.http.get(format!("{door}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
    }
    // The body limit is CHAT_MAX_BODY_BYTES (128 KiB here), answered 413.
    let (status, body) = post(
        &app,
        &door,
        "/users/add",
        json!({"username": "x".repeat(100_000)}),
    )
    .await;
    assert_eq!(
        status, 400,
        "100 kB is under the limit: a name problem, {body}"
    );
    let (status, body) = post(
        &app,
        &door,
        "/users/add",
        json!({"username": "x".repeat(140_000)}),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("131072 bytes"),
        "{body}"
    );
    let form = app
        .http
        .post(format!("{door}/users/add"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);

    // Plain words naming the field, and an unknown id before a name or text problem.
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/users/add",
            json!({"username": 5}),
            400,
            "username: Must be a string, not the number 5.",
        ),
        (
            "/users/add",
            json!({}),
            400,
            "username: This field is required.",
        ),
        (
            "/chats/add",
            json!({"name": "c", "users": [u1, "abc"]}),
            400,
            "users[1]: Must be a user id (a whole number or a string of digits), not the text \"abc\".",
        ),
        (
            "/chats/add",
            json!({"name": "c", "users": "1,2"}),
            400,
            "users: Must be a list of user ids, not the text \"1,2\".",
        ),
        (
            "/messages/add",
            json!({"chat": true, "author": u1, "text": "hi"}),
            400,
            "chat: Must be a chat id (a whole number or a string of digits), not a boolean.",
        ),
        (
            "/chats/get",
            json!([1]),
            400,
            "the body must be a JSON object, not a list",
        ),
        (
            "/chats/add",
            json!({"name": "", "users": [u1, 999_999]}),
            404,
            "User not found.",
        ),
        (
            "/chats/add",
            json!({"name": 7, "users": [999_999]}),
            404,
            "User not found.",
        ),
        (
            "/messages/add",
            json!({"chat": 999_999, "author": u1, "text": ""}),
            404,
            "Chat not found.",
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": 999_999}),
            404,
            "User not found.",
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": u2, "text": ""}),
            403,
            "",
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": u1, "text": " "}),
            400,
            "text: ",
        ),
    ];
    for (path, body, want, text) in cases {
        let (status, answer) = post(&app, &door, path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(text), "{path} {body}: {error:?}");
        assert!(!error.contains("Raw") && !error.contains("enum"), "{error}");
    }
    let (_, messages) = post(&app, &door, "/messages/get", json!({"chat": chat})).await;
    assert_eq!(
        messages,
        json!([]),
        "nothing written by the refused requests"
    );
}
