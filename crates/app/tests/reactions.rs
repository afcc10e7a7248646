//! Reactions (issue 13), black-box on both stores, as docs/api.md
//! ("Reactions", the message object, the permission table) and
//! docs/protocol.md (`reaction_added`, `reaction_removed`) describe them:
//! idempotent `PUT`/`DELETE`, the `reactions` list of message objects, the
//! events live, in `GET /rooms/{id}/events` and in a `sync`, the emoji
//! rules, the 20-emoji limit, deleted messages, who may react, and no 5xx
//! for odd path segments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod chat_features;
mod common;

use actix_web::http::StatusCode;
use chat_features::{
    NO_BODY, assert_no_server_error, delete_message, encode, expect, expect_error, id_of, leave,
    message_in_history, react, reaction_path, room, say, unreact,
};
use common::resume::{rest_events_all, ws_sync};
use common::ws::WsClient;
use common::{Backend, Reply, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

/// The most distinct emoji on one message (docs/api.md).
const MAX_DISTINCT: usize = 20;

/// 21 emoji with emoji presentation, all different.
const FACES: [&str; MAX_DISTINCT + 1] = [
    "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗",
    "😙", "😚", "🙂", "🤗", "🤩",
];

async fn spawn(backend: Backend) -> Option<TestApp> {
    let app = backend.spawn(&[]).await;
    if app.is_none() {
        eprintln!("skipped: no PostgreSQL here");
    }
    app
}

/// `{emoji, count, user_ids}` as a message object shows it.
fn entry(emoji: &str, users: &[&TestUser]) -> Value {
    json!({
        "emoji": emoji,
        "count": users.len(),
        "user_ids": users.iter().map(|user| user.id.clone()).collect::<Vec<_>>(),
    })
}

/// The `reactions` of a 200 reaction reply.
#[track_caller]
fn reactions_of(reply: Reply) -> Value {
    expect(reply, StatusCode::OK).data()["reactions"].clone()
}

/// The room's `last_pos` as `reader` sees it.
async fn last_pos(app: &TestApp, reader: &TestUser, room: &str) -> i64 {
    let reply = app
        .call("GET", &format!("/rooms/{room}"), &reader.token, NO_BODY)
        .await;
    expect(reply, StatusCode::OK).data()["last_pos"]
        .as_i64()
        .expect("last_pos")
}

async fn put_and_delete_are_idempotent_and_shape_the_reactions_list(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let room = room(&app, &ada, "reactions", "private", &[&bob, &cy]).await;
    let message = id_of(&say(&app, &ada, &room, "react to me").await);

    let thumbs = "👍";
    let heart = "❤️";
    assert_eq!(
        reactions_of(react(&app, &bob, &room, &message, thumbs).await),
        json!([entry(thumbs, &[&bob])])
    );
    assert_eq!(
        reactions_of(react(&app, &bob, &room, &message, thumbs).await),
        json!([entry(thumbs, &[&bob])]),
        "adding twice changes nothing"
    );
    react(&app, &cy, &room, &message, thumbs).await;
    let after_heart = reactions_of(react(&app, &ada, &room, &message, heart).await);
    let expected = json!([entry(thumbs, &[&bob, &cy]), entry(heart, &[&ada])]);
    assert_eq!(after_heart, expected);
    let stored = message_in_history(&app, &cy, &room, &message).await;
    assert_eq!(stored["reactions"], expected, "{stored}");

    // Two spellings of one emoji are two reactions.
    let thumbs_vs16 = "👍\u{FE0F}";
    let both = reactions_of(react(&app, &ada, &room, &message, thumbs_vs16).await);
    assert_eq!(
        both,
        json!([
            entry(thumbs, &[&bob, &cy]),
            entry(heart, &[&ada]),
            entry(thumbs_vs16, &[&ada]),
        ])
    );
    unreact(&app, &ada, &room, &message, thumbs_vs16).await;

    assert_eq!(
        reactions_of(unreact(&app, &bob, &room, &message, thumbs).await),
        json!([entry(thumbs, &[&cy]), entry(heart, &[&ada])])
    );
    assert_eq!(
        reactions_of(unreact(&app, &bob, &room, &message, thumbs).await),
        json!([entry(thumbs, &[&cy]), entry(heart, &[&ada])]),
        "removing one that is not there changes nothing"
    );
    assert_eq!(
        reactions_of(unreact(&app, &bob, &room, &message, "🎉").await),
        json!([entry(thumbs, &[&cy]), entry(heart, &[&ada])]),
        "removing an emoji nobody put changes nothing"
    );
    // The last user of an emoji takes it: its entry goes.
    assert_eq!(
        reactions_of(unreact(&app, &cy, &room, &message, thumbs).await),
        json!([entry(heart, &[&ada])])
    );
    // Added again, it goes to the end.
    assert_eq!(
        reactions_of(react(&app, &bob, &room, &message, thumbs).await),
        json!([entry(heart, &[&ada]), entry(thumbs, &[&bob])])
    );
    let stored = message_in_history(&app, &ada, &room, &message).await;
    assert_eq!(
        stored["reactions"],
        json!([entry(heart, &[&ada]), entry(thumbs, &[&bob])])
    );
}

async fn reaction_events_carry_a_pos_live_in_the_log_and_in_a_sync(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "reaction events", "private", &[&bob]).await;
    let message = id_of(&say(&app, &ada, &room, "watch this").await);
    let before = last_pos(&app, &ada, &room).await;
    let (mut ada_ws, _) = WsClient::connect_ready(&app, &ada.token).await;

    expect(
        react(&app, &bob, &room, &message, "🎉").await,
        StatusCode::OK,
    );
    let added = ada_ws.expect_type("reaction_added").await;
    assert_eq!(added["room_id"], room.as_str(), "{added}");
    assert_eq!(added["pos"], before + 1, "{added}");
    assert_eq!(added["message_id"], message.as_str(), "{added}");
    assert_eq!(added["emoji"], "🎉", "{added}");
    assert_eq!(added["user_id"], bob.id.as_str(), "{added}");

    // A call that changes nothing logs nothing and sends nothing.
    expect(
        react(&app, &bob, &room, &message, "🎉").await,
        StatusCode::OK,
    );
    expect(
        unreact(&app, &bob, &room, &message, "🚀").await,
        StatusCode::OK,
    );
    assert_eq!(last_pos(&app, &ada, &room).await, before + 1);
    let meanwhile = ada_ws.ping_pong().await;
    assert!(meanwhile.is_empty(), "{meanwhile:?}");

    expect(
        unreact(&app, &bob, &room, &message, "🎉").await,
        StatusCode::OK,
    );
    let removed = ada_ws.expect_type("reaction_removed").await;
    assert_eq!(removed["pos"], before + 2, "{removed}");
    assert_eq!(removed["message_id"], message.as_str(), "{removed}");
    assert_eq!(removed["emoji"], "🎉", "{removed}");
    assert_eq!(removed["user_id"], bob.id.as_str(), "{removed}");
    assert_eq!(last_pos(&app, &ada, &room).await, before + 2);

    let logged = rest_events_all(&app, &ada, &room, before, 100).await;
    assert_eq!(logged, vec![added.clone(), removed.clone()]);
    let synced = ws_sync(&mut ada_ws, &room, before, None).await.0;
    assert_eq!(synced, vec![added, removed]);

    // A replayed message event carries the message's reactions as they are now.
    expect(
        react(&app, &ada, &room, &message, "👀").await,
        StatusCode::OK,
    );
    ada_ws.expect_type("reaction_added").await;
    let replay = ws_sync(&mut ada_ws, &room, 0, None).await.0;
    let message_event = replay
        .iter()
        .find(|event| event["type"] == "message")
        .expect("the message event");
    assert_eq!(
        message_event["message"]["reactions"],
        json!([entry("👀", &[&ada])]),
        "{message_event}"
    );
}

async fn anything_but_one_emoji_is_invalid_emoji(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "emoji rules", "private", &[]).await;
    let message = id_of(&say(&app, &ada, &room, "picky").await);
    let kiss = "👩🏻‍❤️‍💋‍👨🏼";
    assert!(kiss.len() > 32, "the test emoji must be over the limit");
    let mut segments: Vec<String> = [
        "a",
        "1",
        "#",
        "❤",
        "😀😀",
        "👍👍🏽",
        "👍a",
        " 😀",
        "😀 ",
        "<b>",
        "é",
        "\u{FE0F}",
        "\u{200D}",
        "\u{0}",
        kiss,
        "thumbsup",
        ":+1:",
    ]
    .iter()
    .map(|raw| encode(raw))
    .collect();
    // Percent-encoded garbage: bytes that are not UTF-8, cut sequences, a
    // lone continuation byte, an encoded slash.
    segments.extend(
        [
            "%FF",
            "%F0%9F%91",
            "%80",
            "%C0%AF",
            "%2F",
            "%F0%9F%91%8D%FF",
            "%25",
        ]
        .iter()
        .map(|raw| (*raw).to_owned()),
    );
    for segment in &segments {
        let path = reaction_path(&room, &message, segment);
        for method in ["PUT", "DELETE"] {
            let reply = app.call(method, &path, &ada.token, NO_BODY).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {path}: {reply:?}"
            );
            assert_eq!(
                reply.error_code(),
                "invalid_emoji",
                "{method} {path}: {reply:?}"
            );
        }
    }
    // Every documented shape is one emoji.
    for emoji in ["😀", "👍🏽", "❤️", "👩‍💻", "🇫🇷", "1️⃣", "#️⃣", "🏳️‍🌈", "👨‍👩‍👧‍👦"]
    {
        let reply = react(&app, &ada, &room, &message, emoji).await;
        assert_eq!(reply.status, StatusCode::OK, "{emoji}: {reply:?}");
    }
    let stored = message_in_history(&app, &ada, &room, &message).await;
    assert_eq!(stored["reactions"].as_array().unwrap().len(), 9, "{stored}");
}

async fn a_21st_distinct_emoji_is_too_many_reactions(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "crowded", "private", &[&bob]).await;
    let message = id_of(&say(&app, &ada, &room, "popular").await);
    for face in &FACES[..MAX_DISTINCT] {
        expect(
            react(&app, &ada, &room, &message, face).await,
            StatusCode::OK,
        );
    }
    let before = last_pos(&app, &ada, &room).await;
    for user in [&ada, &bob] {
        let reply = react(&app, user, &room, &message, FACES[MAX_DISTINCT]).await;
        expect_error(&reply, StatusCode::CONFLICT, "too_many_reactions");
    }
    assert_eq!(last_pos(&app, &ada, &room).await, before, "nothing logged");
    // Joining an emoji already there always works.
    let joined = reactions_of(react(&app, &bob, &room, &message, FACES[0]).await);
    assert_eq!(joined.as_array().unwrap().len(), MAX_DISTINCT);
    assert_eq!(joined[0], entry(FACES[0], &[&ada, &bob]));
    // Once an emoji is gone, a new one fits.
    unreact(&app, &ada, &room, &message, FACES[1]).await;
    let now = reactions_of(react(&app, &bob, &room, &message, FACES[MAX_DISTINCT]).await);
    assert_eq!(now.as_array().unwrap().len(), MAX_DISTINCT);
    assert_eq!(now[MAX_DISTINCT - 1], entry(FACES[MAX_DISTINCT], &[&bob]));
}

async fn deleted_unknown_and_foreign_messages_take_no_reaction(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "gone", "private", &[]).await;
    let other = room_of_ada(&app, &ada).await;
    let message = id_of(&say(&app, &ada, &room, "short-lived").await);
    let foreign = id_of(&say(&app, &ada, &other, "elsewhere").await);
    expect(
        react(&app, &ada, &room, &message, "👍").await,
        StatusCode::OK,
    );
    let tombstone = delete_message(&app, &ada, &room, &message).await;
    assert_eq!(tombstone["reactions"], json!([]), "{tombstone}");
    let before = last_pos(&app, &ada, &room).await;
    for emoji in ["👍", "🎉"] {
        let reply = react(&app, &ada, &room, &message, emoji).await;
        expect_error(&reply, StatusCode::CONFLICT, "message_deleted");
        let reply = unreact(&app, &ada, &room, &message, emoji).await;
        expect_error(&reply, StatusCode::CONFLICT, "message_deleted");
    }
    assert_eq!(last_pos(&app, &ada, &room).await, before, "nothing logged");
    let stored = message_in_history(&app, &ada, &room, &message).await;
    assert_eq!(stored["reactions"], json!([]), "{stored}");

    for missing in [Uuid::new_v4().to_string(), foreign] {
        let reply = react(&app, &ada, &room, &missing, "👍").await;
        expect_error(&reply, StatusCode::NOT_FOUND, "message_not_found");
        let reply = unreact(&app, &ada, &room, &missing, "👍").await;
        expect_error(&reply, StatusCode::NOT_FOUND, "message_not_found");
    }
}

/// A second private room of `ada`.
async fn room_of_ada(app: &TestApp, ada: &TestUser) -> String {
    room(app, ada, "another room", "private", &[]).await
}

async fn outsiders_get_404_in_a_private_room_and_403_in_a_public_one(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let visitor = app.user("visitor@example.com").await;
    let private = room(&app, &ada, "private", "private", &[&bob]).await;
    let public = room(&app, &ada, "public", "public", &[]).await;
    let hidden = id_of(&say(&app, &ada, &private, "hidden").await);
    let open = id_of(&say(&app, &ada, &public, "open").await);
    react(&app, &ada, &private, &hidden, "👍").await;
    react(&app, &ada, &public, &open, "👍").await;

    for user in [&visitor, &bob] {
        if user.id == bob.id {
            leave(&app, &bob, &private).await;
        }
        for reply in [
            react(&app, user, &private, &hidden, "👍").await,
            unreact(&app, user, &private, &hidden, "👍").await,
        ] {
            expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
        }
    }
    for reply in [
        react(&app, &visitor, &public, &open, "👍").await,
        unreact(&app, &visitor, &public, &open, "👍").await,
    ] {
        expect_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    }
    let stored = message_in_history(&app, &ada, &public, &open).await;
    assert_eq!(stored["reactions"], json!([entry("👍", &[&ada])]));
    let stored = message_in_history(&app, &ada, &private, &hidden).await;
    assert_eq!(stored["reactions"], json!([entry("👍", &[&ada])]));
    // Once joined, the visitor reacts.
    let join = app
        .call(
            "PUT",
            &format!("/rooms/{public}/members/me"),
            &visitor.token,
            NO_BODY,
        )
        .await;
    assert!(join.status.is_success(), "{join:?}");
    assert_eq!(
        reactions_of(react(&app, &visitor, &public, &open, "👍").await),
        json!([entry("👍", &[&ada, &visitor])])
    );
    let unknown_room = Uuid::new_v4();
    let reply = react(&app, &ada, &unknown_room.to_string(), &open, "👍").await;
    expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
}

async fn odd_reaction_paths_are_never_a_server_error(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let ada = app.user("ada@example.com").await;
    let room = room(&app, &ada, "fuzz", "private", &[]).await;
    let message = id_of(&say(&app, &ada, &room, "fuzzed").await);
    let thumbs = encode("👍");
    let mut must_fail = Vec::new();
    let mut body_ignored = Vec::new();
    for odd in chat_features::odd_ids() {
        for method in ["PUT", "DELETE"] {
            must_fail.push((method, reaction_path(&odd, &message, &thumbs), None));
            must_fail.push((method, reaction_path(&room, &odd, &thumbs), None));
            if odd != thumbs {
                must_fail.push((method, reaction_path(&room, &message, &odd), None));
            }
            body_ignored.push((
                method,
                reaction_path(&room, &message, &thumbs),
                Some(format!("{{\"emoji\":\"{odd}\"}}")),
            ));
        }
    }
    for extra in [
        "%F0%9F%91%8D/extra",
        "%F0%9F%91%8D%20",
        &"%F0%9F%91%8D".repeat(100),
        &"%E2%80%8D".repeat(50),
    ] {
        must_fail.push(("PUT", reaction_path(&room, &message, extra), None));
    }
    for method in ["GET", "POST", "PATCH"] {
        must_fail.push((method, reaction_path(&room, &message, &thumbs), None));
    }
    let statuses = assert_no_server_error(&app, &ada, &must_fail).await;
    for (request, status) in must_fail.iter().zip(&statuses) {
        assert!(status.is_client_error(), "{request:?}: {status}");
    }
    // The path decides; a body is ignored (the last request is a DELETE).
    let statuses = assert_no_server_error(&app, &ada, &body_ignored).await;
    assert!(statuses.iter().all(StatusCode::is_success), "{statuses:?}");
    let stored = message_in_history(&app, &ada, &room, &message).await;
    assert_eq!(stored["reactions"], json!([]), "{stored}");
}

async fn reaction_changes_draw_on_the_send_budget(backend: Backend) {
    let Some(app) = backend
        .spawn(&[("WS_RATE_BURST", "3"), ("WS_RATE_PER_SECOND", "1")])
        .await
    else {
        eprintln!("skipped: no PostgreSQL here");
        return;
    };
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let room = room(&app, &ada, "budget", "private", &[&bob]).await;
    let message = id_of(&say(&app, &ada, &room, "one message").await);
    // The message took one of Ada's three; two reaction changes pass.
    expect(
        react(&app, &ada, &room, &message, "👍").await,
        StatusCode::OK,
    );
    expect(
        unreact(&app, &ada, &room, &message, "👍").await,
        StatusCode::OK,
    );
    for reply in [
        react(&app, &ada, &room, &message, "🎉").await,
        unreact(&app, &ada, &room, &message, "🎉").await,
    ] {
        expect_error(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    }
    // The budget is per user: Bob's is untouched.
    assert_eq!(
        reactions_of(react(&app, &bob, &room, &message, "🎉").await),
        json!([entry("🎉", &[&bob])])
    );
}

on_both_stores!(
    reaction_changes_draw_on_the_send_budget,
    put_and_delete_are_idempotent_and_shape_the_reactions_list,
    reaction_events_carry_a_pos_live_in_the_log_and_in_a_sync,
    anything_but_one_emoji_is_invalid_emoji,
    a_21st_distinct_emoji_is_too_many_reactions,
    deleted_unknown_and_foreign_messages_take_no_reaction,
    outsiders_get_404_in_a_private_room_and_403_in_a_public_one,
    odd_reaction_paths_are_never_a_server_error,
);
