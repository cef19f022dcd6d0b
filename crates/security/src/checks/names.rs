//! One canonical username: a second account cannot take a name that is the same one in another
//! case (word-final Σ included) or that looks like an existing or reserved one, and every lookup
//! on every door finds the user by any spelling of the same name.

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::json;

use crate::Target;
use crate::client::{self, Auth, Http, PASSWORD, register, register_as, urlencode};

async fn whoami(http: &Http, token: &str) -> Result<i64> {
    let resp = http.get("/api/v1/users/me", Auth::Bearer(token)).await?;
    ensure!(resp.status == 200, "/users/me: {}", resp.brief());
    Ok(resp.json()["id"].as_i64().unwrap_or(-1))
}

fn email(name: &str, n: u32) -> String {
    format!(
        "{}{n}@example.com",
        urlencode(&name.to_lowercase()).replace('%', "x")
    )
}

/// `ΛΟΓΟΣ` and `λογος` are the same name: the second registration is 409, and logging in by
/// either spelling gives the first account (never another's). `ΟΔΟΣ` logs in by its own name.
pub async fn final_sigma_names_are_one_account(t: &Target) -> Result<()> {
    let http = &t.main;
    let upper = t.name("ΛΟΓΟΣ");
    let first = register(http, &upper).await?;
    let lower = t.name("λογος");
    let second = register_as(http, &lower, &email(&lower, 2)).await?;
    let login = |name: String| async move { client::login(http, &name).await };
    ensure!(
        second.status == 409 && second.json()["code"] == "conflict",
        "{lower} registered beside {upper}: {}",
        second.brief()
    );
    for spelling in [
        upper.clone(),
        lower.clone(),
        t.name("λογοσ"),
        t.name("ΛΟΓΟς"),
    ] {
        let (access, _) = login(spelling.clone()).await?;
        let id = whoami(http, &access).await?;
        ensure!(
            id == first.id,
            "login as {spelling} gave user {id}, not {}",
            first.id
        );
    }
    let odos = t.name("ΟΔΟΣ");
    let user = register(http, &odos).await?;
    for spelling in [odos.clone(), t.name("οδος"), t.name("Οδος")] {
        let (access, _) = login(spelling.clone()).await?;
        ensure!(
            whoami(http, &access).await? == user.id,
            "login as {spelling}"
        );
    }
    Ok(())
}

/// Lookalikes (Unicode TR39 confusables, other widths, other cases) of a reserved name
/// (`system`, `error`) or of an existing name are refused with 409 in each door's format:
/// native JSON, door 000 plain text, door 004 plain text with its own wording.
pub async fn confusable_names_are_refused(t: &Target) -> Result<()> {
    let http = &t.main;
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for name in [
        "ｓｙｓｔｅｍ",
        "ѕуѕтем",
        "Systеm",
        "SYSTEM",
        "systern",
        "еrror",
        "ERRОR",
    ] {
        let resp = register_as(http, name, &email(name, next())).await?;
        ensure!(
            resp.status == 409 && resp.json()["code"] == "conflict",
            "native registration of {name:?}: {}",
            resp.brief()
        );
    }
    let original = t.name("paypal");
    register(http, &original).await?;
    for name in [
        t.name("pаypal"),
        t.name("PAYPAL"),
        t.name("paypa1"),
        t.name("ＰａｙＰａｌ"),
    ] {
        let resp = register_as(http, &name, &email(&name, next())).await?;
        ensure!(
            resp.status == 409 && resp.json()["code"] == "conflict",
            "native registration of {name:?} beside {original:?}: {}",
            resp.brief()
        );
    }
    for name in [t.name("раураl"), "Ѕystem".to_owned()] {
        let resp = http
            .auth_call(
                Method::POST,
                "/auth/sign-up",
                &json!({"username": name, "email": email(&name, next()), "password": PASSWORD}),
            )
            .await?;
        ensure!(
            resp.status == 409 && resp.content_type.starts_with("text/plain"),
            "door 000 sign-up of {name:?}: {} ({})",
            resp.brief(),
            resp.content_type
        );
    }
    for name in [t.name("paypa1"), "systern".to_owned(), "SYSTEM".to_owned()] {
        let resp = http
            .auth_call(
                Method::POST,
                "/register",
                &json!({"username": name, "email": email(&name, next()), "password": PASSWORD}),
            )
            .await?;
        ensure!(
            resp.status == 409 && resp.text == "user with same name or email already exists\n",
            "door 004 register of {name:?}: {}",
            resp.brief()
        );
    }
    // A rename to a lookalike is refused the same way.
    let renamer = register(http, &t.name("renamer")).await?;
    let resp = http
        .call(
            Method::PATCH,
            "/api/v1/users/me",
            Auth::Bearer(&renamer.access),
            Some(&json!({"username": t.name("pаypal")}).to_string()),
            &[],
        )
        .await?;
    ensure!(
        resp.status == 409,
        "rename to a lookalike: {}",
        resp.brief()
    );
    Ok(())
}

/// A user registered as `ΝΙΚΟΣ` is found as `νικος`, `Νικος`, `νικοσ` by every lookup: the native
/// login, door 000's sign-in and `?username=`, door 003's auth, door 002's add-friend,
/// chat-friend and `/ws/user/<name>/`, and the user search.
pub async fn every_lookup_uses_the_canonical_name(t: &Target) -> Result<()> {
    let http = &t.main;
    let name = t.name("ΝΙΚΟΣ");
    let nikos = register(http, &name).await?;
    let q = register(http, &t.name("seeker")).await?;
    let (access, _) = client::login(http, &t.name("νικος")).await?;
    ensure!(
        whoami(http, &access).await? == nikos.id,
        "native login by another case"
    );
    let resp = http
        .auth_call(
            Method::POST,
            "/auth/sign-in",
            &json!({"username": t.name("Νικος"), "password": PASSWORD}),
        )
        .await?;
    ensure!(
        resp.status == 200,
        "door 000 sign-in by another case: {}",
        resp.brief()
    );
    let token = resp.json()["token"].as_str().unwrap_or_default().to_owned();
    ensure!(
        whoami(http, &token).await? == nikos.id,
        "door 000 sign-in gave someone else"
    );
    let resp = http
        .auth_call(
            Method::POST,
            "/v1/auth/",
            &json!({"user_name": t.name("νικοσ"), "password": PASSWORD}),
        )
        .await?;
    ensure!(
        resp.status == 200 && resp.json()["id"] == nikos.id,
        "door 003 auth by another case: {}",
        resp.brief()
    );
    let spelled = urlencode(&t.name("νικος"));
    let resp = http
        .post(
            &format!("/api/v1/chat/add-friend/{spelled}"),
            Auth::Bearer(&q.access),
            &json!({}),
        )
        .await?;
    ensure!(
        resp.status == 200,
        "door 002 add-friend by another case: {}",
        resp.brief()
    );
    let friends = http
        .get("/api/v1/chat/list-friends", Auth::Bearer(&q.access))
        .await?;
    ensure!(
        friends.json() == json!([{"username": name}]),
        "friends: {}",
        friends.brief()
    );
    let resp = http
        .get(
            &format!("/api/v1/chat/chat-friend/{}", urlencode(&t.name("Νικος"))),
            Auth::Bearer(&q.access),
        )
        .await?;
    ensure!(
        resp.status == 200,
        "door 002 chat-friend by another case: {}",
        resp.brief()
    );
    let mut ws = http
        .ws(&format!("/ws/user/{spelled}/?token={}", q.access))
        .await?;
    let (frames, ended) = ws.collect(500).await;
    ensure!(
        ended == client::Ended::Open && frames.is_empty(),
        "door 002 /ws/user/ by another case: {frames:?} {ended:?}"
    );
    let q0 = client::door000_token(http, &q).await?;
    let status = http
        .ws_status(&format!("/chat?username={spelled}&token={q0}"))
        .await?;
    ensure!(
        status == 101,
        "door 000 /chat?username= by another case: {status}"
    );
    let resp = http
        .get(
            &format!("/api/v1/users?search={}", urlencode(&t.name("νικ"))),
            Auth::Bearer(&q.access),
        )
        .await?;
    let found = resp
        .json()
        .as_array()
        .is_some_and(|l| l.iter().any(|u| u["id"] == nikos.id));
    ensure!(found, "search by another case: {}", resp.brief());
    Ok(())
}
