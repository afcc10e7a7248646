//! CONTRACT section 4 and docs/protocol.md, black-box: `GET /ws` on a real
//! server, driven by a WebSocket client (tests/common/ws.rs). Authentication
//! (header, first frame, timeout, bad, expired and revoked tokens, re-auth),
//! `send`/`ack`, live delivery and its order under concurrent senders,
//! `sync`, membership changes while connected, typing, error frames, the
//! frame-size, rate and slow-consumer limits, the Origin check and the
//! 1001 close on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::Item;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use awc::ws::Message;
use chrono::{DateTime, Utc};
use common::process::ServerProcess;
use common::ws::{Frame, WsClient, origin_of};
use common::{Backend, SECRET, TestApp, TestUser};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

/// Settings that let a test pipeline many frames without meeting the rate
/// limit (the limit itself is tested with its own settings).
const GENEROUS_RATE: [(&str, &str); 2] =
    [("WS_RATE_BURST", "1000"), ("WS_RATE_PER_SECOND", "1000")];

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {value}"))
        .parse()
        .expect("RFC 3339")
}

fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims
}

/// `token`'s claims, edited by `edit`, signed again with the test secret
/// under the same header `typ`: a token the server issued, with a changed
/// lifetime.
fn reforge(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let typ = jsonwebtoken::decode_header(token).unwrap().typ;
    let mut claims = claims_of(token);
    edit(&mut claims);
    let mut header = Header::new(Algorithm::HS256);
    header.typ = typ;
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// `token` (of a live session) re-signed to expire `seconds` from now
/// (negative: in the past).
fn with_lifetime(token: &str, seconds: i64) -> String {
    reforge(token, |claims| {
        let now = Utc::now().timestamp();
        let issued = if seconds > 0 {
            now
        } else {
            now + seconds - 3600
        };
        claims["iat"] = json!(issued);
        if claims.get("nbf").is_some() {
            claims["nbf"] = json!(issued);
        }
        claims["exp"] = json!(now + seconds);
    })
}

/// A private room of `owner` with `members` added; its id.
async fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> String {
    let room = app
        .create_room(owner, json!({ "name": "websocket room" }))
        .await;
    let id = str_of(&room, "id").to_owned();
    for member in members {
        add_member(app, owner, &id, member).await;
    }
    id
}

async fn add_member(app: &TestApp, actor: &TestUser, room: &str, user: &TestUser) {
    let reply = app
        .call(
            "POST",
            &format!("/rooms/{room}/members"),
            &actor.token,
            Some(json!({ "user_id": user.id })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

/// All the room's messages from seq 1 on, over REST (page by page).
async fn history(app: &TestApp, user: &TestUser, room: &str) -> Vec<Value> {
    let mut messages: Vec<Value> = Vec::new();
    loop {
        let after = messages
            .last()
            .map_or(0, |message| message["seq"].as_u64().unwrap());
        let reply = app
            .call(
                "GET",
                &format!("/rooms/{room}/messages?after_seq={after}&limit=100"),
                &user.token,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let data = reply.data();
        messages.extend(
            data["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
        if data["has_more"] != true {
            return messages;
        }
    }
}

async fn last_seq(app: &TestApp, user: &TestUser, room: &str) -> u64 {
    let reply = app
        .call("GET", &format!("/rooms/{room}"), &user.token, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.data()["last_seq"].as_u64().expect("last_seq")
}

/// Connects as `user` with the bearer header and waits for `ready`.
async fn connected(app: &TestApp, user: &TestUser) -> WsClient {
    let (client, ready) = WsClient::connect_ready(app, &user.token).await;
    assert_eq!(ready["user_id"], user.id.as_str(), "{ready}");
    client
}

fn seq_of(event: &Value) -> u64 {
    event["message"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no message.seq in {event}"))
}

/// The `message` events of `room` among `frames`.
fn messages_of<'a>(frames: &'a [Value], room: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "message" && frame["room_id"] == room)
        .collect()
}

/// Reads until the `message` event of `room` with `seq`; asserts it is the
/// next message of that room (no other message of the room before it).
async fn expect_message(client: &mut WsClient, room: &str, seq: u64) -> Value {
    let (event, before) = client
        .drain_until(&format!("message {seq} of {room}"), |frame| {
            frame["type"] == "message" && frame["room_id"] == room
        })
        .await;
    assert_eq!(seq_of(&event), seq, "{event}; read before: {before:?}");
    assert_eq!(event["message"]["room_id"], room, "{event}");
    event
}

/// The next error frame, asserting its `code` (and `ref`, when given).
async fn expect_error(client: &mut WsClient, code: &str, reference: Option<&str>) -> Value {
    let error = client.next_json().await;
    assert_eq!(error["type"], "error", "expected an error frame: {error}");
    assert_eq!(error["code"], code, "{error}");
    assert!(error["message"].is_string(), "no message: {error}");
    assert!(
        error.as_object().unwrap().contains_key("ref"),
        "no ref: {error}"
    );
    if let Some(reference) = reference {
        assert_eq!(error["ref"], reference, "{error}");
    }
    error
}

/// A bad token on the upgrade request: refused with 401, or accepted and
/// closed with 4001 before any `ready`.
async fn assert_header_token_refused(app: &TestApp, token: &str, what: &str) {
    match WsClient::connect(app, Some(token), None).await {
        Err(status) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}"),
        Ok(mut client) => {
            let before = client.expect_close(4001).await;
            assert!(
                before.iter().all(|frame| frame["type"] != "ready"),
                "{what}: ready before the close: {before:?}"
            );
        }
    }
}

/// A bad token in the first `auth` frame: closed with 4001, never `ready`.
async fn assert_frame_token_refused(app: &TestApp, token: &str, what: &str) {
    let mut client = WsClient::connect(app, None, None)
        .await
        .unwrap_or_else(|status| panic!("{what}: upgrade without a token refused: {status}"));
    client.send_auth(token).await;
    let before = client.expect_close(4001).await;
    assert!(
        before.iter().all(|frame| frame["type"] != "ready"),
        "{what}: ready before the close: {before:?}"
    );
}

// ---------------------------------------------------------------- authentication

async fn a_bearer_header_authenticates(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ana = app.user("ana@example.com").await;
    let (mut client, ready) = WsClient::connect_ready(&app, &ana.token).await;
    assert_eq!(ready["user_id"], ana.id.as_str(), "{ready}");
    let expires_at = time(&ready["expires_at"]);
    let exp = claims_of(&ana.token)["exp"].as_i64().unwrap();
    assert!(
        (expires_at.timestamp() - exp).abs() <= 1,
        "expires_at {expires_at} is not the token's exp {exp}"
    );
    client.ping_pong().await;
}

async fn a_first_auth_frame_authenticates(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ben = app.user("ben@example.com").await;
    let mut client = WsClient::connect(&app, None, None).await.unwrap();
    client.send_auth(&ben.token).await;
    let ready = client.expect_next_type("ready").await;
    assert_eq!(ready["user_id"], ben.id.as_str(), "{ready}");
    time(&ready["expires_at"]);
    client.ping_pong().await;
}

/// Ten seconds of silence: memory store only, it is slow by design.
#[actix_web::test]
async fn no_authentication_within_ten_seconds_closes_4001() {
    let app = Backend::Memory.spawn(&[]).await.unwrap();
    let started = Instant::now();
    let mut client = WsClient::connect(&app, None, None).await.unwrap();
    let before = client
        .expect_close_within(4001, Duration::from_secs(14))
        .await;
    let waited = started.elapsed();
    assert!(before.is_empty(), "frames before the close: {before:?}");
    assert!(
        waited >= Duration::from_secs(9),
        "closed after {waited:?}, before the 10 s allowed"
    );
}

async fn a_first_frame_other_than_auth_closes_4001(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let mut client = WsClient::connect(&app, None, None).await.unwrap();
    client.send_json(json!({ "type": "ping" })).await;
    let before = client.expect_close(4001).await;
    assert!(
        before.iter().all(|frame| frame["type"] != "pong"),
        "answered before authentication: {before:?}"
    );
}

async fn bad_tokens_on_the_upgrade_request_are_refused(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let tokens = app.logged_in_user("cy@example.com", "pw").await;
    assert_header_token_refused(&app, "not-a-jwt", "garbage").await;
    assert_header_token_refused(&app, &tokens.refresh, "a refresh token").await;
    let expired = with_lifetime(&tokens.access, -3600);
    assert_header_token_refused(&app, &expired, "an expired token").await;
    let revoked = app.logged_in_user("dee@example.com", "pw").await;
    let logout = app
        .send("POST", "/session/logout", Some(&revoked.access), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    assert_header_token_refused(&app, &revoked.access, "a revoked session's token").await;
    // The control: the same user's live token is accepted.
    WsClient::connect_ready(&app, &tokens.access).await;
}

async fn bad_tokens_in_the_auth_frame_close_4001(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let tokens = app.logged_in_user("eve@example.com", "pw").await;
    assert_frame_token_refused(&app, "not-a-jwt", "garbage").await;
    assert_frame_token_refused(&app, &tokens.refresh, "a refresh token").await;
    let expired = with_lifetime(&tokens.access, -3600);
    assert_frame_token_refused(&app, &expired, "an expired token").await;
    let revoked = app.logged_in_user("fay@example.com", "pw").await;
    let logout = app
        .send("POST", "/session/logout", Some(&revoked.access), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    assert_frame_token_refused(&app, &revoked.access, "a revoked session's token").await;
}

async fn revoking_the_session_closes_its_connections_4001(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let gus = app.user("gus@example.com").await;
    let mut first = connected(&app, &gus).await;
    // A second login of the same user: a separate session.
    let second_tokens = common::Tokens::from(&app.authorize("gus@example.com", "pw").await);
    let (mut second, _) = WsClient::connect_ready(&app, &second_tokens.access).await;

    let logout = app
        .send("POST", "/session/logout", Some(&gus.token), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    first.expect_close(4001).await;
    // The other session's connection is untouched.
    second.ping_pong().await;

    // Refresh-token reuse revokes the second session: its connection closes.
    assert_eq!(
        app.refresh(&second_tokens.refresh).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&second_tokens.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    second.expect_close(4001).await;
}

async fn a_connection_belongs_to_the_session_of_the_token_it_holds(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let lee = app.user("lee@example.com").await;
    // Both connect with session S1's token; one re-authenticates with a
    // token of the same user's session S2.
    let mut moved = connected(&app, &lee).await;
    let mut stayed = connected(&app, &lee).await;
    let second = common::Tokens::from(&app.authorize("lee@example.com", "pw").await);
    moved.send_auth(&second.access).await;
    moved.expect_type("ready").await;

    // Ending S1 closes the connection still on S1, not the one now on S2.
    let logout = app
        .send("POST", "/session/logout", Some(&lee.token), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    stayed.expect_close(4001).await;
    moved.ping_pong().await;

    // Ending S2 closes it.
    let logout = app
        .send("POST", "/session/logout", Some(&second.access), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    moved.expect_close(4001).await;
}

async fn a_connection_is_closed_4001_when_its_token_expires(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let hal = app.user("hal@example.com").await;
    let short = with_lifetime(&hal.token, 3);
    let exp = claims_of(&short)["exp"].as_i64().unwrap();
    let started = Instant::now();
    let (mut client, ready) = WsClient::connect_ready(&app, &short).await;
    assert_eq!(ready["user_id"], hal.id.as_str(), "{ready}");
    assert!(
        (time(&ready["expires_at"]).timestamp() - exp).abs() <= 1,
        "expires_at is not the token's exp {exp}: {ready}"
    );
    client.ping_pong().await;
    client
        .expect_close_within(4001, Duration::from_secs(7))
        .await;
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(1500),
        "closed after {lasted:?}, before the token expired"
    );
}

async fn re_authenticating_before_expiry_keeps_the_connection(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ida = app.user("ida@example.com").await;
    let short = with_lifetime(&ida.token, 3);
    let started = Instant::now();
    let (mut client, first_ready) = WsClient::connect_ready(&app, &short).await;
    let fresh = with_lifetime(&ida.token, 60);
    client.send_auth(&fresh).await;
    let ready = client.expect_type("ready").await;
    assert_eq!(ready["user_id"], ida.id.as_str(), "{ready}");
    assert!(
        time(&ready["expires_at"]) > time(&first_ready["expires_at"]),
        "the new ready does not extend: {first_ready} then {ready}"
    );
    // Past the first token's expiry, the connection is still open.
    let past_expiry = Duration::from_secs(5).saturating_sub(started.elapsed());
    client.collect_for(past_expiry).await;
    client.ping_pong().await;
}

async fn re_authenticating_as_someone_else_or_with_a_bad_token_is_an_error(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let jan = app.user("jan@example.com").await;
    let kai = app.user("kai@example.com").await;
    let room = room_with(&app, &jan, &[]).await;
    let mut client = connected(&app, &jan).await;

    client.send_auth(&kai.token).await;
    expect_error(&mut client, "forbidden", None).await;
    client.send_auth("not-a-jwt").await;
    expect_error(&mut client, "invalid_token", None).await;

    // Nothing changed: still open, still Jan (who may post in Jan's room).
    let others = client.ping_pong().await;
    assert!(
        others.iter().all(|frame| frame["type"] != "ready"),
        "{others:?}"
    );
    client.send_message_to(&room, "still me", "jan-1").await;
    let ack = client.expect_type("ack").await;
    assert_eq!(ack["message"]["author_id"], jan.id.as_str(), "{ack}");
}

// ---------------------------------------------------------------- send and ack

async fn send_is_acked_with_the_stored_message(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let kim = app.user("kim@example.com").await;
    let room = room_with(&app, &kim, &[]).await;
    let mut client = connected(&app, &kim).await;
    client.send_message_to(&room, "  hello  ", "kim-1").await;
    let ack = client.expect_type("ack").await;
    assert_eq!(ack["client_msg_id"], "kim-1", "{ack}");
    let message = &ack["message"];
    assert_eq!(message["seq"], 1, "{ack}");
    assert_eq!(message["room_id"], room.as_str(), "{ack}");
    assert_eq!(message["author_id"], kim.id.as_str(), "{ack}");
    assert_eq!(message["client_msg_id"], "kim-1", "{ack}");
    assert_eq!(message["deleted"], false, "{ack}");
    let body = str_of(message, "body");
    assert_eq!(body.trim(), "hello", "{ack}");
    time(&message["created_at"]);
    // Durable before the ack: REST history already holds it.
    let stored = history(&app, &kim, &room).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["id"], message["id"], "{stored:?}");
    assert_eq!(stored[0]["seq"], 1);
    assert_eq!(stored[0]["body"], message["body"]);
}

async fn a_repeated_client_msg_id_acks_the_first_message(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let lea = app.user("lea@example.com").await;
    let room = room_with(&app, &lea, &[]).await;
    let mut client = connected(&app, &lea).await;
    client.send_message_to(&room, "once", "lea-1").await;
    let (first, mut seen) = client
        .drain_until("the first ack", |frame| frame["type"] == "ack")
        .await;
    client.send_message_to(&room, "twice", "lea-1").await;
    let (second, more) = client
        .drain_until("the second ack", |frame| frame["type"] == "ack")
        .await;
    seen.extend(more);
    assert_eq!(second["client_msg_id"], "lea-1", "{second}");
    assert_eq!(second["message"]["id"], first["message"]["id"], "{second}");
    assert_eq!(second["message"]["seq"], 1, "{second}");
    assert_eq!(second["message"]["body"], "once", "{second}");
    assert_eq!(history(&app, &lea, &room).await.len(), 1);
    assert_eq!(last_seq(&app, &lea, &room).await, 1);
    // One stored message, one `message` event.
    seen.extend(client.ping_pong().await);
    seen.extend(client.collect_for(Duration::from_millis(300)).await);
    let events = messages_of(&seen, &room);
    assert_eq!(events.len(), 1, "{seen:?}");
    assert_eq!(seq_of(events[0]), 1);
}

async fn failed_sends_answer_an_error_with_the_client_msg_id(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let max = app.user("max@example.com").await;
    let ned = app.user("ned@example.com").await;
    let mine = room_with(&app, &max, &[]).await;
    let theirs = room_with(&app, &ned, &[]).await;
    let mut client = connected(&app, &max).await;

    client.send_message_to(&theirs, "let me in", "max-1").await;
    expect_error(&mut client, "room_not_found", Some("max-1")).await;
    let nowhere = uuid::Uuid::new_v4().to_string();
    client.send_message_to(&nowhere, "anyone?", "max-2").await;
    expect_error(&mut client, "room_not_found", Some("max-2")).await;
    client.send_message_to(&mine, "   ", "max-3").await;
    expect_error(&mut client, "invalid_body", Some("max-3")).await;
    client
        .send_message_to(&mine, &"x".repeat(4001), "max-4")
        .await;
    expect_error(&mut client, "invalid_body", Some("max-4")).await;
    let long_id = "i".repeat(65);
    client.send_message_to(&mine, "fine", &long_id).await;
    expect_error(&mut client, "invalid_client_msg_id", Some(&long_id)).await;
    client
        .send_json(json!({ "type": "sync", "room_id": theirs, "after_seq": 0 }))
        .await;
    expect_error(&mut client, "room_not_found", Some(&theirs)).await;

    client.ping_pong().await;
    assert_eq!(last_seq(&app, &ned, &theirs).await, 0);
    assert_eq!(last_seq(&app, &max, &mine).await, 0);
}

// ---------------------------------------------------------------- delivery

async fn messages_reach_every_member_connection(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ola = app.user("ola@example.com").await;
    let pat = app.user("pat@example.com").await;
    let room = room_with(&app, &ola, &[&pat]).await;
    let mut sender = connected(&app, &ola).await;
    let mut receiver = connected(&app, &pat).await;

    // Over the WebSocket.
    sender.send_message_to(&room, "over ws", "ola-1").await;
    let (ack, mut seen) = sender
        .drain_until("ack", |frame| frame["type"] == "ack")
        .await;
    assert_eq!(ack["message"]["seq"], 1, "{ack}");
    let event = expect_message(&mut receiver, &room, 1).await;
    assert_eq!(event["message"]["body"], "over ws", "{event}");
    assert_eq!(event["message"]["author_id"], ola.id.as_str(), "{event}");
    assert_eq!(event["message"]["id"], ack["message"]["id"], "{event}");

    // Over REST: the same kind of event.
    let posted = app.post_message(&ola, &room, "over rest").await;
    assert_eq!(posted["seq"], 2);
    let event = expect_message(&mut receiver, &room, 2).await;
    assert_eq!(event["message"], posted, "{event}");

    // The sender's own connection gets its messages too, once each.
    seen.extend(sender.ping_pong().await);
    let mut own: Vec<u64> = messages_of(&seen, &room).into_iter().map(seq_of).collect();
    while own.len() < 2 {
        own.push(seq_of(
            &expect_message(&mut sender, &room, own.len() as u64 + 1).await,
        ));
    }
    assert_eq!(own, [1, 2], "{seen:?}");
}

/// Sends `count` messages over `client` without waiting, then collects the
/// acks.
async fn pipelined_sender(
    mut client: WsClient,
    room: String,
    tag: String,
    count: usize,
) -> Vec<Value> {
    for index in 0..count {
        let id = format!("{tag}-{index}");
        client.send_message_to(&room, &id, &id).await;
    }
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut acks = Vec::new();
    while acks.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.try_next_json(left).await {
            Ok(frame) if frame["type"] == "ack" => acks.push(frame),
            Ok(frame) if frame["type"] == "error" => panic!("{tag}: {frame}"),
            Ok(_) => {}
            Err(error) => panic!("{tag}: {} acks of {count}, then {error}", acks.len()),
        }
    }
    acks
}

async fn concurrent_senders_are_delivered_in_seq_order(backend: Backend) {
    let Some(app) = backend.spawn(&GENEROUS_RATE).await else {
        return;
    };
    let app = Rc::new(app);
    let owner = app.user("quin@example.com").await;
    let ray = app.user("ray@example.com").await;
    let sal = app.user("sal@example.com").await;
    let tom = app.user("tom@example.com").await;
    let room = room_with(&app, &owner, &[&ray, &sal, &tom]).await;
    let mut watcher = connected(&app, &tom).await;
    const EACH: usize = 40;

    let first = connected(&app, &owner).await;
    let second = connected(&app, &ray).await;
    let over_ws_1 = actix_web::rt::spawn(pipelined_sender(first, room.clone(), "q".into(), EACH));
    let over_ws_2 = actix_web::rt::spawn(pipelined_sender(second, room.clone(), "r".into(), EACH));
    let over_rest = actix_web::rt::spawn({
        let (app, sal, room) = (app.clone(), sal.clone(), room.clone());
        async move {
            for index in 0..EACH {
                app.post_message(&sal, &room, &format!("s-{index}")).await;
            }
        }
    });

    let total = 3 * EACH;
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut events = Vec::new();
    while events.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        match watcher.try_next_json(left).await {
            Ok(frame) if frame["type"] == "message" && frame["room_id"] == room.as_str() => {
                events.push(frame);
            }
            Ok(_) => {}
            Err(error) => panic!(
                "{} of {total} message events, then {error}; seqs: {:?}",
                events.len(),
                events.iter().map(seq_of).collect::<Vec<_>>()
            ),
        }
    }
    let acks: Vec<Value> = [over_ws_1.await.unwrap(), over_ws_2.await.unwrap()].concat();
    over_rest.await.unwrap();

    let seqs: Vec<u64> = events.iter().map(seq_of).collect();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "delivery order"
    );
    let ack_seqs: BTreeSet<u64> = acks
        .iter()
        .map(|ack| ack["message"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(ack_seqs.len(), 2 * EACH, "acked seqs repeat: {ack_seqs:?}");
    let stored = history(&app, &owner, &room).await;
    assert_eq!(stored.len(), total);
    for (event, message) in events.iter().zip(&stored) {
        assert_eq!(&event["message"], message, "event vs history");
    }
    let bodies: BTreeSet<&str> = events
        .iter()
        .map(|event| event["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), total, "every message once");
    // Nothing more (no duplicate) is pending for the watcher.
    let extra = watcher.ping_pong().await;
    assert!(messages_of(&extra, &room).is_empty(), "{extra:?}");
}

// ---------------------------------------------------------------- sync

/// Sends `sync` and reads the replay strictly: `message` frames, then `synced`.
async fn sync(
    client: &mut WsClient,
    room: &str,
    after_seq: u64,
    limit: Option<u64>,
) -> (Vec<u64>, Value) {
    let mut frame = json!({ "type": "sync", "room_id": room, "after_seq": after_seq });
    if let Some(limit) = limit {
        frame["limit"] = json!(limit);
    }
    client.send_json(frame).await;
    let mut seqs = Vec::new();
    loop {
        let frame = client.next_json().await;
        match frame["type"].as_str() {
            Some("message") => {
                assert_eq!(frame["room_id"], room, "{frame}");
                seqs.push(seq_of(&frame));
            }
            Some("synced") => {
                assert_eq!(frame["room_id"], room, "{frame}");
                return (seqs, frame);
            }
            _ => panic!("unexpected frame during sync: {frame}"),
        }
    }
}

async fn sync_replays_what_was_missed(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let uma = app.user("uma@example.com").await;
    let vic = app.user("vic@example.com").await;
    let room = room_with(&app, &uma, &[&vic]).await;
    let mut client = connected(&app, &vic).await;
    for index in 1..=3 {
        app.post_message(&uma, &room, &format!("live {index}"))
            .await;
    }
    let mut last_seen = 0;
    for seq in 1..=3 {
        last_seen = seq_of(&expect_message(&mut client, &room, seq).await);
    }
    client.close().await;

    for index in 4..=8 {
        app.post_message(&uma, &room, &format!("missed {index}"))
            .await;
    }
    let mut client = connected(&app, &vic).await;
    let (seqs, synced) = sync(&mut client, &room, last_seen, None).await;
    assert_eq!(seqs, [4, 5, 6, 7, 8], "{synced}");
    assert_eq!(synced["last_seq"], 8, "{synced}");
    assert_eq!(synced["has_more"], false, "{synced}");

    let (seqs, synced) = sync(&mut client, &room, last_seen, Some(2)).await;
    assert_eq!(seqs, [4, 5], "{synced}");
    assert_eq!(synced["last_seq"], 5, "{synced}");
    assert_eq!(synced["has_more"], true, "{synced}");
    let (seqs, synced) = sync(&mut client, &room, 5, Some(2)).await;
    assert_eq!(seqs, [6, 7], "{synced}");
    assert_eq!(synced["has_more"], true, "{synced}");
    let (seqs, synced) = sync(&mut client, &room, 7, Some(2)).await;
    assert_eq!(seqs, [8], "{synced}");
    assert_eq!(synced["last_seq"], 8, "{synced}");
    assert_eq!(synced["has_more"], false, "{synced}");

    // Up to date: nothing replayed, last_seq is after_seq.
    let (seqs, synced) = sync(&mut client, &room, 8, None).await;
    assert!(seqs.is_empty(), "{seqs:?}");
    assert_eq!(synced["last_seq"], 8, "{synced}");
    assert_eq!(synced["has_more"], false, "{synced}");

    // Live delivery goes on after a sync.
    app.post_message(&uma, &room, "live again").await;
    expect_message(&mut client, &room, 9).await;
}

// ---------------------------------------------------------------- membership

async fn joining_and_being_kicked_while_connected(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let wes = app.user("wes@example.com").await;
    let xia = app.user("xia@example.com").await;
    let mut client = connected(&app, &xia).await;
    let room = room_with(&app, &wes, &[]).await;
    app.post_message(&wes, &room, "before xia").await;

    add_member(&app, &wes, &room, &xia).await;
    let (joined, before) = client
        .drain_until("member_joined", |frame| frame["type"] == "member_joined")
        .await;
    assert!(messages_of(&before, &room).is_empty(), "{before:?}");
    assert_eq!(joined["room_id"], room.as_str(), "{joined}");
    assert_eq!(joined["member"]["user_id"], xia.id.as_str(), "{joined}");
    assert_eq!(joined["room"]["id"], room.as_str(), "{joined}");

    app.post_message(&wes, &room, "welcome").await;
    let event = expect_message(&mut client, &room, 2).await;
    assert_eq!(event["message"]["body"], "welcome", "{event}");

    let kick = app
        .call(
            "DELETE",
            &format!("/rooms/{room}/members/{}", xia.id),
            &wes.token,
            None,
        )
        .await;
    assert_eq!(kick.status, StatusCode::OK, "{kick:?}");
    let (left, before) = client
        .drain_until("member_left", |frame| frame["type"] == "member_left")
        .await;
    assert!(messages_of(&before, &room).is_empty(), "{before:?}");
    assert_eq!(left["room_id"], room.as_str(), "{left}");
    assert_eq!(left["user_id"], xia.id.as_str(), "{left}");

    app.post_message(&wes, &room, "after xia").await;
    let mut after = client.collect_for(Duration::from_secs(1)).await;
    after.extend(client.ping_pong().await);
    assert!(
        messages_of(&after, &room).is_empty(),
        "a message of a room left: {after:?}"
    );
}

/// Opening a direct conversation announces it to both users' open
/// connections; so does re-opening it after one of them left, for the user
/// it re-adds, whose connection then gets the room's messages again.
async fn opening_a_direct_room_announces_it_live_also_after_a_leave(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let yan = app.user("yan@example.com").await;
    let zoe = app.user("zoe@example.com").await;
    let mut yan_client = connected(&app, &yan).await;
    let mut zoe_client = connected(&app, &zoe).await;
    let open = || app.call("POST", "/dms", &yan.token, Some(json!({"user_id": zoe.id})));

    let opened = open().await;
    assert_eq!(opened.status, StatusCode::CREATED, "{opened:?}");
    let room = opened.data()["id"].as_str().expect("room id").to_owned();
    for (client, user) in [(&mut yan_client, &yan), (&mut zoe_client, &zoe)] {
        let (joined, _) = client
            .drain_until("member_joined", |frame| {
                frame["type"] == "member_joined" && frame["member"]["user_id"] == user.id.as_str()
            })
            .await;
        assert_eq!(joined["room"]["id"], room.as_str(), "{joined}");
    }

    let leave = app
        .call(
            "DELETE",
            &format!("/rooms/{room}/members/me"),
            &zoe.token,
            None,
        )
        .await;
    assert_eq!(leave.status, StatusCode::OK, "{leave:?}");
    zoe_client
        .drain_until("member_left", |frame| frame["type"] == "member_left")
        .await;

    let reopened = open().await;
    assert_eq!(reopened.status, StatusCode::OK, "{reopened:?}");
    let (joined, _) = zoe_client
        .drain_until("member_joined", |frame| frame["type"] == "member_joined")
        .await;
    assert_eq!(joined["room_id"], room.as_str(), "{joined}");
    assert_eq!(joined["member"]["user_id"], zoe.id.as_str(), "{joined}");
    app.post_message(&yan, &room, "welcome back").await;
    let event = expect_message(&mut zoe_client, &room, 1).await;
    assert_eq!(event["message"]["body"], "welcome back", "{event}");
}

async fn typing_reaches_the_other_members(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let yan = app.user("yan@example.com").await;
    let zoe = app.user("zoe@example.com").await;
    let room = room_with(&app, &yan, &[&zoe]).await;
    let mut typist = connected(&app, &yan).await;
    let mut other = connected(&app, &zoe).await;
    typist
        .send_json(json!({ "type": "typing", "room_id": room }))
        .await;
    let typing = other.expect_type("typing").await;
    assert_eq!(typing["room_id"], room.as_str(), "{typing}");
    assert_eq!(typing["user_id"], yan.id.as_str(), "{typing}");
    let mut own = typist.ping_pong().await;
    own.extend(typist.collect_for(Duration::from_millis(300)).await);
    assert!(
        own.iter().all(|frame| frame["type"] != "typing"),
        "the typist got its own typing: {own:?}"
    );
}

// ---------------------------------------------------------------- frames and limits

async fn bad_frames_get_error_frames_and_the_connection_stays(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let abe = app.user("abe@example.com").await;
    let room = room_with(&app, &abe, &[]).await;
    let mut client = connected(&app, &abe).await;

    client.send_json(json!({ "type": "ping" })).await;
    assert_eq!(client.next_json().await, json!({ "type": "pong" }));

    client.send_raw_text("{not json".to_owned()).await;
    expect_error(&mut client, "malformed_frame", None).await;
    client.send_json(json!({ "kind": "ping" })).await;
    expect_error(&mut client, "malformed_frame", None).await;
    client
        .send_message(Message::Binary(vec![1, 2, 3].into()))
        .await;
    expect_error(&mut client, "malformed_frame", None).await;
    client.send_json(json!({ "type": "dance" })).await;
    expect_error(&mut client, "unknown_type", None).await;
    client
        .send_json(json!({ "type": "send", "room_id": room }))
        .await;
    expect_error(&mut client, "invalid_frame", None).await;
    client
        .send_json(json!({ "type": "sync", "room_id": room, "after_seq": "zero" }))
        .await;
    expect_error(&mut client, "invalid_frame", None).await;
    client
        .send_json(json!({ "type": "sync", "room_id": room, "after_seq": 0, "limit": 0 }))
        .await;
    expect_error(&mut client, "invalid_limit", Some(&room)).await;

    client.send_json(json!({ "type": "ping" })).await;
    assert_eq!(client.next_json().await, json!({ "type": "pong" }));
    client.send_message_to(&room, "still here", "abe-1").await;
    client.expect_type("ack").await;
}

async fn a_frame_over_64_kib_closes_1009(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let bo = app.user("bo@example.com").await;
    let room = room_with(&app, &bo, &[]).await;
    let mut client = connected(&app, &bo).await;
    // Under the frame limit (but over the body limit): an error, still open.
    client
        .send_message_to(&room, &"x".repeat(60 * 1024), "bo-1")
        .await;
    expect_error(&mut client, "invalid_body", Some("bo-1")).await;
    client.ping_pong().await;
    // Over it: closed. The server may close before reading all of it.
    let frame = json!({
        "type": "send",
        "room_id": room,
        "body": "x".repeat(70 * 1024),
        "client_msg_id": "bo-2",
    });
    let _ = client
        .try_send(Message::Text(frame.to_string().into()))
        .await;
    client.expect_close(1009).await;
}

/// Sends `text` as a first text frame and continuation frames of `chunk`
/// bytes each.
async fn send_in_fragments(client: &mut WsClient, text: &str, chunk: usize) -> Result<(), String> {
    let bytes = Bytes::copy_from_slice(text.as_bytes());
    let count = bytes.len().div_ceil(chunk);
    for index in 0..count {
        let part = bytes.slice(index * chunk..((index + 1) * chunk).min(bytes.len()));
        let item = match index {
            0 => Item::FirstText(part),
            last if last == count - 1 => Item::Last(part),
            _ => Item::Continue(part),
        };
        client.try_send(Message::Continuation(item)).await?;
    }
    Ok(())
}

async fn continuation_frames_are_assembled_up_to_64_kib_then_close_1009(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let cy = app.user("cy@example.com").await;
    let room = room_with(&app, &cy, &[]).await;
    let mut client = connected(&app, &cy).await;
    let send = |body: &str, id: &str| {
        json!({ "type": "send", "room_id": room, "body": body, "client_msg_id": id }).to_string()
    };
    // A message in three fragments is one frame to the server.
    send_in_fragments(&mut client, &send("in three parts", "cy-1"), 40)
        .await
        .unwrap();
    let ack = client.expect_next_type("ack").await;
    assert_eq!(ack["message"]["body"], "in three parts", "{ack}");
    expect_message(&mut client, &room, 1).await;
    // 60 KiB in fragments: assembled, then refused as a body, still open.
    send_in_fragments(
        &mut client,
        &send(&"y".repeat(60 * 1024), "cy-2"),
        16 * 1024,
    )
    .await
    .unwrap();
    expect_error(&mut client, "invalid_body", Some("cy-2")).await;
    client.ping_pong().await;
    // Fragments adding up to more than 64 KiB: closed, however small each is.
    let _ = send_in_fragments(
        &mut client,
        &send(&"z".repeat(70 * 1024), "cy-3"),
        16 * 1024,
    )
    .await;
    client.expect_close(1009).await;
}

async fn a_client_that_stops_answering_pings_is_closed(backend: Backend) {
    let Some(app) = backend
        .spawn(&[
            ("WS_PING_INTERVAL_SECONDS", "1"),
            ("WS_IDLE_TIMEOUT_SECONDS", "2"),
        ])
        .await
    else {
        return;
    };
    let di = app.user("di@example.com").await;
    let mut alive = connected(&app, &di).await;
    let mut dead = connected(&app, &di).await;
    dead.stop_answering_pings();

    // Meanwhile a client that answers the pings, and sends nothing else, stays.
    let started = Instant::now();
    let (_, frames) = tokio::join!(
        dead.expect_close_within(1000, Duration::from_secs(6)),
        alive.collect_for(Duration::from_secs(5)),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "closed after {:?}, before the idle timeout",
        started.elapsed()
    );
    assert!(frames.is_empty(), "{frames:?}");
    alive.ping_pong().await;
}

async fn flooding_past_the_rate_limit_closes_4008(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_RATE_BURST", "20"), ("WS_RATE_PER_SECOND", "5")])
        .await
    else {
        return;
    };
    let cal = app.user("cal@example.com").await;
    let mut client = connected(&app, &cal).await;
    // Within the burst: answered.
    for _ in 0..5 {
        client.ping_pong().await;
    }
    let ping = json!({ "type": "ping" }).to_string();
    let mut closed = None;
    for _ in 0..500 {
        if client
            .try_send(Message::Text(ping.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        match client.next_frame(Duration::ZERO).await {
            Some(Frame::Close(code)) => {
                closed = Some(code);
                break;
            }
            Some(Frame::Ended(how)) => panic!("ended without a close frame: {how}"),
            _ => {}
        }
    }
    match closed {
        Some(code) => assert_eq!(code, Some(4008)),
        None => {
            client.expect_close(4008).await;
        }
    }
}

/// Memory store only: it needs thousands of messages.
#[actix_web::test]
async fn a_consumer_too_slow_to_keep_up_is_closed_4008() {
    let app = Rc::new(
        Backend::Memory
            .spawn(&[("WS_QUEUE_CAPACITY", "16")])
            .await
            .unwrap(),
    );
    let dan = app.user("dan@example.com").await;
    let eli = app.user("eli@example.com").await;
    let room = room_with(&app, &dan, &[&eli]).await;
    let mut slow = connected(&app, &eli).await;
    // From here on the slow client reads nothing until all is sent: the
    // server's socket buffers fill, then its queue for this connection.
    const SENDERS: usize = 4;
    const EACH: usize = 800;
    let body = "y".repeat(4000);
    let started = Instant::now();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (app, dan, room, body) = (app.clone(), dan.clone(), room.clone(), body.clone());
            actix_web::rt::spawn(async move {
                for _ in 0..EACH {
                    app.post_message(&dan, &room, &body).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let sending = started.elapsed();
    let before = slow
        .expect_close_within(4008, Duration::from_secs(15))
        .await;
    let delivered = messages_of(&before, &room).len();
    assert!(
        delivered < SENDERS * EACH,
        "all {delivered} messages were delivered: the test did not outrun the buffers"
    );
    // What was delivered before the close has no gap.
    let seqs: Vec<u64> = messages_of(&before, &room)
        .into_iter()
        .map(seq_of)
        .collect();
    assert_eq!(
        seqs,
        (1..=delivered as u64).collect::<Vec<_>>(),
        "sent in {sending:?}"
    );
}

// ---------------------------------------------------------------- origin

async fn a_foreign_origin_is_refused_403(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let fay = app.user("fay@example.com").await;
    let refused = WsClient::connect(&app, Some(&fay.token), Some("http://evil.example")).await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    let unauthenticated = WsClient::connect(&app, None, Some("http://evil.example")).await;
    assert_eq!(unauthenticated.err(), Some(StatusCode::FORBIDDEN));
    // No Origin: a non-browser client, allowed.
    WsClient::connect_ready(&app, &fay.token).await;
    // The server's own origin, allowed by default.
    let own = origin_of(&app);
    let mut client = WsClient::connect(&app, Some(&fay.token), Some(&own))
        .await
        .unwrap_or_else(|status| panic!("own origin {own} refused: {status}"));
    client.expect_next_type("ready").await;
}

async fn allowed_origins_are_accepted(backend: Backend) {
    let Some(app) = backend
        .spawn(&[(
            "ALLOWED_ORIGINS",
            "http://chat.example,https://other.example",
        )])
        .await
    else {
        return;
    };
    let gil = app.user("gil@example.com").await;
    for origin in ["http://chat.example", "https://other.example"] {
        let mut client = WsClient::connect(&app, Some(&gil.token), Some(origin))
            .await
            .unwrap_or_else(|status| panic!("{origin} refused: {status}"));
        client.expect_next_type("ready").await;
    }
    let refused = WsClient::connect(&app, Some(&gil.token), Some("http://evil.example")).await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
}

// ---------------------------------------------------------------- shutdown

#[actix_web::test]
async fn sigterm_closes_connections_with_1001_and_exits_0() {
    let mut server =
        ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4"), ("JWT_SECRET", SECRET)]);
    let app = TestApp::connect(&server.base);
    let hugo = app.user("hugo@example.com").await;
    let room = room_with(&app, &hugo, &[]).await;
    let mut client = WsClient::connect_to(&server.base, Some(&hugo.token), None)
        .await
        .unwrap();
    client.expect_next_type("ready").await;
    client
        .send_message_to(&room, "before the end", "hugo-1")
        .await;
    client.expect_type("ack").await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    client
        .expect_close_within(1001, Duration::from_secs(10))
        .await;
    let exit = server
        .wait_for_exit(Duration::from_secs(20))
        .expect("exit after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", server.log());
}

on_both_stores!(
    a_bearer_header_authenticates,
    a_first_auth_frame_authenticates,
    a_first_frame_other_than_auth_closes_4001,
    bad_tokens_on_the_upgrade_request_are_refused,
    bad_tokens_in_the_auth_frame_close_4001,
    revoking_the_session_closes_its_connections_4001,
    a_connection_belongs_to_the_session_of_the_token_it_holds,
    a_connection_is_closed_4001_when_its_token_expires,
    re_authenticating_before_expiry_keeps_the_connection,
    re_authenticating_as_someone_else_or_with_a_bad_token_is_an_error,
    send_is_acked_with_the_stored_message,
    a_repeated_client_msg_id_acks_the_first_message,
    failed_sends_answer_an_error_with_the_client_msg_id,
    messages_reach_every_member_connection,
    concurrent_senders_are_delivered_in_seq_order,
    sync_replays_what_was_missed,
    joining_and_being_kicked_while_connected,
    opening_a_direct_room_announces_it_live_also_after_a_leave,
    typing_reaches_the_other_members,
    bad_frames_get_error_frames_and_the_connection_stays,
    a_frame_over_64_kib_closes_1009,
    continuation_frames_are_assembled_up_to_64_kib_then_close_1009,
    a_client_that_stops_answering_pings_is_closed,
    flooding_past_the_rate_limit_closes_4008,
    a_foreign_origin_is_refused_403,
    allowed_origins_are_accepted,
);
