//! Accounts: registration through the native API and a token from each door's login.

use anyhow::{Result, anyhow, bail};
use reqwest::Method;
use serde_json::json;

use super::{Http, PASSWORD, Resp};

/// An account with a token of every kind the doors issue.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Username, as registered.
    pub username: String,
    /// Email.
    pub email: String,
    /// Native access token.
    pub access: String,
    /// Native refresh token.
    pub refresh: String,
}

/// Registers `username` through the native API (email `<username>@<domain>`) and logs in.
pub async fn register(http: &Http, username: &str) -> Result<User> {
    let email = format!("{}@example.com", username.to_lowercase());
    let resp = register_as(http, username, &email).await?;
    if resp.status != 201 {
        bail!("register {username:?}: {}", resp.brief());
    }
    let id = resp.json()["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("register {username:?}: no id in {}", resp.brief()))?;
    let (access, refresh) = login(http, username).await?;
    Ok(User {
        id,
        username: username.to_owned(),
        email,
        access,
        refresh,
    })
}

/// `POST /api/v1/auth/register/` for `username` and `email`, as it answers.
pub async fn register_as(http: &Http, username: &str, email: &str) -> Result<Resp> {
    http.auth_call(
        Method::POST,
        "/api/v1/auth/register/",
        &json!({"username": username, "email": email, "password": PASSWORD, "password2": PASSWORD}),
    )
    .await
}

/// A fresh native session of `login` (a username or an email): `(access, refresh)`.
pub async fn login(http: &Http, login: &str) -> Result<(String, String)> {
    let resp = http
        .auth_call(
            Method::POST,
            "/api/v1/auth/login/",
            &json!({"username": login, "password": PASSWORD}),
        )
        .await?;
    if resp.status != 200 {
        bail!("login {login:?}: {}", resp.brief());
    }
    let body = resp.json();
    match (body["access"].as_str(), body["refresh"].as_str()) {
        (Some(a), Some(r)) => Ok((a.to_owned(), r.to_owned())),
        _ => bail!("login {login:?}: {}", resp.brief()),
    }
}

/// Door 004's token (`PUT /login {"email","password"}`).
pub async fn door004_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::PUT,
            "/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await?;
    token_of(resp, "door 004 login")
}

/// Door 000's token (`POST /auth/sign-in {"username","password"}`).
pub async fn door000_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::POST,
            "/auth/sign-in",
            &json!({"username": user.username, "password": PASSWORD}),
        )
        .await?;
    token_of(resp, "door 000 sign-in")
}

/// Door 003's token (`POST /v1/auth/ {"user_name","password"}`).
pub async fn door003_token(http: &Http, user: &User) -> Result<String> {
    let resp = http
        .auth_call(
            Method::POST,
            "/v1/auth/",
            &json!({"user_name": user.username, "password": PASSWORD}),
        )
        .await?;
    if resp.status != 200 {
        bail!("door 003 auth: {}", resp.brief());
    }
    resp.json()["result"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("door 003 auth: {}", resp.brief()))
}

fn token_of(resp: Resp, what: &str) -> Result<String> {
    if resp.status != 200 {
        bail!("{what}: {}", resp.brief());
    }
    resp.json()["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: {}", resp.brief()))
}
