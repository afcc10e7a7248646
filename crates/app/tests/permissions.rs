//! The permission table of docs/api.md, cell by cell over HTTP, on both
//! stores: every action tried by every kind of user, each in a room staged
//! fresh for that one try, so no action disturbs another.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use actix_web::http::StatusCode;
use common::{Backend, Reply, TestApp, TestUser};
use serde_json::{Value, json};

/// Who tries the action. The outsider never is (or no longer is) a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Not a member of a public room.
    OutsiderPublic,
    /// Not a member of a private room.
    OutsiderPrivate,
    Member,
    Admin,
    Owner,
}

/// The columns of the table, in the order of docs/api.md.
const COLUMNS: [Who; 5] = [
    Who::OutsiderPublic,
    Who::OutsiderPrivate,
    Who::Member,
    Who::Admin,
    Who::Owner,
];

#[derive(Debug, Clone, Copy)]
enum Action {
    ReadRoom,
    Join,
    History,
    ListMembers,
    Post,
    EditOwnMessage,
    EditOthersMessage,
    DeleteOwnMessage,
    DeleteOthersMessage,
    UpdateRoom,
    AddMember,
    KickAMember,
    KickAnAdmin,
    ChangeRole,
    DeleteRoom,
    Leave,
}

/// docs/api.md "Permission table", one status per cell. "Own" messages of
/// an outsider were written while they were a member (they left since);
/// "other's" messages are a plain member's; the kicked admin is another
/// admin than the one acting; roles are changed on a plain member.
#[rustfmt::skip]
const TABLE: [(Action, [u16; 5]); 16] = [
    //                                 outsider  outsider
    //                                 (public)  (private)  member  admin  owner
    (Action::ReadRoom,            [200,      404,       200,    200,   200]),
    (Action::Join,                [200,      404,       200,    200,   200]),
    (Action::History,             [403,      404,       200,    200,   200]),
    (Action::ListMembers,         [403,      404,       200,    200,   200]),
    (Action::Post,                [403,      404,       201,    201,   201]),
    (Action::EditOwnMessage,      [403,      404,       200,    200,   200]),
    (Action::EditOthersMessage,   [403,      404,       403,    403,   403]),
    (Action::DeleteOwnMessage,    [403,      404,       200,    200,   200]),
    (Action::DeleteOthersMessage, [403,      404,       403,    200,   200]),
    (Action::UpdateRoom,          [403,      404,       403,    200,   200]),
    (Action::AddMember,           [403,      404,       403,    201,   201]),
    (Action::KickAMember,         [403,      404,       403,    200,   200]),
    (Action::KickAnAdmin,         [403,      404,       403,    403,   200]),
    (Action::ChangeRole,          [403,      404,       403,    403,   200]),
    (Action::DeleteRoom,          [403,      404,       403,    403,   200]),
    (Action::Leave,               [404,      404,       200,    200,   409]),
];

/// The same for a direct room, whose two members both have the `member`
/// role ("nobody can update, delete or add to them"), and an outsider.
#[rustfmt::skip]
const DIRECT_TABLE: [(Action, [u16; 2]); 14] = [
    //                                 outsider  member
    (Action::ReadRoom,            [404,      200]),
    (Action::Join,                [404,      200]),
    (Action::History,             [404,      200]),
    (Action::ListMembers,         [404,      200]),
    (Action::Post,                [404,      201]),
    (Action::EditOwnMessage,      [404,      200]),
    (Action::EditOthersMessage,   [404,      403]),
    (Action::DeleteOwnMessage,    [404,      200]),
    (Action::DeleteOthersMessage, [404,      403]),
    (Action::UpdateRoom,          [404,      403]),
    (Action::AddMember,           [404,      409]),
    (Action::KickAMember,         [404,      403]),
    (Action::ChangeRole,          [404,      403]),
    (Action::DeleteRoom,          [404,      403]),
];

/// Everyone a cell needs, registered once per server.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    /// The admin that `KickAnAdmin` kicks.
    other_admin: TestUser,
    member: TestUser,
    /// The member whose message is "other's", kicked and promoted.
    other_member: TestUser,
    outsider: TestUser,
    /// Who `AddMember` adds.
    newcomer: TestUser,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Self {
            owner: app.user("owner@example.com").await,
            admin: app.user("admin@example.com").await,
            other_admin: app.user("admin2@example.com").await,
            member: app.user("member@example.com").await,
            other_member: app.user("member2@example.com").await,
            outsider: app.user("outsider@example.com").await,
            newcomer: app.user("newcomer@example.com").await,
        }
    }

    fn actor(&self, who: Who) -> &TestUser {
        match who {
            Who::OutsiderPublic | Who::OutsiderPrivate => &self.outsider,
            Who::Member => &self.member,
            Who::Admin => &self.admin,
            Who::Owner => &self.owner,
        }
    }
}

/// One cell's room, with the actor's own message and another member's.
struct Scene {
    room: String,
    own_message: String,
    others_message: String,
}

#[track_caller]
fn created(reply: Reply) -> Value {
    assert_eq!(reply.status, StatusCode::CREATED, "staging: {reply:?}");
    reply.data().clone()
}

#[track_caller]
fn succeeded(reply: &Reply) {
    assert!(reply.status.is_success(), "staging: {reply:?}");
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

async fn add(app: &TestApp, room: &str, by: &TestUser, user: &TestUser) {
    let path = format!("/rooms/{room}/members");
    let body = json!({ "user_id": user.id });
    created(app.call("POST", &path, &by.token, Some(body)).await);
}

async fn say(app: &TestApp, room: &str, author: &TestUser, text: &str) -> String {
    let path = format!("/rooms/{room}/messages");
    let body = json!({ "body": text });
    id_of(&created(
        app.call("POST", &path, &author.token, Some(body)).await,
    ))
}

/// A fresh room of `visibility` with the whole cast in place (the outsider
/// left after writing their message), for `who` to act in.
async fn stage(app: &TestApp, cast: &Cast, who: Who) -> Scene {
    let visibility = match who {
        Who::OutsiderPublic => "public",
        _ => "private",
    };
    let body = json!({ "name": "cell", "visibility": visibility });
    let room = id_of(&created(
        app.call("POST", "/rooms", &cast.owner.token, Some(body))
            .await,
    ));
    for admin in [&cast.admin, &cast.other_admin] {
        add(app, &room, &cast.owner, admin).await;
        let path = format!("/rooms/{room}/members/{}", admin.id);
        let role = json!({ "role": "admin" });
        succeeded(
            &app.call("PATCH", &path, &cast.owner.token, Some(role))
                .await,
        );
    }
    add(app, &room, &cast.owner, &cast.member).await;
    add(app, &room, &cast.owner, &cast.other_member).await;
    let others_message = say(app, &room, &cast.other_member, "other's").await;
    let own_message = match who {
        Who::OutsiderPublic | Who::OutsiderPrivate => {
            add(app, &room, &cast.owner, &cast.outsider).await;
            let own = say(app, &room, &cast.outsider, "mine, from before").await;
            let path = format!("/rooms/{room}/members/me");
            succeeded(&app.call("DELETE", &path, &cast.outsider.token, None).await);
            own
        }
        _ => say(app, &room, cast.actor(who), "mine").await,
    };
    Scene {
        room,
        own_message,
        others_message,
    }
}

/// `actor` tries `action` in the scene.
async fn act(app: &TestApp, cast: &Cast, scene: &Scene, actor: &TestUser, action: Action) -> Reply {
    let room = format!("/rooms/{}", scene.room);
    let own = format!("{room}/messages/{}", scene.own_message);
    let others = format!("{room}/messages/{}", scene.others_message);
    let (method, path, body) = match action {
        Action::ReadRoom => ("GET", room, None),
        Action::Join => ("PUT", format!("{room}/members/me"), None),
        Action::History => ("GET", format!("{room}/messages"), None),
        Action::ListMembers => ("GET", format!("{room}/members"), None),
        Action::Post => (
            "POST",
            format!("{room}/messages"),
            Some(json!({ "body": "hi" })),
        ),
        Action::EditOwnMessage => ("PATCH", own, Some(json!({ "body": "edited" }))),
        Action::EditOthersMessage => ("PATCH", others, Some(json!({ "body": "edited" }))),
        Action::DeleteOwnMessage => ("DELETE", own, None),
        Action::DeleteOthersMessage => ("DELETE", others, None),
        Action::UpdateRoom => ("PATCH", room, Some(json!({ "topic": "new topic" }))),
        Action::AddMember => (
            "POST",
            format!("{room}/members"),
            Some(json!({ "user_id": cast.newcomer.id })),
        ),
        Action::KickAMember => (
            "DELETE",
            format!("{room}/members/{}", cast.other_member.id),
            None,
        ),
        Action::KickAnAdmin => (
            "DELETE",
            format!("{room}/members/{}", cast.other_admin.id),
            None,
        ),
        Action::ChangeRole => (
            "PATCH",
            format!("{room}/members/{}", cast.other_member.id),
            Some(json!({ "role": "admin" })),
        ),
        Action::DeleteRoom => ("DELETE", room, None),
        Action::Leave => ("DELETE", format!("{room}/members/me"), None),
    };
    app.call(method, &path, &actor.token, body).await
}

/// Whether `reply` is the answer a cell expects: its status, the envelope,
/// and for refusals the code docs/api.md names ("forbidden";
/// "room_not_found" for a room the caller may not see; "direct_room_full"
/// for adding to a direct room, "owner_must_hand_over" for other 409s).
fn mismatch(reply: &Reply, action: Action, expected: u16, hidden_room: bool) -> Option<String> {
    let code = reply.body["error"]["code"].as_str();
    let expected_code = match (expected, action) {
        (403, _) => Some("forbidden"),
        (404, _) if hidden_room => Some("room_not_found"),
        (409, Action::AddMember) => Some("direct_room_full"),
        (409, _) => Some("owner_must_hand_over"),
        _ => None,
    };
    let status_ok = reply.status.as_u16() == expected;
    let code_ok = expected_code.is_none_or(|wanted| code == Some(wanted));
    let shape_ok = if reply.status.is_success() {
        reply.body["status"] == "Success"
    } else {
        reply.body["status"] == "Error"
    };
    (!(status_ok && code_ok && shape_ok)).then(|| {
        let wanted = expected_code
            .map(|code| format!(" {code}"))
            .unwrap_or_default();
        format!(
            "expected {expected}{wanted}, got {} {}",
            reply.status.as_u16(),
            reply.body
        )
    })
}

async fn the_permission_table_holds_cell_by_cell(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let cast = Cast::new(&app).await;
    let mut mismatches = Vec::new();
    for (action, expected) in TABLE {
        for (who, expected) in COLUMNS.into_iter().zip(expected) {
            let scene = stage(&app, &cast, who).await;
            let reply = act(&app, &cast, &scene, cast.actor(who), action).await;
            if let Some(problem) = mismatch(&reply, action, expected, who == Who::OutsiderPrivate) {
                mismatches.push(format!("{action:?} by {who:?}: {problem}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cells differ from docs/api.md:\n{}",
        mismatches.len(),
        TABLE.len() * COLUMNS.len(),
        mismatches.join("\n")
    );
}

/// [`DIRECT_TABLE`]: each cell on a fresh pair (a direct room is unique
/// per pair). Kicking and promoting target the other member of the pair;
/// the outsider never was in the room, so "own" is the pair's message.
async fn the_permission_table_holds_for_direct_rooms(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let cast = Cast::new(&app).await;
    let mut mismatches = Vec::new();
    for (action, expected) in DIRECT_TABLE {
        for (column, expected) in ["outsider", "member"].into_iter().zip(expected) {
            let suffix = format!("{action:?}-{column}").to_lowercase();
            let one = app.user(&format!("one-{suffix}@example.com")).await;
            let two = app.user(&format!("two-{suffix}@example.com")).await;
            let body = json!({ "user_id": two.id });
            let room = id_of(&created(
                app.call("POST", "/dms", &one.token, Some(body)).await,
            ));
            let others_message = say(&app, &room, &two, "other's").await;
            let (actor, own_message) = if column == "member" {
                (&one, say(&app, &room, &one, "mine").await)
            } else {
                (&cast.outsider, others_message.clone())
            };
            let scene = Scene {
                room,
                own_message,
                others_message,
            };
            let pair = Cast {
                owner: one.clone(),
                admin: one.clone(),
                other_admin: two.clone(),
                member: one.clone(),
                other_member: two.clone(),
                outsider: cast.outsider.clone(),
                newcomer: cast.newcomer.clone(),
            };
            let reply = act(&app, &pair, &scene, actor, action).await;
            if let Some(problem) = mismatch(&reply, action, expected, column == "outsider") {
                mismatches.push(format!("{action:?} by {column}: {problem}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} direct-room cells differ from docs/api.md:\n{}",
        mismatches.len(),
        DIRECT_TABLE.len() * 2,
        mismatches.join("\n")
    );
}

on_both_stores!(
    the_permission_table_holds_cell_by_cell,
    the_permission_table_holds_for_direct_rooms,
);
