//! Several nodes on one PostgreSQL and one Redis (issue 12): what one node
//! publishes reaches the connections of the others, exactly once and in
//! position order; sessions ended on one node close their sockets on every
//! node; membership changes made on one node take effect at once on the
//! others; garbage on the channels changes nothing; `/ready` tells how far
//! events reach; `REDIS_*` settings are checked at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::Instant;
use base64::Engine as _;
use common::cluster::{CONNECT_WAIT, Cluster, SlowLink, Tap, fanout_of, wait_for_fanout};
use common::resume::{
    add_member, assert_consecutive, expect_call, is_event, kinds, last_pos, pos_of, post,
};
use common::ws::WsClient;
use common::{SECRET, TestApp, TestUser, Tokens};
use futures_util::future::join_all;
use p_chat::config::Config;
use p_chat_fanout::testing::RedisServer;
use serde_json::{Value, json};

/// How long a connection must stay silent to count as receiving nothing.
const QUIET: Duration = Duration::from_millis(500);

/// How long a session's sockets on another node may take to close.
const REVOCATION_WAIT: Duration = Duration::from_secs(1);

/// How long a node's subscription in Redis may take to appear or go.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(3);

/// Creates a private room owned by `owner` on `node`; its id.
async fn room_of(node: &TestApp, owner: &TestUser, name: &str) -> String {
    node.create_room(owner, json!({ "name": name, "visibility": "private" }))
        .await["id"]
        .as_str()
        .expect("a room id")
        .to_owned()
}

/// The login session (`sid` claim) an access token belongs to.
fn session_of(token: &str) -> String {
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .expect("base64url claims");
    let claims: Value = serde_json::from_slice(&claims).expect("JSON claims");
    claims["sid"].as_str().expect("a sid claim").to_owned()
}

/// The next JSON frame of `client` (`who`), which must be a room event of
/// `room`.
async fn next_event(client: &mut WsClient, who: &str, room: &str) -> Value {
    let frame = client
        .try_next_json(common::ws::WAIT)
        .await
        .unwrap_or_else(|error| panic!("{who}: expected an event of room {room}, got {error}"));
    assert!(
        is_event(&frame) && frame["room_id"] == room,
        "{who}: expected an event of room {room}, got {frame}"
    );
    frame
}

/// Asserts that `client` (`who`) receives nothing for [`QUIET`] and then
/// answers a ping with nothing before the pong.
async fn assert_quiet(client: &mut WsClient, who: &str) {
    let mut frames = client.collect_for(QUIET).await;
    frames.extend(client.ping_pong().await);
    assert!(frames.is_empty(), "{who} received {frames:?}");
}

// ------------------------------------------------ 1. many senders, two nodes

/// Senders connected to each node.
const SENDERS_PER_NODE: usize = 3;
/// Members connected to each node who only listen.
const LISTENERS_PER_NODE: usize = 2;
/// Messages each sender sends over its WebSocket.
const MESSAGES_PER_SENDER: usize = 100;

/// One member's connection in the busy room.
struct Member {
    /// `a0`, `b2`, `a-listener-1`...: the node and the part.
    label: String,
    user: TestUser,
    client: WsClient,
    /// The `client_msg_id`s it sends, in order (none for a listener).
    sends: Vec<String>,
}

/// What one connection received while everyone was sending.
struct Received {
    messages: Vec<Value>,
    acks: Vec<Value>,
}

/// The body of a sender's message with `client_msg_id`.
fn body_of(client_msg_id: &str) -> String {
    format!("message {client_msg_id}")
}

/// Sends the member's messages (pipelined: every `send` goes out before
/// any ack is read), then reads until it has `expected` messages and an ack
/// for each of its sends. Anything else fails.
async fn take_part(member: &mut Member, room: &str, expected: usize) -> Received {
    for client_msg_id in &member.sends {
        member
            .client
            .send_message_to(room, &body_of(client_msg_id), client_msg_id)
            .await;
    }
    let mut received = Received {
        messages: Vec::new(),
        acks: Vec::new(),
    };
    while received.messages.len() < expected || received.acks.len() < member.sends.len() {
        let frame = member
            .client
            .try_next_json(common::ws::WAIT)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "{}: stuck after {} messages (the last at pos {:?}) and {} acks: {error}",
                    member.label,
                    received.messages.len(),
                    received.messages.last().map(pos_of),
                    received.acks.len()
                )
            });
        match frame["type"].as_str() {
            Some("message") if frame["room_id"] == room => received.messages.push(frame),
            Some("ack") => received.acks.push(frame),
            _ => panic!("{}: unexpected frame {frame}", member.label),
        }
    }
    received
}

/// Six senders, three on each node, send a hundred messages each at once
/// over their WebSockets: every member's connection on either node gets all
/// six hundred, each once, in seq and position order with no gap; then
/// edits and deletions made over REST on A reach every connection as the
/// next positions.
#[actix_web::test]
async fn six_senders_on_two_nodes_reach_every_member_once_in_order() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let nodes = [("a", &cluster.nodes[0]), ("b", &cluster.nodes[1])];
    let a = nodes[0].1;
    let mut people: Vec<(String, &TestApp, TestUser, bool)> = Vec::new();
    for (name, node) in nodes {
        for index in 0..SENDERS_PER_NODE {
            let label = format!("{name}{index}");
            let user = a.user(&format!("{label}@example.com")).await;
            people.push((label, node, user, true));
        }
        for index in 0..LISTENERS_PER_NODE {
            let label = format!("{name}-listener-{index}");
            let user = a.user(&format!("{label}@example.com")).await;
            people.push((label, node, user, false));
        }
    }
    let owner = people[0].2.clone();
    let room = room_of(a, &owner, "Busy").await;
    for (_, _, user, _) in &people[1..] {
        add_member(a, &owner, &room, user).await;
    }
    let base = last_pos(a, &owner, &room).await;

    let mut members = Vec::new();
    for (label, node, user, sends) in people {
        let (client, _) = WsClient::connect_ready(node, &user.token).await;
        let sends = if sends {
            (0..MESSAGES_PER_SENDER)
                .map(|n| format!("{label}-{n}"))
                .collect()
        } else {
            Vec::new()
        };
        members.push(Member {
            label,
            user,
            client,
            sends,
        });
    }
    let total = members
        .iter()
        .map(|member| member.sends.len())
        .sum::<usize>();
    let authors: HashMap<String, String> = members
        .iter()
        .flat_map(|member| {
            member
                .sends
                .iter()
                .map(|id| (id.clone(), member.user.id.clone()))
        })
        .collect();

    let received = join_all(
        members
            .iter_mut()
            .map(|member| take_part(member, &room, total)),
    )
    .await;

    let mut ids: HashMap<String, String> = HashMap::new();
    for (member, got) in members.iter().zip(&received) {
        let who = &member.label;
        let messages = &got.messages;
        assert_consecutive(messages, base);
        let mut seen = HashSet::new();
        let mut last_of_author: HashMap<&str, usize> = HashMap::new();
        for (index, event) in messages.iter().enumerate() {
            let message = &event["message"];
            assert_eq!(
                message["seq"],
                index + 1,
                "{who}: seq out of place: {event}"
            );
            let client_msg_id = message["client_msg_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{who}: no client_msg_id in {event}"));
            assert!(seen.insert(client_msg_id), "{who}: twice: {event}");
            let author = authors
                .get(client_msg_id)
                .unwrap_or_else(|| panic!("{who}: a message nobody sent: {event}"));
            assert_eq!(message["author_id"], author.as_str(), "{who}: {event}");
            assert_eq!(message["body"], body_of(client_msg_id), "{who}: {event}");
            // One connection's sends are stored in the order it sent them.
            let (sender, n) = client_msg_id.rsplit_once('-').expect("label-n");
            let n: usize = n.parse().expect("a number");
            if let Some(before) = last_of_author.insert(sender, n) {
                assert!(
                    before < n,
                    "{who}: {sender}'s #{n} came after its #{before}"
                );
            }
            let id = message["id"].as_str().expect("a message id").to_owned();
            ids.insert(client_msg_id.to_owned(), id);
        }
        assert_eq!(seen.len(), total, "{who}: not every message arrived");
        let acked: Vec<&str> = got
            .acks
            .iter()
            .map(|ack| ack["client_msg_id"].as_str().expect("client_msg_id"))
            .collect();
        assert_eq!(acked, member.sends, "{who}: acks out of order or missing");
        for ack in &got.acks {
            let client_msg_id = ack["client_msg_id"].as_str().expect("client_msg_id");
            assert_eq!(
                ack["message"]["id"], ids[client_msg_id],
                "{who}: the ack and the event name different messages: {ack}"
            );
        }
    }

    // Edits and deletions over REST on A, by authors on either node and by
    // the owner.
    let by_label: HashMap<&str, &TestUser> = members
        .iter()
        .map(|member| (member.label.as_str(), &member.user))
        .collect();
    let changes = [
        ("b0", "PATCH", "b0-0", Some("b0's first, edited on A")),
        ("a1", "PATCH", "a1-1", Some("a1's second, edited")),
        ("b2", "PATCH", "b2-99", Some("b2's last, edited")),
        ("a0", "DELETE", "b1-50", None),
        ("a2", "DELETE", "a2-7", None),
        ("a0", "DELETE", "b0-0", None),
    ];
    for (actor, method, target, body) in changes {
        expect_call(
            a,
            by_label[actor],
            method,
            &format!("/rooms/{room}/messages/{}", ids[target]),
            body.map(|body| json!({ "body": body })),
            StatusCode::OK,
        )
        .await;
    }
    let last = base + i64::try_from(total).expect("a small count");
    for member in &mut members {
        let who = member.label.clone();
        let mut events = Vec::new();
        for _ in changes {
            events.push(next_event(&mut member.client, &who, &room).await);
        }
        assert_consecutive(&events, last);
        for (event, (_, method, target, body)) in events.iter().zip(changes) {
            let message = &event["message"];
            assert_eq!(message["id"], ids[target], "{who}: {event}");
            match body {
                Some(body) => {
                    assert_eq!(event["type"], "message_updated", "{who}: {event}");
                    assert_eq!(message["body"], body, "{who}: {event}");
                    assert!(!message["edited_at"].is_null(), "{who}: {event}");
                }
                None => {
                    assert_eq!(event["type"], "message_deleted", "{who}: {method} {event}");
                    assert_eq!(message["deleted"], true, "{who}: {event}");
                    assert!(message["body"].is_null(), "{who}: {event}");
                }
            }
        }
        assert_quiet(&mut member.client, &who).await;
    }
}

// ------------------------------------------------------ 2. ended sessions

/// A logout on A closes that session's sockets on B (and on A) with 4001
/// within a second; another session of the same user stays open and keeps
/// receiving, until its refresh token is reused on A.
#[actix_web::test]
async fn a_session_ended_on_one_node_closes_its_sockets_on_the_other_within_a_second() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let dee = a.user("dee@example.com").await;
    let second = Tokens::from(&a.authorize("dee@example.com", "pw").await);
    let room = room_of(a, &dee, "Notes").await;
    let (mut first_on_b, _) = WsClient::connect_ready(b, &dee.token).await;
    let (mut again_on_b, _) = WsClient::connect_ready(b, &dee.token).await;
    let (mut first_on_a, _) = WsClient::connect_ready(a, &dee.token).await;
    let (mut second_on_b, _) = WsClient::connect_ready(b, &second.access).await;

    let started = Instant::now();
    let logout = a
        .send("POST", "/session/logout", Some(&dee.token), None, "")
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{logout:?}");
    for (who, client) in [
        ("the first session on B", &mut first_on_b),
        ("the first session's other socket on B", &mut again_on_b),
        ("the first session on A", &mut first_on_a),
    ] {
        let left = (started + REVOCATION_WAIT).saturating_duration_since(Instant::now());
        let before = client.expect_close_within(4001, left).await;
        assert!(
            before.is_empty(),
            "{who} received {before:?} before closing"
        );
    }

    // The other session: open, and still hears the room.
    assert!(second_on_b.ping_pong().await.is_empty());
    let sender = TestUser {
        token: second.access.clone(),
        ..dee.clone()
    };
    post(a, &sender, &room, "still here").await;
    let event = next_event(&mut second_on_b, "the second session on B", &room).await;
    assert_eq!(event["message"]["body"], "still here", "{event}");

    // Reusing the second session's refresh token on A revokes it: its
    // socket on B closes too.
    assert_eq!(a.refresh(&second.refresh).await.status, StatusCode::OK);
    let started = Instant::now();
    assert_eq!(
        a.refresh(&second.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    let left = (started + REVOCATION_WAIT).saturating_duration_since(Instant::now());
    second_on_b.expect_close_within(4001, left).await;
}

// --------------------------------------------------------- 3. kicked on A

/// A member kicked on A while connected on B gets its own `member_left` on
/// B and nothing more of the room, while another member on B still does;
/// once B holds no member of a room, it stops listening to its channel.
#[actix_web::test]
async fn a_member_kicked_on_one_node_stops_hearing_the_room_on_the_other() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let kicked = a.user("kicked@example.com").await;
    let stayer = a.user("stayer@example.com").await;
    let room = room_of(a, &owner, "Club").await;
    let alone = room_of(a, &owner, "Alone").await;
    add_member(a, &owner, &room, &kicked).await;
    add_member(a, &owner, &room, &stayer).await;
    add_member(a, &owner, &alone, &kicked).await;
    let (mut kicked_on_b, _) = WsClient::connect_ready(b, &kicked.token).await;
    let (mut stayer_on_b, _) = WsClient::connect_ready(b, &stayer.token).await;
    // The owner's connection keeps A following both rooms.
    let (_owner_on_a, _) = WsClient::connect_ready(a, &owner.token).await;

    post(a, &owner, &room, "before the kick").await;
    for (who, client) in [
        ("the kicked member", &mut kicked_on_b),
        ("the other member", &mut stayer_on_b),
    ] {
        let event = next_event(client, who, &room).await;
        assert_eq!(
            event["message"]["body"], "before the kick",
            "{who}: {event}"
        );
    }

    expect_call(
        a,
        &owner,
        "DELETE",
        &format!("/rooms/{room}/members/{}", kicked.id),
        None,
        StatusCode::OK,
    )
    .await;
    for (who, client) in [
        ("the kicked member", &mut kicked_on_b),
        ("the other member", &mut stayer_on_b),
    ] {
        let left = next_event(client, who, &room).await;
        assert_eq!(left["type"], "member_left", "{who}: {left}");
        assert_eq!(left["user_id"], kicked.id.as_str(), "{who}: {left}");
    }
    let after_kick = last_pos(a, &owner, &room).await;
    let bodies = ["after 1", "after 2", "after 3"];
    for body in bodies {
        post(a, &owner, &room, body).await;
    }
    let mut heard = Vec::new();
    for _ in bodies {
        heard.push(next_event(&mut stayer_on_b, "the other member", &room).await);
    }
    assert_consecutive(&heard, after_kick);
    let heard: Vec<&Value> = heard
        .iter()
        .map(|event| &event["message"]["body"])
        .collect();
    assert_eq!(heard, bodies, "the other member on B");
    assert_quiet(&mut kicked_on_b, "the kicked member's connection on B").await;

    // The kicked member was B's only member of `alone`: once kicked, B
    // unsubscribes from its channel (only A, with the owner, listens).
    let channel = cluster.channel(&format!("room:{alone}"));
    let mut redis = cluster.redis().await;
    redis
        .wait_for_subscribers(&channel, 2, SUBSCRIBE_WAIT)
        .await
        .unwrap_or_else(|error| panic!("both nodes follow the room: {error}"));
    expect_call(
        a,
        &owner,
        "DELETE",
        &format!("/rooms/{alone}/members/{}", kicked.id),
        None,
        StatusCode::OK,
    )
    .await;
    let left = next_event(&mut kicked_on_b, "the kicked member", &alone).await;
    assert_eq!(left["type"], "member_left", "{left}");
    redis
        .wait_for_subscribers(&channel, 1, SUBSCRIBE_WAIT)
        .await
        .unwrap_or_else(|error| panic!("B still follows a room it has no member of: {error}"));
}

// ------------------------------------------------------ 4. added on A

/// Messages posted right after each add.
const AFTER_ADD: [&str; 3] = ["welcome", "how are you", "see you"];

/// `newcomer`, connected to B only, is added to `room` on A, and messages
/// follow at once (no pause for subscriptions to settle): its connection
/// gets its own `member_joined` and then every message, in position order,
/// each once. So does `watcher`, a member connected to B before.
async fn added_and_greeted(
    case: &str,
    a: &TestApp,
    owner: &TestUser,
    room: &str,
    newcomer: &mut WsClient,
    newcomer_user: &TestUser,
    watcher: Option<&mut WsClient>,
) {
    add_member(a, owner, room, newcomer_user).await;
    for body in AFTER_ADD {
        post(a, owner, room, body).await;
    }
    let mut clients = vec![(format!("{case}: the newcomer"), newcomer)];
    if let Some(watcher) = watcher {
        clients.push((format!("{case}: a member on B"), watcher));
    }
    for (who, client) in clients {
        let who = who.as_str();
        let joined = next_event(client, who, room).await;
        assert_eq!(joined["type"], "member_joined", "{who}: {joined}");
        assert_eq!(
            joined["member"]["user_id"],
            newcomer_user.id.as_str(),
            "{who}: {joined}"
        );
        let mut messages = Vec::new();
        for _ in AFTER_ADD {
            messages.push(next_event(client, who, room).await);
        }
        assert_consecutive(&messages, pos_of(&joined));
        let bodies: Vec<&Value> = messages
            .iter()
            .map(|event| &event["message"]["body"])
            .collect();
        assert_eq!(bodies, AFTER_ADD, "{who}");
        assert_quiet(client, who).await;
    }
}

/// A user added on A while connected only to B gets the room at once on B,
/// whether or not B already followed the room.
#[actix_web::test]
async fn a_user_added_on_one_node_follows_the_room_at_once_on_the_other() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let watcher = a.user("watcher@example.com").await;
    let followed = room_of(a, &owner, "Followed on B").await;
    add_member(a, &owner, &followed, &watcher).await;
    let (mut watcher_on_b, _) = WsClient::connect_ready(b, &watcher.token).await;

    for round in 0..3 {
        let newcomer = a.user(&format!("new-{round}@example.com")).await;
        let (mut client, _) = WsClient::connect_ready(b, &newcomer.token).await;
        added_and_greeted(
            &format!("round {round}, a room B follows"),
            a,
            &owner,
            &followed,
            &mut client,
            &newcomer,
            Some(&mut watcher_on_b),
        )
        .await;

        let newcomer = a.user(&format!("fresh-{round}@example.com")).await;
        let unfollowed = room_of(a, &owner, &format!("Not on B {round}")).await;
        let (mut client, _) = WsClient::connect_ready(b, &newcomer.token).await;
        let case = format!("round {round}, a room B does not follow");
        added_and_greeted(&case, a, &owner, &unfollowed, &mut client, &newcomer, None).await;
    }
}

/// How much B's link to Redis delays each way in the slow-link test.
const SLOW_LINK: Duration = Duration::from_millis(150);

/// Node A on the shared Redis, and node B reaching it through a
/// [`SlowLink`] of [`SLOW_LINK`] each way, both connected; the link lives
/// as long as the cluster is used.
async fn slow_cluster() -> Option<(Cluster, SlowLink)> {
    let mut cluster = Cluster::spawn(1, &[]).await?;
    let link = SlowLink::start(&cluster.redis_url, SLOW_LINK).await;
    let slow = cluster.spawn_node_via(&link.url(), &[]).await;
    if let Err(last) = wait_for_fanout(&slow, "cluster", CONNECT_WAIT).await {
        panic!("the node behind the slow link never connected: {last}");
    }
    cluster.nodes.push(slow);
    Some((cluster, link))
}

/// The same with B's link to Redis slow (150 ms each way), B already
/// listening to the newcomer's own channel: B subscribes to the room's
/// channel well after A has published the messages, and catching up from
/// the log closes that gap.
#[actix_web::test]
async fn a_user_added_on_one_node_follows_the_room_on_a_node_with_a_slow_link_to_redis() {
    let Some((cluster, _link)) = slow_cluster().await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let newcomer = a.user("newcomer@example.com").await;
    let room = room_of(a, &owner, "Slow").await;
    let (mut client, _) = WsClient::connect_ready(b, &newcomer.token).await;
    cluster
        .redis()
        .await
        .wait_for_subscribers(
            &cluster.channel(&format!("user:{}", newcomer.id)),
            1,
            SUBSCRIBE_WAIT,
        )
        .await
        .unwrap_or_else(|error| panic!("B follows the newcomer's channel: {error}"));
    let case = "slow link, B listening to the newcomer's channel";
    added_and_greeted(case, a, &owner, &room, &mut client, &newcomer, None).await;
}

/// The same, the user being added right after their connection on B got
/// `ready` (no pause): the add must not be lost because B has not yet
/// subscribed to the user's channel. `ready` promises live delivery from
/// then on (docs/protocol.md), and nothing outside an outage may need a
/// reconnect.
#[actix_web::test]
async fn a_user_added_right_after_connecting_to_a_node_with_a_slow_link_gets_the_room() {
    let Some((cluster, _link)) = slow_cluster().await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let hasty = a.user("hasty@example.com").await;
    let room = room_of(a, &owner, "Slow, hasty").await;
    let mut redis = cluster.redis().await;
    let (mut client, _) = WsClient::connect_ready(b, &hasty.token).await;
    let listening = redis
        .subscribers(&cluster.channel(&format!("user:{}", hasty.id)))
        .await;
    let case = format!(
        "slow link, added right after connecting (B's subscriptions to the newcomer's \
         channel just before the add: {listening})"
    );
    added_and_greeted(&case, a, &owner, &room, &mut client, &hasty, None).await;
}

// ----------------------------------------------------------- 5. garbage

/// A copy of a publication a node made, as if another node (`node` a fresh
/// id) had published it, changed by `change`.
fn forged(real: &Value, change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut forged = real.clone();
    forged["node"] = json!(uuid::Uuid::new_v4());
    change(&mut forged);
    forged.to_string().into_bytes()
}

/// `real` (a `message` event) turned into the next message of `room`
/// (position `pos`, seq `seq`) with `body`.
fn next_message(real: &Value, room: &str, pos: i64, seq: i64, body: &str) -> Value {
    let mut event = real.clone();
    event["room_id"] = json!(room);
    event["pos"] = json!(pos);
    let message = &mut event["change"]["message"];
    message["id"] = json!(uuid::Uuid::new_v4());
    message["room_id"] = json!(room);
    message["seq"] = json!(seq);
    message["body"] = json!(body);
    message["client_msg_id"] = Value::Null;
    event
}

/// `real` (a `member_joined` event) turned into the first event of a room
/// that does not exist, joined by `user`.
fn phantom_join(real: &Value, user: &str) -> Value {
    let phantom = json!(uuid::Uuid::new_v4());
    let mut event = real.clone();
    event["room_id"] = phantom.clone();
    event["pos"] = json!(1);
    event["change"]["room"]["id"] = phantom.clone();
    event["change"]["member"]["room_id"] = phantom;
    event["change"]["member"]["user_id"] = json!(user);
    event
}

/// Payloads that are no publication at all.
const NOT_PUBLICATIONS: [&[u8]; 7] = [
    b"\xff\xfe\x00 not even UTF-8",
    b"",
    b"hello",
    b"null",
    b"[1,2,3]",
    b"{}",
    b"{\"v\":1}",
];

/// Garbage published by hand on a room's channel, a user's channel and the
/// sessions channel (not JSON, JSON of the wrong shape, valid-looking
/// events with one invalid field, a version 2 envelope) reaches no
/// connection and leaves both nodes serving. Controls prove the forgeries
/// differ from what nodes accept by that one field only: the same
/// publications, valid, do reach a control user.
#[actix_web::test]
async fn garbage_on_the_channels_reaches_no_connection_and_harms_no_node() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let member = a.user("member@example.com").await;
    let user = a.user("user@example.com").await;
    let control = a.user("control@example.com").await;
    let control_second = Tokens::from(&a.authorize("control@example.com", "pw").await).access;
    let room = room_of(a, &owner, "Observed").await;
    // The control's own room: none of the observed users is in it.
    let control_room = room_of(a, &control, "Control").await;
    add_member(a, &owner, &room, &member).await;

    // Real publications, as the nodes make them, to forge from.
    let room_channel = cluster.channel(&format!("room:{room}"));
    let user_channel = cluster.channel(&format!("user:{}", user.id));
    let sessions_channel = cluster.channel("sessions");
    let mut tap = Tap::start(&cluster.redis_url, &cluster.channel("*")).await;
    add_member(a, &owner, &room, &user).await;
    let real_join = tap
        .next_on(
            &user_channel,
            |payload| payload["change"]["type"] == "member_joined",
            common::ws::WAIT,
        )
        .await;
    post(a, &owner, &room, "a real one").await;
    let real_message = tap
        .next_on(
            &room_channel,
            |payload| payload["change"]["message"]["body"] == "a real one",
            common::ws::WAIT,
        )
        .await;
    drop(tap);
    let pos = last_pos(a, &owner, &room).await;
    let seq = real_message["change"]["message"]["seq"]
        .as_i64()
        .expect("a seq");
    let control_pos = last_pos(a, &control, &control_room).await;

    let mut observed = Vec::new();
    for (who, node, token) in [
        ("the owner on A", a, &owner.token),
        ("the member on B", b, &member.token),
        ("the user on A", a, &user.token),
        ("the user on B", b, &user.token),
    ] {
        let (client, _) = WsClient::connect_ready(node, token).await;
        observed.push((who, client));
    }
    let mut controls = Vec::new();
    for (who, node, token) in [
        ("the control on A", a, &control.token),
        ("the control on B", b, &control.token),
        ("the control's second session on A", a, &control_second),
        ("the control's second session on B", b, &control_second),
    ] {
        let (client, _) = WsClient::connect_ready(node, token).await;
        controls.push((who, client));
    }
    let mut redis = cluster.redis().await;
    let control_channels = [
        cluster.channel(&format!("room:{control_room}")),
        cluster.channel(&format!("user:{}", control.id)),
    ];
    for channel in [&room_channel, &user_channel, &sessions_channel]
        .into_iter()
        .chain(&control_channels)
    {
        redis
            .wait_for_subscribers(channel, 2, SUBSCRIBE_WAIT)
            .await
            .unwrap_or_else(|error| panic!("both nodes listen to {channel}: {error}"));
    }

    // A would-be next message of the room, valid but for one field each.
    let next = next_message(&real_message, &room, pos + 1, seq + 1, "forged");
    // The format version the nodes read, as they published it, and one they
    // do not.
    let version = real_message["v"].as_u64().expect("a format version");
    let unknown_version = json!(version + 1);
    let mut on_room: Vec<Vec<u8>> = NOT_PUBLICATIONS.iter().map(|g| g.to_vec()).collect();
    on_room.extend([
        forged(&next, |f| f["kind"] = json!("parade")),
        forged(&next, |f| f["change"] = json!({ "type": "message" })),
        forged(&next, |f| f["change"]["type"] = json!("message_exploded")),
        forged(&next, |f| f["change"]["message"]["body"] = json!("")),
        forged(&next, |f| f["change"]["message"]["body"] = json!("   ")),
        forged(&next, |f| f["pos"] = json!(-1)),
        forged(&next, |f| f["pos"] = json!(0)),
        forged(&next, |f| f["pos"] = json!("next")),
        forged(&next, |f| f["change"]["message"]["seq"] = json!(-5)),
        forged(&next, |f| {
            f["change"]["message"]["author_id"] = json!("not-a-uuid");
        }),
        forged(&next, |f| f["room_id"] = json!("not-a-uuid")),
        forged(&next, |f| f["at"] = json!("yesterday")),
        forged(&next, |f| f["v"] = unknown_version.clone()),
        forged(&next, |f| f["v"] = json!("1")),
        forged(&next, |f| f["node"] = Value::Null),
    ]);
    // A would-be join of a room that does not exist, by the user.
    let join = phantom_join(&real_join, &user.id);
    let mut on_user: Vec<Vec<u8>> = NOT_PUBLICATIONS.iter().map(|g| g.to_vec()).collect();
    on_user.extend([
        forged(&join, |f| f["change"]["member"]["role"] = json!("king")),
        forged(&join, |f| f["change"]["member"]["display_name"] = json!("")),
        forged(&join, |f| {
            f["change"]["room"]["visibility"] = json!("secret")
        }),
        forged(&join, |f| f["change"]["room"]["name"] = json!("")),
        forged(&join, |f| f["change"]["member"]["user_id"] = json!(42)),
        forged(&join, |f| f["v"] = unknown_version.clone()),
        forged(&json!({"v": version, "kind": "typing"}), |f| {
            f["room_id"] = json!(room);
            f["user_id"] = json!("nobody");
        }),
    ]);
    // Would-be ends of the observed sessions.
    let mut on_sessions: Vec<Vec<u8>> = NOT_PUBLICATIONS.iter().map(|g| g.to_vec()).collect();
    let ended =
        |session: &str| json!({ "v": version, "kind": "session_ended", "session_id": session });
    for token in [&owner.token, &member.token, &user.token] {
        let session = session_of(token);
        on_sessions.extend([
            forged(&ended(&session), |f| f["v"] = unknown_version.clone()),
            forged(&ended(&session), |f| f["kind"] = json!("session_end")),
            forged(&ended(&session), |f| {
                f["session_id"] = json!(session.to_uppercase() + "!")
            }),
        ]);
    }
    on_sessions.extend([
        forged(&ended("not-a-uuid"), |_| {}),
        forged(&ended(""), |f| f["session_id"] = json!(42)),
    ]);

    for (channel, garbage) in [
        (&room_channel, &on_room),
        (&user_channel, &on_user),
        (&sessions_channel, &on_sessions),
    ] {
        for payload in garbage {
            let heard = redis.publish(channel, payload).await;
            assert!(
                heard >= 2,
                "only {heard} subscribers heard garbage on {channel}"
            );
        }
    }

    // The controls, valid: they reach the control user on both nodes (and,
    // after the garbage, prove each node has read all of it).
    let control_next = next_message(&real_message, &control_room, control_pos + 1, 1, "control");
    let control_join = phantom_join(&real_join, &control.id);
    let phantom = control_join["room_id"]
        .as_str()
        .expect("a room id")
        .to_owned();
    for (channel, payload) in [
        (&control_channels[0], forged(&control_next, |_| {})),
        (&control_channels[1], forged(&control_join, |_| {})),
    ] {
        assert!(redis.publish(channel, &payload).await >= 2, "{channel}");
    }
    for (who, client) in &mut controls {
        let message = next_event(client, who, &control_room).await;
        assert_eq!(message["message"]["body"], "control", "{who}: {message}");
        let joined = next_event(client, who, &phantom).await;
        assert_eq!(joined["type"], "member_joined", "{who}: {joined}");
    }
    let control_end = forged(&ended(&session_of(&control_second)), |_| {});
    assert!(redis.publish(&sessions_channel, &control_end).await >= 2);
    for (index, (who, client)) in controls.iter_mut().enumerate() {
        if index < 2 {
            assert_quiet(client, who).await;
        } else {
            let before = client.expect_close_within(4001, REVOCATION_WAIT).await;
            assert!(before.is_empty(), "{who} received {before:?}");
        }
    }

    // Real traffic both ways still flows, and is all the observed
    // connections ever got.
    post(a, &owner, &room, "from A").await;
    post(b, &member, &room, "from B").await;
    for (who, client) in &mut observed {
        let mut events = Vec::new();
        for _ in 0..2 {
            events.push(next_event(client, who, &room).await);
        }
        assert_consecutive(&events, pos);
        assert_eq!(kinds(&events), ["message", "message"], "{who}");
        assert_eq!(events[0]["message"]["body"], "from A", "{who}");
        assert_eq!(events[1]["message"]["body"], "from B", "{who}");
        assert_quiet(client, who).await;
    }
    for node in [a, b] {
        let health = node.get("/health", None).await;
        assert_eq!(health.status, StatusCode::OK, "{health:?}");
        assert_eq!(fanout_of(node).await, "cluster");
    }
}

// ---------------------------------------------------------- 6. /ready

/// `/ready` on a node of a cluster says `"fanout":"cluster"` once it is
/// connected; on a node without `REDIS_URL`, `"local"`.
#[actix_web::test]
async fn ready_tells_whether_events_reach_other_nodes() {
    let single = TestApp::spawn().await;
    assert_eq!(
        fanout_of(&single).await,
        "local",
        "a node without REDIS_URL"
    );
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    for node in &cluster.nodes {
        let ready = node.get("/ready", None).await;
        assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
        assert_eq!(
            ready.data(),
            &json!({ "status": "ready", "fanout": "cluster" }),
            "{ready:?}"
        );
    }
}

/// Nodes whose Redis is down start anyway and say `"fanout":"degraded"`
/// (200: they serve their own connections); once Redis is up they say
/// `cluster`, and a member on B gets, without doing anything, the message
/// posted on A during the outage, then the next ones.
#[actix_web::test]
async fn nodes_start_degraded_without_redis_and_catch_up_once_it_is_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.stop();
    let Some(cluster) = Cluster::spawn_on(&redis.url(), 2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    for node in [a, b] {
        assert_eq!(fanout_of(node).await, "degraded", "Redis is down");
    }
    let owner = a.user("owner@example.com").await;
    let member = a.user("member@example.com").await;
    let room = room_of(a, &owner, "Outage").await;
    add_member(a, &owner, &room, &member).await;
    let (mut owner_on_a, _) = WsClient::connect_ready(a, &owner.token).await;
    let (mut member_on_b, _) = WsClient::connect_ready(b, &member.token).await;
    let before = last_pos(a, &owner, &room).await;

    post(a, &owner, &room, "during the outage").await;
    let own = next_event(&mut owner_on_a, "the owner on A", &room).await;
    assert_eq!(own["message"]["body"], "during the outage", "{own}");
    assert_quiet(&mut member_on_b, "the member on B, cut off").await;

    redis.start_again().expect("redis-server starts again");
    for node in [a, b] {
        if let Err(last) = wait_for_fanout(node, "cluster", CONNECT_WAIT).await {
            panic!("a node did not reconnect to Redis: {last}");
        }
    }
    let missed = next_event(&mut member_on_b, "the member on B", &room).await;
    assert_eq!(missed["message"]["body"], "during the outage", "{missed}");
    post(a, &owner, &room, "after the outage").await;
    let next = next_event(&mut member_on_b, "the member on B", &room).await;
    assert_eq!(next["message"]["body"], "after the outage", "{next}");
    assert_consecutive(&[missed, next], before);
    assert_quiet(&mut member_on_b, "the member on B").await;
}

// ------------------------------------------------------- 7. configuration

/// A password that must never show in an error.
const PASSWORD: &str = "Sup3rSecretRedisPw";

/// `Config::from_vars` with a PostgreSQL store, the test secret and `pairs`.
fn load_clustered(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let mut vars: HashMap<String, String> = [
        ("PSQL_HOST", "db"),
        ("PSQL_USER", "p_chat"),
        ("PSQL_DB", "p_chat"),
        ("JWT_SECRET", SECRET),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    for (key, value) in pairs {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    Config::from_vars(vars).map_err(|error| error.to_string())
}

#[test]
fn a_valid_redis_url_and_prefix_are_read() {
    let config = load_clustered(&[("REDIS_URL", &format!("redis://:{PASSWORD}@cache:6380/2"))])
        .expect("a valid REDIS_URL");
    let redis = config.redis.expect("Redis settings");
    assert_eq!(redis.prefix.as_str(), "p-chat", "the default prefix");
    assert!(
        !format!("{:?}", redis.url).contains(PASSWORD),
        "the URL's Debug shows the password: {:?}",
        redis.url
    );
    let config = load_clustered(&[
        ("REDIS_URL", "redis://cache"),
        ("REDIS_PREFIX", "team.chat:prod_1"),
    ])
    .expect("a valid prefix");
    assert_eq!(
        config.redis.expect("Redis settings").prefix.as_str(),
        "team.chat:prod_1"
    );
    assert!(load_clustered(&[]).expect("no Redis").redis.is_none());
}

#[test]
fn a_bad_redis_url_is_refused_naming_redis_url_without_its_password() {
    for url in [
        "http://x".to_owned(),
        "redis://:99999".to_owned(),
        "not a url".to_owned(),
        format!("http://user:{PASSWORD}@x"),
        format!("redis://user:{PASSWORD}@cache:99999"),
        format!("redis://:{PASSWORD}@cache:6379/not-a-db"),
        format!("rediss://:{PASSWORD}@cache"),
    ] {
        let error = match load_clustered(&[("REDIS_URL", &url)]) {
            Ok(_) => panic!("REDIS_URL={url} was accepted"),
            Err(error) => error,
        };
        assert!(
            error.contains("REDIS_URL"),
            "the error for {url} does not name REDIS_URL: {error}"
        );
        assert!(
            !error.contains(PASSWORD),
            "the error for {url} shows the password: {error}"
        );
    }
}

#[test]
fn redis_url_without_psql_host_is_refused_naming_psql_host() {
    let vars = HashMap::from([
        ("REDIS_URL".to_owned(), "redis://127.0.0.1:6379".to_owned()),
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
    ]);
    let error = match Config::from_vars(vars) {
        Ok(_) => panic!("REDIS_URL without PSQL_HOST was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("PSQL_HOST"), "{error}");
}

#[test]
fn a_bad_redis_prefix_is_refused_naming_redis_prefix() {
    for prefix in ["p chat", " p-chat", "p*", "é", &"x".repeat(65)] {
        let error = match load_clustered(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_PREFIX", prefix),
        ]) {
            Ok(_) => panic!("REDIS_PREFIX={prefix:?} was accepted"),
            Err(error) => error,
        };
        assert!(
            error.contains("REDIS_PREFIX"),
            "the error for {prefix:?} does not name REDIS_PREFIX: {error}"
        );
    }
}

// -------------------------------------------------------- the first test

#[actix_web::test]
async fn a_message_sent_on_one_node_reaches_a_member_on_the_other() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let member = a.user("member@example.com").await;
    let room = room_of(a, &owner, "Across").await;
    add_member(a, &owner, &room, &member).await;
    let (mut listener, _) = WsClient::connect_ready(b, &member.token).await;
    post(a, &owner, &room, "hello from A").await;
    let event = listener.expect_type("message").await;
    assert_eq!(event["message"]["body"], "hello from A", "{event}");
}
