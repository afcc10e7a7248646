//! Resuming by position (docs/protocol.md, "Resuming"), from the client's
//! side: a small applier of room events that keeps what a client shows of a
//! room, the REST reads a fresh load makes, strict readers of a `sync` replay
//! and of `GET /rooms/{id}/events`, and the scenario the resume tests play
//! (tests/resume.rs in process, tests/restart.rs across a SIGKILL; the chaos
//! test, tests/chaos.rs, uses the applier).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use p_chat_persistence::postgres::PgConfig;
use serde_json::{Value, json};

use super::ws::WsClient;
use super::{GENEROUS_LIMITS, SECRET, TestApp, TestUser, postgres_vars};

/// The event kinds that carry a `pos` (everything but `typing`).
pub const POSITIONED: [&str; 10] = [
    "message",
    "message_updated",
    "message_deleted",
    "member_joined",
    "member_left",
    "member_updated",
    "room_updated",
    "room_deleted",
    "reaction_added",
    "reaction_removed",
];

/// The most a page of `sync` or `GET /rooms/{id}/events` holds.
pub const MAX_PAGE: u64 = 100;

/// Whether `frame` is a room event (a frame with a `pos`).
pub fn is_event(frame: &Value) -> bool {
    frame["type"]
        .as_str()
        .is_some_and(|kind| POSITIONED.contains(&kind))
}

/// `frame["pos"]`, which every room event has.
pub fn pos_of(frame: &Value) -> i64 {
    frame["pos"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer pos in {frame}"))
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap_or("?"))
        .collect()
}

/// Asserts that `events` are at positions `after + 1`, `after + 2`, ... (so
/// each once, in order, with no gap).
pub fn assert_consecutive(events: &[Value], after: i64) {
    for (index, event) in events.iter().enumerate() {
        let expected = after + 1 + i64::try_from(index).expect("a small index");
        assert_eq!(
            pos_of(event),
            expected,
            "event {index} after {after} is out of place: {event}\nall: {:?}",
            events
                .iter()
                .map(|event| (pos_of(event), event["type"].clone()))
                .collect::<Vec<_>>()
        );
    }
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was the next position: applied, the cursor moved on.
    Applied,
    /// At or below the cursor: already applied, ignored.
    Stale,
    /// Beyond the next position: something before it is missing, ignored
    /// (the next `sync` replays it).
    Ahead,
}

/// What a client shows of one room, and the position it has applied up to:
/// the room's details, its members with their roles, and its messages by
/// seq. Fields that differ between a live event and a later read for good
/// reason (the counters `last_pos` and `last_seq` of a room object in an old
/// event, join times) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// The position of the last event applied (or of the load).
    pub pos: i64,
    /// `{id, name, topic, visibility, owner_id}`.
    pub room: Value,
    /// By user id: `{display_name, role}`.
    pub members: BTreeMap<String, Value>,
    /// By seq: `{id, author_id, body, deleted, edited, client_msg_id}`.
    pub messages: BTreeMap<i64, Value>,
}

fn room_details(room: &Value) -> Value {
    json!({
        "id": room["id"],
        "name": room["name"],
        "topic": room["topic"],
        "visibility": room["visibility"],
        "owner_id": room["owner_id"],
    })
}

fn member_entry(member: &Value) -> (String, Value) {
    let id = member["user_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user_id in {member}"))
        .to_owned();
    (
        id,
        json!({ "display_name": member["display_name"], "role": member["role"] }),
    )
}

fn message_entry(message: &Value) -> (i64, Value) {
    let seq = message["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no seq in {message}"));
    let deleted = message["deleted"]
        .as_bool()
        .unwrap_or_else(|| panic!("no deleted flag in {message}"));
    assert!(
        !deleted || message["body"].is_null(),
        "a deleted message shows its body: {message}"
    );
    (
        seq,
        json!({
            "id": message["id"],
            "author_id": message["author_id"],
            "body": message["body"],
            "deleted": deleted,
            "edited": !message["edited_at"].is_null(),
            "client_msg_id": message["client_msg_id"],
        }),
    )
}

impl RoomState {
    /// The state a fresh load shows: the room object (whose `last_pos`,
    /// read first, is where the load stands), its members and its whole
    /// history.
    pub fn from_parts(room: &Value, members: &[Value], messages: &[Value]) -> Self {
        Self {
            pos: room["last_pos"]
                .as_i64()
                .unwrap_or_else(|| panic!("no last_pos in {room}")),
            room: room_details(room),
            members: members.iter().map(member_entry).collect(),
            messages: messages.iter().map(message_entry).collect(),
        }
    }

    /// The room's id.
    pub fn room_id(&self) -> &str {
        self.room["id"].as_str().expect("a room id")
    }

    /// Applies `event` if it is the next position (docs/protocol.md's
    /// recipe); anything else is left alone.
    pub fn apply(&mut self, event: &Value) -> Outcome {
        assert_eq!(
            event["room_id"], self.room["id"],
            "an event of another room: {event}"
        );
        let pos = pos_of(event);
        if pos <= self.pos {
            return Outcome::Stale;
        }
        if pos > self.pos + 1 {
            return Outcome::Ahead;
        }
        self.change(event);
        self.pos = pos;
        Outcome::Applied
    }

    fn change(&mut self, event: &Value) {
        match event["type"].as_str() {
            Some("message" | "message_updated" | "message_deleted") => {
                assert_eq!(
                    event["message"]["room_id"], self.room["id"],
                    "a message of another room: {event}"
                );
                let (seq, message) = message_entry(&event["message"]);
                self.messages.insert(seq, message);
            }
            Some("member_joined") => {
                let (id, member) = member_entry(&event["member"]);
                self.members.insert(id, member);
                self.room = room_details(&event["room"]);
            }
            Some("member_updated") => {
                let (id, member) = member_entry(&event["member"]);
                self.members.insert(id, member);
            }
            Some("member_left") => {
                let id = event["user_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no user_id in {event}"));
                self.members.remove(id);
            }
            Some("room_updated") => self.room = room_details(&event["room"]),
            // The message entries leave reactions out.
            Some("reaction_added" | "reaction_removed") => {}
            _ => panic!("not an event this applier knows: {event}"),
        }
    }
}

/// `GET path` as `user`, asserting a 200; its `data`.
async fn get_ok(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let reply = app.call("GET", path, &user.token, None).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}: {reply:?}");
    reply.data().clone()
}

/// All of a room's messages from seq 1 on, page by page.
pub async fn full_history(app: &TestApp, user: &TestUser, room: &str) -> Vec<Value> {
    let mut messages: Vec<Value> = Vec::new();
    loop {
        let after = messages
            .last()
            .map_or(0, |message| message["seq"].as_i64().expect("seq"));
        let page = get_ok(
            app,
            user,
            &format!("/rooms/{room}/messages?after_seq={after}&limit={MAX_PAGE}"),
        )
        .await;
        messages.extend(page["messages"].as_array().expect("messages").clone());
        if page["has_more"] != true {
            return messages;
        }
    }
}

/// A fresh load of `room` as `user` sees it: `GET /rooms/{id}` first (for
/// its `last_pos`), then its members and its whole history.
pub async fn fetch_state(app: &TestApp, user: &TestUser, room: &str) -> RoomState {
    let details = get_ok(app, user, &format!("/rooms/{room}")).await;
    let members = get_ok(app, user, &format!("/rooms/{room}/members")).await;
    let messages = full_history(app, user, room).await;
    RoomState::from_parts(&details, members.as_array().expect("members"), &messages)
}

/// `room`'s `last_pos` as `user` reads it.
pub async fn last_pos(app: &TestApp, user: &TestUser, room: &str) -> i64 {
    get_ok(app, user, &format!("/rooms/{room}")).await["last_pos"]
        .as_i64()
        .expect("last_pos")
}

/// Sends `{"type":"sync","room_id","after_pos","limit"?}` and reads the
/// replay strictly: nothing but events of `room`, then its `synced`. Returns
/// the events and the `synced` frame (whose `last_pos` is asserted to be the
/// last event's, or `after_pos`).
pub async fn ws_sync(
    client: &mut WsClient,
    room: &str,
    after_pos: i64,
    limit: Option<u64>,
) -> (Vec<Value>, Value) {
    let mut frame = json!({ "type": "sync", "room_id": room, "after_pos": after_pos });
    if let Some(limit) = limit {
        frame["limit"] = json!(limit);
    }
    client.send_json(frame).await;
    let mut events = Vec::new();
    loop {
        let frame = client.next_json().await;
        if is_event(&frame) {
            assert_eq!(frame["room_id"], room, "{frame}");
            events.push(frame);
        } else if frame["type"] == "synced" {
            assert_eq!(frame["room_id"], room, "{frame}");
            let last = events.last().map_or(after_pos, pos_of);
            assert_eq!(frame["last_pos"], last, "{frame}");
            assert!(frame["has_more"].is_boolean(), "{frame}");
            return (events, frame);
        } else {
            panic!("unexpected frame during a sync from {after_pos}: {frame}");
        }
    }
}

/// Every event of `room` after `after_pos` by `sync` pages of `limit`,
/// syncing again from `last_pos` while `has_more` (asserting that every page
/// but the last is full and says `has_more`).
pub async fn ws_sync_all(
    client: &mut WsClient,
    room: &str,
    after_pos: i64,
    limit: u64,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = after_pos;
    loop {
        let (page, synced) = ws_sync(client, room, after, Some(limit)).await;
        let full = page.len() == usize::try_from(limit).expect("a small limit");
        events.extend(page);
        after = synced["last_pos"].as_i64().expect("last_pos");
        if synced["has_more"] != true {
            return events;
        }
        assert!(full, "has_more after a page that is not full: {synced}");
    }
}

/// `GET /rooms/{id}/events?after_pos=&limit=` as `user`, asserting a 200:
/// the `data` (`{events, last_pos, has_more}`, whose `last_pos` is asserted
/// to be the last event's, or `after_pos`).
pub async fn rest_events(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    after_pos: i64,
    limit: u64,
) -> Value {
    let page = get_ok(
        app,
        user,
        &format!("/rooms/{room}/events?after_pos={after_pos}&limit={limit}"),
    )
    .await;
    let events = page["events"].as_array().expect("events");
    let last = events.last().map_or(after_pos, pos_of);
    assert_eq!(page["last_pos"], last, "{page}");
    page
}

/// Every event of `room` after `after_pos` over REST, in pages of `limit`.
pub async fn rest_events_all(
    app: &TestApp,
    user: &TestUser,
    room: &str,
    after_pos: i64,
    limit: u64,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = after_pos;
    loop {
        let page = rest_events(app, user, room, after, limit).await;
        events.extend(page["events"].as_array().expect("events").clone());
        after = page["last_pos"].as_i64().expect("last_pos");
        if page["has_more"] != true {
            return events;
        }
    }
}

/// The settings of a `p-chat` process on `database` for these tests (the
/// abuse limits raised, as for in-process servers), with `extra` on top.
pub fn process_vars(
    database: &PgConfig,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut vars = postgres_vars(database);
    vars.extend([
        ("PORT", "0".to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("JWT_SECRET", SECRET.to_owned()),
    ]);
    vars.extend(
        GENEROUS_LIMITS
            .iter()
            .chain(extra)
            .map(|(key, value)| (*key, (*value).to_owned())),
    );
    vars
}

/// `vars` as the borrowed pairs `ServerProcess::start` takes.
pub fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

// ------------------------------------------------------------ the scenario

/// The people of the resume scenario: B owns a private room with A and C
/// in it; D joins later. Each has written a message (`*_message` ids).
pub struct Cast {
    /// The one who goes away and resumes.
    pub a: TestUser,
    /// The owner, who changes things while A is away.
    pub b: TestUser,
    /// A member who is kicked while A is away.
    pub c: TestUser,
    /// Added, made admin and made owner while A is away.
    pub d: TestUser,
    /// The room.
    pub room: String,
    /// A message of A's.
    pub a_message: String,
    /// A message of B's.
    pub b_message: String,
    /// A message of C's.
    pub c_message: String,
}

/// `method path` as `user` with `body`, asserting `status`; the `data`.
pub async fn expect_call(
    app: &TestApp,
    user: &TestUser,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let reply = app.call(method, path, &user.token, body).await;
    assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
    reply.data().clone()
}

/// `POST /rooms/{room}/messages` as `user`: the new message's id.
pub async fn post(app: &TestApp, user: &TestUser, room: &str, body: &str) -> String {
    let message = expect_call(
        app,
        user,
        "POST",
        &format!("/rooms/{room}/messages"),
        Some(json!({ "body": body })),
        StatusCode::CREATED,
    )
    .await;
    message["id"].as_str().expect("a message id").to_owned()
}

/// Adds `user` to `room` as `actor`.
pub async fn add_member(app: &TestApp, actor: &TestUser, room: &str, user: &TestUser) {
    expect_call(
        app,
        actor,
        "POST",
        &format!("/rooms/{room}/members"),
        Some(json!({ "user_id": user.id })),
        StatusCode::CREATED,
    )
    .await;
}

/// Registers the cast on `app` (emails under `tag`, so that one server can
/// hold several casts) and sets the room up: B's private room, A and C
/// added, a message from each.
pub async fn cast(app: &TestApp, tag: &str) -> Cast {
    let a = app.user(&format!("a-{tag}@example.com")).await;
    let b = app.user(&format!("b-{tag}@example.com")).await;
    let c = app.user(&format!("c-{tag}@example.com")).await;
    let d = app.user(&format!("d-{tag}@example.com")).await;
    let room = app
        .create_room(&b, json!({ "name": "Plans", "visibility": "private" }))
        .await["id"]
        .as_str()
        .expect("a room id")
        .to_owned();
    add_member(app, &b, &room, &a).await;
    add_member(app, &b, &room, &c).await;
    let b_message = post(app, &b, &room, "B was here first").await;
    let c_message = post(app, &c, &room, "C says hi").await;
    let a_message = post(app, &a, &room, "A says hi").await;
    Cast {
        a,
        b,
        c,
        d,
        room,
        a_message,
        b_message,
        c_message,
    }
}

/// A loads the room, connects, applies one live message, and goes away
/// (closing its socket): the state it remembers, with its position.
pub async fn a_goes_away(app: &TestApp, cast: &Cast) -> RoomState {
    let mut state = fetch_state(app, &cast.a, &cast.room).await;
    let (mut client, _ready) = WsClient::connect_ready(app, &cast.a.token).await;
    post(app, &cast.b, &cast.room, "one more while A is here").await;
    let event = client.next_json().await;
    assert_eq!(event["type"], "message", "{event}");
    assert_eq!(
        state.apply(&event),
        Outcome::Applied,
        "the live event is the next position after the load ({}): {event}",
        state.pos
    );
    client.close().await;
    state
}

/// While A is away, B edits its message, deletes C's and A's, sends two
/// messages, sends one more and deletes it, and renames the room. Returns
/// the kinds of the events these changes log, in order.
pub async fn message_and_room_changes(app: &TestApp, cast: &Cast) -> Vec<&'static str> {
    let room = &cast.room;
    let b = &cast.b;
    expect_call(
        app,
        b,
        "PATCH",
        &format!("/rooms/{room}/messages/{}", cast.b_message),
        Some(json!({ "body": "B was here first (edited)" })),
        StatusCode::OK,
    )
    .await;
    for message in [&cast.c_message, &cast.a_message] {
        expect_call(
            app,
            b,
            "DELETE",
            &format!("/rooms/{room}/messages/{message}"),
            None,
            StatusCode::OK,
        )
        .await;
    }
    post(app, b, room, "news 1").await;
    post(app, b, room, "news 2").await;
    let oops = post(app, b, room, "oops, wrong room").await;
    expect_call(
        app,
        b,
        "DELETE",
        &format!("/rooms/{room}/messages/{oops}"),
        None,
        StatusCode::OK,
    )
    .await;
    expect_call(
        app,
        b,
        "PATCH",
        &format!("/rooms/{room}"),
        Some(json!({ "name": "Plans (renamed)", "topic": "what A missed" })),
        StatusCode::OK,
    )
    .await;
    vec![
        "message_updated",
        "message_deleted",
        "message_deleted",
        "message",
        "message",
        "message",
        "message_deleted",
        "room_updated",
    ]
}

/// While A is away, B adds D, kicks C, makes D an admin and hands the
/// ownership over to D. Returns the kinds of the events logged, in order.
pub async fn membership_changes(app: &TestApp, cast: &Cast) -> Vec<&'static str> {
    let room = &cast.room;
    let b = &cast.b;
    add_member(app, b, room, &cast.d).await;
    expect_call(
        app,
        b,
        "DELETE",
        &format!("/rooms/{room}/members/{}", cast.c.id),
        None,
        StatusCode::OK,
    )
    .await;
    for role in ["admin", "owner"] {
        expect_call(
            app,
            b,
            "PATCH",
            &format!("/rooms/{room}/members/{}", cast.d.id),
            Some(json!({ "role": role })),
            StatusCode::OK,
        )
        .await;
    }
    vec![
        "member_joined",
        "member_left",
        "member_updated",
        "member_updated",
        "member_updated",
        "room_updated",
    ]
}

/// The page size A resumes with: small, so that the replay takes pages.
pub const RESUME_PAGE: u64 = 3;

/// A comes back to `app` with the state it remembered and resumes
/// (docs/protocol.md's recipe): `GET /rooms` still lists the room, a `sync`
/// from its position (in pages of [`RESUME_PAGE`]) replays exactly
/// `expected`, in order, each once, and the state it applies them to equals
/// a fresh load; `GET /rooms/{id}/events` pages give the very same events.
pub async fn a_comes_back(app: &TestApp, cast: &Cast, remembered: &RoomState, expected: &[&str]) {
    let room = &cast.room;
    let (mut client, _ready) = WsClient::connect_ready(app, &cast.a.token).await;
    let listing = get_ok(app, &cast.a, "/rooms").await;
    let listed = listing
        .as_array()
        .expect("rooms")
        .iter()
        .find(|listed| listed["id"] == room.as_str())
        .unwrap_or_else(|| panic!("A's room is not listed: {listing}"))
        .clone();
    let expected_last = remembered.pos + i64::try_from(expected.len()).expect("few events");
    assert_eq!(listed["last_pos"], expected_last, "{listed}");

    let replayed = ws_sync_all(&mut client, room, remembered.pos, RESUME_PAGE).await;
    assert_eq!(kinds(&replayed), expected, "{replayed:#?}");
    assert_consecutive(&replayed, remembered.pos);
    assert_replay_details(cast, &replayed);

    let mut state = remembered.clone();
    for event in &replayed {
        assert_eq!(state.apply(event), Outcome::Applied, "{event}");
    }
    let fresh = fetch_state(app, &cast.a, room).await;
    assert_eq!(state, fresh, "A's applied state differs from a fresh load");

    // Nothing more comes, live or otherwise.
    let extra = client.ping_pong().await;
    assert!(extra.is_empty(), "frames after the sync: {extra:?}");
    client.close().await;

    let over_rest = rest_events_all(app, &cast.a, room, remembered.pos, RESUME_PAGE).await;
    assert_eq!(
        over_rest, replayed,
        "REST events differ from the WebSocket's"
    );
    let mut state = remembered.clone();
    for event in &over_rest {
        assert_eq!(state.apply(event), Outcome::Applied, "{event}");
    }
    assert_eq!(state, fresh, "the state applied from REST differs");
}

/// What docs/protocol.md says of the scenario's replayed events besides
/// their kinds: message events show the message as it is now (the deleted
/// one without its body), the kick names C, and the handover is the old
/// owner now admin, then D owner, then the room with D as its owner.
fn assert_replay_details(cast: &Cast, replayed: &[Value]) {
    let oops: Vec<&Value> = replayed
        .iter()
        .filter(|event| event["type"] == "message" && event["message"]["deleted"] == true)
        .collect();
    assert_eq!(
        oops.len(),
        1,
        "the deleted new message replays as deleted: {replayed:#?}"
    );
    assert!(oops[0]["message"]["body"].is_null(), "{}", oops[0]);
    let left = replayed
        .iter()
        .find(|event| event["type"] == "member_left")
        .expect("a member_left");
    assert_eq!(left["user_id"], cast.c.id.as_str(), "{left}");
    let updates: Vec<(&Value, &Value)> = replayed
        .iter()
        .filter(|event| event["type"] == "member_updated")
        .map(|event| (&event["member"]["user_id"], &event["member"]["role"]))
        .collect();
    if !updates.is_empty() {
        assert_eq!(
            updates,
            [
                (&json!(cast.d.id), &json!("admin")),
                (&json!(cast.b.id), &json!("admin")),
                (&json!(cast.d.id), &json!("owner")),
            ],
            "{replayed:#?}"
        );
        let last = replayed.last().expect("events");
        assert_eq!(last["type"], "room_updated", "{last}");
        assert_eq!(last["room"]["owner_id"], cast.d.id.as_str(), "{last}");
    }
}
