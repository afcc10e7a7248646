//! Email through a real SMTP server (aiosmtpd, started by the tests): with
//! SMTP configured, registration mails a verification link and its response
//! omits the token; without, the token is in the response as in the seed; an
//! SMTP server that is down or silent neither fails nor holds up a request,
//! and the failure is logged and retried, without the token or the address.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::process::ServerProcess;
use common::smtp::{FROM, PUBLIC_URL, SmtpSink, link_token};
use common::{Backend, TestApp, Tokens, assert_holds_no_secret, digest};
use serde_json::{Value, json};

/// The seed's success body of a registration, without the token.
fn registered_without_token() -> Value {
    json!({ "status": "Success", "data": { "message": "User registered successfully" } })
}

/// `POST /session/register` for `email` with password `pw`.
async fn register(app: &TestApp, email: &str) -> common::Reply {
    app.post(
        "/session/register",
        json!({ "email": email, "password": digest("pw") }),
    )
    .await
}

/// `(key, value)` pairs as the spawners take them.
fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

/// The variables of a server mailing through an SMTP server on `port` that
/// is not the sink (down or silent).
fn smtp_at(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_TLS", "none".to_owned()),
        ("SMTP_FROM", FROM.to_owned()),
        ("PUBLIC_URL", PUBLIC_URL.to_owned()),
    ]
}

async fn registration_mails_a_link_that_verifies_and_logs_in(backend: Backend) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let Some(app) = backend.spawn(&borrowed(&sink.vars())).await else {
        return;
    };

    let reply = register(&app, " Ada@Example.com ").await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, registered_without_token());
    let mail = sink.wait_for_mail("ada@example.com").await;
    assert!(
        mail.contains("Subject: Confirm your email address for p-chat"),
        "{mail}"
    );
    assert!(mail.contains(&format!("From: {FROM}")), "{mail}");
    assert!(mail.contains("To: ada@example.com"), "{mail}");
    assert!(
        mail.contains("for 24 hours"),
        "the mail says how long: {mail}"
    );
    let token = link_token(&mail, "verifyToken");
    assert_eq!(token.len(), 64, "{mail}");

    // Unverified until the link is used; the link logs in, once.
    let before = app.authorize("ada@example.com", "pw").await;
    assert_eq!(before.status, StatusCode::UNAUTHORIZED);
    let verified = app.verify(&token).await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    let tokens = Tokens::from(&verified);
    let me = app.get("/users/me", Some(&tokens.access)).await;
    assert_eq!(me.data()["email"], "ada@example.com");
    assert_eq!(app.verify(&token).await.status, StatusCode::UNAUTHORIZED);
    let login = app.authorize("ada@example.com", "pw").await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert_eq!(sink.count_mails("ada@example.com"), 1);
}

async fn a_taken_email_is_a_conflict_and_mails_nothing(backend: Backend) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let Some(app) = backend.spawn(&borrowed(&sink.vars())).await else {
        return;
    };
    assert_eq!(
        register(&app, "ada@example.com").await.status,
        StatusCode::OK
    );
    sink.wait_for_mail("ada@example.com").await;

    let again = register(&app, "ADA@example.com").await;

    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    // A later registration's mail arriving proves the queue has moved past.
    assert_eq!(
        register(&app, "bob@example.com").await.status,
        StatusCode::OK
    );
    sink.wait_for_mail("bob@example.com").await;
    assert_eq!(sink.count_mails("ada@example.com"), 1);
}

async fn without_smtp_the_register_response_carries_the_token(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };

    let reply = register(&app, "ada@example.com").await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let data = reply.data().as_object().unwrap();
    assert_eq!(data.len(), 2, "{data:?}");
    assert_eq!(data["message"], "User registered successfully");
    let token = data["VerificationToken"].as_str().unwrap();
    assert_eq!(app.verify(token).await.status, StatusCode::OK);
}

async fn a_silent_smtp_server_neither_fails_nor_holds_up_registration(backend: Backend) {
    // Accepts connections and never says a word: a send made inside the
    // request would wait for lettre's 10-second command timeout, past the
    // test client's 5-second timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    actix_web::rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let Some(app) = backend.spawn(&borrowed(&smtp_at(port))).await else {
        return;
    };

    for email in ["ada@example.com", "bob@example.com"] {
        let reply = register(&app, email).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body, registered_without_token());
    }

    // The mails were really handed to the (silent) server meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "no delivery was attempted");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

/// Forgot password: the mail's link (`PUBLIC_URL/?resetToken=`) sets a new
/// password once, ends every session of the account (its sockets close
/// 4001) and only the new password logs in; an unknown address gets the
/// same answer and no mail; a second, older reset link stops working too.
async fn a_forgotten_password_is_reset_through_the_mailed_link(backend: Backend) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let Some(app) = backend.spawn(&borrowed(&sink.vars())).await else {
        return;
    };
    register(&app, "forgetful@example.com").await;
    let verified = link_token(
        &sink.wait_for_mail("forgetful@example.com").await,
        "verifyToken",
    );
    let session = Tokens::from(&app.verify(&verified).await);
    let (mut socket, _) = common::ws::WsClient::connect_ready(&app, &session.access).await;

    let known = app
        .post(
            "/session/forgotPassword",
            json!({ "email": "forgetful@example.com" }),
        )
        .await;
    let unknown = app
        .post(
            "/session/forgotPassword",
            json!({ "email": "stranger@example.com" }),
        )
        .await;
    assert_eq!(known.status, StatusCode::OK, "{known:?}");
    assert_eq!(
        known.body, unknown.body,
        "nothing tells the addresses apart"
    );
    let first = sink.wait_for_mail("forgetful@example.com").await;
    assert!(
        first.contains("Subject:") && first.contains("p-chat"),
        "{first}"
    );
    assert!(
        first.contains(&format!("{PUBLIC_URL}/?resetToken=")),
        "{first}"
    );
    let older = link_token(&first, "resetToken");
    app.post(
        "/session/forgotPassword",
        json!({ "email": "forgetful@example.com" }),
    )
    .await;
    let token = link_token(
        &sink.wait_for_mail("forgetful@example.com").await,
        "resetToken",
    );

    let reset = app
        .post(
            "/session/resetPassword",
            json!({ "token": token, "password": digest("new pw") }),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{reset:?}");
    socket.expect_close(4001).await;
    assert_eq!(
        app.get("/users/me", Some(&session.access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.authorize("forgetful@example.com", "pw").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.authorize("forgetful@example.com", "new pw")
            .await
            .status,
        StatusCode::OK
    );
    for used in [token, older] {
        let again = app
            .post(
                "/session/resetPassword",
                json!({ "token": used, "password": digest("x") }),
            )
            .await;
        assert_eq!(
            (again.status, &again.body),
            (StatusCode::UNAUTHORIZED, &json!({}))
        );
    }
    assert_eq!(sink.count_mails("stranger@example.com"), 0);
}

/// Resend verification: an unverified account gets a new working link; a
/// verified or unknown address gets the same answer and no mail.
async fn a_new_verification_link_is_mailed_on_request(backend: Backend) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let Some(app) = backend.spawn(&borrowed(&sink.vars())).await else {
        return;
    };
    register(&app, "slow@example.com").await;
    sink.wait_for_mail("slow@example.com").await;
    let resend =
        |email: &'static str| app.post("/session/resendVerification", json!({ "email": email }));
    let answer = resend("slow@example.com").await;
    assert_eq!(answer.status, StatusCode::OK);
    let token = link_token(&sink.wait_for_mail("slow@example.com").await, "verifyToken");
    assert_eq!(app.verify(&token).await.status, StatusCode::OK);

    assert_eq!(resend("slow@example.com").await.body, answer.body);
    assert_eq!(resend("nobody@example.com").await.body, answer.body);
    // Give a wrongly sent mail the time to arrive before counting.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.count_mails("slow@example.com"),
        2,
        "no mail once verified"
    );
    assert_eq!(sink.count_mails("nobody@example.com"), 0);
}

on_both_stores!(
    a_forgotten_password_is_reset_through_the_mailed_link,
    a_new_verification_link_is_mailed_on_request,
    registration_mails_a_link_that_verifies_and_logs_in,
    a_taken_email_is_a_conflict_and_mails_nothing,
    without_smtp_the_register_response_carries_the_token,
    a_silent_smtp_server_neither_fails_nor_holds_up_registration,
);

/// Waits until the server's log holds `needle`, failing after a while.
async fn wait_for_log(server: &ServerProcess, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = server.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "{needle:?} never logged:\n{log}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn an_unreachable_smtp_server_is_logged_and_retried_without_token_or_address() {
    // A port nobody listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = smtp_at(port);
    vars.extend([
        ("PORT", "0".to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ]);
    let server = ServerProcess::start(&borrowed(&vars));
    let app = TestApp::connect(&server.base);

    let reply = register(&app, "ada.lovelace@example.com").await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, registered_without_token());
    wait_for_log(&server, "attempt=1 attempts=4").await;
    // The second attempt follows the first backoff step (1 s).
    let log = wait_for_log(&server, "attempt=2 attempts=4").await;
    assert!(log.contains("mail delivery failed: will retry"), "{log}");
    assert!(log.contains("domain=\"example.com\""), "{log}");
    assert_holds_no_secret("log", &log, &["ada.lovelace", "PROVES NOTHING"]);
}

#[actix_web::test]
async fn a_mailed_registration_logs_neither_the_token_nor_the_address() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let mut vars = sink.vars();
    vars.extend([
        ("PORT", "0".to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ]);
    let server = ServerProcess::start(&borrowed(&vars));
    let app = TestApp::connect(&server.base);

    assert_eq!(
        register(&app, "tess@example.com").await.status,
        StatusCode::OK
    );
    let token = link_token(&sink.wait_for_mail("tess@example.com").await, "verifyToken");
    assert_eq!(app.verify(&token).await.status, StatusCode::OK);

    let log = wait_for_log(&server, "mail sent").await;
    assert!(log.contains("kind=\"verification\""), "{log}");
    assert!(!log.contains("PROVES NOTHING"), "{log}");
    assert_holds_no_secret("log", &log, &[&token, "tess@example.com"]);
}

#[actix_web::test]
async fn without_smtp_the_log_warns_that_verification_proves_nothing() {
    let server = ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4")]);
    let log = server.log();
    assert!(log.contains("SMTP is not configured"), "{log}");
    assert!(log.contains("EMAIL VERIFICATION PROVES NOTHING"), "{log}");
}
