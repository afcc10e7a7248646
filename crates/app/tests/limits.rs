//! Abuse limits (docs/security.md): login per account and per IP,
//! registration and verification per IP and email, `X-Forwarded-For` only
//! from trusted proxies, WebSocket caps per user and per IP, message sends
//! per user. Each test sets the limits it exercises small, on top of the
//! harness's generous ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use common::ws::WsClient;
use common::{Backend, Reply, TestApp, TestUser, digest};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse";

/// Asserts a 429 in the error envelope with `rate_limited` and a whole,
/// positive `Retry-After`.
fn assert_rate_limited(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert_eq!(reply.error_code(), "rate_limited", "{reply:?}");
    let retry_after: u64 = reply
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1, "{reply:?}");
}

/// `POST /session/authorize` with a wrong password.
async fn wrong_login(app: &TestApp, email: &str) -> Reply {
    app.authorize(email, "not the password").await
}

/// A registered and verified account.
async fn verified(app: &TestApp, email: &str) {
    let token = app.register(email, PASSWORD).await;
    assert_eq!(app.verify(&token).await.status, StatusCode::OK);
}

/// `POST path` with `body` and extra request headers.
async fn post_with_headers(
    app: &TestApp,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = awc::Client::default()
        .post(format!("{}{path}", app.base()))
        .insert_header(("Content-Type", "application/json"));
    for header in headers {
        request = request.insert_header(*header);
    }
    let mut response = request.send_body(body.to_string()).await.expect("send");
    let bytes = response.body().await.expect("body");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&bytes).expect("JSON body"),
    }
}

/// A login attempt for an unknown email, as seen from `X-Forwarded-For: xff`.
async fn login_from(app: &TestApp, xff: &str) -> Reply {
    post_with_headers(
        app,
        "/session/authorize",
        json!({ "email": "nobody@example.com", "password": digest("x") }),
        &[("X-Forwarded-For", xff)],
    )
    .await
}

// ------------------------------------------------------------------ login

async fn sixth_failed_login_of_an_account_is_429_while_another_account_logs_in(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_ACCOUNT", "10/15m")]).await else {
        return;
    };
    verified(&app, "ada@example.com").await;
    verified(&app, "bob@example.com").await;
    for attempt in 1..=5 {
        let reply = wrong_login(&app, "ada@example.com").await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {reply:?}"
        );
        assert_eq!(reply.body, json!({}));
    }
    assert_rate_limited(&wrong_login(&app, "ada@example.com").await);
    // The account is locked for now, even with its password...
    assert_rate_limited(&app.authorize("ada@example.com", PASSWORD).await);
    // ...but not the address: another account logs in from it.
    assert_eq!(
        app.authorize("bob@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn a_correct_password_still_works_after_a_few_failures(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_ACCOUNT", "10/15m")]).await else {
        return;
    };
    verified(&app, "ada@example.com").await;
    for _ in 0..4 {
        assert_eq!(
            wrong_login(&app, "ada@example.com").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.authorize("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn an_unknown_email_is_throttled_exactly_like_a_known_one(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_ACCOUNT", "4/15m")]).await else {
        return;
    };
    verified(&app, "ada@example.com").await;
    let mut answers = Vec::new();
    for email in ["ada@example.com", "ghost@example.com"] {
        let statuses: Vec<StatusCode> = [
            wrong_login(&app, email).await,
            wrong_login(&app, email).await,
            wrong_login(&app, email).await,
        ]
        .iter()
        .map(|reply| reply.status)
        .collect();
        answers.push(statuses);
    }
    let expected = vec![
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    assert_eq!(answers, vec![expected.clone(), expected]);
}

// ------------------------------------------------------------------ per IP

async fn a_burst_of_logins_from_one_ip_is_limited(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_IP", "3/1h")]).await else {
        return;
    };
    for n in 0..3 {
        let reply = wrong_login(&app, &format!("user{n}@example.com")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    }
    assert_rate_limited(&wrong_login(&app, "user9@example.com").await);
}

async fn registration_is_limited_per_ip_and_per_email(backend: Backend) {
    let Some(app) = backend
        .spawn(&[
            ("RATE_REGISTER_IP", "4/1h"),
            ("RATE_REGISTER_EMAIL", "1/1h"),
        ])
        .await
    else {
        return;
    };
    let register = |email: &'static str| {
        app.post(
            "/session/register",
            json!({ "email": email, "password": digest(PASSWORD) }),
        )
    };
    assert_eq!(register("ada@example.com").await.status, StatusCode::OK);
    // The same email again: refused by its own budget before the 409.
    assert_rate_limited(&register("ADA@example.com ").await);
    assert_eq!(register("bob@example.com").await.status, StatusCode::OK);
    // Every attempt counts for the IP, the refused one too: this is its
    // fourth and last, then none.
    assert_eq!(register("cy@example.com").await.status, StatusCode::OK);
    assert_rate_limited(&register("dee@example.com").await);
}

async fn email_verification_is_limited_per_ip(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_VERIFY_IP", "2/1h")]).await else {
        return;
    };
    for _ in 0..2 {
        let reply = app.verify("not-a-token").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert_eq!(reply.body, json!({}));
    }
    assert_rate_limited(&app.verify("not-a-token").await);
}

async fn forwarded_for_is_ignored_from_an_untrusted_peer(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_LOGIN_IP", "2/1h")]).await else {
        return;
    };
    assert_eq!(
        login_from(&app, "198.51.100.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&app, "198.51.100.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Another claimed address changes nothing: the budget is 127.0.0.1's.
    assert_rate_limited(&login_from(&app, "198.51.100.2").await);
}

async fn forwarded_for_from_a_trusted_proxy_separates_clients(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("RATE_LOGIN_IP", "2/1h"), ("TRUSTED_PROXIES", "127.0.0.1")])
        .await
    else {
        return;
    };
    assert_eq!(
        login_from(&app, "198.51.100.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&app, "198.51.100.1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_rate_limited(&login_from(&app, "198.51.100.1").await);
    // A different client behind the proxy has its own budget...
    assert_eq!(
        login_from(&app, "198.51.100.2").await.status,
        StatusCode::UNAUTHORIZED
    );
    // ...and what a client writes left of the proxy's entry is not believed.
    assert_rate_limited(&login_from(&app, "203.0.113.7, 198.51.100.1").await);
}

// ------------------------------------------------------------------ sends

async fn message_sends_are_limited_per_user_over_rest_and_websocket(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_RATE_BURST", "3"), ("WS_RATE_PER_SECOND", "1")])
        .await
    else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = app
        .create_room(&ada, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let join = app
        .call(
            "PUT",
            &format!("/rooms/{room_id}/members/me"),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(join.status, StatusCode::OK, "{join:?}");
    let path = format!("/rooms/{room_id}/messages");
    let send = async |user: &TestUser, n: usize| {
        let body = json!({ "body": format!("hello {n}") });
        app.call("POST", &path, &user.token, Some(body)).await
    };
    // A burst of 3 passes; the budget refills at one a second, so a slow
    // machine may let a few more through, never many.
    let mut refused = None;
    for n in 0..6 {
        let reply = send(&ada, n).await;
        if reply.status != StatusCode::CREATED {
            refused = Some((n, reply));
            break;
        }
    }
    let (n, reply) = refused.expect("ada's sends were never limited");
    assert!(n >= 3, "refused after only {n} sends");
    assert_rate_limited(&reply);
    // Bob's budget is his own.
    assert_eq!(send(&bob, 0).await.status, StatusCode::CREATED);
    // Ada's WebSocket sends draw on the same budget.
    let (mut socket, _ready) = WsClient::connect_ready(&app, &ada.token).await;
    socket
        .send_message_to(&room_id, "over the socket", "ws-1")
        .await;
    let answer = socket.expect_type("error").await;
    assert_eq!(answer["code"], "rate_limited", "{answer}");
    assert_eq!(answer["ref"], "ws-1", "{answer}");
}

// ------------------------------------------------------------------ WebSocket

/// What `GET /ws` answers to a plain HTTP upgrade request with `bearer`.
async fn raw_upgrade(app: &TestApp, bearer: Option<&str>) -> Reply {
    let mut request = awc::Client::default()
        .get(format!("{}/ws", app.base()))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
    if let Some(token) = bearer {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let body = if status == StatusCode::SWITCHING_PROTOCOLS {
        Value::Null
    } else {
        serde_json::from_slice(&response.body().await.expect("body")).expect("JSON body")
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Opens `count` sockets authenticated on the upgrade, each `ready`.
async fn open_sockets(app: &TestApp, token: &str, count: usize) -> Vec<WsClient> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(WsClient::connect_ready(app, token).await.0);
    }
    sockets
}

async fn the_21st_socket_of_a_user_is_refused_at_the_upgrade(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_MAX_CONNECTIONS_PER_USER", "20")])
        .await
    else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut sockets = open_sockets(&app, &ada.token, 20).await;
    let refused = raw_upgrade(&app, Some(&ada.token)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    assert!(refused.headers.contains_key("retry-after"), "{refused:?}");
    // Another user is not affected.
    WsClient::connect_ready(&app, &bob.token).await;
    // Closing one frees its slot.
    sockets.pop().expect("a socket").close().await;
    let mut again = None;
    for _ in 0..50 {
        if let Ok(socket) = WsClient::connect(&app, Some(&ada.token), None).await {
            again = Some(socket);
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = again.expect("the closed socket's slot was never released");
    assert_eq!(again.next_json().await["type"], "ready");
}

async fn the_21st_socket_authenticating_by_frame_is_closed_4029(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_MAX_CONNECTIONS_PER_USER", "20")])
        .await
    else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let _sockets = open_sockets(&app, &ada.token, 20).await;
    let mut late = WsClient::connect(&app, None, None).await.expect("upgrade");
    late.send_auth(&ada.token).await;
    late.expect_close(4029).await;
}

async fn unauthenticated_sockets_per_ip_are_capped_until_they_authenticate(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_MAX_UNAUTHENTICATED_PER_IP", "3")])
        .await
    else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(WsClient::connect(&app, None, None).await.expect("upgrade"));
    }
    let refused = raw_upgrade(&app, None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    // A socket with a valid token on the upgrade is not an unauthenticated one.
    WsClient::connect_ready(&app, &ada.token).await;
    // One of them authenticates: its slot is free for another.
    waiting[0].send_auth(&ada.token).await;
    assert_eq!(waiting[0].next_json().await["type"], "ready");
    let fourth = WsClient::connect(&app, None, None).await;
    assert!(fourth.is_ok(), "{:?}", fourth.err());
    // Full again; a closed one frees its slot too.
    assert_eq!(
        raw_upgrade(&app, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    waiting.pop().expect("a socket").close().await;
    let mut freed = false;
    for _ in 0..50 {
        if WsClient::connect(&app, None, None).await.is_ok() {
            freed = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the closed socket's slot was never released");
}

async fn websocket_upgrades_are_rate_limited_per_ip(backend: Backend) {
    let Some(app) = backend.spawn(&[("RATE_WS_UPGRADE_IP", "3/1h")]).await else {
        return;
    };
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(WsClient::connect(&app, None, None).await.expect("upgrade"));
    }
    assert_rate_limited(&raw_upgrade(&app, None).await);
}

on_both_stores!(
    sixth_failed_login_of_an_account_is_429_while_another_account_logs_in,
    a_correct_password_still_works_after_a_few_failures,
    an_unknown_email_is_throttled_exactly_like_a_known_one,
    a_burst_of_logins_from_one_ip_is_limited,
    registration_is_limited_per_ip_and_per_email,
    email_verification_is_limited_per_ip,
    forwarded_for_is_ignored_from_an_untrusted_peer,
    forwarded_for_from_a_trusted_proxy_separates_clients,
    message_sends_are_limited_per_user_over_rest_and_websocket,
    the_21st_socket_of_a_user_is_refused_at_the_upgrade,
    the_21st_socket_authenticating_by_frame_is_closed_4029,
    unauthenticated_sockets_per_ip_are_capped_until_they_authenticate,
    websocket_upgrades_are_rate_limited_per_ip,
);
