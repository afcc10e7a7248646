//! CONTRACT section 3 over HTTP, on both stores: every row of the rooms and
//! messages table as written, the limits, the 404 that hides private rooms,
//! and races on `seq`, `client_msg_id` and `POST /dms`.
//! Status codes and error codes follow docs/api.md.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::rc::Rc;

use actix_web::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use common::{Backend, Reply, TestApp, TestUser};
use serde_json::{Value, json};
use uuid::Uuid;

const NO_BODY: Option<Value> = None;

/// Asserts the status of `reply`, showing the whole reply otherwise.
#[track_caller]
fn expect(reply: Reply, status: StatusCode) -> Reply {
    assert_eq!(reply.status, status, "{reply:?}");
    reply
}

/// Asserts an error reply's status and `error.code`.
#[track_caller]
fn expect_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.error_code(), code, "{reply:?}");
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .expect("a time string")
        .parse()
        .expect("RFC 3339")
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

#[track_caller]
fn assert_keys(value: &Value, keys: &[&str]) {
    let object = value.as_object().expect("an object");
    for key in keys {
        assert!(object.contains_key(*key), "no {key:?} in {value}");
    }
}

const ROOM_KEYS: [&str; 7] = [
    "id",
    "name",
    "topic",
    "visibility",
    "owner_id",
    "created_at",
    "last_seq",
];
const MEMBER_KEYS: [&str; 4] = ["user_id", "display_name", "role", "joined_at"];
const MESSAGE_KEYS: [&str; 9] = [
    "id",
    "room_id",
    "seq",
    "author_id",
    "body",
    "client_msg_id",
    "created_at",
    "edited_at",
    "deleted",
];

async fn add(app: &TestApp, actor: &TestUser, room: &str, user: &TestUser) -> Reply {
    app.call(
        "POST",
        &format!("/rooms/{room}/members"),
        &actor.token,
        Some(json!({ "user_id": user.id })),
    )
    .await
}

async fn set_role(app: &TestApp, actor: &TestUser, room: &str, user: &str, role: &str) -> Reply {
    app.call(
        "PATCH",
        &format!("/rooms/{room}/members/{user}"),
        &actor.token,
        Some(json!({ "role": role })),
    )
    .await
}

async fn leave(app: &TestApp, user: &TestUser, room: &str) -> Reply {
    app.call(
        "DELETE",
        &format!("/rooms/{room}/members/me"),
        &user.token,
        NO_BODY,
    )
    .await
}

async fn send_message(app: &TestApp, author: &TestUser, room: &str, body: Value) -> Reply {
    app.call(
        "POST",
        &format!("/rooms/{room}/messages"),
        &author.token,
        Some(body),
    )
    .await
}

/// Posts `text` and returns the 201's message.
async fn say(app: &TestApp, author: &TestUser, room: &str, text: &str) -> Value {
    let reply = send_message(app, author, room, json!({ "body": text })).await;
    expect(reply, StatusCode::CREATED).data().clone()
}

/// `GET /rooms/{room}/messages{query}`: the page's seqs and `has_more`.
async fn page(app: &TestApp, reader: &TestUser, room: &str, query: &str) -> (Vec<i64>, bool) {
    let data = history(app, reader, room, query).await;
    let seqs = data["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|message| message["seq"].as_i64().expect("seq"))
        .collect();
    (seqs, data["has_more"].as_bool().expect("has_more"))
}

async fn history(app: &TestApp, reader: &TestUser, room: &str, query: &str) -> Value {
    let path = format!("/rooms/{room}/messages{query}");
    let reply = app.call("GET", &path, &reader.token, NO_BODY).await;
    expect(reply, StatusCode::OK).data().clone()
}

async fn room_as(app: &TestApp, reader: &TestUser, room: &str) -> Value {
    let reply = app
        .call("GET", &format!("/rooms/{room}"), &reader.token, NO_BODY)
        .await;
    expect(reply, StatusCode::OK).data().clone()
}

async fn members_as(app: &TestApp, reader: &TestUser, room: &str) -> Vec<Value> {
    let reply = app
        .call(
            "GET",
            &format!("/rooms/{room}/members"),
            &reader.token,
            NO_BODY,
        )
        .await;
    expect(reply, StatusCode::OK)
        .data()
        .as_array()
        .expect("an array of members")
        .clone()
}

/// `user_id -> role` of a room's members.
async fn roles_in(app: &TestApp, reader: &TestUser, room: &str) -> Vec<(String, String)> {
    members_as(app, reader, room)
        .await
        .iter()
        .map(|member| {
            (
                member["user_id"].as_str().unwrap().to_owned(),
                member["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn my_room_ids(app: &TestApp, user: &TestUser) -> Vec<String> {
    let reply = expect(app.get("/rooms", Some(&user.token)).await, StatusCode::OK);
    reply
        .data()
        .as_array()
        .expect("an array of rooms")
        .iter()
        .map(id_of)
        .collect()
}

async fn public_names(app: &TestApp, user: &TestUser, query: &str) -> Vec<String> {
    let reply = app
        .get(&format!("/rooms/public{query}"), Some(&user.token))
        .await;
    let reply = expect(reply, StatusCode::OK);
    reply
        .data()
        .as_array()
        .expect("an array of rooms")
        .iter()
        .map(|room| {
            assert_eq!(room["visibility"], "public", "{room}");
            room["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// An owner, an admin and a member in one room, and an outsider.
struct Crew {
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    outsider: TestUser,
    room: String,
}

async fn crew(app: &TestApp, visibility: &str) -> Crew {
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    let member = app.user("member@example.com").await;
    let outsider = app.user("outsider@example.com").await;
    let room = id_of(
        &app.create_room(&owner, json!({ "name": "Crew", "visibility": visibility }))
            .await,
    );
    expect(add(app, &owner, &room, &admin).await, StatusCode::CREATED);
    expect(
        set_role(app, &owner, &room, &admin.id, "admin").await,
        StatusCode::OK,
    );
    expect(add(app, &owner, &room, &member).await, StatusCode::CREATED);
    Crew {
        owner,
        admin,
        member,
        outsider,
        room,
    }
}

// ---------------------------------------------------------------- rooms

async fn creating_a_room_makes_the_caller_owner_of_a_private_room(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let before = Utc::now() - TimeDelta::seconds(1);
    let reply = app
        .call(
            "POST",
            "/rooms",
            &ann.token,
            Some(json!({ "name": "General" })),
        )
        .await;
    let after = Utc::now() + TimeDelta::seconds(1);
    let room = expect(reply, StatusCode::CREATED).data().clone();
    assert_keys(&room, &ROOM_KEYS);
    Uuid::parse_str(&id_of(&room)).expect("a UUID id");
    assert_eq!(room["name"], "General");
    assert_eq!(room["topic"], Value::Null);
    assert_eq!(room["visibility"], "private");
    assert_eq!(room["owner_id"], ann.id.as_str());
    assert_eq!(room["last_seq"], 0);
    let created = time(&room["created_at"]);
    assert!(before <= created && created <= after, "{created}");
    assert_eq!(room_as(&app, &ann, &id_of(&room)).await, room);

    let members = members_as(&app, &ann, &id_of(&room)).await;
    assert_eq!(members.len(), 1, "{members:?}");
    assert_keys(&members[0], &MEMBER_KEYS);
    assert_eq!(members[0]["user_id"], ann.id.as_str());
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["display_name"], "ann");
    time(&members[0]["joined_at"]);

    let public = app
        .create_room(
            &ann,
            json!({ "name": "Lobby", "topic": "Say hi", "visibility": "public" }),
        )
        .await;
    assert_eq!(public["topic"], "Say hi");
    assert_eq!(public["visibility"], "public");
    let private = app
        .create_room(
            &ann,
            json!({ "name": "Back office", "topic": null, "visibility": "private" }),
        )
        .await;
    assert_eq!(private["topic"], Value::Null);
    assert_eq!(private["visibility"], "private");
    assert_ne!(id_of(&public), id_of(&private));
}

async fn room_names_topics_and_visibilities_are_validated(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let long_name = "n".repeat(100);
    let long_topic = "t".repeat(1000);
    for body in [
        json!({ "name": long_name }),
        json!({ "name": "x", "topic": long_topic }),
        json!({ "name": "x", "topic": "" }),
    ] {
        let reply = app
            .call("POST", "/rooms", &ann.token, Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{body} {reply:?}");
    }
    let cases = [
        (json!({ "name": "" }), "invalid_name"),
        (json!({ "name": "   " }), "invalid_name"),
        (json!({ "name": "n".repeat(101) }), "invalid_name"),
        (json!({ "name": "bell\u{7}" }), "invalid_name"),
        (
            json!({ "name": "x", "topic": "t".repeat(1001) }),
            "invalid_topic",
        ),
        (
            json!({ "name": "x", "visibility": "direct" }),
            "invalid_visibility",
        ),
        (
            json!({ "name": "x", "visibility": "secret" }),
            "invalid_visibility",
        ),
        (json!({}), "invalid_body"),
        (json!({ "name": 7 }), "invalid_body"),
    ];
    for (body, code) in cases {
        let reply = app
            .call("POST", "/rooms", &ann.token, Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body} {reply:?}");
        assert_eq!(reply.error_code(), code, "{body}");
    }
    assert_eq!(
        my_room_ids(&app, &ann).await.len(),
        3,
        "nothing else created"
    );
}

async fn get_rooms_lists_only_the_callers_rooms(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let a1 = id_of(&app.create_room(&ann, json!({ "name": "a1" })).await);
    let a2 = id_of(
        &app.create_room(&ann, json!({ "name": "a2", "visibility": "public" }))
            .await,
    );
    let b1 = id_of(&app.create_room(&bob, json!({ "name": "b1" })).await);
    let b2 = id_of(
        &app.create_room(&bob, json!({ "name": "b2", "visibility": "public" }))
            .await,
    );
    let cy = app.user("cy@example.com").await;
    assert_eq!(my_room_ids(&app, &ann).await, [a1.clone(), a2.clone()]);
    assert_eq!(my_room_ids(&app, &bob).await, [b1.clone(), b2.clone()]);
    assert!(my_room_ids(&app, &cy).await.is_empty());

    let join = app
        .call(
            "PUT",
            &format!("/rooms/{b2}/members/me"),
            &ann.token,
            NO_BODY,
        )
        .await;
    expect(join, StatusCode::OK);
    assert_eq!(
        my_room_ids(&app, &ann).await,
        [a1.clone(), a2.clone(), b2.clone()]
    );
    expect(add(&app, &bob, &b1, &ann).await, StatusCode::CREATED);
    let dm = app
        .call(
            "POST",
            "/dms",
            &ann.token,
            Some(json!({ "user_id": cy.id })),
        )
        .await;
    let dm = id_of(expect(dm, StatusCode::CREATED).data());
    let set = |ids: &[&String]| ids.iter().map(|id| (*id).clone()).collect::<BTreeSet<_>>();
    let mine: BTreeSet<_> = my_room_ids(&app, &ann).await.into_iter().collect();
    assert_eq!(mine, set(&[&a1, &a2, &b1, &b2, &dm]));
    assert_eq!(my_room_ids(&app, &cy).await, [dm.as_str()]);

    expect(leave(&app, &ann, &b2).await, StatusCode::OK);
    let mine: BTreeSet<_> = my_room_ids(&app, &ann).await.into_iter().collect();
    assert_eq!(mine, set(&[&a1, &a2, &b1, &dm]));
    let rooms = expect(app.get("/rooms", Some(&ann.token)).await, StatusCode::OK);
    for room in rooms.data().as_array().unwrap() {
        assert_keys(room, &ROOM_KEYS);
    }
}

async fn public_rooms_are_found_by_name_in_any_case_and_private_ones_never(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    for (name, visibility) in [
        ("rusty nails", "public"),
        ("Go Fans", "public"),
        ("Rust Lovers", "public"),
        ("Rust Secrets", "private"),
    ] {
        app.create_room(&bob, json!({ "name": name, "visibility": visibility }))
            .await;
    }
    let dm = app
        .call(
            "POST",
            "/dms",
            &ann.token,
            Some(json!({ "user_id": bob.id })),
        )
        .await;
    expect(dm, StatusCode::CREATED);

    // "By name": these names sort the same bytewise and in any collation
    // that folds case or skips spaces.
    let all = ["Go Fans", "Rust Lovers", "rusty nails"];
    assert_eq!(public_names(&app, &ann, "").await, all);
    assert_eq!(public_names(&app, &ann, "?q=").await, all);
    assert_eq!(
        public_names(&app, &ann, "?q=RUST").await,
        ["Rust Lovers", "rusty nails"]
    );
    assert_eq!(
        public_names(&app, &ann, "?q=rust").await,
        ["Rust Lovers", "rusty nails"]
    );
    assert_eq!(public_names(&app, &ann, "?q=NaIl").await, ["rusty nails"]);
    assert_eq!(
        public_names(&app, &ann, "?q=rust%20l").await,
        ["Rust Lovers"]
    );
    assert_eq!(public_names(&app, &bob, "?q=fans").await, ["Go Fans"]);
    assert!(public_names(&app, &ann, "?q=secret").await.is_empty());
    assert!(
        public_names(&app, &ann, "?q=bob").await.is_empty(),
        "no direct rooms"
    );
    assert!(public_names(&app, &ann, "?q=zzz").await.is_empty());
    assert_eq!(public_names(&app, &ann, "?limit=1").await.len(), 1);
    assert_eq!(public_names(&app, &ann, "?q=rust&limit=1").await.len(), 1);
    assert_eq!(public_names(&app, &ann, "?limit=100").await, all);
    for limit in ["0", "101", "-1"] {
        let reply = app
            .get(&format!("/rooms/public?limit={limit}"), Some(&ann.token))
            .await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "invalid_limit");
    }
    let reply = app.get("/rooms/public?limit=ten", Some(&ann.token)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
}

async fn a_room_is_read_by_its_members_and_by_anyone_when_public(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let as_owner = room_as(&app, &crew.owner, &crew.room).await;
    assert_eq!(room_as(&app, &crew.admin, &crew.room).await, as_owner);
    assert_eq!(room_as(&app, &crew.member, &crew.room).await, as_owner);
    let hidden = app
        .call(
            "GET",
            &format!("/rooms/{}", crew.room),
            &crew.outsider.token,
            NO_BODY,
        )
        .await;
    expect_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");

    let public = app
        .create_room(
            &crew.owner,
            json!({ "name": "Open", "visibility": "public" }),
        )
        .await;
    assert_eq!(room_as(&app, &crew.outsider, &id_of(&public)).await, public);
}

async fn admins_and_the_owner_update_a_room(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let path = format!("/rooms/{}", crew.room);
    let patch = |user: &TestUser, body: Value| {
        let (token, path) = (user.token.clone(), path.clone());
        let app = &app;
        async move { app.call("PATCH", &path, &token, Some(body)).await }
    };

    let room = patch(&crew.owner, json!({ "name": "Renamed", "topic": "Plans" })).await;
    let room = expect(room, StatusCode::OK).data().clone();
    assert_keys(&room, &ROOM_KEYS);
    assert_eq!(
        (&room["name"], &room["topic"], &room["visibility"]),
        (&json!("Renamed"), &json!("Plans"), &json!("private"))
    );
    assert_eq!(room_as(&app, &crew.member, &crew.room).await, room);

    let room = patch(&crew.admin, json!({ "topic": null })).await;
    let room = expect(room, StatusCode::OK).data().clone();
    assert_eq!(room["topic"], Value::Null, "topic: null clears it");
    assert_eq!(room["name"], "Renamed", "absent fields stay");

    let room = patch(&crew.admin, json!({ "topic": "again" })).await;
    assert_eq!(expect(room, StatusCode::OK).data()["topic"], "again");
    let room = patch(&crew.owner, json!({})).await;
    assert_eq!(expect(room, StatusCode::OK).data()["topic"], "again");

    let hidden = app.call("GET", &path, &crew.outsider.token, NO_BODY).await;
    expect_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");
    let room = patch(&crew.admin, json!({ "visibility": "public" })).await;
    assert_eq!(expect(room, StatusCode::OK).data()["visibility"], "public");
    assert_eq!(
        room_as(&app, &crew.outsider, &crew.room).await["name"],
        "Renamed"
    );
    assert_eq!(
        public_names(&app, &crew.outsider, "?q=renamed").await,
        ["Renamed"]
    );

    let rejected = patch(&crew.owner, json!({ "visibility": "direct" })).await;
    expect_error(&rejected, StatusCode::BAD_REQUEST, "invalid_visibility");
    let rejected = patch(&crew.owner, json!({ "name": "" })).await;
    expect_error(&rejected, StatusCode::BAD_REQUEST, "invalid_name");
    let rejected = patch(&crew.owner, json!({ "topic": "t".repeat(1001) })).await;
    expect_error(&rejected, StatusCode::BAD_REQUEST, "invalid_topic");
    let refused = patch(&crew.member, json!({ "name": "Mine" })).await;
    expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let refused = patch(&crew.outsider, json!({ "name": "Mine" })).await;
    expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");

    let room = room_as(&app, &crew.owner, &crew.room).await;
    assert_eq!(
        (&room["name"], &room["topic"], &room["visibility"]),
        (&json!("Renamed"), &json!("again"), &json!("public")),
        "refused updates changed nothing"
    );
    let room = patch(&crew.owner, json!({ "topic": "", "visibility": "private" })).await;
    let room = expect(room, StatusCode::OK).data().clone();
    assert_eq!(room["topic"], Value::Null, "an empty topic means none");
    assert_eq!(room["visibility"], "private");
    assert!(
        public_names(&app, &crew.outsider, "?q=renamed")
            .await
            .is_empty()
    );
}

async fn the_owner_deletes_a_room_with_its_members_and_messages(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    say(&app, &crew.owner, &crew.room, "one").await;
    say(&app, &crew.member, &crew.room, "two").await;
    let path = format!("/rooms/{}", crew.room);
    for user in [&crew.member, &crew.admin] {
        let refused = app.call("DELETE", &path, &user.token, NO_BODY).await;
        expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    let deleted = app.call("DELETE", &path, &crew.owner.token, NO_BODY).await;
    let deleted = expect(deleted, StatusCode::OK);
    assert_eq!(deleted.data(), &Value::Null);

    for user in [&crew.owner, &crew.admin, &crew.member] {
        for (method, suffix, body) in [
            ("GET", "", None),
            ("GET", "/members", None),
            ("GET", "/messages", None),
            ("GET", "/messages?after_seq=0", None),
            ("POST", "/messages", Some(json!({ "body": "anyone?" }))),
            ("PUT", "/members/me", None),
            ("DELETE", "", None),
        ] {
            let reply = app
                .call(method, &format!("{path}{suffix}"), &user.token, body)
                .await;
            expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
        }
        assert!(!my_room_ids(&app, user).await.contains(&crew.room));
    }

    let public = id_of(
        &app.create_room(
            &crew.owner,
            json!({ "name": "Gone soon", "visibility": "public" }),
        )
        .await,
    );
    let joined = app
        .call(
            "PUT",
            &format!("/rooms/{public}/members/me"),
            &crew.member.token,
            NO_BODY,
        )
        .await;
    expect(joined, StatusCode::OK);
    let deleted = app
        .call(
            "DELETE",
            &format!("/rooms/{public}"),
            &crew.owner.token,
            NO_BODY,
        )
        .await;
    expect(deleted, StatusCode::OK);
    for user in [&crew.member, &crew.outsider] {
        let reply = app
            .call("GET", &format!("/rooms/{public}"), &user.token, NO_BODY)
            .await;
        expect_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
    }
    assert!(
        public_names(&app, &crew.outsider, "?q=gone")
            .await
            .is_empty()
    );
}

async fn members_are_listed_in_joining_order_with_display_name_and_role(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let renamed = app
        .call(
            "PATCH",
            "/users/me",
            &crew.owner.token,
            Some(json!({ "display_name": "Olivia" })),
        )
        .await;
    expect(renamed, StatusCode::OK);
    let members = members_as(&app, &crew.member, &crew.room).await;
    let expected = [
        (&crew.owner, "Olivia", "owner"),
        (&crew.admin, "admin", "admin"),
        (&crew.member, "member", "member"),
    ];
    assert_eq!(members.len(), expected.len(), "{members:?}");
    for (member, (user, name, role)) in members.iter().zip(expected) {
        assert_keys(member, &MEMBER_KEYS);
        assert_eq!(member["user_id"], user.id.as_str(), "{members:?}");
        assert_eq!(member["display_name"], name, "{member}");
        assert_eq!(member["role"], role, "{member}");
        time(&member["joined_at"]);
    }
    assert_eq!(members_as(&app, &crew.owner, &crew.room).await, members);
}

async fn joining_a_public_room_is_idempotent_and_a_private_room_is_404(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let public = id_of(
        &app.create_room(
            &crew.owner,
            json!({ "name": "Open", "visibility": "public" }),
        )
        .await,
    );
    let join = format!("/rooms/{public}/members/me");
    let first = app.call("PUT", &join, &crew.outsider.token, NO_BODY).await;
    let first = expect(first, StatusCode::OK).data().clone();
    assert_keys(&first, &MEMBER_KEYS);
    assert_eq!(first["user_id"], crew.outsider.id.as_str());
    assert_eq!(first["role"], "member");
    let second = app.call("PUT", &join, &crew.outsider.token, NO_BODY).await;
    assert_eq!(expect(second, StatusCode::OK).data(), &first, "same member");
    let members = members_as(&app, &crew.outsider, &public).await;
    let mine = members
        .iter()
        .filter(|member| member["user_id"] == crew.outsider.id.as_str())
        .count();
    assert_eq!((members.len(), mine), (2, 1), "{members:?}");
    assert_eq!(members[1], first);
    let own = app.call("PUT", &join, &crew.owner.token, NO_BODY).await;
    assert_eq!(expect(own, StatusCode::OK).data()["role"], "owner", "no-op");
    say(&app, &crew.outsider, &public, "hello").await;

    let private = app
        .call(
            "PUT",
            &format!("/rooms/{}/members/me", crew.room),
            &crew.outsider.token,
            NO_BODY,
        )
        .await;
    expect_error(&private, StatusCode::NOT_FOUND, "room_not_found");
    let missing = app
        .call(
            "PUT",
            &format!("/rooms/{}/members/me", Uuid::new_v4()),
            &crew.outsider.token,
            NO_BODY,
        )
        .await;
    assert_eq!(private.body, missing.body);
    assert_eq!(members_as(&app, &crew.owner, &crew.room).await.len(), 3);
    let member = app
        .call(
            "PUT",
            &format!("/rooms/{}/members/me", crew.room),
            &crew.member.token,
            NO_BODY,
        )
        .await;
    assert_eq!(expect(member, StatusCode::OK).data()["role"], "member");
}

async fn admins_and_the_owner_add_members_by_id_or_email(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let dan = app.user("dan@example.com").await;
    let eve = app.user("eve@example.com").await;
    let path = format!("/rooms/{}/members", crew.room);

    let by_id = app
        .call(
            "POST",
            &path,
            &crew.owner.token,
            Some(json!({ "user_id": dan.id })),
        )
        .await;
    let by_id = expect(by_id, StatusCode::CREATED).data().clone();
    assert_keys(&by_id, &MEMBER_KEYS);
    assert_eq!(
        (&by_id["user_id"], &by_id["role"], &by_id["display_name"]),
        (&json!(dan.id), &json!("member"), &json!("dan"))
    );
    let by_email = app
        .call(
            "POST",
            &path,
            &crew.admin.token,
            Some(json!({ "email": eve.email })),
        )
        .await;
    let by_email = expect(by_email, StatusCode::CREATED).data().clone();
    assert_eq!(by_email["user_id"], eve.id.as_str());
    assert_eq!(
        room_as(&app, &eve, &crew.room).await["id"],
        crew.room.as_str()
    );

    let again = app
        .call(
            "POST",
            &path,
            &crew.owner.token,
            Some(json!({ "email": "DAN@Example.com" })),
        )
        .await;
    let again = expect(again, StatusCode::OK).data().clone();
    assert_eq!(again["user_id"], dan.id.as_str(), "already a member: 200");
    assert_eq!(members_as(&app, &crew.owner, &crew.room).await.len(), 5);

    for body in [
        json!({ "user_id": Uuid::new_v4() }),
        json!({ "email": "nobody@example.com" }),
    ] {
        let reply = app
            .call("POST", &path, &crew.owner.token, Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{body} {reply:?}");
        assert_eq!(reply.error_code(), "user_not_found", "{body}");
    }
    for body in [json!({}), json!({ "user_id": dan.id, "email": dan.email })] {
        let reply = app
            .call("POST", &path, &crew.owner.token, Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body} {reply:?}");
        assert_eq!(reply.error_code(), "invalid_user", "{body}");
    }
    let reply = app
        .call(
            "POST",
            &path,
            &crew.owner.token,
            Some(json!({ "user_id": "not-a-uuid" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let refused = app
        .call(
            "POST",
            &path,
            &crew.member.token,
            Some(json!({ "user_id": crew.outsider.id })),
        )
        .await;
    expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(members_as(&app, &crew.owner, &crew.room).await.len(), 5);
}

async fn members_leave_and_are_kicked(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let dan = app.user("dan@example.com").await;
    expect(
        add(&app, &crew.owner, &crew.room, &dan).await,
        StatusCode::CREATED,
    );
    let kick = |actor: &TestUser, target: &TestUser| {
        let path = format!("/rooms/{}/members/{}", crew.room, target.id);
        let (app, token) = (&app, actor.token.clone());
        async move { app.call("DELETE", &path, &token, NO_BODY).await }
    };

    let left = expect(leave(&app, &crew.member, &crew.room).await, StatusCode::OK);
    assert_eq!(left.data(), &Value::Null);
    let gone = app
        .call(
            "GET",
            &format!("/rooms/{}", crew.room),
            &crew.member.token,
            NO_BODY,
        )
        .await;
    expect_error(&gone, StatusCode::NOT_FOUND, "room_not_found");
    expect_error(
        &leave(&app, &crew.member, &crew.room).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert!(!my_room_ids(&app, &crew.member).await.contains(&crew.room));

    expect_error(
        &kick(&dan, &crew.admin).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let kicked = expect(kick(&crew.admin, &dan).await, StatusCode::OK);
    assert_eq!(kicked.data(), &Value::Null);
    let gone = app
        .call(
            "GET",
            &format!("/rooms/{}/messages", crew.room),
            &dan.token,
            NO_BODY,
        )
        .await;
    expect_error(&gone, StatusCode::NOT_FOUND, "room_not_found");
    expect_error(
        &kick(&crew.owner, &dan).await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
    expect(kick(&crew.owner, &crew.admin).await, StatusCode::OK);
    let left: Vec<_> = roles_in(&app, &crew.owner, &crew.room).await;
    assert_eq!(left, [(crew.owner.id.clone(), "owner".to_owned())]);

    let public = id_of(
        &app.create_room(
            &crew.owner,
            json!({ "name": "Open", "visibility": "public" }),
        )
        .await,
    );
    let outsider_leaves = leave(&app, &crew.outsider, &public).await;
    assert_eq!(
        outsider_leaves.status,
        StatusCode::NOT_FOUND,
        "{outsider_leaves:?}"
    );
}

async fn the_owner_cannot_leave_without_handing_over(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    expect_error(
        &leave(&app, &crew.owner, &crew.room).await,
        StatusCode::CONFLICT,
        "owner_must_hand_over",
    );
    let by_id = app
        .call(
            "DELETE",
            &format!("/rooms/{}/members/{}", crew.room, crew.owner.id),
            &crew.owner.token,
            NO_BODY,
        )
        .await;
    expect_error(&by_id, StatusCode::CONFLICT, "owner_must_hand_over");
    let demoted = set_role(&app, &crew.owner, &crew.room, &crew.owner.id, "admin").await;
    expect_error(&demoted, StatusCode::CONFLICT, "owner_must_hand_over");
    let roles = roles_in(&app, &crew.owner, &crew.room).await;
    assert_eq!(roles[0], (crew.owner.id.clone(), "owner".to_owned()));
    assert_eq!(
        room_as(&app, &crew.owner, &crew.room).await["owner_id"],
        crew.owner.id.as_str()
    );
}

async fn the_owner_changes_roles_and_hands_ownership_over(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    let promoted = set_role(&app, &crew.owner, room, &crew.member.id, "admin").await;
    let promoted = expect(promoted, StatusCode::OK).data().clone();
    assert_keys(&promoted, &MEMBER_KEYS);
    assert_eq!(promoted["user_id"], crew.member.id.as_str());
    assert_eq!(promoted["role"], "admin");
    let demoted = set_role(&app, &crew.owner, room, &crew.member.id, "member").await;
    assert_eq!(expect(demoted, StatusCode::OK).data()["role"], "member");
    let invalid = set_role(&app, &crew.owner, room, &crew.member.id, "king").await;
    expect_error(&invalid, StatusCode::BAD_REQUEST, "invalid_role");
    for actor in [&crew.admin, &crew.member] {
        let refused = set_role(&app, actor, room, &crew.member.id, "admin").await;
        expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    let stranger = set_role(&app, &crew.owner, room, &crew.outsider.id, "admin").await;
    expect_error(&stranger, StatusCode::NOT_FOUND, "member_not_found");

    let handed = set_role(&app, &crew.owner, room, &crew.member.id, "owner").await;
    let handed = expect(handed, StatusCode::OK).data().clone();
    assert_eq!(handed["user_id"], crew.member.id.as_str());
    assert_eq!(handed["role"], "owner");
    assert_eq!(
        room_as(&app, &crew.admin, room).await["owner_id"],
        crew.member.id.as_str()
    );
    let roles = roles_in(&app, &crew.admin, room).await;
    assert_eq!(
        roles,
        [
            (crew.owner.id.clone(), "admin".to_owned()),
            (crew.admin.id.clone(), "admin".to_owned()),
            (crew.member.id.clone(), "owner".to_owned()),
        ]
    );
    let old_owner = set_role(&app, &crew.owner, room, &crew.admin.id, "member").await;
    expect_error(&old_owner, StatusCode::FORBIDDEN, "forbidden");
    let new_owner = set_role(&app, &crew.member, room, &crew.admin.id, "member").await;
    expect(new_owner, StatusCode::OK);
    expect_error(
        &leave(&app, &crew.member, room).await,
        StatusCode::CONFLICT,
        "owner_must_hand_over",
    );
    expect(leave(&app, &crew.owner, room).await, StatusCode::OK);
    let deleted = app
        .call(
            "DELETE",
            &format!("/rooms/{room}"),
            &crew.member.token,
            NO_BODY,
        )
        .await;
    expect(deleted, StatusCode::OK);
}

// ---------------------------------------------------------------- direct rooms

async fn a_pair_has_one_direct_room_opened_from_either_side(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let dm = |user: &TestUser, body: Value| {
        let (app, token) = (&app, user.token.clone());
        async move { app.call("POST", "/dms", &token, Some(body)).await }
    };

    let first = dm(&ann, json!({ "user_id": bob.id })).await;
    let room = expect(first, StatusCode::CREATED).data().clone();
    assert_keys(&room, &ROOM_KEYS);
    assert_eq!(room["visibility"], "direct");
    let id = id_of(&room);
    for (user, body) in [
        (&ann, json!({ "user_id": bob.id })),
        (&ann, json!({ "email": bob.email })),
        (&bob, json!({ "user_id": ann.id })),
        (&bob, json!({ "email": ann.email })),
    ] {
        let again = dm(user, body.clone()).await;
        assert_eq!(again.status, StatusCode::OK, "{body} {again:?}");
        assert_eq!(id_of(again.data()), id, "{body}");
    }
    let members = roles_in(&app, &bob, &id).await;
    let expected: BTreeSet<_> = [
        (ann.id.clone(), "member".to_owned()),
        (bob.id.clone(), "member".to_owned()),
    ]
    .into();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(members.into_iter().collect::<BTreeSet<_>>(), expected);

    for body in [json!({ "user_id": ann.id }), json!({ "email": ann.email })] {
        let reply = dm(&ann, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body} {reply:?}");
        assert_eq!(reply.error_code(), "direct_with_self", "{body}");
    }
    for body in [json!({}), json!({ "user_id": bob.id, "email": bob.email })] {
        let reply = dm(&ann, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body} {reply:?}");
        assert_eq!(reply.error_code(), "invalid_user", "{body}");
    }
    for body in [
        json!({ "user_id": Uuid::new_v4() }),
        json!({ "email": "nobody@example.com" }),
    ] {
        let reply = dm(&ann, body.clone()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{body} {reply:?}");
        assert_eq!(reply.error_code(), "user_not_found", "{body}");
    }

    for (user, body) in [
        (&ann, json!({ "user_id": cy.id })),
        (&bob, json!({ "email": cy.email })),
    ] {
        let reply = app
            .call(
                "POST",
                &format!("/rooms/{id}/members"),
                &user.token,
                Some(body),
            )
            .await;
        expect_error(&reply, StatusCode::CONFLICT, "direct_room_full");
    }
    assert_eq!(
        members_as(&app, &ann, &id).await.len(),
        2,
        "only two members"
    );
    let hidden = app
        .call("GET", &format!("/rooms/{id}"), &cy.token, NO_BODY)
        .await;
    expect_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");
    let hidden = app
        .call(
            "PUT",
            &format!("/rooms/{id}/members/me"),
            &cy.token,
            NO_BODY,
        )
        .await;
    expect_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");

    say(&app, &ann, &id, "hi bob").await;
    assert_eq!(say(&app, &bob, &id, "hi ann").await["seq"], 2);
    for (method, path, body) in [
        (
            "PATCH",
            format!("/rooms/{id}"),
            Some(json!({ "name": "ours" })),
        ),
        ("DELETE", format!("/rooms/{id}"), None),
        (
            "PATCH",
            format!("/rooms/{id}/members/{}", bob.id),
            Some(json!({ "role": "admin" })),
        ),
        ("DELETE", format!("/rooms/{id}/members/{}", bob.id), None),
    ] {
        let reply = app.call(method, &path, &ann.token, body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path} {reply:?}"
        );
    }
    let visibility = room_as(&app, &ann, &id).await["visibility"].clone();
    assert_eq!(visibility, "direct");

    let other = dm(&ann, json!({ "user_id": cy.id })).await;
    assert_ne!(id_of(expect(other, StatusCode::CREATED).data()), id);

    expect(leave(&app, &bob, &id).await, StatusCode::OK);
    let hidden = app
        .call("GET", &format!("/rooms/{id}"), &bob.token, NO_BODY)
        .await;
    expect_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");
    let back = dm(&ann, json!({ "user_id": bob.id })).await;
    assert_eq!(id_of(expect(back, StatusCode::OK).data()), id);
    assert_eq!(members_as(&app, &bob, &id).await.len(), 2, "bob is back in");
    let (seqs, _) = page(&app, &bob, &id, "").await;
    assert_eq!(seqs, [1, 2]);
}

// ---------------------------------------------------------------- messages

async fn messages_get_consecutive_seqs_and_trimmed_bodies(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let before = Utc::now() - TimeDelta::seconds(1);
    let first = send_message(
        &app,
        &crew.member,
        &crew.room,
        json!({ "body": "  hello \n" }),
    )
    .await;
    let first = expect(first, StatusCode::CREATED).data().clone();
    assert_keys(&first, &MESSAGE_KEYS);
    Uuid::parse_str(&id_of(&first)).expect("a UUID id");
    assert_eq!(first["room_id"], crew.room.as_str());
    assert_eq!(first["seq"], 1);
    assert_eq!(first["author_id"], crew.member.id.as_str());
    assert_eq!(first["body"], "hello");
    assert_eq!(first["client_msg_id"], Value::Null);
    assert_eq!(first["edited_at"], Value::Null);
    assert_eq!(first["deleted"], false);
    let created = time(&first["created_at"]);
    assert!(before <= created && created <= Utc::now() + TimeDelta::seconds(1));

    assert_eq!(say(&app, &crew.admin, &crew.room, "two").await["seq"], 2);
    assert_eq!(say(&app, &crew.owner, &crew.room, "three").await["seq"], 3);
    assert_eq!(room_as(&app, &crew.member, &crew.room).await["last_seq"], 3);
    let page = history(&app, &crew.member, &crew.room, "").await;
    assert_eq!(page["messages"][0], first);
    let bodies: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("hello"), json!("two"), json!("three")]);

    let other = id_of(
        &app.create_room(&crew.member, json!({ "name": "Other" }))
            .await,
    );
    assert_eq!(say(&app, &crew.member, &other, "own count").await["seq"], 1);
}

async fn a_message_body_is_1_to_4000_characters_and_never_truncated(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let longest = "é".repeat(4000);
    let stored = say(&app, &crew.member, &crew.room, &longest).await;
    assert_eq!(stored["body"], longest.as_str());
    let padded = format!("  {longest}\n ");
    assert_eq!(
        say(&app, &crew.member, &crew.room, &padded).await["body"],
        longest.as_str()
    );
    for body in [
        json!({ "body": "é".repeat(4001) }),
        json!({ "body": format!("{longest}!") }),
        json!({ "body": "" }),
        json!({ "body": " \n\t  " }),
        json!({}),
        json!({ "body": 5 }),
        json!({ "body": null }),
    ] {
        let reply = send_message(&app, &crew.member, &crew.room, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
        assert_eq!(reply.error_code(), "invalid_body");
    }
    assert_eq!(room_as(&app, &crew.member, &crew.room).await["last_seq"], 2);
    let page = history(&app, &crew.owner, &crew.room, "").await;
    assert_eq!(page["messages"][0]["body"], longest.as_str());
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
}

async fn a_repeated_client_msg_id_returns_the_first_message(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    let first = send_message(
        &app,
        &crew.member,
        room,
        json!({ "body": "one", "client_msg_id": "c-1" }),
    )
    .await;
    let first = expect(first, StatusCode::CREATED).data().clone();
    assert_eq!(first["client_msg_id"], "c-1");
    let again = send_message(
        &app,
        &crew.member,
        room,
        json!({ "body": "something else", "client_msg_id": "c-1" }),
    )
    .await;
    assert_eq!(
        expect(again, StatusCode::OK).data(),
        &first,
        "the first message"
    );
    assert_eq!(room_as(&app, &crew.member, room).await["last_seq"], 1);
    assert_eq!(page(&app, &crew.member, room, "").await, (vec![1], false));

    let by_other = send_message(
        &app,
        &crew.admin,
        room,
        json!({ "body": "mine", "client_msg_id": "c-1" }),
    )
    .await;
    let by_other = expect(by_other, StatusCode::CREATED).data().clone();
    assert_eq!(by_other["seq"], 2);
    assert_ne!(id_of(&by_other), id_of(&first));
    let fresh = send_message(
        &app,
        &crew.member,
        room,
        json!({ "body": "two", "client_msg_id": "c-2" }),
    )
    .await;
    assert_eq!(expect(fresh, StatusCode::CREATED).data()["seq"], 3);
    let other_room = id_of(
        &app.create_room(&crew.member, json!({ "name": "Other" }))
            .await,
    );
    let elsewhere = send_message(
        &app,
        &crew.member,
        &other_room,
        json!({ "body": "one", "client_msg_id": "c-1" }),
    )
    .await;
    expect(elsewhere, StatusCode::CREATED);

    let longest = "k".repeat(64);
    let ok = send_message(
        &app,
        &crew.member,
        room,
        json!({ "body": "x", "client_msg_id": longest }),
    )
    .await;
    expect(ok, StatusCode::CREATED);
    for client_msg_id in [String::new(), "k".repeat(65), "tab\there".to_owned()] {
        let reply = send_message(
            &app,
            &crew.member,
            room,
            json!({ "body": "x", "client_msg_id": client_msg_id }),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{client_msg_id:?} {reply:?}"
        );
        assert_eq!(reply.error_code(), "invalid_client_msg_id");
    }
    assert_eq!(room_as(&app, &crew.member, room).await["last_seq"], 4);
}

async fn history_pages_in_both_directions(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    assert_eq!(page(&app, &crew.member, room, "").await, (vec![], false));
    for i in 1..=120 {
        say(&app, &crew.owner, room, &format!("m{i}")).await;
    }
    let reader = &crew.member;
    let range = |from: i64, to: i64| (from..=to).collect::<Vec<_>>();
    let cases: [(&str, Vec<i64>, bool); 18] = [
        ("", range(71, 120), true),
        ("?limit=1", vec![120], true),
        ("?limit=100", range(21, 120), true),
        ("?after_seq=0", range(1, 50), true),
        ("?after_seq=0&limit=100", range(1, 100), true),
        ("?after_seq=70", range(71, 120), false),
        ("?after_seq=100", range(101, 120), false),
        ("?after_seq=119", vec![120], false),
        ("?after_seq=120", vec![], false),
        ("?after_seq=500", vec![], false),
        ("?before_seq=11", range(1, 10), false),
        ("?before_seq=61&limit=10", range(51, 60), true),
        ("?before_seq=1", vec![], false),
        ("?before_seq=500&limit=3", range(118, 120), true),
        ("?after_seq=10&before_seq=20", range(11, 19), false),
        ("?after_seq=10&before_seq=100&limit=5", range(11, 15), true),
        ("?after_seq=10&before_seq=16&limit=5", range(11, 15), false),
        ("?after_seq=5&before_seq=6", vec![], false),
    ];
    for (query, seqs, has_more) in cases {
        let got = page(&app, reader, room, query).await;
        assert_eq!(got, (seqs, has_more), "{query}");
    }
    let page_data = history(&app, reader, room, "?after_seq=41&limit=2").await;
    for message in page_data["messages"].as_array().unwrap() {
        assert_keys(message, &MESSAGE_KEYS);
        assert_eq!(message["body"], format!("m{}", message["seq"]));
        assert_eq!(message["room_id"], room.as_str());
    }

    for (query, code) in [
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?limit=-5", "invalid_limit"),
        ("?after_seq=0&limit=101", "invalid_limit"),
        ("?after_seq=-1", "invalid_seq"),
        ("?before_seq=-1", "invalid_seq"),
        ("?limit=ten", "invalid_query"),
        ("?after_seq=x", "invalid_query"),
    ] {
        let reply = app
            .call(
                "GET",
                &format!("/rooms/{room}/messages{query}"),
                &reader.token,
                NO_BODY,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query} {reply:?}");
        assert_eq!(reply.error_code(), code, "{query}");
    }

    // Reading forward from after_seq=0 replays the room: no gap, no repeat.
    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let (seqs, has_more) =
            page(&app, reader, room, &format!("?after_seq={after}&limit=7")).await;
        seen.extend(&seqs);
        after = seqs.last().copied().unwrap_or(after);
        if !has_more {
            break;
        }
    }
    assert_eq!(seen, range(1, 120));
    // And backward from the newest page.
    let mut seen: Vec<i64> = Vec::new();
    let (mut seqs, mut has_more) = page(&app, reader, room, "?limit=9").await;
    loop {
        seen.splice(0..0, seqs.iter().copied());
        if !has_more {
            break;
        }
        let before = seqs[0];
        (seqs, has_more) = page(&app, reader, room, &format!("?before_seq={before}&limit=9")).await;
    }
    assert_eq!(seen, range(1, 120));
}

async fn a_deleted_message_keeps_its_seq_as_a_tombstone(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    for text in ["one", "two", "three"] {
        say(&app, &crew.member, room, text).await;
    }
    let page_data = history(&app, &crew.member, room, "").await;
    let second = page_data["messages"][1].clone();
    let path = format!("/rooms/{room}/messages/{}", id_of(&second));
    let deleted = app.call("DELETE", &path, &crew.member.token, NO_BODY).await;
    let deleted = expect(deleted, StatusCode::OK).data().clone();
    assert_keys(&deleted, &MESSAGE_KEYS);
    assert_eq!(
        (
            &deleted["id"],
            &deleted["seq"],
            &deleted["body"],
            &deleted["deleted"]
        ),
        (&second["id"], &json!(2), &Value::Null, &json!(true))
    );
    let again = app.call("DELETE", &path, &crew.member.token, NO_BODY).await;
    let again = expect(again, StatusCode::OK).data().clone();
    assert_eq!(
        (&again["body"], &again["deleted"]),
        (&Value::Null, &json!(true))
    );

    let page_data = history(&app, &crew.admin, room, "").await;
    let messages = page_data["messages"].as_array().unwrap();
    let shown: Vec<_> = messages
        .iter()
        .map(|message| {
            (
                message["seq"].clone(),
                message["body"].clone(),
                message["deleted"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (json!(1), json!("one"), json!(false)),
            (json!(2), Value::Null, json!(true)),
            (json!(3), json!("three"), json!(false)),
        ]
    );
    assert_eq!(
        say(&app, &crew.member, room, "four").await["seq"],
        4,
        "no reuse"
    );
    assert_eq!(room_as(&app, &crew.member, room).await["last_seq"], 4);
    let edit = app
        .call(
            "PATCH",
            &path,
            &crew.member.token,
            Some(json!({ "body": "back" })),
        )
        .await;
    expect_error(&edit, StatusCode::CONFLICT, "message_deleted");
    let page_data = history(&app, &crew.member, room, "?after_seq=1&limit=1").await;
    assert_eq!(page_data["messages"][0]["body"], Value::Null);
}

async fn only_the_author_edits_a_message(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    let draft = say(&app, &crew.member, room, "draft").await;
    let path = format!("/rooms/{room}/messages/{}", id_of(&draft));
    let edit = |user: &TestUser, body: Value| {
        let (app, token, path) = (&app, user.token.clone(), path.clone());
        async move { app.call("PATCH", &path, &token, Some(body)).await }
    };

    let edited = edit(&crew.member, json!({ "body": "  final  " })).await;
    let edited = expect(edited, StatusCode::OK).data().clone();
    assert_keys(&edited, &MESSAGE_KEYS);
    assert_eq!(
        (
            &edited["id"],
            &edited["seq"],
            &edited["body"],
            &edited["created_at"]
        ),
        (
            &draft["id"],
            &json!(1),
            &json!("final"),
            &draft["created_at"]
        )
    );
    assert!(time(&edited["edited_at"]) >= time(&draft["created_at"]));
    assert_eq!(
        history(&app, &crew.owner, room, "").await["messages"][0],
        edited
    );
    assert_eq!(
        room_as(&app, &crew.owner, room).await["last_seq"],
        1,
        "an edit is no new message"
    );

    for user in [&crew.admin, &crew.owner] {
        let refused = edit(user, json!({ "body": "hijacked" })).await;
        expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    for body in [
        json!({ "body": "  " }),
        json!({ "body": "x".repeat(4001) }),
        json!({}),
    ] {
        let reply = edit(&crew.member, body).await;
        expect_error(&reply, StatusCode::BAD_REQUEST, "invalid_body");
    }
    let longest = "x".repeat(4000);
    let reply = edit(&crew.member, json!({ "body": longest })).await;
    assert_eq!(
        expect(reply, StatusCode::OK).data()["body"],
        longest.as_str()
    );

    let missing = app
        .call(
            "PATCH",
            &format!("/rooms/{room}/messages/{}", Uuid::new_v4()),
            &crew.member.token,
            Some(json!({ "body": "x" })),
        )
        .await;
    expect_error(&missing, StatusCode::NOT_FOUND, "message_not_found");
    let other = id_of(
        &app.create_room(&crew.member, json!({ "name": "Other" }))
            .await,
    );
    let wrong_room = app
        .call(
            "PATCH",
            &format!("/rooms/{other}/messages/{}", id_of(&draft)),
            &crew.member.token,
            Some(json!({ "body": "x" })),
        )
        .await;
    expect_error(&wrong_room, StatusCode::NOT_FOUND, "message_not_found");

    let deleted = app.call("DELETE", &path, &crew.owner.token, NO_BODY).await;
    expect(deleted, StatusCode::OK);
    let too_late = edit(&crew.member, json!({ "body": "undo" })).await;
    expect_error(&too_late, StatusCode::CONFLICT, "message_deleted");
}

async fn the_author_admins_and_the_owner_delete_messages(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let crew = crew(&app, "private").await;
    let room = &crew.room;
    let dan = app.user("dan@example.com").await;
    expect(
        add(&app, &crew.owner, room, &dan).await,
        StatusCode::CREATED,
    );
    let own = say(&app, &crew.member, room, "own").await;
    let members_message = say(&app, &crew.member, room, "member's").await;
    let admins_message = say(&app, &crew.admin, room, "admin's").await;
    let owners_message = say(&app, &crew.owner, room, "owner's").await;
    let delete = |user: &TestUser, message: &Value| {
        let path = format!("/rooms/{room}/messages/{}", id_of(message));
        let (app, token) = (&app, user.token.clone());
        async move { app.call("DELETE", &path, &token, NO_BODY).await }
    };

    let reply = expect(delete(&crew.member, &own).await, StatusCode::OK);
    assert_eq!(reply.data()["deleted"], true);
    for (user, message) in [
        (&dan, &members_message),
        (&crew.member, &owners_message),
        (&crew.member, &admins_message),
    ] {
        let refused = delete(user, message).await;
        expect_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    let reply = expect(delete(&crew.admin, &members_message).await, StatusCode::OK);
    assert_eq!(
        (&reply.data()["deleted"], &reply.data()["body"]),
        (&json!(true), &Value::Null)
    );
    let reply = expect(delete(&crew.owner, &admins_message).await, StatusCode::OK);
    assert_eq!(reply.data()["deleted"], true);
    let reply = expect(delete(&crew.admin, &owners_message).await, StatusCode::OK);
    assert_eq!(reply.data()["deleted"], true);

    let page_data = history(&app, &dan, room, "").await;
    let flags: Vec<_> = page_data["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| {
            (
                message["seq"].as_i64().unwrap(),
                message["deleted"].as_bool().unwrap(),
                message["body"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            (1, true, true),
            (2, true, true),
            (3, true, true),
            (4, true, true)
        ]
    );
    let missing = app
        .call(
            "DELETE",
            &format!("/rooms/{room}/messages/{}", Uuid::new_v4()),
            &crew.owner.token,
            NO_BODY,
        )
        .await;
    expect_error(&missing, StatusCode::NOT_FOUND, "message_not_found");
}

// ---------------------------------------------------------------- who sees what

/// Every endpoint under `/rooms/{id}`, with `{room}`, `{member}` and
/// `{message}` to fill in, and a valid body where one is needed.
fn endpoints_under_a_room(stranger: &TestUser) -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/rooms/{room}", None),
        (
            "PATCH",
            "/rooms/{room}",
            Some(json!({ "topic": "mine now" })),
        ),
        ("DELETE", "/rooms/{room}", None),
        ("GET", "/rooms/{room}/members", None),
        (
            "POST",
            "/rooms/{room}/members",
            Some(json!({ "user_id": stranger.id })),
        ),
        (
            "POST",
            "/rooms/{room}/members",
            Some(json!({ "email": stranger.email })),
        ),
        ("PUT", "/rooms/{room}/members/me", None),
        ("DELETE", "/rooms/{room}/members/me", None),
        ("DELETE", "/rooms/{room}/members/{member}", None),
        (
            "PATCH",
            "/rooms/{room}/members/{member}",
            Some(json!({ "role": "admin" })),
        ),
        ("GET", "/rooms/{room}/messages", None),
        ("GET", "/rooms/{room}/messages?after_seq=0&limit=10", None),
        ("GET", "/rooms/{room}/messages?before_seq=5", None),
        (
            "POST",
            "/rooms/{room}/messages",
            Some(json!({ "body": "hello?" })),
        ),
        (
            "POST",
            "/rooms/{room}/messages",
            Some(json!({ "body": "hello?", "client_msg_id": "k" })),
        ),
        (
            "PATCH",
            "/rooms/{room}/messages/{message}",
            Some(json!({ "body": "edited" })),
        ),
        ("DELETE", "/rooms/{room}/messages/{message}", None),
    ]
}

async fn a_non_member_gets_the_same_404_for_a_hidden_room_as_for_no_room(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let cy = app.user("cy@example.com").await;
    let former = app.user("former@example.com").await;
    let private = id_of(&app.create_room(&ann, json!({ "name": "Hidden" })).await);
    expect(add(&app, &ann, &private, &bob).await, StatusCode::CREATED);
    expect(
        add(&app, &ann, &private, &former).await,
        StatusCode::CREATED,
    );
    let private_message = id_of(&say(&app, &bob, &private, "secret").await);
    say(&app, &former, &private, "I was here").await;
    expect(leave(&app, &former, &private).await, StatusCode::OK);
    let direct = app
        .call(
            "POST",
            "/dms",
            &ann.token,
            Some(json!({ "user_id": bob.id })),
        )
        .await;
    let direct = id_of(expect(direct, StatusCode::CREATED).data());
    let direct_message = id_of(&say(&app, &bob, &direct, "psst").await);

    let mut differences = Vec::new();
    for (method, template, body) in endpoints_under_a_room(&cy) {
        for (room, message) in [(&private, &private_message), (&direct, &direct_message)] {
            let fill = |room: &str| {
                template
                    .replace("{room}", room)
                    .replace("{member}", &bob.id)
                    .replace("{message}", message)
            };
            let nowhere = fill(&Uuid::new_v4().to_string());
            let missing = app.call(method, &nowhere, &cy.token, body.clone()).await;
            if missing.status != StatusCode::NOT_FOUND
                || missing.body["error"]["code"] != "room_not_found"
            {
                differences.push(format!("{method} {nowhere}: {missing:?}"));
            }
            let outsiders = if room == &private {
                vec![&cy, &former]
            } else {
                vec![&cy]
            };
            for outsider in outsiders {
                let hidden = app
                    .call(method, &fill(room), &outsider.token, body.clone())
                    .await;
                if (hidden.status, &hidden.body) != (missing.status, &missing.body) {
                    differences.push(format!(
                        "{method} {template} as {}: {} {} instead of {} {}",
                        outsider.email, hidden.status, hidden.body, missing.status, missing.body
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // Nothing the outsiders tried changed anything.
    let room = room_as(&app, &ann, &private).await;
    assert_eq!(
        (&room["topic"], &room["last_seq"]),
        (&Value::Null, &json!(2))
    );
    assert_eq!(
        roles_in(&app, &ann, &private).await,
        [
            (ann.id.clone(), "owner".to_owned()),
            (bob.id.clone(), "member".to_owned())
        ]
    );
    let page_data = history(&app, &ann, &private, "").await;
    assert_eq!(page_data["messages"][0]["body"], "secret");
    assert_eq!(room_as(&app, &bob, &direct).await["last_seq"], 1);
}

async fn an_id_that_is_not_a_uuid_is_404(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let room = id_of(&app.create_room(&ann, json!({ "name": "Real" })).await);
    let text = Some(json!({ "body": "x" }));
    let cases = [
        ("GET", "/rooms/not-a-uuid".to_owned(), None),
        (
            "PATCH",
            "/rooms/not-a-uuid".to_owned(),
            Some(json!({ "name": "x" })),
        ),
        ("DELETE", "/rooms/not-a-uuid".to_owned(), None),
        ("GET", "/rooms/12345/members".to_owned(), None),
        (
            "POST",
            "/rooms/12345/members".to_owned(),
            Some(json!({ "user_id": ann.id })),
        ),
        ("PUT", "/rooms/12345/members/me".to_owned(), None),
        ("DELETE", "/rooms/12345/members/me".to_owned(), None),
        ("GET", "/rooms/xyz/messages".to_owned(), None),
        ("POST", "/rooms/xyz/messages".to_owned(), text.clone()),
        (
            "PATCH",
            format!("/rooms/xyz/messages/{}", Uuid::new_v4()),
            text.clone(),
        ),
        (
            "PATCH",
            format!("/rooms/{room}/messages/not-a-uuid"),
            text.clone(),
        ),
        ("DELETE", format!("/rooms/{room}/messages/not-a-uuid"), None),
        ("DELETE", format!("/rooms/{room}/members/not-a-uuid"), None),
        (
            "PATCH",
            format!("/rooms/{room}/members/not-a-uuid"),
            Some(json!({ "role": "admin" })),
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in cases {
        let reply = app.call(method, &path, &ann.token, body).await;
        let code = reply.body["error"]["code"].clone();
        if reply.status != StatusCode::NOT_FOUND || code != "not_found" {
            wrong.push(format!("{method} {path}: {} {}", reply.status, reply.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "expected 404 not_found:\n{}",
        wrong.join("\n")
    );
}

async fn requests_without_a_valid_token_are_401_with_a_challenge(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let room = id_of(&app.create_room(&ann, json!({ "name": "Real" })).await);
    let message = id_of(&say(&app, &ann, &room, "hi").await);
    let mut paths: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/rooms".to_owned(), Some(json!({ "name": "x" }))),
        ("GET", "/rooms".to_owned(), None),
        ("GET", "/rooms/public?q=x".to_owned(), None),
        (
            "POST",
            "/dms".to_owned(),
            Some(json!({ "user_id": ann.id })),
        ),
    ];
    for (method, template, body) in endpoints_under_a_room(&ann) {
        let path = template
            .replace("{room}", &room)
            .replace("{member}", &ann.id)
            .replace("{message}", &message);
        paths.push((method, path, body));
    }
    let mut wrong = Vec::new();
    for (method, path, body) in &paths {
        let body = body.as_ref().map(Value::to_string).unwrap_or_default();
        let json = (!body.is_empty()).then_some("application/json");
        for (authorization, code) in [
            (None, "missing_token"),
            (Some("not.a.jwt"), "invalid_token"),
        ] {
            let reply = app
                .send(method, path, authorization, json, body.clone())
                .await;
            let challenge = reply
                .headers
                .get("WWW-Authenticate")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            if reply.status != StatusCode::UNAUTHORIZED
                || !challenge.starts_with("Bearer")
                || reply.body["status"] != "Error"
                || reply.body["error"]["code"] != code
            {
                wrong.push(format!("{method} {path} {authorization:?}: {reply:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let page_data = history(&app, &ann, &room, "").await;
    assert_eq!(
        page_data["messages"].as_array().unwrap().len(),
        1,
        "nothing was done"
    );
    assert_eq!(my_room_ids(&app, &ann).await, [room]);
}

// ---------------------------------------------------------------- races

async fn concurrent_senders_get_seqs_1_to_90_without_gaps(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let owner = app.user("owner@example.com").await;
    let room = id_of(&app.create_room(&owner, json!({ "name": "Busy" })).await);
    let mut senders = vec![owner.clone()];
    for i in 1..9 {
        let user = app.user(&format!("sender{i}@example.com")).await;
        expect(add(&app, &owner, &room, &user).await, StatusCode::CREATED);
        senders.push(user);
    }
    let app = Rc::new(app);
    let racers: Vec<_> = senders
        .iter()
        .map(|sender| {
            let (app, sender, room) = (app.clone(), sender.clone(), room.clone());
            actix_web::rt::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..10 {
                    let text = format!("{} {i}", sender.email);
                    let reply = send_message(&app, &sender, &room, json!({ "body": text })).await;
                    let reply = expect(reply, StatusCode::CREATED);
                    seqs.push(reply.data()["seq"].as_i64().unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for racer in racers {
        let seqs = racer.await.unwrap();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "one sender's seqs grow: {seqs:?}"
        );
        acknowledged.extend(seqs);
    }
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=90).collect::<Vec<_>>());

    let page_data = history(&app, &owner, &room, "?after_seq=0&limit=100").await;
    let messages = page_data["messages"].as_array().unwrap();
    let seqs: Vec<_> = messages
        .iter()
        .map(|message| message["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=90).collect::<Vec<_>>());
    assert_eq!(page_data["has_more"], false);
    let bodies: BTreeSet<_> = messages
        .iter()
        .map(|message| message["body"].to_string())
        .collect();
    assert_eq!(bodies.len(), 90, "every message stored once");
    for sender in &senders {
        let count = messages
            .iter()
            .filter(|message| message["author_id"] == sender.id.as_str())
            .count();
        assert_eq!(count, 10, "{}", sender.email);
    }
    assert_eq!(room_as(&app, &owner, &room).await["last_seq"], 90);
}

async fn concurrent_repeats_of_one_client_msg_id_store_one_message(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let room = id_of(&app.create_room(&ann, json!({ "name": "Retry" })).await);
    let app = Rc::new(app);
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (app, ann, room) = (app.clone(), ann.clone(), room.clone());
            actix_web::rt::spawn(async move {
                let body = json!({ "body": format!("attempt {i}"), "client_msg_id": "once" });
                send_message(&app, &ann, &room, body).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for racer in racers {
        replies.push(racer.await.unwrap());
    }
    let statuses: Vec<_> = replies.iter().map(|reply| reply.status).collect();
    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    let repeated = statuses
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    assert_eq!((created, repeated), (1, 7), "{replies:?}");
    let ids: BTreeSet<_> = replies.iter().map(|reply| id_of(reply.data())).collect();
    assert_eq!(ids.len(), 1, "one message: {replies:?}");
    let first = replies
        .iter()
        .find(|reply| reply.status == StatusCode::CREATED)
        .unwrap();
    for reply in &replies {
        assert_eq!(reply.data(), first.data());
    }
    assert_eq!(page(&app, &ann, &room, "").await, (vec![1], false));
    assert_eq!(room_as(&app, &ann, &room).await["last_seq"], 1);
}

async fn concurrent_dm_opens_for_one_pair_give_one_room(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let app = Rc::new(app);
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let app = app.clone();
            let (caller, body) = match i % 3 {
                0 => (ann.clone(), json!({ "user_id": bob.id })),
                1 => (bob.clone(), json!({ "user_id": ann.id })),
                _ => (bob.clone(), json!({ "email": ann.email })),
            };
            actix_web::rt::spawn(async move {
                app.call("POST", "/dms", &caller.token, Some(body)).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for racer in racers {
        replies.push(racer.await.unwrap());
    }
    let created = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .count();
    let existing = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    assert_eq!((created, existing), (1, 5), "{replies:?}");
    let ids: BTreeSet<_> = replies.iter().map(|reply| id_of(reply.data())).collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(my_room_ids(&app, &ann).await, [id.as_str()]);
    assert_eq!(my_room_ids(&app, &bob).await, [id.as_str()]);
    assert_eq!(members_as(&app, &ann, &id).await.len(), 2);
}

on_both_stores!(
    creating_a_room_makes_the_caller_owner_of_a_private_room,
    room_names_topics_and_visibilities_are_validated,
    get_rooms_lists_only_the_callers_rooms,
    public_rooms_are_found_by_name_in_any_case_and_private_ones_never,
    a_room_is_read_by_its_members_and_by_anyone_when_public,
    admins_and_the_owner_update_a_room,
    the_owner_deletes_a_room_with_its_members_and_messages,
    members_are_listed_in_joining_order_with_display_name_and_role,
    joining_a_public_room_is_idempotent_and_a_private_room_is_404,
    admins_and_the_owner_add_members_by_id_or_email,
    members_leave_and_are_kicked,
    the_owner_cannot_leave_without_handing_over,
    the_owner_changes_roles_and_hands_ownership_over,
    a_pair_has_one_direct_room_opened_from_either_side,
    messages_get_consecutive_seqs_and_trimmed_bodies,
    a_message_body_is_1_to_4000_characters_and_never_truncated,
    a_repeated_client_msg_id_returns_the_first_message,
    history_pages_in_both_directions,
    a_deleted_message_keeps_its_seq_as_a_tombstone,
    only_the_author_edits_a_message,
    the_author_admins_and_the_owner_delete_messages,
    a_non_member_gets_the_same_404_for_a_hidden_room_as_for_no_room,
    an_id_that_is_not_a_uuid_is_404,
    requests_without_a_valid_token_are_401_with_a_challenge,
    concurrent_senders_get_seqs_1_to_90_without_gaps,
    concurrent_repeats_of_one_client_msg_id_store_one_message,
    concurrent_dm_opens_for_one_pair_give_one_room,
);
