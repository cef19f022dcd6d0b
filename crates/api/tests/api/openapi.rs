//! The OpenAPI document stays in step with the routes: every native and door-002 REST route is
//! in it, bearer auth is declared, Swagger UI is served, and the document matches its committed
//! snapshots — `tests/api/snapshots/api__openapi__openapi.snap` (insta: `cargo insta review` shows the
//! diff) and the published copy `docs/openapi.json` (refresh both with `UPDATE_OPENAPI=1
//! INSTA_UPDATE=always cargo test -p chat-api --test api openapi::`).

use chat_test_support::TestApp;
use serde_json::Value;

const ROUTES: [(&str, &str); 36] = [
    ("post", "/api/v1/auth/register/"),
    ("post", "/api/v1/auth/login/"),
    ("post", "/api/v1/auth/login/refresh/"),
    ("post", "/api/v1/auth/logout/"),
    ("post", "/api/v1/auth/logout-all/"),
    ("get", "/api/v1/users/me"),
    ("patch", "/api/v1/users/me"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/chats"),
    ("post", "/api/v1/chats/direct"),
    ("get", "/api/v1/chats/groups"),
    ("post", "/api/v1/chats/groups"),
    ("patch", "/api/v1/chats/{id}"),
    ("post", "/api/v1/chats/{id}/join"),
    ("post", "/api/v1/chats/{id}/leave"),
    ("get", "/api/v1/chats/{id}/messages"),
    ("post", "/api/v1/chats/{id}/messages"),
    ("patch", "/api/v1/chats/{id}/messages/{seq}"),
    ("delete", "/api/v1/chats/{id}/messages/{seq}"),
    ("post", "/api/v1/chats/{id}/read"),
    ("get", "/api/v1/chats/{id}/members"),
    ("post", "/api/v1/chats/{id}/members"),
    ("delete", "/api/v1/chats/{id}/members/{user_id}"),
    ("patch", "/api/v1/chats/{id}/members/{user_id}"),
    ("get", "/api/v1/chat/list-friends"),
    ("post", "/api/v1/chat/add-friend/{username}"),
    ("post", "/api/v1/chat/remove-friend/{username}"),
    ("post", "/api/v1/chat/create-group"),
    ("post", "/api/v1/chat/join-group/{name}"),
    ("post", "/api/v1/chat/leave-group/{name}"),
    ("post", "/api/v1/chat/delete-group/{name}"),
    ("get", "/api/v1/chat/chat-friend/{username}"),
    ("get", "/api/v1/chat/chat-group/{name}"),
    ("get", "/api/v1/ws"),
    ("get", "/ws/group/{name}/"),
    ("get", "/ws/user/{username}/"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_every_route_and_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "a documented route the test does not know"
    );
    // Code generators name a function after each operationId: they must be unique.
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let repeated: Vec<_> = ids
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(repeated.is_empty(), "operationIds used twice: {repeated:?}");
    // Each operation: a one-sentence summary in words (no method or path), and the statuses
    // every route of its kind can answer.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(
                summary.ends_with('.') && !summary.contains('`') && !summary.contains('\n'),
                "{method} {path}: summary {summary:?}"
            );
            let statuses = op["responses"].as_object().unwrap();
            let has = |status: &str| statuses.contains_key(status);
            if op["tags"][0] == "websocket" {
                assert!(has("101") && has("400"), "{method} {path}");
                continue;
            }
            assert!(has("503"), "{method} {path} lacks 503");
            if op["security"].is_array() {
                assert!(has("401"), "{method} {path} lacks 401");
            }
            if op["requestBody"].is_object() {
                for status in ["400", "413", "415"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
            }
        }
    }
    // Fields the server requires are required in the document (it once made every field
    // optional and nullable, so generated clients sent sends without text).
    let send = &doc["components"]["schemas"]["SendRequest"];
    assert_eq!(send["required"], serde_json::json!(["text"]));
    assert_eq!(send["properties"]["text"]["type"], "string");
    assert_eq!(send["properties"]["text"]["maxLength"], 4096);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["MessageView"].is_object());
    // Every route actually answers (not 404) — the document describes served routes.
    for (method, path) in ROUTES {
        let url = app.url(
            &path
                .replace("{id}", "1")
                .replace("{seq}", "1")
                .replace("{user_id}", "1")
                .replace("{username}", "x")
                .replace("{name}", "x"),
        );
        let response = app
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            404,
            "{method} {path} is documented but not served"
        );
    }

    // The reviewable diff of any change (`cargo insta review`), then the published copy.
    insta::assert_json_snapshot!("openapi", doc);
    let snapshot = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(snapshot, &pretty).unwrap();
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(snapshot).expect("docs/openapi.json: run with UPDATE_OPENAPI=1"),
    )
    .unwrap();
    assert_eq!(
        doc, committed,
        "the API document changed: review it and refresh docs/openapi.json (UPDATE_OPENAPI=1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_offline() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text().await.unwrap().contains("swagger"),
        "the Swagger UI page"
    );
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = redirect.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    let config = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert!(
        config
            .text()
            .await
            .unwrap()
            .contains("/api-docs/openapi.json")
    );
}

/// The web client is served at `/` with a strict CSP; its assets live under a content-hashed
/// version and are cached for good, and a request for another version is never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_is_served_with_csp_and_immutable_assets() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/"), "the page links to the API docs");
    let start = html.find("/app/").expect("asset URL") + 5;
    let version = &html[start..start + 12];
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    let js = app
        .http
        .get(app.url(&format!("/app/{version}/state.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert!(header(&js, "cache-control").contains("immutable"));
    assert!(js.text().await.unwrap().contains("export class Timeline"));
    let stale = app
        .http
        .get(app.url("/app/000000000000/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(header(&stale, "cache-control"), "no-store");
    let missing = app
        .http
        .get(app.url(&format!("/app/{version}/nothing.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// `GET /api/v1/chats/groups` lists public groups only, filtered by part of the title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_groups_can_be_browsed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let token = Some(alice.access.as_str());
    let body =
        |title: &str, private: bool| serde_json::json!({"title": title, "is_private": private});
    assert_eq!(
        app.post("/api/v1/chats/groups", token, body("Rust fans", false))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post("/api/v1/chats/groups", token, body("Rust secret", true))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post("/api/v1/chats/groups", token, body("Cooking", false))
            .await
            .0,
        201
    );
    let (status, found) = app
        .get(
            "/api/v1/chats/groups?search=rust",
            Some(bob.access.as_str()),
        )
        .await;
    assert_eq!(status, 200);
    let titles: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Rust fans"]);
    let (_, all) = app
        .get("/api/v1/chats/groups", Some(bob.access.as_str()))
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    assert_eq!(app.get("/api/v1/chats/groups?limit=0", token).await.0, 400);
    assert_eq!(app.get("/api/v1/chats/groups", None).await.0, 401);
}
