//! Replies and mentions (issue 13), black-box on both stores, as
//! docs/api.md ("Replies and mentions", the message object) and
//! docs/protocol.md (the `send` frame) describe them: `reply_to` and
//! `mentions` round trip over REST and the WebSocket, their 400s, and
//! mentions driving `mention_count` in `GET /rooms`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chat_features;
mod common;

use actix_web::http::StatusCode;
use chat_features::{
    NO_BODY, assert_no_server_error, counts, delete_message, expect, expect_error, history, id_of,
    message_in_history, read_up_to, room, say, send,
};
use common::ws::WsClient;
use common::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

/// The most users one message mentions (docs/api.md).
const MAX_MENTIONS: usize = 50;

async fn spawn(backend: Backend) -> Option<TestApp> {
    let app = backend.spawn(&[]).await;
    if app.is_none() {
        eprintln!("skipped: no PostgreSQL here");
    }
    app
}

/// The room's `last_seq` as `reader` sees it.
async fn last_seq(app: &TestApp, reader: &TestUser, room: &str) -> i64 {
    let reply = app
        .call("GET", &format!("/rooms/{room}"), &reader.token, NO_BODY)
        .await;
    expect(reply, StatusCode::OK).data()["last_seq"]
        .as_i64()
        .expect("last_seq")
}

/// Sends a `send` frame with `extra` fields and reads until its ack or
/// error (frames of other kinds skipped).
async fn ws_send(client: &mut WsClient, room: &str, client_msg_id: &str, extra: Value) -> Value {
    let mut frame = json!({
        "type": "send",
        "room_id": room,
        "body": format!("over the socket {client_msg_id}"),
        "client_msg_id": client_msg_id,
    });
    for (key, value) in extra.as_object().expect("extra fields") {
        frame[key] = value.clone();
    }
    client.send_json(frame).await;
    client
        .drain_until("the ack or error of a send", |frame| {
            (frame["type"] == "ack" && frame["client_msg_id"] == client_msg_id)
                || (frame["type"] == "error" && frame["ref"] == client_msg_id)
        })
        .await
        .0
}

/// Sends each of `values` as the `field` of a message, over REST and then
/// in a WebSocket `send` frame, asserting each is refused (400 `rest_code`,
/// an error frame `ws_code`).
async fn assert_sends_refused(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    field: &str,
    values: &[Value],
    (rest_code, ws_code): (&str, &str),
) {
    for value in values {
        let reply = send(app, user, room, json!({ "body": "refused", field: value })).await;
        expect_error(&reply, StatusCode::BAD_REQUEST, rest_code);
    }
    let (mut ws, _) = WsClient::connect_ready(app, &user.token).await;
    for (index, value) in values.iter().enumerate() {
        let id = format!("refused-{field}-{index}");
        let error = ws_send(&mut ws, room, &id, json!({ field: value })).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], ws_code, "{error}");
    }
}

async fn a_reply_round_trips_over_rest_and_the_websocket(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "replies", "private", &[&bob]).await;
    let original = say(&app, &ada, &room, "the question").await;
    let original_id = id_of(&original);
    assert_eq!(original["reply_to"], Value::Null, "{original}");
    assert_eq!(original["mentions"], json!([]), "{original}");
    assert_eq!(original["reactions"], json!([]), "{original}");

    let (mut ada_ws, _) = WsClient::connect_ready(&app, &ada.token).await;
    let reply = send(
        &app,
        &bob,
        &room,
        json!({ "body": "an answer", "reply_to": original_id }),
    )
    .await;
    let rest_reply = expect(reply, StatusCode::CREATED).data().clone();
    assert_eq!(rest_reply["reply_to"], original_id.as_str(), "{rest_reply}");
    let live = ada_ws.expect_type("message").await;
    assert_eq!(live["message"]["id"], rest_reply["id"], "{live}");
    assert_eq!(live["message"]["reply_to"], original_id.as_str(), "{live}");

    let (mut bob_ws, _) = WsClient::connect_ready(&app, &bob.token).await;
    let ack = ws_send(&mut bob_ws, &room, "r1", json!({ "reply_to": original_id })).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["message"]["reply_to"], original_id.as_str(), "{ack}");
    let live = ada_ws.expect_type("message").await;
    assert_eq!(live["message"]["id"], ack["message"]["id"], "{live}");
    assert_eq!(live["message"]["reply_to"], original_id.as_str(), "{live}");

    let stored = history(&app, &ada, &room).await;
    let reply_tos: Vec<&Value> = stored.iter().map(|message| &message["reply_to"]).collect();
    assert_eq!(
        reply_tos,
        [&Value::Null, &json!(original_id), &json!(original_id)],
        "{stored:?}"
    );
    // A reply to a reply is a reply like any other.
    let nested = send(
        &app,
        &ada,
        &room,
        json!({ "body": "and a follow-up", "reply_to": rest_reply["id"] }),
    )
    .await;
    assert_eq!(
        expect(nested, StatusCode::CREATED).data()["reply_to"],
        rest_reply["id"]
    );
}

async fn a_reply_to_another_rooms_message_or_an_unknown_id_is_invalid_reply(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let here = room(&app, &ada, "here", "private", &[]).await;
    let elsewhere = room(&app, &ada, "elsewhere", "private", &[]).await;
    say(&app, &ada, &here, "first").await;
    let foreign = id_of(&say(&app, &ada, &elsewhere, "in another room").await);
    let targets = [json!(foreign), json!(Uuid::new_v4())];
    let codes = ("invalid_reply", "invalid_reply");
    assert_sends_refused(&app, &ada, &here, "reply_to", &targets, codes).await;
    assert_eq!(last_seq(&app, &ada, &here).await, 1, "nothing was stored");
}

async fn a_reply_to_a_deleted_message_is_allowed_and_a_deleted_reply_keeps_reply_to(
    backend: Backend,
) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "tombstones", "private", &[&bob]).await;
    let original = id_of(&say(&app, &ada, &room, "soon gone").await);
    delete_message(&app, &ada, &room, &original).await;
    let reply = send(
        &app,
        &bob,
        &room,
        json!({ "body": "replying to a tombstone", "reply_to": original }),
    )
    .await;
    let reply = expect(reply, StatusCode::CREATED).data().clone();
    assert_eq!(reply["reply_to"], original.as_str(), "{reply}");

    let (mut ws, _) = WsClient::connect_ready(&app, &bob.token).await;
    let ack = ws_send(
        &mut ws,
        &room,
        "to-a-tombstone",
        json!({ "reply_to": original }),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["message"]["reply_to"], original.as_str(), "{ack}");

    let tombstone = delete_message(&app, &bob, &room, &id_of(&reply)).await;
    assert_eq!(tombstone["deleted"], true, "{tombstone}");
    assert_eq!(tombstone["body"], Value::Null, "{tombstone}");
    assert_eq!(tombstone["reply_to"], original.as_str(), "{tombstone}");
    let stored = message_in_history(&app, &ada, &room, &id_of(&reply)).await;
    assert_eq!(stored["reply_to"], original.as_str(), "{stored}");
}

async fn a_reply_to_that_is_not_a_uuid_is_invalid_body(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "bad ids", "private", &[]).await;
    let odd = [
        json!("x"),
        json!(""),
        json!(42),
        json!(["00000000-0000-0000-0000-000000000000"]),
        json!({ "id": "x" }),
        json!(true),
        json!("00000000-0000-0000-0000-00000000000g"),
    ];
    // protocol.md: a mistyped field of a frame is `invalid_frame`.
    let codes = ("invalid_body", "invalid_frame");
    assert_sends_refused(&app, &ada, &room, "reply_to", &odd, codes).await;
    // `null` is no reply at all.
    let plain = send(&app, &ada, &room, json!({ "body": "hi", "reply_to": null })).await;
    assert_eq!(
        expect(plain, StatusCode::CREATED).data()["reply_to"],
        Value::Null
    );
    assert_eq!(last_seq(&app, &ada, &room).await, 1);
}

async fn mentions_round_trip_each_once_in_the_order_sent(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let room = room(&app, &ada, "mentions", "private", &[&bob, &cy]).await;
    let (mut bob_ws, _) = WsClient::connect_ready(&app, &bob.token).await;
    let reply = send(
        &app,
        &ada,
        &room,
        json!({ "body": "@cy @bob @cy", "mentions": [cy.id, bob.id, cy.id] }),
    )
    .await;
    let message = expect(reply, StatusCode::CREATED).data().clone();
    assert_eq!(message["mentions"], json!([cy.id, bob.id]), "{message}");
    let live = bob_ws.expect_type("message").await;
    assert_eq!(
        live["message"]["mentions"],
        json!([cy.id, bob.id]),
        "{live}"
    );

    // Oneself may be mentioned; over the WebSocket too.
    let ack = ws_send(
        &mut bob_ws,
        &room,
        "self",
        json!({ "mentions": [bob.id, ada.id] }),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["message"]["mentions"], json!([bob.id, ada.id]), "{ack}");

    let stored = message_in_history(&app, &cy, &room, &id_of(&message)).await;
    assert_eq!(stored["mentions"], json!([cy.id, bob.id]), "{stored}");
    // The maximum, reached with repeats dropped, is fine.
    let mut many = vec![json!(ada.id); MAX_MENTIONS * 2];
    many.push(json!(bob.id));
    let reply = send(
        &app,
        &ada,
        &room,
        json!({ "body": "all", "mentions": many }),
    )
    .await;
    assert_eq!(
        expect(reply, StatusCode::CREATED).data()["mentions"],
        json!([ada.id, bob.id])
    );
    // A deleted message loses its mentions.
    let tombstone = delete_message(&app, &ada, &room, &id_of(&message)).await;
    assert_eq!(tombstone["mentions"], json!([]), "{tombstone}");
}

async fn too_many_non_member_unknown_and_malformed_mentions_are_400(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let outsider = app.user("out@example.com").await;
    let room = room(&app, &ada, "strict mentions", "private", &[&bob]).await;
    let too_many: Vec<String> = (0..=MAX_MENTIONS)
        .map(|_| Uuid::new_v4().to_string())
        .collect();
    let invalid = [
        json!(too_many),
        json!([outsider.id]),
        json!([bob.id, outsider.id]),
        json!([Uuid::new_v4()]),
    ];
    let codes = ("invalid_mentions", "invalid_mentions");
    assert_sends_refused(&app, &ada, &room, "mentions", &invalid, codes).await;
    // Values that are not arrays of UUIDs: a wrong JSON type or value.
    for mentions in [
        json!(["x"]),
        json!("x"),
        json!(bob.id),
        json!([42]),
        json!([[bob.id]]),
        json!({ "id": bob.id }),
    ] {
        let reply = send(
            &app,
            &ada,
            &room,
            json!({ "body": "hey", "mentions": mentions }),
        )
        .await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "invalid_body");
    }
    assert_eq!(last_seq(&app, &ada, &room).await, 0, "nothing was stored");
}

async fn mentions_drive_mention_count_in_get_rooms(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let room = room(&app, &ada, "badges", "private", &[&bob, &cy]).await;
    let to_bob = send(
        &app,
        &ada,
        &room,
        json!({ "body": "@bob", "mentions": [bob.id] }),
    )
    .await;
    let to_bob = id_of(expect(to_bob, StatusCode::CREATED).data());
    let to_both = send(
        &app,
        &ada,
        &room,
        json!({ "body": "@bob @cy", "mentions": [bob.id, cy.id] }),
    )
    .await;
    expect(to_both, StatusCode::CREATED);
    say(&app, &ada, &room, "nobody in particular").await;
    // Bob mentions himself and Cy: his own message never counts for him.
    let own = send(
        &app,
        &bob,
        &room,
        json!({ "body": "@bob @cy", "mentions": [bob.id, cy.id] }),
    )
    .await;
    expect(own, StatusCode::CREATED);

    assert_eq!(counts(&app, &ada, &room).await, (0, 1, 0));
    assert_eq!(counts(&app, &bob, &room).await, (0, 3, 2));
    assert_eq!(counts(&app, &cy, &room).await, (0, 4, 2));

    // A deleted mention no longer counts, nor does the message.
    delete_message(&app, &ada, &room, &to_bob).await;
    assert_eq!(counts(&app, &bob, &room).await, (0, 2, 1));

    // Reading up to seq 2 (the second mention) leaves the plain message.
    let state = read_up_to(&app, &bob, &room, 2).await;
    assert_eq!(chat_features::counts_of(&state), (2, 1, 0), "{state}");
    assert_eq!(counts(&app, &bob, &room).await, (2, 1, 0));
    // Cy's counts are his own: the deleted message was unread for him too.
    assert_eq!(counts(&app, &cy, &room).await, (0, 3, 2));

    // A mention sent over the WebSocket counts the same.
    let (mut ws, _) = WsClient::connect_ready(&app, &ada.token).await;
    let ack = ws_send(
        &mut ws,
        &room,
        "ws-mention",
        json!({ "mentions": [bob.id] }),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(counts(&app, &bob, &room).await, (2, 2, 1));
}

async fn odd_input_on_the_send_path_is_never_a_server_error(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "fuzz", "private", &[]).await;
    let mut requests = Vec::new();
    for id in chat_features::odd_ids() {
        requests.push((
            "POST",
            format!("/rooms/{id}/messages"),
            Some(json!({ "body": "x", "reply_to": Uuid::new_v4() }).to_string()),
        ));
    }
    for body in [
        json!({ "body": "x", "reply_to": "" }),
        json!({ "body": "x", "reply_to": null, "mentions": null }),
        json!({ "body": "x", "mentions": [null] }),
        json!({ "body": "x", "mentions": [] }),
        json!({ "body": "x", "mentions": vec![ada.id.clone(); 10_000] }),
        json!({ "body": "x", "reply_to": "00000000-0000-0000-0000-000000000000" }),
    ] {
        requests.push((
            "POST",
            format!("/rooms/{room}/messages"),
            Some(body.to_string()),
        ));
    }
    let statuses = assert_no_server_error(&app, &ada, &requests).await;
    // The wrong ids are 404 `not_found` or `room_not_found`, never a success.
    for status in &statuses[..chat_features::odd_ids().len()] {
        assert!(
            *status == StatusCode::NOT_FOUND || *status == StatusCode::BAD_REQUEST,
            "{statuses:?}"
        );
    }
}

on_both_stores!(
    a_reply_round_trips_over_rest_and_the_websocket,
    a_reply_to_another_rooms_message_or_an_unknown_id_is_invalid_reply,
    a_reply_to_a_deleted_message_is_allowed_and_a_deleted_reply_keeps_reply_to,
    a_reply_to_that_is_not_a_uuid_is_invalid_body,
    mentions_round_trip_each_once_in_the_order_sent,
    too_many_non_member_unknown_and_malformed_mentions_are_400,
    mentions_drive_mention_count_in_get_rooms,
    odd_input_on_the_send_path_is_never_a_server_error,
);
