//! Door 001 ("SIMPLE HTTP CHAT", the Avito task) driven as its clients did: the seed document's
//! own requests, every error PROTOCOLS.md lists for it, and messages crossing into the native API.

mod common;

use common::TestApp;
use serde_json::{Value, json};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.post(path, None, body).await
}

fn id(body: &Value) -> i64 {
    body["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_walkthrough_with_ids_as_strings_or_numbers() {
    let app = TestApp::spawn().await;
    let (status, u1) = post(&app, "/users/add", json!({"username": "user_1"})).await;
    assert_eq!(status, 201);
    assert_eq!(u1.as_object().unwrap().len(), 1, "only the id: {u1}");
    let (_, u2) = post(&app, "/users/add", json!({"username": "user_2"})).await;
    let (u1, u2) = (id(&u1), id(&u2));

    // The seed sends ids as strings.
    let (status, chat) = post(
        &app,
        "/chats/add",
        json!({"name": "chat_1", "users": [u1.to_string(), u2.to_string()]}),
    )
    .await;
    assert_eq!(status, 201, "{chat}");
    let chat = id(&chat);
    let (status, m1) = post(
        &app,
        "/messages/add",
        json!({"chat": chat.to_string(), "author": u1.to_string(), "text": "hi"}),
    )
    .await;
    assert_eq!(status, 201, "{m1}");
    // ... and numbers work too.
    let (status, m2) = post(
        &app,
        "/messages/add",
        json!({"chat": chat, "author": u2, "text": "hello"}),
    )
    .await;
    assert_eq!(status, 201);

    let (status, messages) = post(&app, "/messages/get", json!({"chat": chat.to_string()})).await;
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
        "/chats/add",
        json!({"name": "chat_2", "users": [u1, u1]}),
    )
    .await;
    let chat2 = id(&chat2);
    let (status, chats) = post(&app, "/chats/get", json!({"user": u1.to_string()})).await;
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
        "/messages/add",
        json!({"chat": chat, "author": u2, "text": "again"}),
    )
    .await;
    let (_, chats) = post(&app, "/chats/get", json!({"user": u1})).await;
    assert_eq!(id(&chats[0]), chat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_error_json_with_the_documented_statuses() {
    let app = TestApp::spawn().await;
    let (_, u1) = post(&app, "/users/add", json!({"username": "user_1"})).await;
    let (_, u2) = post(&app, "/users/add", json!({"username": "user_2"})).await;
    let (u1, u2) = (id(&u1), id(&u2));
    let (_, chat) = post(&app, "/chats/add", json!({"name": "chat_1", "users": [u1]})).await;
    let chat = id(&chat);
    let cases: Vec<(&str, Value, u16)> = vec![
        ("/users/add", json!({"username": "USER_1"}), 409),
        ("/users/add", json!({}), 400),
        ("/users/add", json!({"username": 5}), 400),
        ("/users/add", json!({"username": "a b"}), 400),
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
        let (status, answer) = post(&app, path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {answer}"
        );
        assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    }
    // Malformed JSON and wrong methods, in the door's own format.
    let raw = app
        .http
        .post(app.url("/users/add"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.json::<Value>().await.unwrap()["error"].is_string());
    let get = app.http.get(app.url("/chats/get")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert!(get.json::<Value>().await.unwrap()["error"].is_string());
    // Nothing was written by the refused requests.
    let (_, chats) = post(&app, "/chats/get", json!({"user": u1})).await;
    assert_eq!(chats.as_array().unwrap().len(), 1);
    let (_, messages) = post(&app, "/messages/get", json!({"chat": chat})).await;
    assert_eq!(messages, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_written_through_the_native_api_show_up_in_order() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (_, chat) = post(
        &app,
        "/chats/add",
        json!({"name": "mixed", "users": [alice.id, bob.id]}),
    )
    .await;
    let chat = id(&chat);
    app.send(&alice, chat, "native 1").await;
    post(
        &app,
        "/messages/add",
        json!({"chat": chat, "author": bob.id, "text": "door 001"}),
    )
    .await;
    app.send(&bob, chat, "native 2").await;
    let (_, messages) = post(&app, "/messages/get", json!({"chat": chat})).await;
    let texts: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["native 1", "door 001", "native 2"]);
    // And a native gateway client of the chat receives door 001's messages live.
    let (mut socket, _) = app.gateway(&alice).await;
    post(
        &app,
        "/messages/add",
        json!({"chat": chat, "author": bob.id, "text": "live"}),
    )
    .await;
    assert_eq!(
        socket.recv_event("message.created").await["message"]["text"],
        "live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_can_be_switched_off() {
    let env = common::TestEnv::new().await;
    let settings = chat_api::Settings {
        door_avito: false,
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let (status, _) = post(&app, "/users/add", json!({"username": "user_1"})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_listener_serves_door_001_alone() {
    let env = common::TestEnv::new().await;
    let settings = chat_api::Settings {
        avito_listen: Some("127.0.0.1:0".into()),
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let door = app
        .server
        .as_ref()
        .unwrap()
        .avito_addr
        .expect("door 001 listener");
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://{door}/users/add"))
        .json(&json!({"username": "user_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // The same core: the user exists on the main listener's doors too.
    let (status, _) = post(&app, "/users/add", json!({"username": "user_1"})).await;
    assert_eq!(status, 409);
    // Only door 001 is there.
    let other = http
        .post(format!("http://{door}/api/v1/auth/login/"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(
        other.json::<Value>().await.unwrap(),
        json!({"error": "not found"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_chats_and_reserved_names_are_400() {
    let app = TestApp::spawn().await;
    let users: Vec<i64> = (1..=1001).collect();
    let (status, body) = post(&app, "/chats/add", json!({"name": "huge", "users": users})).await;
    assert_eq!(status, 400, "{body}");
    for name in ["system", "Error"] {
        let (status, _) = post(&app, "/users/add", json!({"username": name})).await;
        assert_eq!(status, 400, "{name} is reserved");
    }
}
