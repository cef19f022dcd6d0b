//! Door 003 (support chat, JSON-RPC over WebSocket) driven as its clients did: the auth route's
//! envelope and empty 403/404s, customers and operators on `/v1/ws/`, every error code, the
//! `create-operator` command, and an operator's answer reaching a customer on another instance.

use chat_test_support::{TestApp, WsClient};
use serde_json::{Value, json};

/// `chat-server create-operator <name>` against the test's database and Redis prefix; returns
/// the generated password.
fn create_operator(app: &TestApp, name: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["create-operator", name])
        .env("DATABASE_URL", &app.env.database_url)
        .env("CHAT_REDIS_PREFIX", &app.env.redis_prefix)
        .env("CHAT_BCRYPT_COST", "4")
        .output()
        .expect("chat-server runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("as operator"), "{stdout}");
    stdout.trim().rsplit(' ').next().unwrap().to_owned()
}

async fn auth(app: &TestApp, name: &str, password: &str) -> (u16, String) {
    let response = app
        .http
        .post(app.url("/v1/auth/"))
        .json(&json!({"user_name": name, "password": password}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn token(app: &TestApp, name: &str, password: &str) -> String {
    let (status, body) = auth(app, name, password).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["result"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn call(socket: &mut WsClient, method: &str, params: Value, id: i64) -> Value {
    socket
        .send_json(json!({"method": method, "params": params, "id": id}))
        .await;
    loop {
        let frame = socket.recv_json().await;
        if frame["id"] == id
            && (frame["error"].is_object()
                || frame["result"].get("message").is_some()
                || frame["result"].get("messages").is_some())
        {
            return frame;
        }
    }
}

fn error_code(frame: &Value) -> i64 {
    frame["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {frame}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_route_answers_the_envelope_or_empty_403_and_404() {
    let app = TestApp::spawn().await;
    let customer = app.user("customer1").await;
    let (status, body) = auth(&app, "customer1", "password123").await;
    assert_eq!(status, 200);
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["error"], Value::Null);
    assert_eq!(envelope["id"], customer.id);
    assert!(envelope["result"]["token"].is_string());
    assert_eq!(
        auth(&app, "customer1", "wrong-password").await,
        (403, String::new())
    );
    assert_eq!(
        auth(&app, "nobody", "password123").await,
        (403, String::new())
    );
    for bad in [
        json!({"user": "customer1"}),
        json!({"user_name": 5, "password": "x"}),
        json!([1]),
    ] {
        let response = app
            .http
            .post(app.url("/v1/auth/"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{bad}");
        assert_eq!(response.text().await.unwrap(), "");
    }
    let raw = app
        .http
        .post(app.url("/v1/auth/"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_session_with_every_error_code() {
    let app = TestApp::spawn().await;
    app.user("customer1").await;
    let token = token(&app, "customer1", "password123").await;
    let mut socket = app.ws("/v1/ws/").await;
    assert_eq!(
        error_code(&call(&mut socket, "message.send", json!(["too early"]), 1).await),
        3
    );
    let hello = call(&mut socket, "message.auth", json!([token]), 2).await;
    assert_eq!(
        hello,
        json!({"error": null, "result": {"messages": null}, "id": 2})
    );
    let sent = call(
        &mut socket,
        "message.send",
        json!(["Message from Client"]),
        3,
    )
    .await;
    assert_eq!(sent["error"], Value::Null);
    let message = &sent["result"]["message"];
    assert_eq!(message["message_text"], "Message from Client");
    assert_eq!(message["invader_name"], "");
    assert_eq!(message["is_from_support"], false);
    assert!(message["created"].as_i64().unwrap() > 1_700_000_000);
    assert!(message["message_id"].is_i64());
    for (params, code) in [
        (json!([]), 1),
        (json!([5]), 1),
        (json!([""]), 1),
        (json!(["a", "b"]), 1),
        (json!("text"), 1),
    ] {
        assert_eq!(
            error_code(&call(&mut socket, "message.send", params.clone(), 4).await),
            code,
            "{params}"
        );
    }
    assert_eq!(
        error_code(&call(&mut socket, "message.fly", json!([]), 5).await),
        2
    );
    assert_eq!(
        error_code(&call(&mut socket, "message.operatorSend", json!(["x"]), 6).await),
        3
    );
    socket.send_text("{broken").await;
    assert_eq!(error_code(&socket.recv_json().await), 1);
    // The history comes back on the next connection, oldest first.
    let mut again = app.ws("/v1/ws/").await;
    let hello = call(&mut again, "message.auth", json!([token]), 1).await;
    assert_eq!(
        hello["result"]["messages"][0]["message_text"],
        "Message from Client"
    );
    // A bad token is told "Not authorized." (a pasted `<token>` is not met with silence),
    // then the socket closes.
    let mut refused = app.ws("/v1/ws/").await;
    refused
        .send_json(json!({"method": "message.auth", "params": ["<token>"], "id": 1}))
        .await;
    let (frames, close) = refused.recv_close().await;
    assert_eq!(
        frames,
        vec![json!({"error": {"code": 3, "message": "Not authorized."}, "result": null, "id": 1})]
    );
    assert_eq!(u16::from(close.unwrap().code), 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_every_customer_and_their_answers_reach_customers_on_another_instance() {
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let ann = one.user("ann").await;
    one.user("bob").await;
    let operator_password = create_operator(&one, "operator1");
    let op_token = token(&one, "operator1", &operator_password).await;
    let ann_token = token(&one, "ann", "password123").await;
    let bob_token = token(&one, "bob", "password123").await;

    // An unbound operator on instance one; customers on instance two.
    let mut op = one.ws("/v1/ws/").await;
    assert_eq!(
        call(&mut op, "message.auth", json!([op_token]), 1).await["result"]["messages"],
        Value::Null
    );
    let mut ann_socket = two.ws("/v1/ws/").await;
    call(&mut ann_socket, "message.auth", json!([ann_token]), 1).await;
    let mut bob_socket = two.ws("/v1/ws/").await;
    call(&mut bob_socket, "message.auth", json!([bob_token]), 1).await;

    call(
        &mut ann_socket,
        "message.send",
        json!(["ann needs help"]),
        2,
    )
    .await;
    call(&mut bob_socket, "message.send", json!(["bob too"]), 2).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let push = op.recv_json().await;
        assert_eq!(push["error"], Value::Null);
        assert_eq!(
            push["id"], push["result"]["message"]["message_id"],
            "pushes carry the message id"
        );
        seen.push((
            push["result"]["message"]["message_text"]
                .as_str()
                .unwrap()
                .to_owned(),
            push["result"]["message"]["user_id"].as_i64().unwrap(),
        ));
    }
    seen.sort();
    assert_eq!(seen[0].0, "ann needs help");
    assert_eq!(seen[0].1, ann.id);
    assert_eq!(seen[1].0, "bob too");

    // The operator answers ann by id; ann (on the other instance) gets the push, bob doesn't.
    let answer = call(
        &mut op,
        "message.operatorSend",
        json!(["Message from Operator", ann.id]),
        3,
    )
    .await;
    assert_eq!(answer["result"]["message"]["is_from_support"], true);
    let push = ann_socket.recv_json().await;
    let message = &push["result"]["message"];
    assert_eq!(
        (
            message["message_text"].as_str(),
            message["invader_name"].as_str(),
            message["is_from_support"].as_bool()
        ),
        (Some("Message from Operator"), Some("operator1"), Some(true))
    );
    bob_socket.expect_silence(200).await;
    // Unbound without a customer id: wrong params.
    assert_eq!(
        error_code(&call(&mut op, "message.operatorSend", json!(["to whom?"]), 4).await),
        1
    );

    // A bound operator sees that customer's history and answers without naming them.
    let mut bound = two.ws("/v1/ws/").await;
    let hello = call(
        &mut bound,
        "message.auth",
        json!([op_token, ann.id.to_string()]),
        1,
    )
    .await;
    let texts: Vec<&str> = hello["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["ann needs help", "Message from Operator"]);
    call(
        &mut bound,
        "message.operatorSend",
        json!(["bound answer"]),
        2,
    )
    .await;
    assert_eq!(
        ann_socket.recv_json().await["result"]["message"]["message_text"],
        "bound answer"
    );
    // Customers may not act as operators over the auth binding either.
    let mut fake = one.ws("/v1/ws/").await;
    let hello = call(&mut fake, "message.auth", json!([bob_token, ann.id]), 1).await;
    assert_eq!(
        hello["result"]["messages"][0]["message_text"], "bob too",
        "a customer's socket is their own chat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_other_tab_gets_the_message_and_unknown_customers_are_code_1() {
    let app = TestApp::spawn().await;
    app.user("customer1").await;
    let password = create_operator(&app, "operator1");
    let op_token = token(&app, "operator1", &password).await;
    let token = token(&app, "customer1", "password123").await;
    let mut tab1 = app.ws("/v1/ws/").await;
    call(&mut tab1, "message.auth", json!([token]), 1).await;
    let mut tab2 = app.ws("/v1/ws/").await;
    call(&mut tab2, "message.auth", json!([token]), 1).await;
    call(&mut tab1, "message.send", json!(["from tab 1"]), 2).await;
    assert_eq!(
        tab2.recv_json().await["result"]["message"]["message_text"],
        "from tab 1"
    );
    tab1.expect_silence(200).await;
    let mut op = app.ws("/v1/ws/").await;
    call(&mut op, "message.auth", json!([op_token]), 1).await;
    assert_eq!(
        error_code(
            &call(
                &mut op,
                "message.operatorSend",
                json!(["hello?", 999999]),
                2
            )
            .await
        ),
        1
    );
    // Before auth, any other method is code 3 whatever its params.
    let mut early = app.ws("/v1/ws/").await;
    early
        .send_json(json!({"method": "message.send", "params": "oops", "id": 9}))
        .await;
    assert_eq!(error_code(&early.recv_json().await), 3);
}
