//! The real binary: it starts on the in-memory store saying so loudly, its
//! log never holds a secret even at the most verbose level, and it stops
//! cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use common::process::ServerProcess;
use common::{TestApp, Tokens, assert_holds_no_secret, digest};
use serde_json::json;

#[actix_web::test]
async fn without_a_database_the_server_warns_that_nothing_is_persisted() {
    let server = ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4")]);
    let app = TestApp::connect(&server.base);
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    let log = server.log();
    assert!(log.contains("IN-MEMORY"), "{log}");
    assert!(log.contains("NOTHING IS PERSISTED"), "{log}");
    assert!(log.contains("JWT_SECRET is not set"), "{log}");
}

#[actix_web::test]
async fn no_secret_ever_reaches_the_log() {
    let secret = "a-jwt-secret-that-must-never-be-logged";
    let server = ServerProcess::start(&[
        ("PORT", "0"),
        ("BCRYPT_COST", "4"),
        ("JWT_SECRET", secret),
        ("RUST_LOG", "trace"),
    ]);
    let app = TestApp::connect(&server.base);
    let verification = app.register("tess@example.com", "pw").await;
    let verified = Tokens::from(&app.verify(&verification).await);
    app.authorize("tess@example.com", "wrong").await;
    let login = Tokens::from(&app.authorize("tess@example.com", "pw").await);
    let rotated = Tokens::from(&app.refresh(&login.refresh).await);
    app.refresh(&login.refresh).await; // reuse: logged as a warning
    app.get("/users/me", Some(&verified.access)).await;
    app.post(
        "/session/logout",
        json!({ "refresh_token": rotated.refresh }),
    )
    .await;
    app.get("/users/me", Some("forged.token.value")).await;

    let log = server.log();
    assert!(
        log.contains("/session/refresh"),
        "requests are logged: {log}"
    );
    assert!(log.contains("reuse"), "reuse is logged: {log}");
    assert_holds_no_secret(
        "log",
        &log,
        &[
            secret,
            &digest("pw"),
            &digest("wrong"),
            &verification,
            &verified.access,
            &verified.refresh,
            &login.access,
            &login.refresh,
            &rotated.access,
            &rotated.refresh,
            "$2b$",
            "forged.token.value",
        ],
    );
}

#[actix_web::test]
async fn sigterm_stops_the_server_cleanly() {
    let mut server = ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4")]);
    // Once it has answered, its signal handlers are installed.
    let app = TestApp::connect(&server.base);
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server
        .wait_for_exit(Duration::from_secs(30))
        .expect("exit after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", server.log());
}

#[actix_web::test]
async fn malformed_requests_are_logged_as_one_warning_not_an_error_each() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4")]);
    let app = TestApp::connect(&server.base);
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    for _ in 0..20 {
        let mut stream = common::raw::connect(&app).await;
        stream
            .write_all(b"NOT HTTP AT ALL\r\n\x01\x02\r\n\r\n")
            .await
            .unwrap();
        // The server answers 400 and closes.
        let mut answer = Vec::new();
        let _ =
            actix_web::rt::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
                .await;
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"),
            "{answer:?}"
        );
    }
    let mut log = server.log();
    for _ in 0..50 {
        if log.contains("malformed HTTP request") {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        log = server.log();
    }
    let warnings = log
        .lines()
        .filter(|line| line.contains("malformed HTTP request"))
        .collect::<Vec<_>>();
    assert_eq!(warnings.len(), 1, "one line for 20 bad requests: {log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert!(
        !log.lines().any(|line| line.contains("ERROR")),
        "no ERROR line: {log}"
    );
}
