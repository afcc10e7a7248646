//! CONTRACT section 1: bad input gets the right status and the error
//! envelope, and the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use actix_web::http::StatusCode;
use common::{TestApp, digest};
use serde_json::json;

const JSON: Option<&str> = Some("application/json");

async fn assert_still_serving(app: &TestApp) {
    let health = app.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.data()["status"], "ok");
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    for body in [
        "{",
        "not json",
        r#"{"email": "a@b.co", "password": }"#,
        r#"{"email":"a@b.co","#,
    ] {
        let reply = app
            .send("POST", "/session/register", None, JSON, body)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error_code(), "malformed_json", "{body}");
    }
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn missing_fields_and_wrong_types_are_400() {
    let app = TestApp::spawn().await;
    let bodies = [
        json!({}),
        json!({ "email": "a@b.co" }),
        json!({ "password": digest("pw") }),
        json!({ "email": 42, "password": digest("pw") }),
        json!({ "email": "a@b.co", "password": ["x"] }),
        json!({ "email": null, "password": digest("pw") }),
        json!([]),
        json!("string"),
    ];
    for path in ["/session/register", "/session/authorize"] {
        for body in &bodies {
            let reply = app.post(path, body.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
            assert_eq!(reply.error_code(), "invalid_body", "{path} {body}");
        }
    }
    let reply = app
        .post("/session/refresh", json!({ "refresh_token": 7 }))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn a_password_that_is_not_64_hex_characters_is_400() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(65);
    let not_hex = "z".repeat(64);
    let plain = "hunter2".to_owned();
    let short = digest("pw")[..63].to_owned();
    for path in ["/session/register", "/session/authorize"] {
        for password in [&long, &not_hex, &plain, &short, &String::new()] {
            let reply = app
                .post(
                    path,
                    json!({ "email": "ok@example.com", "password": password }),
                )
                .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {password}");
            assert_eq!(reply.error_code(), "invalid_password");
        }
    }
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn an_invalid_email_is_400() {
    let app = TestApp::spawn().await;
    let too_long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
    for email in [
        "",
        "plainaddress",
        "@no-local.com",
        "two@@example.com",
        "a b@example.com",
        &too_long,
    ] {
        let reply = app
            .post(
                "/session/register",
                json!({ "email": email, "password": digest("pw") }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{email}");
        assert_eq!(reply.error_code(), "invalid_email");
    }
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let huge = format!(
        r#"{{"email":"{}@example.com","password":"x"}}"#,
        "a".repeat(1 << 20)
    );
    let reply = app
        .send("POST", "/session/register", None, JSON, huge)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let body = json!({ "email": "a@b.co", "password": digest("pw") }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = app
            .send(
                "POST",
                "/session/register",
                None,
                content_type,
                body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(reply.error_code(), "unsupported_media_type");
    }
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    let missing = app.get("/no/such/route", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");

    for (method, path) in [
        ("GET", "/session/register"),
        ("PUT", "/users/me"),
        ("PUT", "/health"),
    ] {
        let reply = app.send(method, path, None, None, "").await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.error_code(), "method_not_allowed");
    }
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn email_verify_without_its_token_is_400() {
    let app = TestApp::spawn().await;
    let reply = app.get("/session/emailVerify", None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_query");
}

#[actix_web::test]
async fn bearer_endpoints_without_a_valid_token_are_401_with_a_challenge() {
    let app = TestApp::spawn().await;
    let missing = app.get("/users/me", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.error_code(), "missing_token");
    assert_eq!(
        missing.headers.get("www-authenticate").unwrap(),
        r#"Bearer realm="p-chat""#
    );

    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer two tokens"] {
        let malformed = app.get_with_authorization("/users/me", header).await;
        assert_eq!(malformed.status, StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(malformed.error_code(), "invalid_token");
        assert!(malformed.headers.contains_key("www-authenticate"));
    }
    let garbage = app.get("/users/me", Some("garbage")).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.error_code(), "invalid_token");
    let challenge = garbage
        .headers
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[actix_web::test]
async fn an_invalid_display_name_is_400() {
    let app = TestApp::spawn().await;
    let tokens = app.logged_in_user("sam@example.com", "pw").await;
    for body in [
        json!({ "display_name": "" }),
        json!({ "display_name": "   " }),
        json!({ "display_name": "x".repeat(65) }),
        json!({ "display_name": "bell\u{7}" }),
    ] {
        let reply = app
            .send(
                "PATCH",
                "/users/me",
                Some(&tokens.access),
                JSON,
                body.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error_code(), "invalid_display_name");
    }
    let wrong_type = app
        .send(
            "PATCH",
            "/users/me",
            Some(&tokens.access),
            JSON,
            r#"{"display_name":5}"#,
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_still_serving(&app).await;
}

/// Found by schemathesis: serde's derived structs also read a JSON array of
/// their fields in order, so `[null, null]` created an invitation and
/// `[email, password]` logged in. A body must be an object.
#[actix_web::test]
async fn a_body_that_is_an_array_of_the_fields_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.console_admin("root@example.com").await;
    let invite = app
        .send(
            "POST",
            "/admin/invites",
            Some(&admin.token),
            JSON,
            "[null, null]",
        )
        .await;
    assert_eq!(invite.status, StatusCode::BAD_REQUEST, "{invite:?}");
    assert_eq!(invite.error_code(), "invalid_body");

    let login = app
        .post(
            "/session/authorize",
            json!(["root@example.com", digest("pw")]),
        )
        .await;
    assert_eq!(login.status, StatusCode::BAD_REQUEST, "{login:?}");
    assert_eq!(login.error_code(), "invalid_body");
    assert_still_serving(&app).await;
}

/// A 405 says which methods the path has (RFC 9110 §15.5.6), as
/// schemathesis's `allow_header_conformance` expects.
#[actix_web::test]
async fn a_wrong_method_is_405_with_the_allowed_methods() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        ("PUT", "/users/me", "GET, PATCH, DELETE"),
        ("GET", "/session/register", "POST"),
        ("POST", "/openapi.json", "GET"),
        ("DELETE", "/openapi.json", "GET"),
    ] {
        let reply = app.send(method, path, None, None, "").await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.error_code(), "method_not_allowed");
        assert_eq!(
            reply.headers.get("allow").unwrap(),
            allow,
            "{method} {path}"
        );
    }

    let owner = app.user("owner@example.com").await;
    let room = app.create_room(&owner, json!({ "name": "r" })).await;
    let someone_else = app
        .call(
            "PUT",
            &format!(
                "/rooms/{}/members/{}",
                room["id"].as_str().unwrap(),
                owner.id
            ),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(someone_else.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(someone_else.headers.get("allow").unwrap(), "DELETE, PATCH");
    assert_still_serving(&app).await;
}
