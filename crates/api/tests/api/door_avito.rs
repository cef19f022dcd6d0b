//! Door 001 ("SIMPLE HTTP CHAT", the Avito task) driven as its clients did: the seed document's
//! own requests and every error docs/doors.md lists for it — on its own listener, since it has no
//! authentication: off by default, never on the main listener, and a sandbox of its own users and
//! chats that reaches nothing of the other doors (issue "Secure by default", item 1).

use chat_test_support::TestApp;
use serde_json::{Value, json};

/// An app with door 001 on, on its own listener.
async fn door_app() -> (TestApp, String) {
    TestApp::spawn_door001().await
}

/// POSTs `body` as JSON to `door` + `path`: the status and the JSON answer (`Null` if none).
pub(super) async fn post(app: &TestApp, door: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{door}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The `id` of a 201 answer.
pub(super) fn id(body: &Value) -> i64 {
    body["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_walkthrough_with_ids_as_strings_or_numbers() {
    let (app, door) = door_app().await;
    let (status, u1) = post(&app, &door, "/users/add", json!({"username": "user_1"})).await;
    assert_eq!(status, 201);
    assert_eq!(u1.as_object().unwrap().len(), 1, "only the id: {u1}");
    let (_, u2) = post(&app, &door, "/users/add", json!({"username": "user_2"})).await;
    let (u1, u2) = (id(&u1), id(&u2));

    // The seed sends ids as strings.
    let (status, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "chat_1", "users": [u1.to_string(), u2.to_string()]}),
    )
    .await;
    assert_eq!(status, 201, "{chat}");
    let chat = id(&chat);
    let (status, m1) = post(
        &app,
        &door,
        "/messages/add",
        json!({"chat": chat.to_string(), "author": u1.to_string(), "text": "hi"}),
    )
    .await;
    assert_eq!(status, 201, "{m1}");
    // ... and numbers work too.
    let (status, m2) = post(
        &app,
        &door,
        "/messages/add",
        json!({"chat": chat, "author": u2, "text": "hello"}),
    )
    .await;
    assert_eq!(status, 201);

    let (status, messages) = post(
        &app,
        &door,
        "/messages/get",
        json!({"chat": chat.to_string()}),
    )
    .await;
    assert_eq!(status, 200);
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], id(&m1));
    assert_eq!(messages[1]["id"], id(&m2));
    let keys: Vec<&String> = messages[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["author", "chat", "created_at", "id", "text"]);
    assert_eq!(
        (
            messages[0]["chat"].clone(),
            messages[0]["author"].clone(),
            messages[0]["text"].clone()
        ),
        (json!(chat), json!(u1), json!("hi"))
    );

    // A second chat, with no message: it sorts by its own creation... after chat_1's message.
    let (_, chat2) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "chat_2", "users": [u1, u1]}),
    )
    .await;
    let chat2 = id(&chat2);
    let (status, chats) = post(&app, &door, "/chats/get", json!({"user": u1.to_string()})).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = chats.as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        ids,
        vec![chat2, chat],
        "chat_2 was created after chat_1's last message"
    );
    assert_eq!(chats[1]["users"], json!([u1, u2]));
    assert_eq!(chats[0]["users"], json!([u1]), "duplicates removed");
    assert_eq!(chats[1]["name"], "chat_1");
    assert!(chats[1]["created_at"].is_string());
    // A new message moves chat_1 to the front.
    post(
        &app,
        &door,
        "/messages/add",
        json!({"chat": chat, "author": u2, "text": "again"}),
    )
    .await;
    let (_, chats) = post(&app, &door, "/chats/get", json!({"user": u1})).await;
    assert_eq!(id(&chats[0]), chat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_error_json_with_the_documented_statuses() {
    let (app, door) = door_app().await;
    let (_, u1) = post(&app, &door, "/users/add", json!({"username": "user_1"})).await;
    let (_, u2) = post(&app, &door, "/users/add", json!({"username": "user_2"})).await;
    let (u1, u2) = (id(&u1), id(&u2));
    let (_, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "chat_1", "users": [u1]}),
    )
    .await;
    let chat = id(&chat);
    let cases: Vec<(&str, Value, u16)> = vec![
        ("/users/add", json!({"username": "USER_1"}), 409),
        ("/users/add", json!({"username": "user_l"}), 409),
        ("/users/add", json!({}), 400),
        ("/users/add", json!({"username": 5}), 400),
        ("/users/add", json!({"username": "a\u{7}b"}), 400),
        ("/users/add", json!({"username": "   "}), 400),
        ("/chats/add", json!({"name": "chat_1", "users": [u1]}), 409),
        (
            "/chats/add",
            json!({"name": "chat_x", "users": [u1, 999999]}),
            404,
        ),
        ("/chats/add", json!({"name": "chat_y", "users": []}), 400),
        (
            "/chats/add",
            json!({"name": "chat_z", "users": ["abc"]}),
            400,
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": u2, "text": "hi"}),
            403,
        ),
        (
            "/messages/add",
            json!({"chat": 999999, "author": u1, "text": "hi"}),
            404,
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": 999999, "text": "hi"}),
            404,
        ),
        (
            "/messages/add",
            json!({"chat": chat, "author": u1, "text": ""}),
            400,
        ),
        ("/messages/add", json!({"chat": chat, "author": u1}), 400),
        ("/chats/get", json!({"user": 999999}), 404),
        ("/chats/get", json!({"user": "x1"}), 400),
        ("/messages/get", json!({"chat": 999999}), 404),
    ];
    for (path, body, want) in cases {
        let (status, answer) = post(&app, &door, path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {answer}"
        );
        assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    }
    // Malformed JSON, a body over CHAT_MAX_BODY_BYTES and wrong methods, in the door's format.
    let raw = app
        .http
        .post(format!("{door}/users/add"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.json::<Value>().await.unwrap()["error"].is_string());
    let (status, answer) = post(
        &app,
        &door,
        "/users/add",
        json!({"username": "x".repeat(200_000)}),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
    let get = app
        .http
        .get(format!("{door}/chats/get"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert!(get.json::<Value>().await.unwrap()["error"].is_string());
    let other = app
        .http
        .post(format!("{door}/api/v1/auth/login/"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "only door 001 is on its listener");
    assert_eq!(
        other.json::<Value>().await.unwrap(),
        json!({"error": "not found"})
    );
    // Nothing was written by the refused requests.
    let (_, chats) = post(&app, &door, "/chats/get", json!({"user": u1})).await;
    assert_eq!(chats.as_array().unwrap().len(), 1);
    let (_, messages) = post(&app, &door, "/messages/get", json!({"chat": chat})).await;
    assert_eq!(messages, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_is_a_sandbox_both_ways() {
    let (app, door) = door_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (_, group) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "Secret", "is_private": true}),
        )
        .await;
    let group = id(&group);
    app.post(
        &format!("/api/v1/chats/{group}/members"),
        Some(&alice.access),
        json!({"user_id": bob.id}),
    )
    .await;
    app.send(&alice, group, "between us").await;
    let (_, u1) = post(&app, &door, "/users/add", json!({"username": "anon_1"})).await;
    let u1 = id(&u1);

    // Door 001 reaches no chat and no user of the other doors: every such id is unknown.
    let unknown = [
        ("/messages/get", json!({"chat": group})),
        (
            "/messages/add",
            json!({"chat": group, "author": alice.id, "text": "as alice"}),
        ),
        (
            "/messages/add",
            json!({"chat": group, "author": u1, "text": "in"}),
        ),
        ("/chats/get", json!({"user": alice.id})),
        ("/chats/add", json!({"name": "grab", "users": [alice.id]})),
        (
            "/chats/add",
            json!({"name": "grab2", "users": [u1, bob.id]}),
        ),
    ];
    for (path, body) in unknown {
        let (status, answer) = post(&app, &door, path, body.clone()).await;
        assert_eq!(
            (status, answer["error"].is_string()),
            (404, true),
            "{path} {body}: {answer}"
        );
    }
    let (_, history) = app
        .get(
            &format!("/api/v1/chats/{group}/messages"),
            Some(&alice.access),
        )
        .await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.last(), Some(&"between us"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("as alice") || *t == "in"));

    // And the other doors do not reach door 001's users or chats.
    let (_, chat) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "sandbox", "users": [u1]}),
    )
    .await;
    let chat = id(&chat);
    let (status, _) = app
        .get(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&alice.access),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": u1}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/chats/{group}/members"),
            Some(&alice.access),
            json!({"user_id": u1}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/chat/add-friend/anon_1",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "door 001's names are not the other doors'");
    // Its names and chat names take nothing from the other doors, nor theirs from it.
    let (status, answer) = post(&app, &door, "/users/add", json!({"username": "alice"})).await;
    assert_eq!(status, 201, "{answer}");
    app.user("anon_1").await;
    let (status, _) = app
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "sandbox", "name": "sandbox"}),
        )
        .await;
    assert_eq!(status, 201, "a group named like door 001's chat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_is_off_by_default_and_never_on_the_main_listener() {
    let app = TestApp::spawn().await;
    assert!(app.server.as_ref().unwrap().avito_addr.is_none());
    for path in [
        "/users/add",
        "/chats/add",
        "/messages/add",
        "/chats/get",
        "/messages/get",
    ] {
        let (status, _) = app.post(path, None, json!({"username": "user_1"})).await;
        assert_eq!(status, 404, "{path} on the main listener, door off");
    }
    let (app, door) = door_app().await;
    let (status, _) = app
        .post("/users/add", None, json!({"username": "user_1"}))
        .await;
    assert_eq!(status, 404, "the main listener, door on");
    let (status, _) = post(&app, &door, "/users/add", json!({"username": "user_1"})).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chats_and_reserved_names_are_refused() {
    let (app, door) = door_app().await;
    let users: Vec<i64> = (1..=1001).collect();
    let (status, body) = post(
        &app,
        &door,
        "/chats/add",
        json!({"name": "huge", "users": users}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    for name in ["system", "Error", "ѕуѕтем"] {
        let (status, _) = post(&app, &door, "/users/add", json!({"username": name})).await;
        assert_eq!(status, 409, "{name} is reserved");
    }
}
