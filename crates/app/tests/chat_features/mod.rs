//! What the issue 13 suites (replies and mentions, reactions, read markers,
//! search) share: the calls of the new endpoints, a percent-encoder for
//! emoji in paths, and a check that odd input never gets a 5xx.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{Reply, TestApp, TestUser};

/// No request body.
pub const NO_BODY: Option<Value> = None;

/// Asserts the status of `reply`, showing the whole reply otherwise.
#[track_caller]
pub fn expect(reply: Reply, status: StatusCode) -> Reply {
    assert_eq!(reply.status, status, "{reply:?}");
    reply
}

/// Asserts an error reply's status and `error.code`.
#[track_caller]
pub fn expect_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.error_code(), code, "{reply:?}");
}

/// `value["id"]` as a string.
pub fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no string id in {value}"))
        .to_owned()
}

/// A room of `owner` named `name` with `visibility` (`public` or
/// `private`) and `members` added; its id.
pub async fn room(
    app: &TestApp,
    owner: &TestUser,
    name: &str,
    visibility: &str,
    members: &[&TestUser],
) -> String {
    let room = app
        .create_room(owner, json!({ "name": name, "visibility": visibility }))
        .await;
    let id = id_of(&room);
    for member in members {
        add(app, owner, &id, member).await;
    }
    id
}

/// Adds `user` to `room` as `actor` (asserting the 201).
pub async fn add(app: &TestApp, actor: &TestUser, room: &str, user: &TestUser) {
    let reply = app
        .call(
            "POST",
            &format!("/rooms/{room}/members"),
            &actor.token,
            Some(json!({ "user_id": user.id })),
        )
        .await;
    expect(reply, StatusCode::CREATED);
}

/// `user` leaves `room` (asserting the 200).
pub async fn leave(app: &TestApp, user: &TestUser, room: &str) {
    let reply = app
        .call(
            "DELETE",
            &format!("/rooms/{room}/members/me"),
            &user.token,
            NO_BODY,
        )
        .await;
    expect(reply, StatusCode::OK);
}

/// `POST /rooms/{room}/messages` `body` as `author`.
pub async fn send(app: &TestApp, author: &TestUser, room: &str, body: Value) -> Reply {
    app.call(
        "POST",
        &format!("/rooms/{room}/messages"),
        &author.token,
        Some(body),
    )
    .await
}

/// Posts `text` as `author` and returns the 201's message.
pub async fn say(app: &TestApp, author: &TestUser, room: &str, text: &str) -> Value {
    let reply = send(app, author, room, json!({ "body": text })).await;
    expect(reply, StatusCode::CREATED).data().clone()
}

/// `DELETE /rooms/{room}/messages/{message}` as `actor` (asserting the 200).
pub async fn delete_message(app: &TestApp, actor: &TestUser, room: &str, message: &str) -> Value {
    let reply = app
        .call(
            "DELETE",
            &format!("/rooms/{room}/messages/{message}"),
            &actor.token,
            NO_BODY,
        )
        .await;
    expect(reply, StatusCode::OK).data().clone()
}

/// The room's messages, oldest first (one page of up to 100), as `reader`.
pub async fn history(app: &TestApp, reader: &TestUser, room: &str) -> Vec<Value> {
    let reply = app
        .call(
            "GET",
            &format!("/rooms/{room}/messages?limit=100"),
            &reader.token,
            NO_BODY,
        )
        .await;
    expect(reply, StatusCode::OK).data()["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

/// The message `id` in the room's history as `reader`.
pub async fn message_in_history(app: &TestApp, reader: &TestUser, room: &str, id: &str) -> Value {
    history(app, reader, room)
        .await
        .into_iter()
        .find(|message| message["id"] == id)
        .unwrap_or_else(|| panic!("message {id} is not in the history of {room}"))
}

/// Percent-encodes every byte of `raw` but the URL's unreserved characters
/// (RFC 3986 §2.3), as a client puts an emoji into a path segment.
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The path of a reaction: `emoji` is put in as it is (encode it first).
pub fn reaction_path(room: &str, message: &str, emoji: &str) -> String {
    format!("/rooms/{room}/messages/{message}/reactions/{emoji}")
}

/// `PUT` the reaction `emoji` (percent-encoded here) as `user`.
pub async fn react(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    message: &str,
    emoji: &str,
) -> Reply {
    let path = reaction_path(room, message, &encode(emoji));
    app.call("PUT", &path, &user.token, NO_BODY).await
}

/// `DELETE` the reaction `emoji` (percent-encoded here) as `user`.
pub async fn unreact(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    message: &str,
    emoji: &str,
) -> Reply {
    let path = reaction_path(room, message, &encode(emoji));
    app.call("DELETE", &path, &user.token, NO_BODY).await
}

/// `PUT /rooms/{room}/read` `body` as `user`.
pub async fn mark_read(app: &TestApp, user: &TestUser, room: &str, body: Value) -> Reply {
    app.call(
        "PUT",
        &format!("/rooms/{room}/read"),
        &user.token,
        Some(body),
    )
    .await
}

/// `PUT /rooms/{room}/read {seq}` as `user`, asserting the 200: the read state.
pub async fn read_up_to(app: &TestApp, user: &TestUser, room: &str, seq: i64) -> Value {
    let reply = mark_read(app, user, room, json!({ "seq": seq })).await;
    expect(reply, StatusCode::OK).data().clone()
}

/// `GET /rooms` as `user`.
pub async fn my_rooms(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let reply = expect(app.get("/rooms", Some(&user.token)).await, StatusCode::OK);
    reply.data().as_array().expect("an array of rooms").clone()
}

/// `room`'s entry in `GET /rooms` as `user`.
pub async fn my_room(app: &TestApp, user: &TestUser, room: &str) -> Value {
    my_rooms(app, user)
        .await
        .into_iter()
        .find(|entry| entry["id"] == room)
        .unwrap_or_else(|| panic!("room {room} is not in GET /rooms of {}", user.email))
}

/// `(last_read_seq, unread_count, mention_count)` of `room` in `GET /rooms`.
pub async fn counts(app: &TestApp, user: &TestUser, room: &str) -> (i64, i64, i64) {
    let entry = my_room(app, user, room).await;
    counts_of(&entry)
}

/// `(last_read_seq, unread_count, mention_count)` of a read state.
#[track_caller]
pub fn counts_of(state: &Value) -> (i64, i64, i64) {
    let field = |key: &str| {
        state[key]
            .as_i64()
            .unwrap_or_else(|| panic!("no integer {key} in {state}"))
    };
    (
        field("last_read_seq"),
        field("unread_count"),
        field("mention_count"),
    )
}

/// `GET /rooms/{room}/receipts` as `user`.
pub async fn receipts(app: &TestApp, user: &TestUser, room: &str) -> Reply {
    app.call(
        "GET",
        &format!("/rooms/{room}/receipts"),
        &user.token,
        NO_BODY,
    )
    .await
}

/// `GET /search/messages?{query}` as `user` (`query` already encoded).
pub async fn search(app: &TestApp, user: &TestUser, query: &str) -> Reply {
    app.call(
        "GET",
        &format!("/search/messages?{query}"),
        &user.token,
        NO_BODY,
    )
    .await
}

/// The results of a search that must succeed.
pub async fn found(app: &TestApp, user: &TestUser, query: &str) -> Vec<Value> {
    let reply = expect(search(app, user, query).await, StatusCode::OK);
    reply.data()["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array: {reply:?}"))
        .clone()
}

/// The message ids of search results, in order.
pub fn ids_of_results(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|result| id_of(&result["message"]))
        .collect()
}

/// Sends each `(method, path, body)` as `user` and asserts that none is
/// answered with a 5xx, and that every answer is the error or success
/// envelope; the statuses, in order.
pub async fn assert_no_server_error(
    app: &TestApp,
    user: &TestUser,
    requests: &[(&str, String, Option<String>)],
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for (method, path, body) in requests {
        let reply = match body {
            Some(body) => {
                app.send(
                    method,
                    path,
                    Some(&user.token),
                    Some("application/json"),
                    body.clone(),
                )
                .await
            }
            None => {
                app.send(method, path, Some(&user.token), None, Vec::new())
                    .await
            }
        };
        assert!(
            !reply.status.is_server_error(),
            "{method} {path} {body:?}: {reply:?}"
        );
        assert!(
            reply.body["status"] == "Error" || reply.body["status"] == "Success",
            "{method} {path} {body:?}: not an envelope: {reply:?}"
        );
        statuses.push(reply.status);
    }
    let health = app.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK, "{health:?}");
    statuses
}

/// Odd values for an id segment of a path: not UUIDs, too long, encoded
/// garbage, a nil UUID.
pub fn odd_ids() -> Vec<String> {
    vec![
        "x".to_owned(),
        "0".to_owned(),
        "-1".to_owned(),
        "%00".to_owned(),
        "%FF%FE".to_owned(),
        "..".to_owned(),
        "%2E%2E%2F".to_owned(),
        "a".repeat(300),
        "00000000-0000-0000-0000-000000000000".to_owned(),
        "00000000-0000-0000-0000-00000000000g".to_owned(),
        "%F0%9F%91%8D".to_owned(),
        "' OR 1=1 --".replace(' ', "%20"),
    ]
}
