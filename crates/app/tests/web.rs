//! The embedded browser client: served at `/` and `/assets/{file}` from the
//! binary, each file with its content type and a strict Content Security
//! Policy; anything else under `/assets/` is a 404 in the error envelope.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap, X_CONTENT_TYPE_OPTIONS,
};
use common::TestApp;

fn header<'a>(headers: &'a HeaderMap, name: &actix_web::http::header::HeaderName) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[actix_web::test]
async fn the_page_and_every_file_it_loads_are_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let (status, headers, page) = app.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, &CONTENT_TYPE), "text/html; charset=utf-8");
    let policy = header(&headers, &CONTENT_SECURITY_POLICY);
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        !policy.contains("ws:") && !policy.contains("wss:") && !policy.contains('*'),
        "connections to other hosts are allowed: {policy}"
    );
    assert_eq!(header(&headers, &X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(page.contains(r#"<script type="module" src="/assets/app.js">"#));
    assert!(page.contains(r#"href="/assets/style.css""#));

    let (_, _, app_js) = app.get_text("/assets/app.js").await;
    for module in ["./api.js", "./socket.js", "./text.js"] {
        assert!(app_js.contains(module), "app.js imports {module}");
    }
    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("socket.js", "text/javascript; charset=utf-8"),
        ("text.js", "text/javascript; charset=utf-8"),
        ("account.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) = app.get_text(&format!("/assets/{file}")).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(header(&headers, &CONTENT_TYPE), content_type, "{file}");
        assert!(headers.contains_key(CONTENT_SECURITY_POLICY), "{file}");
        assert!(!body.is_empty(), "{file}");
    }
}

#[actix_web::test]
async fn unknown_files_and_paths_out_of_the_assets_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/assets/missing.js",
        "/assets/index.html.bak",
        "/assets/..%2FCargo.toml",
        "/assets/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/assets/",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.error_code(), "not_found", "{path}");
    }
}
