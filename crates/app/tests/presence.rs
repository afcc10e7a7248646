//! Presence (issue 13): a user is online while a connection of theirs is
//! open on any node, offline (with `last_seen_at`) once the grace period
//! after the last one closed ran out; the users who share a room with them
//! get one `presence` frame per connection on each change, and can read it
//! with `GET /users/{id}`, which hides everyone else like an unknown id.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, sleep};
use common::cluster::Cluster;
use common::resume::add_member;
use common::ws::WsClient;
use common::{Backend, TestApp, TestUser};
use serde_json::{Value, json};

/// The grace period of the test servers (`PRESENCE_GRACE_MS`).
const GRACE: Duration = Duration::from_millis(300);
/// The test servers' settings.
const VARS: &[(&str, &str)] = &[("PRESENCE_GRACE_MS", "300")];
/// How long to watch for frames that must not come (past the grace).
const QUIET: Duration = Duration::from_millis(900);

/// A private room of `owner` with `members` added; its id.
async fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> String {
    let room = app
        .create_room(
            owner,
            json!({ "name": "Presence", "visibility": "private" }),
        )
        .await["id"]
        .as_str()
        .expect("a room id")
        .to_owned();
    for member in members {
        add_member(app, owner, &room, member).await;
    }
    room
}

/// A connection of `user` to `app`, ready, that reads `presence` frames.
async fn connected(app: &TestApp, token: &str) -> (WsClient, Value) {
    let (mut client, ready) = WsClient::connect_ready(app, token).await;
    client.hear_presence();
    (client, ready)
}

/// `GET /users/{id}` as `caller`.
async fn person(app: &TestApp, caller: &TestUser, id: &str) -> common::Reply {
    app.call("GET", &format!("/users/{id}"), &caller.token, None)
        .await
}

/// The next `presence` frame of `client` (other frames skipped).
async fn next_presence(client: &mut WsClient) -> Value {
    client.expect_type("presence").await
}

/// The `presence` frames `client` gets within [`QUIET`].
async fn presence_frames(client: &mut WsClient) -> Vec<Value> {
    client
        .collect_for(QUIET)
        .await
        .into_iter()
        .filter(|frame| frame["type"] == "presence")
        .collect()
}

async fn a_user_is_visible_to_room_mates_only(backend: Backend) {
    let Some(app) = backend.spawn(VARS).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cat = app.user("cat@example.com").await;
    room_with(&app, &ann, &[&bob]).await;

    let seen = person(&app, &ann, &bob.id).await;
    assert_eq!(seen.status, StatusCode::OK, "{seen:?}");
    assert_eq!(
        seen.data(),
        &json!({ "id": bob.id, "display_name": "bob", "presence": "offline", "last_seen_at": null })
    );
    let own = person(&app, &cat, &cat.id).await;
    assert_eq!(own.status, StatusCode::OK, "the caller itself: {own:?}");
    assert_eq!(own.data()["id"], json!(cat.id));

    let stranger = person(&app, &ann, &cat.id).await;
    let unknown = person(&app, &ann, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{stranger:?}");
    assert_eq!(stranger.error_code(), "user_not_found");
    assert_eq!(
        (stranger.status, &stranger.body),
        (unknown.status, &unknown.body),
        "a stranger answers exactly like an unknown id"
    );
    let bad = person(&app, &ann, "not-a-uuid").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND, "like other path ids");
    let anonymous = app.get(&format!("/users/{}", bob.id), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn presence_follows_connections_after_the_grace(backend: Backend) {
    let Some(app) = backend.spawn(VARS).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cat = app.user("cat@example.com").await;
    room_with(&app, &ann, &[&bob]).await;
    room_with(&app, &cat, &[]).await;
    let (mut watcher, _) = connected(&app, &ann.token).await;
    let (mut stranger, _) = connected(&app, &cat.token).await;

    let (mut bobs, _) = connected(&app, &bob.token).await;
    let online = next_presence(&mut watcher).await;
    assert_eq!(
        online,
        json!({ "type": "presence", "user_id": bob.id, "presence": "online", "last_seen_at": null })
    );
    let seen = person(&app, &ann, &bob.id).await;
    assert_eq!(seen.data()["presence"], "online", "{seen:?}");
    assert_eq!(seen.data()["last_seen_at"], Value::Null);
    // Ann's own online may reach Bob (he may have connected before it
    // went out); his own never does.
    let own: Vec<Value> = presence_frames(&mut bobs)
        .await
        .into_iter()
        .filter(|frame| frame["user_id"] == json!(bob.id))
        .collect();
    assert!(
        own.is_empty(),
        "a user's own connections hear nothing of their presence: {own:?}"
    );

    // Timed from before the close: the server may see it before close()
    // returns here.
    let closed = Instant::now();
    bobs.close().await;
    let offline = next_presence(&mut watcher).await;
    assert!(
        closed.elapsed() >= GRACE,
        "offline before the grace ran out"
    );
    assert_eq!(offline["user_id"], json!(bob.id));
    assert_eq!(offline["presence"], "offline");
    let last_seen = offline["last_seen_at"].as_str().expect("last_seen_at");
    chrono::DateTime::parse_from_rfc3339(last_seen).expect("an RFC 3339 time");
    let seen = person(&app, &ann, &bob.id).await;
    assert_eq!(
        seen.data(),
        &json!({ "id": bob.id, "display_name": "bob", "presence": "offline", "last_seen_at": last_seen }),
        "GET shows the time the frame did"
    );
    assert!(
        presence_frames(&mut stranger).await.is_empty(),
        "a user who shares no room hears nothing"
    );
    assert!(
        presence_frames(&mut watcher).await.is_empty(),
        "one frame per change"
    );
}

async fn a_reconnect_within_the_grace_announces_nothing(backend: Backend) {
    let Some(app) = backend.spawn(VARS).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    room_with(&app, &ann, &[&bob]).await;
    let (mut watcher, _) = connected(&app, &ann.token).await;
    let (bobs, _) = connected(&app, &bob.token).await;
    assert_eq!(next_presence(&mut watcher).await["presence"], "online");

    bobs.close().await;
    sleep(GRACE / 3).await;
    let (again, _) = connected(&app, &bob.token).await;
    assert!(
        presence_frames(&mut watcher).await.is_empty(),
        "a reconnect within the grace flaps"
    );
    assert_eq!(
        person(&app, &ann, &bob.id).await.data()["presence"],
        "online"
    );
    again.close().await;
    assert_eq!(next_presence(&mut watcher).await["presence"], "offline");
}

async fn a_connection_sharing_two_rooms_gets_one_frame(backend: Backend) {
    let Some(app) = backend.spawn(VARS).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    room_with(&app, &ann, &[&bob]).await;
    room_with(&app, &bob, &[&ann]).await;
    let (mut watcher, _) = connected(&app, &ann.token).await;
    let (_bobs, _) = connected(&app, &bob.token).await;
    let frames = presence_frames(&mut watcher).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["presence"], "online");
}

/// A storm of reconnects (every member of a busy room drops and comes back
/// within the grace) announces nothing at all.
async fn a_reconnect_storm_announces_nothing(backend: Backend) {
    const MEMBERS: usize = 30;
    let Some(app) = backend.spawn(VARS).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let mut members = Vec::new();
    for index in 0..MEMBERS {
        members.push(app.user(&format!("member{index}@example.com")).await);
    }
    let refs: Vec<&TestUser> = members.iter().collect();
    room_with(&app, &ann, &refs).await;
    let mut clients = Vec::new();
    for member in &members {
        clients.push(connected(&app, &member.token).await.0);
    }
    let (mut watcher, _) = connected(&app, &ann.token).await;
    // The members' onlines may still be on their way: let them pass.
    sleep(QUIET).await;
    let _ = watcher.collect_for(Duration::from_millis(100)).await;
    // Each comes back at once (all of them within the grace period would
    // need a faster machine than a test's).
    let mut back = Vec::new();
    for (client, member) in clients.into_iter().zip(&members) {
        client.close().await;
        back.push(connected(&app, &member.token).await.0);
    }
    let frames = presence_frames(&mut watcher).await;
    assert!(frames.is_empty(), "a reconnect storm flaps: {frames:?}");
}

on_both_stores!(
    a_user_is_visible_to_room_mates_only,
    presence_follows_connections_after_the_grace,
    a_reconnect_within_the_grace_announces_nothing,
    a_connection_sharing_two_rooms_gets_one_frame,
    a_reconnect_storm_announces_nothing,
);

/// The acceptance test across two nodes through Redis: a user connected
/// only on node B is online for a user on node A (its `GET /users/{id}`
/// and a `presence` frame on its socket), and offline after the grace
/// once they disconnect.
#[actix_web::test]
async fn presence_crosses_nodes_through_redis() {
    let Some(cluster) = Cluster::spawn(2, VARS).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let ann = a.user("ann@example.com").await;
    let bob = a.user("bob@example.com").await;
    room_with(a, &ann, &[&bob]).await;
    let (mut watcher, _) = connected(a, &ann.token).await;
    assert_eq!(person(a, &ann, &bob.id).await.data()["presence"], "offline");

    let (bobs, _) = connected(b, &bob.token).await;
    let online = next_presence(&mut watcher).await;
    assert_eq!(
        online,
        json!({ "type": "presence", "user_id": bob.id, "presence": "online", "last_seen_at": null })
    );
    assert_eq!(person(a, &ann, &bob.id).await.data()["presence"], "online");

    // Timed from before the close: the server may see it before close()
    // returns here.
    let closed = Instant::now();
    bobs.close().await;
    let offline = next_presence(&mut watcher).await;
    assert!(
        closed.elapsed() >= GRACE,
        "offline before the grace ran out"
    );
    assert_eq!(offline["presence"], "offline");
    let seen = person(a, &ann, &bob.id).await;
    assert_eq!(seen.data()["presence"], "offline", "{seen:?}");
    assert_eq!(seen.data()["last_seen_at"], offline["last_seen_at"]);
    assert!(seen.data()["last_seen_at"].is_string());
    assert!(
        presence_frames(&mut watcher).await.is_empty(),
        "one frame per change"
    );
}

/// A user who moves from node A to node B within the grace (as when A
/// restarts) stays online: nobody on either node hears a change.
#[actix_web::test]
async fn moving_to_another_node_within_the_grace_announces_nothing() {
    let Some(cluster) = Cluster::spawn(2, VARS).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let ann = a.user("ann@example.com").await;
    let bob = a.user("bob@example.com").await;
    room_with(a, &ann, &[&bob]).await;
    let (mut on_a, _) = connected(a, &ann.token).await;
    let (mut on_b, _) = connected(b, &ann.token).await;
    let (bobs, _) = connected(a, &bob.token).await;
    assert_eq!(next_presence(&mut on_a).await["presence"], "online");
    assert_eq!(next_presence(&mut on_b).await["presence"], "online");

    bobs.close().await;
    let (_moved, _) = connected(b, &bob.token).await;
    assert!(presence_frames(&mut on_a).await.is_empty(), "node A flaps");
    assert!(presence_frames(&mut on_b).await.is_empty(), "node B flaps");
    assert_eq!(person(a, &ann, &bob.id).await.data()["presence"], "online");
}
