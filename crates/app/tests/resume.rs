//! Resuming by position (issue 11, docs/protocol.md "Server → client
//! events", "Ordering and delivery", "Resuming", "Retention"), black-box on
//! both stores: a client that was away replays exactly what it missed, by
//! `sync` and by `GET /rooms/{id}/events`, and its applied state equals a
//! fresh load; live events of a burst arrive in position order, each once;
//! bad requests are errors that keep the connection; a removed member and
//! an outsider see nothing; `sync` by seq is unchanged; a pruned position
//! asks for a resync.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use actix_web::http::StatusCode;
use chrono::Utc;
use common::resume::{
    self, Outcome, RoomState, a_comes_back, a_goes_away, add_member, expect_call, fetch_state,
    full_history, is_event, kinds, last_pos, pos_of, post, rest_events, ws_sync, ws_sync_all,
};
use common::ws::WsClient;
use common::{Backend, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

on_both_stores!(
    a_client_that_was_away_replays_exactly_what_it_missed,
    a_burst_from_many_clients_arrives_in_position_order_each_once,
    bad_syncs_are_error_frames_and_the_connection_stays_usable,
    bad_event_queries_over_rest_are_400_403_and_404,
    a_removed_member_resumes_nothing,
    sync_by_seq_behaves_as_before_positions,
    a_pruned_position_asks_for_a_resync,
);

/// The scenario of issue 11: A is away while B edits and deletes earlier
/// messages, sends new ones, renames the room, adds D, kicks C, makes D an
/// admin and hands the ownership over; A comes back and resumes.
async fn a_client_that_was_away_replays_exactly_what_it_missed(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let cast = resume::cast(&app, "away").await;
    let remembered = a_goes_away(&app, &cast).await;
    let mut expected = resume::message_and_room_changes(&app, &cast).await;
    expected.extend(resume::membership_changes(&app, &cast).await);
    a_comes_back(&app, &cast, &remembered, &expected).await;
}

// ------------------------------------------------------------ live

/// A public room of `owner` named `name`; its id.
async fn public_room(app: &TestApp, owner: &TestUser, name: &str) -> String {
    app.create_room(owner, json!({ "name": name, "visibility": "public" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `PUT /rooms/{room}/members/me` as `user`.
async fn join(app: &TestApp, user: &TestUser, room: &str) {
    expect_call(
        app,
        user,
        "PUT",
        &format!("/rooms/{room}/members/me"),
        None,
        StatusCode::OK,
    )
    .await;
}

/// Asserts that `frames` hold, for every room of `from`, the events from
/// `from[room] + 1` up to `to[room]`, each once and in order (other frames
/// are ignored), and returns them by room.
fn in_order_by_room(
    who: &str,
    frames: &[Value],
    from: &BTreeMap<String, i64>,
    to: &BTreeMap<String, i64>,
) -> BTreeMap<String, Vec<Value>> {
    let mut by_room: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for frame in frames.iter().filter(|frame| is_event(frame)) {
        let room = frame["room_id"].as_str().unwrap().to_owned();
        let events = by_room.entry(room.clone()).or_default();
        let previous = events.last().map_or(from[&room], pos_of);
        assert_eq!(
            pos_of(frame),
            previous + 1,
            "{who}: in room {room}, after {previous} came {frame}"
        );
        events.push(frame.clone());
    }
    for (room, target) in to {
        let reached = by_room
            .get(room)
            .and_then(|events| events.last())
            .map_or(from[room], pos_of);
        assert_eq!(reached, *target, "{who}: room {room} stopped short");
    }
    by_room
}

/// Reads `client` until every room of `to` has reached its position (the
/// frames read, appended to `frames`).
async fn read_until(client: &mut WsClient, frames: &mut Vec<Value>, to: &BTreeMap<String, i64>) {
    let reached = |frames: &[Value], room: &str| {
        frames
            .iter()
            .filter(|frame| is_event(frame) && frame["room_id"] == room)
            .map(pos_of)
            .max()
    };
    for (room, target) in to {
        while reached(frames, room).is_none_or(|pos| pos < *target) {
            frames.push(client.next_json().await);
        }
    }
    frames.extend(client.ping_pong().await);
}

/// While A and W1 are connected, several clients at once send (over the
/// WebSocket and REST), edit, delete, join, leave, rename and change roles in
/// two rooms: each connection gets every room's events in strictly
/// consecutive positions, each once, and A's applied state equals a fresh
/// load.
async fn a_burst_from_many_clients_arrives_in_position_order_each_once(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let app = Rc::new(app);
    let owner = app.user("owner@example.com").await;
    let a = app.user("a@example.com").await;
    let writers = [
        app.user("w1@example.com").await,
        app.user("w2@example.com").await,
        app.user("w3@example.com").await,
    ];
    let joiners = [
        app.user("j1@example.com").await,
        app.user("j2@example.com").await,
    ];
    let rooms = [
        public_room(&app, &owner, "burst one").await,
        public_room(&app, &owner, "burst two").await,
    ];
    let mut earlier: Vec<(String, String)> = Vec::new();
    for room in &rooms {
        for user in writers.iter().chain([&a]) {
            join(&app, user, room).await;
        }
        for index in 0..3 {
            let id = post(&app, &writers[2], room, &format!("to change {index}")).await;
            earlier.push((room.clone(), id));
        }
    }
    let mut states = Vec::new();
    for room in &rooms {
        states.push(fetch_state(&app, &a, room).await);
    }
    let from: BTreeMap<String, i64> = states
        .iter()
        .map(|state| (state.room_id().to_owned(), state.pos))
        .collect();
    let (mut observer, _ready) = WsClient::connect_ready(&app, &a.token).await;
    let (mut w1_socket, _ready) = WsClient::connect_ready(&app, &writers[0].token).await;

    const SENDS: usize = 20;
    const EDIT_ROUNDS: usize = 2;
    let pipelined = {
        let rooms = rooms.clone();
        actix_web::rt::spawn(async move {
            for n in 0..SENDS {
                let room = &rooms[n % rooms.len()];
                w1_socket
                    .send_message_to(room, &format!("w1 ws {n}"), &format!("w1-{n}"))
                    .await;
            }
            let mut frames = Vec::new();
            let mut acks = 0;
            while acks < SENDS {
                let frame = w1_socket.next_json().await;
                match frame["type"].as_str() {
                    Some("ack") => acks += 1,
                    Some("error") => panic!("w1: {frame}"),
                    _ => frames.push(frame),
                }
            }
            (w1_socket, frames)
        })
    };
    // W1's and W2's sends, W3's edits and deletes (every other one), each
    // joiner's joins, posts and one leave, the owner's renames and role change.
    let expected = 2 * SENDS
        + EDIT_ROUNDS * earlier.len()
        + earlier.len().div_ceil(2)
        + joiners.len() * (2 * rooms.len() + 1)
        + rooms.len()
        + 1;
    let mut tasks = Vec::new();
    {
        let (app, rooms, w2) = (app.clone(), rooms.clone(), writers[1].clone());
        tasks.push(actix_web::rt::spawn(async move {
            for n in 0..SENDS {
                post(&app, &w2, &rooms[n % rooms.len()], &format!("w2 rest {n}")).await;
            }
        }));
    }
    {
        let (app, w3) = (app.clone(), writers[2].clone());
        tasks.push(actix_web::rt::spawn(async move {
            for round in 0..EDIT_ROUNDS {
                for (room, id) in &earlier {
                    expect_call(
                        &app,
                        &w3,
                        "PATCH",
                        &format!("/rooms/{room}/messages/{id}"),
                        Some(json!({ "body": format!("changed {round}") })),
                        StatusCode::OK,
                    )
                    .await;
                }
            }
            for (room, id) in earlier.iter().step_by(2) {
                expect_call(
                    &app,
                    &w3,
                    "DELETE",
                    &format!("/rooms/{room}/messages/{id}"),
                    None,
                    StatusCode::OK,
                )
                .await;
            }
        }));
    }
    for (index, joiner) in joiners.iter().enumerate() {
        let (app, rooms, joiner) = (app.clone(), rooms.clone(), joiner.clone());
        tasks.push(actix_web::rt::spawn(async move {
            for room in &rooms {
                join(&app, &joiner, room).await;
                post(&app, &joiner, room, "hello, I just joined").await;
            }
            expect_call(
                &app,
                &joiner,
                "DELETE",
                &format!("/rooms/{}/members/me", rooms[index]),
                None,
                StatusCode::OK,
            )
            .await;
        }));
    }
    {
        let (app, rooms, owner, w1) = (
            app.clone(),
            rooms.clone(),
            owner.clone(),
            writers[0].clone(),
        );
        tasks.push(actix_web::rt::spawn(async move {
            for (index, room) in rooms.iter().enumerate() {
                expect_call(
                    &app,
                    &owner,
                    "PATCH",
                    &format!("/rooms/{room}"),
                    Some(json!({ "name": format!("burst {index} (renamed)") })),
                    StatusCode::OK,
                )
                .await;
            }
            expect_call(
                &app,
                &owner,
                "PATCH",
                &format!("/rooms/{}/members/{}", rooms[0], w1.id),
                Some(json!({ "role": "admin" })),
                StatusCode::OK,
            )
            .await;
        }));
    }
    for task in tasks {
        task.await.expect("a burst task");
    }
    let (mut w1_socket, mut w1_frames) = pipelined.await.expect("the pipelined sender");

    let mut to = BTreeMap::new();
    for room in &rooms {
        to.insert(room.clone(), last_pos(&app, &owner, room).await);
    }
    let mut frames = Vec::new();
    read_until(&mut observer, &mut frames, &to).await;
    let by_room = in_order_by_room("A", &frames, &from, &to);
    read_until(&mut w1_socket, &mut w1_frames, &to).await;
    in_order_by_room("W1", &w1_frames, &from, &to);
    let burst: usize = by_room.values().map(Vec::len).sum();
    assert_eq!(burst, expected, "one event per change of the burst");

    for mut state in states {
        for event in &by_room[state.room_id()] {
            assert_eq!(state.apply(event), Outcome::Applied, "{event}");
        }
        let fresh = fetch_state(&app, &a, state.room_id()).await;
        assert_eq!(state, fresh, "A's live state differs from a fresh load");
    }
}

// ------------------------------------------------------------ bad input

/// The rooms of the bad-input tests: B's private room with A, B's private
/// room without A, B's public room without A, and an id that names nothing.
struct Rooms {
    mine: String,
    private: String,
    public: String,
    missing: String,
}

async fn bad_input_rooms(app: &TestApp, a: &TestUser, b: &TestUser) -> Rooms {
    let mine = app
        .create_room(b, json!({ "name": "with A", "visibility": "private" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    add_member(app, b, &mine, a).await;
    post(app, b, &mine, "something to replay").await;
    let private = app
        .create_room(b, json!({ "name": "without A", "visibility": "private" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(app, b, &private, "not for A").await;
    Rooms {
        mine,
        private,
        public: public_room(app, b, "open, without A").await,
        missing: Uuid::new_v4().to_string(),
    }
}

/// The next frame must be an error with `code` and `ref` `room`; then a
/// ping is answered by a pong, with nothing in between.
async fn expect_error_then_pong(
    client: &mut WsClient,
    code: &str,
    room: &str,
    what: &str,
) -> Value {
    let error = client.next_json().await;
    assert_eq!(error["type"], "error", "{what}: {error}");
    assert_eq!(error["code"], code, "{what}: {error}");
    assert_eq!(error["ref"], room, "{what}: {error}");
    assert!(error["message"].is_string(), "{what}: {error}");
    let between = client.ping_pong().await;
    assert!(
        between.is_empty(),
        "{what}: frames before the pong: {between:?}"
    );
    error
}

/// Every bad `sync` from docs/protocol.md is an `error` frame with its code
/// and the room as `ref`, and the connection goes on (a ping gets its pong,
/// a good `sync` still replays).
async fn bad_syncs_are_error_frames_and_the_connection_stays_usable(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    let rooms = bad_input_rooms(&app, &a, &b).await;
    let last = last_pos(&app, &b, &rooms.mine).await;
    let (mut client, _ready) = WsClient::connect_ready(&app, &a.token).await;
    let mine = rooms.mine.as_str();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "negative after_pos",
            json!({ "room_id": mine, "after_pos": -1 }),
            "invalid_pos",
        ),
        (
            "after_pos as a string",
            json!({ "room_id": mine, "after_pos": "5" }),
            "invalid_pos",
        ),
        (
            "fractional after_pos",
            json!({ "room_id": mine, "after_pos": 1.5 }),
            "invalid_pos",
        ),
        (
            "after_pos beyond last_pos",
            json!({ "room_id": mine, "after_pos": last + 1 }),
            "invalid_pos",
        ),
        (
            "limit 0",
            json!({ "room_id": mine, "after_pos": 0, "limit": 0 }),
            "invalid_limit",
        ),
        (
            "limit 101",
            json!({ "room_id": mine, "after_pos": 0, "limit": 101 }),
            "invalid_limit",
        ),
        (
            "after_pos and after_seq",
            json!({ "room_id": mine, "after_pos": 0, "after_seq": 0 }),
            "invalid_frame",
        ),
        (
            "neither after_pos nor after_seq",
            json!({ "room_id": mine }),
            "invalid_frame",
        ),
        (
            "a private room A is not in",
            json!({ "room_id": rooms.private, "after_pos": 0 }),
            "room_not_found",
        ),
        (
            "a missing room",
            json!({ "room_id": rooms.missing, "after_pos": 0 }),
            "room_not_found",
        ),
        (
            "a public room A is not in",
            json!({ "room_id": rooms.public, "after_pos": 0 }),
            "forbidden",
        ),
    ];
    let mut not_found = Vec::new();
    for (what, mut frame, code) in cases {
        frame["type"] = json!("sync");
        let room = frame["room_id"].as_str().unwrap().to_owned();
        client.send_json(frame).await;
        let error = expect_error_then_pong(&mut client, code, &room, what).await;
        if code == "room_not_found" {
            not_found.push(error["message"].clone());
        }
    }
    assert_eq!(
        not_found[0], not_found[1],
        "a private room answers as a missing one"
    );
    let events = ws_sync_all(&mut client, mine, 0, resume::MAX_PAGE).await;
    assert_eq!(events.len(), usize::try_from(last).unwrap(), "{events:?}");
}

/// `GET /rooms/{id}/events` as `user`: the reply.
async fn events_reply(app: &TestApp, user: &TestUser, room: &str, query: &str) -> common::Reply {
    app.call(
        "GET",
        &format!("/rooms/{room}/events{query}"),
        &user.token,
        None,
    )
    .await
}

/// The same bad requests over REST: 400 `invalid_pos` / `invalid_limit`,
/// 404 `room_not_found` for a room A cannot see (the very answer of a
/// missing room), 403 `forbidden` for a public room A is not in.
async fn bad_event_queries_over_rest_are_400_403_and_404(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    let rooms = bad_input_rooms(&app, &a, &b).await;
    let last = last_pos(&app, &b, &rooms.mine).await;
    let beyond = format!("?after_pos={}", last + 1);
    let (mine, private, missing, public) = (
        rooms.mine.as_str(),
        rooms.private.as_str(),
        rooms.missing.as_str(),
        rooms.public.as_str(),
    );
    let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
        (
            mine,
            "?after_pos=-1",
            StatusCode::BAD_REQUEST,
            "invalid_pos",
        ),
        (
            mine,
            "?after_pos=abc",
            StatusCode::BAD_REQUEST,
            "invalid_pos",
        ),
        (
            mine,
            "?after_pos=1.5",
            StatusCode::BAD_REQUEST,
            "invalid_pos",
        ),
        (
            mine,
            beyond.as_str(),
            StatusCode::BAD_REQUEST,
            "invalid_pos",
        ),
        (
            mine,
            "?after_pos=0&limit=0",
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            mine,
            "?after_pos=0&limit=101",
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            private,
            "?after_pos=0",
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
        (
            missing,
            "?after_pos=0",
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
        (public, "?after_pos=0", StatusCode::FORBIDDEN, "forbidden"),
    ];
    for (room, query, status, code) in cases {
        let reply = events_reply(&app, &a, room, query).await;
        assert_eq!(reply.status, status, "{query} on {room}: {reply:?}");
        assert_eq!(reply.error_code(), code, "{query} on {room}: {reply:?}");
    }
    let private = events_reply(&app, &a, &rooms.private, "").await;
    let missing = events_reply(&app, &a, &rooms.missing, "").await;
    assert_eq!(
        private.body, missing.body,
        "a private room answers as a missing one"
    );

    // The defaults: from 0, up to 100.
    let all = events_reply(&app, &a, &rooms.mine, "").await;
    assert_eq!(all.status, StatusCode::OK, "{all:?}");
    assert_eq!(
        all.data()["events"].as_array().unwrap().len(),
        usize::try_from(last).unwrap()
    );
    assert_eq!(all.data()["last_pos"], last);
    assert_eq!(all.data()["has_more"], false);
}

// ------------------------------------------------------------ removal

/// C, kicked from a private room while connected, gets its own
/// `member_left` and nothing of the room after it; its `sync` (by position
/// or seq) and `GET /rooms/{id}/events` then answer `room_not_found`, as for
/// a room that does not exist, and `GET /rooms` no longer lists the room.
async fn a_removed_member_resumes_nothing(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let b = app.user("b@example.com").await;
    let c = app.user("c@example.com").await;
    let room = app
        .create_room(
            &b,
            json!({ "name": "soon without C", "visibility": "private" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    add_member(&app, &b, &room, &c).await;
    post(&app, &c, &room, "C was here").await;
    let before_kick = last_pos(&app, &b, &room).await;
    let (mut client, _ready) = WsClient::connect_ready(&app, &c.token).await;
    expect_call(
        &app,
        &b,
        "DELETE",
        &format!("/rooms/{room}/members/{}", c.id),
        None,
        StatusCode::OK,
    )
    .await;
    let left = client.next_json().await;
    assert_eq!(left["type"], "member_left", "{left}");
    assert_eq!(left["user_id"], c.id.as_str(), "{left}");
    assert_eq!(pos_of(&left), before_kick + 1, "{left}");
    post(&app, &b, &room, "after C").await;
    let after = client.ping_pong().await;
    assert!(after.is_empty(), "C still hears the room: {after:?}");

    let missing = Uuid::new_v4().to_string();
    for start in [
        json!({ "after_pos": 0 }),
        json!({ "after_pos": before_kick }),
        json!({ "after_seq": 0 }),
    ] {
        let mut answers = Vec::new();
        for target in [&room, &missing] {
            let mut frame = start.clone();
            frame["type"] = json!("sync");
            frame["room_id"] = json!(target);
            client.send_json(frame).await;
            let error =
                expect_error_then_pong(&mut client, "room_not_found", target, &format!("{start}"))
                    .await;
            answers.push(error["message"].clone());
        }
        assert_eq!(
            answers[0], answers[1],
            "{start}: the room answers as a missing one"
        );
    }
    let kicked = events_reply(&app, &c, &room, "?after_pos=0").await;
    let nothing = events_reply(&app, &c, &missing, "?after_pos=0").await;
    assert_eq!(kicked.status, StatusCode::NOT_FOUND, "{kicked:?}");
    assert_eq!(kicked.error_code(), "room_not_found");
    assert_eq!(
        kicked.body, nothing.body,
        "the room answers as a missing one"
    );
    let listing = app.call("GET", "/rooms", &c.token, None).await;
    assert!(
        listing
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|listed| listed["id"] != room.as_str()),
        "{listing:?}"
    );
}

// ------------------------------------------------------------ by seq

/// Sends a `sync` by seq and reads the replay strictly: `message` frames
/// (without `pos`), then `synced` (with `last_seq`, without `last_pos`).
async fn sync_by_seq(
    client: &mut WsClient,
    room: &str,
    after_seq: i64,
    limit: Option<u64>,
) -> (Vec<Value>, Value) {
    let mut frame = json!({ "type": "sync", "room_id": room, "after_seq": after_seq });
    if let Some(limit) = limit {
        frame["limit"] = json!(limit);
    }
    client.send_json(frame).await;
    let mut messages = Vec::new();
    loop {
        let frame = client.next_json().await;
        match frame["type"].as_str() {
            Some("message") => {
                assert_eq!(frame["room_id"], room, "{frame}");
                assert!(
                    frame.get("pos").is_none(),
                    "a message replayed by seq has a pos: {frame}"
                );
                messages.push(frame["message"].clone());
            }
            Some("synced") => {
                assert_eq!(frame["room_id"], room, "{frame}");
                assert!(frame.get("last_pos").is_none(), "{frame}");
                return (messages, frame);
            }
            _ => panic!("unexpected frame during a sync by seq: {frame}"),
        }
    }
}

/// `sync` with `after_seq` replays messages only (as they are now), by seq,
/// then `synced` with `last_seq` and `has_more`, paging as before; events
/// that are not messages are not part of it; live delivery goes on after it.
async fn sync_by_seq_behaves_as_before_positions(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    let c = app.user("c@example.com").await;
    let room = app
        .create_room(&b, json!({ "name": "by seq", "visibility": "private" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    add_member(&app, &b, &room, &a).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(post(&app, &b, &room, &format!("message {n}")).await);
    }
    expect_call(
        &app,
        &b,
        "PATCH",
        &format!("/rooms/{room}/messages/{}", ids[1]),
        Some(json!({ "body": "message 2, edited" })),
        StatusCode::OK,
    )
    .await;
    expect_call(
        &app,
        &b,
        "DELETE",
        &format!("/rooms/{room}/messages/{}", ids[2]),
        None,
        StatusCode::OK,
    )
    .await;
    add_member(&app, &b, &room, &c).await;
    post(&app, &b, &room, "message 6").await;
    post(&app, &b, &room, "message 7").await;
    let history = full_history(&app, &a, &room).await;
    let (mut client, _ready) = WsClient::connect_ready(&app, &a.token).await;

    let (messages, synced) = sync_by_seq(&mut client, &room, 1, None).await;
    assert_eq!(
        messages,
        history[1..],
        "the replay by seq is the history after seq 1"
    );
    assert_eq!(synced["last_seq"], 7, "{synced}");
    assert_eq!(synced["has_more"], false, "{synced}");

    let (first, synced) = sync_by_seq(&mut client, &room, 0, Some(4)).await;
    assert_eq!(first, history[..4]);
    assert_eq!(
        (synced["last_seq"].clone(), synced["has_more"].clone()),
        (json!(4), json!(true)),
        "{synced}"
    );
    let (rest, synced) = sync_by_seq(&mut client, &room, 4, Some(4)).await;
    assert_eq!(rest, history[4..]);
    assert_eq!(
        (synced["last_seq"].clone(), synced["has_more"].clone()),
        (json!(7), json!(false)),
        "{synced}"
    );
    let (none, synced) = sync_by_seq(&mut client, &room, 7, None).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(synced["last_seq"], 7, "{synced}");

    let before = last_pos(&app, &b, &room).await;
    post(&app, &b, &room, "message 8").await;
    let live = client.next_json().await;
    assert_eq!(live["type"], "message", "{live}");
    assert_eq!(live["message"]["seq"], 8, "{live}");
    assert_eq!(pos_of(&live), before + 1, "{live}");
}

// ------------------------------------------------------------ retention

/// How far apart, in time, the events before and after the pruning cut are.
const CUT_MARGIN: Duration = Duration::from_millis(50);

/// Events pruned the way retention prunes them (the domain's
/// `prune_events`, which the hourly task calls with `now -
/// EVENT_RETENTION_DAYS`; here with a cut between two runs of events, a
/// prefix of the log): `sync` and `GET /rooms/{id}/events` from before the
/// cut answer `resync_required` (an error frame with the room as `ref`, HTTP
/// 410), from the cut on they work; the messages stay in history, and the
/// recipe's reload (`GET /rooms/{id}` for `last_pos`, `sync` from it) goes
/// on live. On both stores: the in-memory store prunes like PostgreSQL.
async fn a_pruned_position_asks_for_a_resync(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    let room = app
        .create_room(&b, json!({ "name": "forgetful", "visibility": "private" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    add_member(&app, &b, &room, &a).await;
    for n in 1..=3 {
        post(&app, &b, &room, &format!("old {n}")).await;
    }
    let pruned_upto = last_pos(&app, &b, &room).await;
    assert_eq!(pruned_upto, 5, "joined, added, three messages");
    actix_web::rt::time::sleep(CUT_MARGIN).await;
    let cut = Utc::now();
    actix_web::rt::time::sleep(CUT_MARGIN).await;
    post(&app, &b, &room, "new 1").await;
    post(&app, &b, &room, "new 2").await;
    let pruned = app
        .state()
        .messaging
        .prune_events(cut)
        .await
        .expect("pruning");
    assert_eq!(pruned, 5, "the events before the cut are pruned");

    let (mut client, _ready) = WsClient::connect_ready(&app, &a.token).await;
    for after in [0, 1, pruned_upto - 1] {
        client
            .send_json(json!({ "type": "sync", "room_id": room, "after_pos": after }))
            .await;
        expect_error_then_pong(
            &mut client,
            "resync_required",
            &room,
            &format!("sync from {after}"),
        )
        .await;
        for query in [
            format!("?after_pos={after}"),
            format!("?after_pos={after}&limit=1"),
        ] {
            let reply = events_reply(&app, &a, &room, &query).await;
            assert_eq!(reply.status, StatusCode::GONE, "{query}: {reply:?}");
            assert_eq!(reply.error_code(), "resync_required", "{reply:?}");
        }
    }
    let default = events_reply(&app, &a, &room, "").await;
    assert_eq!(default.status, StatusCode::GONE, "{default:?}");

    let (events, synced) = ws_sync(&mut client, &room, pruned_upto, None).await;
    assert_eq!(kinds(&events), ["message", "message"], "{events:?}");
    resume::assert_consecutive(&events, pruned_upto);
    assert_eq!(synced["has_more"], false, "{synced}");
    let page = rest_events(&app, &a, &room, pruned_upto, resume::MAX_PAGE).await;
    assert_eq!(page["events"], json!(events), "REST and WebSocket agree");
    assert_eq!(
        full_history(&app, &a, &room).await.len(),
        5,
        "messages stay in history"
    );

    // The recipe's reload: a fresh load, then on from its last_pos.
    let mut state: RoomState = fetch_state(&app, &a, &room).await;
    let (events, _synced) = ws_sync(&mut client, &room, state.pos, None).await;
    assert!(events.is_empty(), "{events:?}");
    post(&app, &b, &room, "after the reload").await;
    let live = client.next_json().await;
    assert_eq!(state.apply(&live), Outcome::Applied, "{live}");
    assert_eq!(state, fetch_state(&app, &a, &room).await);
}
