//! The real binary: it starts on the in-memory store saying so loudly, its
//! log never holds a secret even at the most verbose level (in either
//! format), `LOG_FORMAT=json` writes one JSON object per line with each
//! request's id, it stops cleanly on SIGTERM, and `p-chat healthcheck`
//! tells whether it is ready.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use common::process::ServerProcess;
use common::{TestApp, Tokens, assert_holds_no_secret, digest};
use serde_json::{Value, json};

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
async fn no_secret_ever_reaches_the_text_log() {
    assert_session_logs_no_secret("text").await;
}

#[actix_web::test]
async fn no_secret_ever_reaches_the_json_log() {
    let log = assert_session_logs_no_secret("json").await;
    for line in log.lines() {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not one JSON object ({error}): {line}"));
        assert!(parsed.is_object(), "{line}");
    }
}

/// Runs a whole session (register, verify, a failed and a good login,
/// refresh, reuse, logout, a forged token) against a server logging at
/// `trace` in `format`, checks that no secret was logged, and returns the log.
async fn assert_session_logs_no_secret(format: &str) -> String {
    let secret = "a-jwt-secret-that-must-never-be-logged";
    let server = ServerProcess::start(&[
        ("PORT", "0"),
        ("BCRYPT_COST", "4"),
        ("JWT_SECRET", secret),
        ("RUST_LOG", "trace"),
        ("LOG_FORMAT", format),
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
    log
}

/// The parsed JSON log lines of `server` that describe a request to `path`.
fn request_lines(server: &ServerProcess, path: &str) -> Vec<Value> {
    server
        .log()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter(|line| line["message"] == "request" && line["path"] == path)
        .collect()
}

/// The request id a JSON log line was written under.
fn logged_request_id(line: &Value) -> &str {
    line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|span| span["name"] == "request"))
        .and_then(|span| span["request_id"].as_str())
        .unwrap_or_else(|| panic!("no request span: {line}"))
}

#[actix_web::test]
async fn every_request_gets_an_id_that_is_echoed_and_logged() {
    let server = ServerProcess::start(&[("PORT", "0"), ("LOG_FORMAT", "json")]);
    let app = TestApp::connect(&server.base);
    // Not from a trusted proxy: the client's own id is not believed.
    let first = app
        .send_with_headers(
            "GET",
            "/health",
            &[("X-Request-Id", "chosen-by-client")],
            "",
        )
        .await;
    let second = app.send_with_headers("GET", "/nowhere", &[], "").await;
    assert_eq!(second.status, StatusCode::NOT_FOUND);
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .map(|reply| reply.headers.get("x-request-id").unwrap().to_str().unwrap())
        .collect();
    assert_ne!(ids[0], "chosen-by-client");
    assert_ne!(ids[0], ids[1]);
    for (path, id) in [("/health", ids[0]), ("/nowhere", ids[1])] {
        let lines = request_lines(&server, path);
        assert_eq!(lines.len(), 1, "{}", server.log());
        assert_eq!(logged_request_id(&lines[0]), id);
    }
}

#[actix_web::test]
async fn a_trusted_proxy_names_the_request_id() {
    let server = ServerProcess::start(&[
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let app = TestApp::connect(&server.base);
    let kept = app
        .send_with_headers("GET", "/health", &[("X-Request-Id", "proxy-7f3a")], "")
        .await;
    assert_eq!(kept.headers.get("x-request-id").unwrap(), "proxy-7f3a");
    // An id that could forge log lines is replaced, even from a proxy.
    let replaced = app
        .send_with_headers("GET", "/ready", &[("X-Request-Id", "a\"b")], "")
        .await;
    let id = replaced
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(
        logged_request_id(&request_lines(&server, "/health")[0]),
        "proxy-7f3a"
    );
    assert_eq!(logged_request_id(&request_lines(&server, "/ready")[0]), id);
}

/// Runs `p-chat healthcheck` (and only it) with `vars`.
fn healthcheck(vars: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_p-chat"))
        .arg("healthcheck")
        .env_clear()
        .envs(vars.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

#[actix_web::test]
async fn healthcheck_exits_0_while_the_server_is_ready_and_1_when_it_is_gone() {
    let server = ServerProcess::start(&[("PORT", "0")]);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let ready = healthcheck(&[("PORT", &port)]);
    assert!(ready.status.success(), "{ready:?}");
    drop(server);
    let gone = healthcheck(&[("PORT", &port)]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("/ready"),
        "{gone:?}"
    );
    let no_port = healthcheck(&[("PORT", "0")]);
    assert_eq!(no_port.status.code(), Some(1), "{no_port:?}");
}

#[test]
fn version_prints_the_release() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_p-chat"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("p-chat {}", env!("CARGO_PKG_VERSION"))
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
