//! The web client (`crates/api/web/`): plain ES modules embedded in the binary (rust-embed)
//! and served by the server itself, so `make run` needs no Node.js and the client works offline.
//!
//! - `GET /` → `index.html`, `Cache-Control: no-cache`, with a strict Content-Security-Policy
//!   (scripts, styles, images and connections from this origin only; no inline code, no frames).
//! - `GET /app/{version}/{file}` → an asset. `version` is the first 12 hex digits of a SHA-256
//!   over every embedded file, so any change to any file gives every asset a new URL: assets are
//!   `Cache-Control: public, max-age=31536000, immutable`, and the modules import each other by
//!   relative path unchanged. A request for another version (a page loaded from an instance of
//!   another release during a rolling upgrade) gets the current file with `no-store`.
//!
//! Both are gzip-compressed when the browser accepts it.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, middleware::Compress, web};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// The Content-Security-Policy of the page (W3C CSP Level 3: `'self'` also covers `ws:`/`wss:`
/// to the same host, which the gateway socket needs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset version and the page that names it.
struct Index {
    version: String,
    html: String,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    let mut hasher = Sha256::new();
    for name in &names {
        if let Some(file) = Assets::get(name) {
            hasher.update(name.as_bytes());
            hasher.update(file.metadata.sha256_hash());
        }
    }
    let version: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let html = Assets::get("index.html")
        .map(|f| String::from_utf8_lossy(&f.data).replace("{{version}}", &version))
        .unwrap_or_default();
    Index { version, html }
});

/// The current asset version (12 hex digits), as it appears in `/app/{version}/…` URLs.
pub fn version() -> &'static str {
    &INDEX.version
}

/// Mounts `/` and `/app/{version}/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .wrap(Compress::default())
            .route(web::get().to(index)),
    )
    .service(
        web::resource("/app/{version}/{file:.*}")
            .wrap(Compress::default())
            .route(web::get().to(asset)),
    );
}

fn page_headers(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn index() -> HttpResponse {
    let mut response = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX.html.clone());
    page_headers(&mut response);
    response
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" | "webmanifest" => "application/manifest+json",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (version, file) = path.into_inner();
    let Some(found) = (file != "index.html").then(|| Assets::get(&file)).flatten() else {
        return crate::doors::not_found(req).await;
    };
    let cache = if version == INDEX.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    let mut response = HttpResponse::Ok()
        .content_type(content_type(&file))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(found.data.into_owned());
    page_headers(&mut response);
    response
}
