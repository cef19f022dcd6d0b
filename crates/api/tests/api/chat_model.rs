//! The chat model over the native REST routes: who may join, invite, remove, promote and hand
//! over groups; renames and user search.

use chat_test_support::{TestApp, TestUser};
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    user: &TestUser,
    body: Value,
) -> (u16, Value) {
    let response = app
        .http
        .request(method, app.url(path))
        .bearer_auth(&user.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn roles(app: &TestApp, chat: i64, viewer: &TestUser) -> Vec<(String, String)> {
    let (status, members) = app
        .get(
            &format!("/api/v1/chats/{chat}/members"),
            Some(&viewer.access),
        )
        .await;
    assert_eq!(status, 200, "{members}");
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_permission_matrix_in_public_and_private_groups() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let extra = app.user("extra").await;

    for is_private in [false, true] {
        let (_, chat) = app
            .post(
                "/api/v1/chats/groups",
                Some(&owner.access),
                json!({"title": "G", "is_private": is_private}),
            )
            .await;
        let chat = chat["id"].as_i64().unwrap();
        let members = format!("/api/v1/chats/{chat}/members");
        let join = format!("/api/v1/chats/{chat}/join");

        // Joining by oneself: public yes, private no (invite only).
        let (status, _) = app.post(&join, Some(&outsider.access), json!({})).await;
        assert_eq!(
            status,
            if is_private { 403 } else { 200 },
            "join, private={is_private}"
        );
        if !is_private {
            app.post(
                &format!("/api/v1/chats/{chat}/leave"),
                Some(&outsider.access),
                json!({}),
            )
            .await;
        }

        // Inviting: the owner may; plain members and outsiders may not.
        assert_eq!(
            app.post(&members, Some(&owner.access), json!({"user_id": admin.id}))
                .await
                .0,
            201
        );
        assert_eq!(
            app.post(&members, Some(&owner.access), json!({"user_id": member.id}))
                .await
                .0,
            201
        );
        assert_eq!(
            app.post(&members, Some(&owner.access), json!({"user_id": member.id}))
                .await
                .0,
            409
        );
        assert_eq!(
            app.post(&members, Some(&member.access), json!({"user_id": extra.id}))
                .await
                .0,
            403
        );
        assert_eq!(
            app.post(
                &members,
                Some(&outsider.access),
                json!({"user_id": extra.id})
            )
            .await
            .0,
            403
        );
        assert_eq!(
            app.post(&members, Some(&owner.access), json!({"user_id": 999999}))
                .await
                .0,
            404
        );

        // Promoting: only the owner.
        let role = |user: &TestUser| format!("/api/v1/chats/{chat}/members/{}", user.id);
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&member),
                &admin,
                json!({"role": "admin"})
            )
            .await
            .0,
            403
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&admin),
                &owner,
                json!({"role": "admin"})
            )
            .await
            .0,
            204
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&admin),
                &owner,
                json!({"role": "king"})
            )
            .await
            .0,
            400
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&owner),
                &owner,
                json!({"role": "member"})
            )
            .await
            .0,
            400
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&outsider),
                &owner,
                json!({"role": "admin"})
            )
            .await
            .0,
            404
        );

        // An admin invites and removes plain members, but not the owner or admins.
        assert_eq!(
            app.post(&members, Some(&admin.access), json!({"user_id": extra.id}))
                .await
                .0,
            201
        );
        assert_eq!(
            call(&app, Method::DELETE, &role(&extra), &admin, json!({}))
                .await
                .0,
            204
        );
        assert_eq!(
            call(&app, Method::DELETE, &role(&owner), &admin, json!({}))
                .await
                .0,
            403
        );
        assert_eq!(
            call(&app, Method::DELETE, &role(&admin), &member, json!({}))
                .await
                .0,
            403
        );
        assert_eq!(
            call(&app, Method::DELETE, &role(&owner), &owner, json!({}))
                .await
                .0,
            403
        );
        assert_eq!(
            call(&app, Method::DELETE, &role(&extra), &owner, json!({}))
                .await
                .0,
            404
        );

        // Members see the list; outsiders don't.
        assert_eq!(
            roles(&app, chat, &member).await,
            vec![
                ("owner".into(), "owner".into()),
                ("admin".into(), "admin".into()),
                ("member".into(), "member".into())
            ]
        );
        assert_eq!(app.get(&members, Some(&outsider.access)).await.0, 403);

        // Handing over ownership: the old owner becomes an admin; the new one may delete.
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &role(&member),
                &owner,
                json!({"role": "owner"})
            )
            .await
            .0,
            204
        );
        let now = roles(&app, chat, &member).await;
        assert!(now.contains(&("member".into(), "owner".into())), "{now:?}");
        assert!(now.contains(&("owner".into(), "admin".into())), "{now:?}");
        assert_eq!(
            call(&app, Method::DELETE, &role(&member), &owner, json!({}))
                .await
                .0,
            403
        );
        assert_eq!(
            app.post(
                &format!("/api/v1/chats/{chat}/leave"),
                Some(&member.access),
                json!({})
            )
            .await
            .0,
            200
        );
        // The longest-standing admin took over.
        let after = roles(&app, chat, &owner).await;
        assert!(
            after.contains(&("owner".into(), "owner".into())),
            "{after:?}"
        );

        // History shows who did what, as system lines.
        let (_, page) = app
            .get(
                &format!("/api/v1/chats/{chat}/messages?limit=200"),
                Some(&owner.access),
            )
            .await;
        let lines: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert!(lines.contains(&"owner added admin"), "{lines:?}");
        assert!(lines.contains(&"admin removed extra"), "{lines:?}");
        assert!(lines.contains(&"member left the group"), "{lines:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_shows_everywhere_and_search_finds_by_prefix() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.user("alina").await;
    app.user("albert").await;
    let (status, found) = app.get("/api/v1/users?search=AL", Some(&bob.access)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", "alina", "albert"]);
    let (_, found) = app
        .get("/api/v1/users?search=al%25&limit=5", Some(&bob.access))
        .await;
    assert_eq!(found, json!([]), "% is matched literally");
    assert_eq!(
        app.get("/api/v1/users?search=a&limit=0", Some(&bob.access))
            .await
            .0,
        400
    );
    assert_eq!(app.get("/api/v1/users", Some(&bob.access)).await.0, 400);

    let chat = {
        let (_, chat) = app
            .post(
                "/api/v1/chats/direct",
                Some(&alice.access),
                json!({"user_id": bob.id}),
            )
            .await;
        chat["id"].as_i64().unwrap()
    };
    app.send(&alice, chat, "before").await;
    let (status, me) = call(
        &app,
        Method::PATCH,
        "/api/v1/users/me",
        &alice,
        json!({"username": "alicia"}),
    )
    .await;
    assert_eq!((status, me["username"].clone()), (200, json!("alicia")));
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            "/api/v1/users/me",
            &alice,
            json!({"username": "BOB"})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            "/api/v1/users/me",
            &alice,
            json!({"username": "x"})
        )
        .await
        .0,
        400
    );
    // The profile cache was invalidated: every read shows the new name.
    let (_, me) = app.get("/api/v1/users/me", Some(&alice.access)).await;
    assert_eq!(me["username"], "alicia");
    let (_, list) = app.get("/api/v1/chats", Some(&bob.access)).await;
    assert_eq!(list[0]["peer"]["username"], "alicia");
    let message = app.send(&alice, chat, "after").await;
    assert_eq!(message["author"]["username"], "alicia");
    let (status, _) = app
        .post(
            "/api/v1/auth/login/",
            None,
            json!({"username": "alicia", "password": "password123"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_by_the_heartbeat() {
    let env = chat_test_support::TestEnv::new().await;
    let settings = chat_api::Settings {
        ws_heartbeat_secs: 1,
        ws_client_timeout_secs: 2,
        ..env.settings()
    };
    let app = TestApp::spawn_with(env.clone(), settings).await;
    let alice = app.user("alice").await;
    let (mut silent, _) = app.gateway(&alice).await; // never reads again, so never answers a ping
    let state = &app.server.as_ref().unwrap().state;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
    let mut registered = true;
    while tokio::time::Instant::now() < deadline {
        if !chat_selectors::presence::is_online(&state.store, chat_domain::UserId(alice.id))
            .await
            .unwrap()
        {
            registered = false;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !registered,
        "the silent client is still online after its timeout"
    );
    let (_, close) = silent.recv_close().await;
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "heartbeat timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_chat_list_follows_every_write_on_any_instance() {
    use reqwest::Method;
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let (_, group) = one
        .post(
            "/api/v1/chats/groups",
            Some(&alice.access),
            json!({"title": "G"}),
        )
        .await;
    let chat = group["id"].as_i64().unwrap();
    one.post(
        &format!("/api/v1/chats/{chat}/members"),
        Some(&alice.access),
        json!({"user_id": bob.id}),
    )
    .await;
    let list = |app: &TestApp| {
        let app_base = app.base.clone();
        let token = bob.access.clone();
        async move {
            let response = reqwest::Client::new()
                .get(format!("{app_base}/api/v1/chats"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };

    let first = list(&one).await;
    assert_eq!(first[0]["last_message"]["text"], "alice added bob");
    assert_eq!(list(&one).await, first, "a cached read answers the same");
    // The list really is cached in Redis.
    let state = &one.server.as_ref().unwrap().state;
    let key = state.store.keys.chat_list(chat_domain::UserId(bob.id));
    let exists: bool = redis::AsyncCommands::exists(&mut state.store.redis(), &key)
        .await
        .unwrap();
    assert!(exists, "no cache entry at {key}");

    let sent = two.send(&alice, chat, "new").await;
    let now = list(&one).await;
    assert_eq!(
        (
            now[0]["last_message"]["text"].clone(),
            now[0]["unread_count"].clone()
        ),
        (json!("new"), json!(1))
    );
    let seq = sent["seq"].as_i64().unwrap();
    call(
        &two,
        Method::PATCH,
        &format!("/api/v1/chats/{chat}/messages/{seq}"),
        &alice,
        json!({"text": "edited"}),
    )
    .await;
    assert_eq!(list(&one).await[0]["last_message"]["text"], "edited");
    call(
        &two,
        Method::POST,
        &format!("/api/v1/chats/{chat}/read"),
        &bob,
        json!({"seq": seq}),
    )
    .await;
    assert_eq!(list(&one).await[0]["unread_count"], 0);
    call(
        &two,
        Method::DELETE,
        &format!("/api/v1/chats/{chat}/messages/{seq}"),
        &alice,
        json!({}),
    )
    .await;
    assert_eq!(list(&one).await[0]["last_message"]["deleted"], true);
    let (_, direct) = two
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    let now = list(&one).await;
    assert_eq!(
        now.as_array().unwrap().len(),
        2,
        "a new direct chat shows up"
    );
    assert_eq!(now[0]["id"], direct["id"]);
    call(
        &two,
        Method::POST,
        &format!("/api/v1/chats/{chat}/leave"),
        &bob,
        json!({}),
    )
    .await;
    assert_eq!(
        list(&one).await.as_array().unwrap().len(),
        1,
        "a left chat disappears"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_admins_rename_groups_and_members_see_it_live_and_in_their_lists() {
    use reqwest::Method;
    let one = TestApp::spawn().await;
    let two = one.spawn_peer().await;
    let alice = one.user("alice").await;
    let bob = one.user("bob").await;
    let carol = one.user("carol").await;
    let outsider = one.user("outsider").await;
    let chat = one.group(&alice, &[&bob, &carol]).await;
    let (mut bob_socket, _) = two.gateway(&bob).await;
    let list_title = |app: &TestApp, user: &TestUser| {
        let (base, token) = (app.base.clone(), user.access.clone());
        async move {
            let list: Value = reqwest::Client::new()
                .get(format!("{base}/api/v1/chats"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list.as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == chat)
                .unwrap()["title"]
                .clone()
        }
    };
    let before = list_title(&two, &bob).await; // now cached on instance two
    let path = format!("/api/v1/chats/{chat}");

    let (status, renamed) =
        call(&one, Method::PATCH, &path, &alice, json!({"title": "Team"})).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["title"], "Team");
    let line = bob_socket.recv_event("message.created").await;
    assert_eq!(line["chat_id"], chat);
    assert_eq!(line["message"]["kind"], "system");
    assert_eq!(line["message"]["text"], "alice renamed the group to “Team”");
    assert_ne!(before, "Team");
    assert_eq!(
        list_title(&two, &bob).await,
        "Team",
        "the cached list follows"
    );

    // The same title again writes nothing.
    let (status, _) = call(&one, Method::PATCH, &path, &alice, json!({"title": "Team"})).await;
    assert_eq!(status, 200);
    bob_socket.expect_silence(300).await;

    // An admin may; a plain member, an outsider, a bad title and a direct chat may not.
    let role = format!("/api/v1/chats/{chat}/members/{}", bob.id);
    let (status, _) = call(&one, Method::PATCH, &role, &alice, json!({"role": "admin"})).await;
    assert_eq!(status, 204);
    let (status, body) = call(&two, Method::PATCH, &path, &bob, json!({"title": "Bob's"})).await;
    assert_eq!((status, body["title"].clone()), (200, json!("Bob's")));
    for (who, body, expected) in [
        (&carol, json!({"title": "Carol's"}), 403),
        (&outsider, json!({"title": "Mine"}), 403),
        (&alice, json!({"title": "   "}), 400),
        (&alice, json!({"title": "x".repeat(129)}), 400),
        (&alice, json!({"title": 5}), 400),
        (&alice, json!({}), 400),
    ] {
        let (status, err) = call(&one, Method::PATCH, &path, who, body.clone()).await;
        assert_eq!(status, expected, "{} {body}: {err}", who.username);
        assert!(err["code"].is_string(), "{err}");
    }
    let (_, direct) = one
        .post(
            "/api/v1/chats/direct",
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    let direct_path = format!("/api/v1/chats/{}", direct["id"]);
    let (status, _) = call(
        &one,
        Method::PATCH,
        &direct_path,
        &alice,
        json!({"title": "Us"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &one,
        Method::PATCH,
        "/api/v1/chats/999999",
        &alice,
        json!({"title": "X"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        list_title(&one, &carol).await,
        "Bob's",
        "refusals changed nothing"
    );
}
