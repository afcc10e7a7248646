//! Read markers, unread counts and receipts (issue 13), black-box on both
//! stores, as docs/api.md ("Read markers", the room in the caller's list,
//! the permission table) and docs/protocol.md ("Read markers and
//! receipts") describe them: `PUT /rooms/{id}/read` forward only and its
//! 400s, the counts of `GET /rooms`, `GET /rooms/{id}/receipts`, the
//! `read_marker` frame on every connection of the user (on both nodes of a
//! cluster too) and the `receipt` frame on the other members'.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chat_features;
mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use chat_features::{
    NO_BODY, add, assert_no_server_error, counts, counts_of, delete_message, expect, expect_error,
    id_of, leave, mark_read, my_rooms, read_up_to, receipts, room, say,
};
use common::cluster::Cluster;
use common::ws::WsClient;
use common::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a connection must stay silent to count as receiving nothing.
const QUIET: Duration = Duration::from_millis(300);

async fn spawn(backend: Backend) -> Option<TestApp> {
    let app = backend.spawn(&[]).await;
    if app.is_none() {
        eprintln!("skipped: no PostgreSQL here");
    }
    app
}

/// The receipts of a room as `(user_id, last_read_seq)`, asserting a 200.
async fn receipt_pairs(app: &TestApp, user: &TestUser, room: &str) -> Vec<(String, i64)> {
    let reply = expect(receipts(app, user, room).await, StatusCode::OK);
    reply
        .data()
        .as_array()
        .expect("an array of receipts")
        .iter()
        .map(|receipt| {
            (
                receipt["user_id"].as_str().expect("user_id").to_owned(),
                receipt["last_read_seq"].as_i64().expect("last_read_seq"),
            )
        })
        .collect()
}

/// Asserts that `client` (`who`) gets nothing for [`QUIET`] and nothing
/// before the pong of a ping.
async fn assert_quiet(client: &mut WsClient, who: &str) {
    let mut frames = client.collect_for(QUIET).await;
    frames.extend(client.ping_pong().await);
    assert!(frames.is_empty(), "{who} received {frames:?}");
}

/// Asserts that `frame` is the `read_marker` of `room` with `counts`.
#[track_caller]
fn assert_read_marker(frame: &Value, room: &str, counts: (i64, i64, i64)) {
    assert_eq!(frame["type"], "read_marker", "{frame}");
    assert_eq!(frame["room_id"], room, "{frame}");
    assert_eq!(counts_of(frame), counts, "{frame}");
    assert!(
        frame.get("pos").is_none(),
        "a read_marker has no pos: {frame}"
    );
}

/// Asserts that `frame` is the `receipt` of `user` in `room` at `seq`.
#[track_caller]
fn assert_receipt(frame: &Value, room: &str, user: &TestUser, seq: i64) {
    assert_eq!(frame["type"], "receipt", "{frame}");
    assert_eq!(frame["room_id"], room, "{frame}");
    assert_eq!(frame["user_id"], user.id.as_str(), "{frame}");
    assert_eq!(frame["last_read_seq"], seq, "{frame}");
    assert!(frame.get("pos").is_none(), "a receipt has no pos: {frame}");
    assert!(
        frame.get("unread_count").is_none(),
        "a receipt tells no counts: {frame}"
    );
}

async fn the_marker_moves_forward_only_and_never_past_last_seq(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "markers", "private", &[&bob]).await;
    let empty = room_named(&app, &ada, "empty", &[&bob]).await;
    for text in ["one", "two", "three"] {
        say(&app, &ada, &room, text).await;
    }
    assert_eq!(counts(&app, &bob, &room).await, (0, 3, 0));
    let state = read_up_to(&app, &bob, &room, 2).await;
    assert_eq!(state["room_id"], room.as_str(), "{state}");
    assert_eq!(counts_of(&state), (2, 1, 0), "{state}");
    for older in [1, 0, 2] {
        let state = read_up_to(&app, &bob, &room, older).await;
        assert_eq!(counts_of(&state), (2, 1, 0), "back to {older}: {state}");
    }
    for ahead in [4, 1000, i64::MAX] {
        let reply = mark_read(&app, &bob, &room, json!({ "seq": ahead })).await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "seq_ahead");
    }
    assert_eq!(counts(&app, &bob, &room).await, (2, 1, 0));
    assert_eq!(
        counts_of(&read_up_to(&app, &bob, &room, 3).await),
        (3, 0, 0)
    );
    assert_eq!(counts(&app, &bob, &room).await, (3, 0, 0));
    // A new message is unread again; the marker stays.
    say(&app, &ada, &room, "four").await;
    assert_eq!(counts(&app, &bob, &room).await, (3, 1, 0));
    // Ada's marker is her own.
    assert_eq!(counts(&app, &ada, &room).await, (0, 0, 0));

    assert_eq!(
        counts_of(&read_up_to(&app, &bob, &empty, 0).await),
        (0, 0, 0)
    );
    let reply = mark_read(&app, &bob, &empty, json!({ "seq": 1 })).await;
    expect_error(&reply, StatusCode::BAD_REQUEST, "seq_ahead");
}

/// A private room of `owner` named `name` with `members`.
async fn room_named(app: &TestApp, owner: &TestUser, name: &str, members: &[&TestUser]) -> String {
    room(app, owner, name, "private", members).await
}

async fn a_marker_that_is_not_a_seq_is_400(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "bad markers", "private", &[]).await;
    say(&app, &ada, &room, "hello").await;
    for seq in [
        json!(-1),
        json!(i64::MIN),
        json!("1"),
        json!(1.5),
        json!(null),
        json!(true),
        json!([1]),
        json!({ "seq": 1 }),
        json!(u64::MAX),
        json!(1e300),
    ] {
        let reply = mark_read(&app, &ada, &room, json!({ "seq": seq })).await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "invalid_seq");
    }
    for body in [json!({}), json!([]), json!("1"), json!(1)] {
        let reply = mark_read(&app, &ada, &room, body).await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "invalid_body");
    }
    let reply = app
        .send(
            "PUT",
            &format!("/rooms/{room}/read"),
            Some(&ada.token),
            Some("application/json"),
            "{\"seq\":",
        )
        .await;
    expect_error(&reply, StatusCode::BAD_REQUEST, "malformed_json");
    assert_eq!(counts(&app, &ada, &room).await, (0, 0, 0));
}

async fn unread_counts_leave_out_ones_own_and_deleted_messages(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "counting", "private", &[&bob]).await;
    let quiet = room_named(&app, &ada, "quiet", &[&bob]).await;
    say(&app, &ada, &room, "one").await;
    say(&app, &ada, &room, "two").await;
    say(&app, &bob, &room, "three").await;
    let gone = id_of(&say(&app, &ada, &room, "four").await);
    delete_message(&app, &ada, &room, &gone).await;

    // Every room in the list carries the read state, quiet ones too.
    for entry in my_rooms(&app, &bob).await {
        for key in [
            "last_read_seq",
            "unread_count",
            "mention_count",
            "id",
            "last_seq",
        ] {
            assert!(entry.get(key).is_some(), "no {key} in {entry}");
        }
    }
    assert_eq!(counts(&app, &bob, &quiet).await, (0, 0, 0));
    // Sending moved nobody's marker; own and deleted messages do not count.
    assert_eq!(counts(&app, &bob, &room).await, (0, 2, 0));
    assert_eq!(counts(&app, &ada, &room).await, (0, 1, 0));
    // The tombstone's seq is a fine marker.
    assert_eq!(
        counts_of(&read_up_to(&app, &bob, &room, 4).await),
        (4, 0, 0)
    );

    // Leaving drops the marker: back in, everything is unread again.
    leave(&app, &bob, &room).await;
    add(&app, &ada, &room, &bob).await;
    assert_eq!(counts(&app, &bob, &room).await, (0, 2, 0));
    let pairs = receipt_pairs(&app, &ada, &room).await;
    assert_eq!(pairs, vec![(ada.id.clone(), 0), (bob.id.clone(), 0)]);
}

async fn receipts_list_every_member_in_joining_order(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let room = room(&app, &ada, "receipts", "private", &[&bob, &cy]).await;
    for text in ["one", "two", "three"] {
        say(&app, &ada, &room, text).await;
    }
    read_up_to(&app, &bob, &room, 2).await;
    read_up_to(&app, &cy, &room, 3).await;
    read_up_to(&app, &cy, &room, 1).await;
    let expected = vec![(ada.id.clone(), 0), (bob.id.clone(), 2), (cy.id.clone(), 3)];
    for reader in [&ada, &bob, &cy] {
        assert_eq!(receipt_pairs(&app, reader, &room).await, expected);
    }
}

async fn outsiders_get_404_in_a_private_room_and_403_in_a_public_one(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let visitor = app.user("visitor@example.com").await;
    let private = room(&app, &ada, "private", "private", &[]).await;
    let public = room(&app, &ada, "public", "public", &[]).await;
    say(&app, &ada, &private, "hidden").await;
    say(&app, &ada, &public, "open").await;
    let unknown = Uuid::new_v4().to_string();
    for room in [&private, &unknown] {
        let reply = mark_read(&app, &visitor, room, json!({ "seq": 1 })).await;
        expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
        let reply = receipts(&app, &visitor, room).await;
        expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
    }
    let reply = mark_read(&app, &visitor, &public, json!({ "seq": 1 })).await;
    expect_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    let reply = receipts(&app, &visitor, &public).await;
    expect_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        receipt_pairs(&app, &ada, &public).await,
        vec![(ada.id.clone(), 0)]
    );
}

async fn a_move_reaches_all_the_users_connections_and_the_others_as_receipts(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "devices", "private", &[&bob]).await;
    say(&app, &ada, &room, "one").await;
    let mention = json!({ "body": "@bob", "mentions": [bob.id] });
    expect(
        chat_features::send(&app, &ada, &room, mention).await,
        StatusCode::CREATED,
    );
    say(&app, &ada, &room, "three").await;

    let (mut phone, _) = WsClient::connect_ready(&app, &bob.token).await;
    let (mut laptop, _) = WsClient::connect_ready(&app, &bob.token).await;
    let (mut ada_ws, _) = WsClient::connect_ready(&app, &ada.token).await;

    // Reading on the phone (over REST) clears the badge on the laptop.
    let state = read_up_to(&app, &bob, &room, 1).await;
    assert_eq!(counts_of(&state), (1, 2, 1));
    for (client, who) in [(&mut phone, "phone"), (&mut laptop, "laptop")] {
        let frame = client.next_json().await;
        assert_read_marker(&frame, &room, (1, 2, 1));
        assert_quiet(client, who).await;
    }
    let receipt = ada_ws.next_json().await;
    assert_receipt(&receipt, &room, &bob, 1);
    assert_quiet(&mut ada_ws, "ada").await;

    // A marker that does not move sends nothing.
    read_up_to(&app, &bob, &room, 1).await;
    read_up_to(&app, &bob, &room, 0).await;
    assert_quiet(&mut laptop, "laptop").await;
    assert_quiet(&mut phone, "phone").await;
    assert_quiet(&mut ada_ws, "ada").await;

    read_up_to(&app, &bob, &room, 3).await;
    assert_read_marker(&laptop.next_json().await, &room, (3, 0, 0));
    assert_read_marker(&phone.next_json().await, &room, (3, 0, 0));
    assert_receipt(&ada_ws.next_json().await, &room, &bob, 3);

    // And the other way round: Ada's move is a receipt for both of Bob's.
    say(&app, &bob, &room, "four").await;
    for client in [&mut laptop, &mut phone, &mut ada_ws] {
        client.expect_type("message").await;
    }
    read_up_to(&app, &ada, &room, 4).await;
    assert_read_marker(&ada_ws.next_json().await, &room, (4, 0, 0));
    assert_receipt(&laptop.next_json().await, &room, &ada, 4);
    assert_receipt(&phone.next_json().await, &room, &ada, 4);
    // Nothing was replayed or logged for the markers.
    let events = app
        .call(
            "GET",
            &format!("/rooms/{room}/events?after_pos=0"),
            &ada.token,
            NO_BODY,
        )
        .await;
    let events = expect(events, StatusCode::OK).data()["events"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|event| event["type"] != "read_marker" && event["type"] != "receipt"),
        "{events}"
    );
}

async fn odd_marker_and_receipt_paths_are_never_a_server_error(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "fuzz", "private", &[]).await;
    say(&app, &ada, &room, "one").await;
    let mut requests = Vec::new();
    for odd in chat_features::odd_ids() {
        requests.push((
            "PUT",
            format!("/rooms/{odd}/read"),
            Some(json!({ "seq": 1 }).to_string()),
        ));
        requests.push(("GET", format!("/rooms/{odd}/receipts"), None));
    }
    for method in ["GET", "POST", "DELETE"] {
        requests.push((method, format!("/rooms/{room}/read"), None));
    }
    for method in ["PUT", "POST", "DELETE"] {
        requests.push((method, format!("/rooms/{room}/receipts"), None));
    }
    for body in [
        "",
        "null",
        "{\"seq\":1e999}",
        "{\"seq\":1,\"seq\":2}",
        "\u{0}",
    ] {
        requests.push(("PUT", format!("/rooms/{room}/read"), Some(body.to_owned())));
    }
    let statuses = assert_no_server_error(&app, &ada, &requests).await;
    for (request, status) in requests.iter().zip(&statuses) {
        assert!(status.is_client_error(), "{request:?}: {status}");
    }
    assert_eq!(counts(&app, &ada, &room).await, (0, 0, 0));
}

/// The most either count shows: "this many or more" (docs/api.md).
const COUNT_CAP: i64 = 1000;

async fn counts_stop_at_1000(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "backlog", "private", &[&bob]).await;
    let path = format!("/rooms/{room}/messages");
    let mention = json!({ "body": "@bob", "mentions": [bob.id] });
    for _ in 0..=COUNT_CAP + 1 {
        let reply = app
            .call("POST", &path, &ada.token, Some(mention.clone()))
            .await;
        expect(reply, StatusCode::CREATED);
    }
    assert_eq!(counts(&app, &bob, &room).await, (0, COUNT_CAP, COUNT_CAP));
    let state = read_up_to(&app, &bob, &room, 2).await;
    assert_eq!(counts_of(&state), (2, COUNT_CAP, COUNT_CAP));
    let state = read_up_to(&app, &bob, &room, 3).await;
    assert_eq!(counts_of(&state), (3, COUNT_CAP - 1, COUNT_CAP - 1));
}

async fn racing_devices_never_move_the_marker_backward(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "race", "private", &[&bob]).await;
    let total: i64 = 30;
    for index in 0..total {
        say(&app, &ada, &room, &format!("message {index}")).await;
    }
    // Seqs in an order that interleaves high and low ones.
    let seqs: Vec<i64> = (1..=total).map(|n| (n * 7) % total + 1).collect();
    let answers = futures_util::future::join_all(
        seqs.iter()
            .map(|seq| mark_read(&app, &bob, &room, json!({ "seq": seq }))),
    )
    .await;
    for answer in answers {
        let state = expect(answer, StatusCode::OK).data().clone();
        let (last_read, unread, _) = counts_of(&state);
        assert_eq!(last_read + unread, total, "{state}");
    }
    assert_eq!(counts(&app, &bob, &room).await, (total, 0, 0));
    assert_eq!(
        receipt_pairs(&app, &ada, &room).await,
        vec![(ada.id.clone(), 0), (bob.id.clone(), total)]
    );
}

on_both_stores!(
    counts_stop_at_1000,
    racing_devices_never_move_the_marker_backward,
    the_marker_moves_forward_only_and_never_past_last_seq,
    a_marker_that_is_not_a_seq_is_400,
    unread_counts_leave_out_ones_own_and_deleted_messages,
    receipts_list_every_member_in_joining_order,
    outsiders_get_404_in_a_private_room_and_403_in_a_public_one,
    a_move_reaches_all_the_users_connections_and_the_others_as_receipts,
    odd_marker_and_receipt_paths_are_never_a_server_error,
);

/// Two nodes on one PostgreSQL and Redis: marking read on node A reaches
/// the same user's connection on node B as `read_marker`, and another
/// member's connection on B as `receipt`.
#[actix_web::test]
async fn a_read_marker_reaches_the_users_connection_on_the_other_node() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        eprintln!("skipped: no PostgreSQL or Redis here");
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let ada = a.user("ada@example.com").await;
    let bob = a.user("bob@example.com").await;
    let room = room(a, &ada, "two nodes", "private", &[&bob]).await;
    say(a, &ada, &room, "one").await;
    say(a, &ada, &room, "two").await;

    let (mut bob_on_a, _) = WsClient::connect_ready(a, &bob.token).await;
    let (mut bob_on_b, _) = WsClient::connect_ready(b, &bob.token).await;
    let (mut ada_on_b, _) = WsClient::connect_ready(b, &ada.token).await;

    let state = read_up_to(a, &bob, &room, 1).await;
    assert_eq!(counts_of(&state), (1, 1, 0));
    assert_read_marker(&bob_on_b.next_json().await, &room, (1, 1, 0));
    assert_read_marker(&bob_on_a.next_json().await, &room, (1, 1, 0));
    assert_receipt(&ada_on_b.next_json().await, &room, &bob, 1);
    assert_quiet(&mut bob_on_b, "bob on node B").await;
    assert_quiet(&mut ada_on_b, "ada on node B").await;
    // Node B serves the same state.
    assert_eq!(counts(b, &bob, &room).await, (1, 1, 0));
}
