//! A bounded, seeded chaos test of resuming by position (issue 11) on the
//! `p-chat` binary over PostgreSQL.
//!
//! Writers send (over the WebSocket and REST), edit, delete, join and leave
//! two public rooms at random, while the owner renames them and changes
//! roles; readers follow both rooms, drop their socket at random (closing it
//! or just vanishing) and resume with docs/protocol.md's recipe (`GET
//! /rooms`, `sync` from the position they applied, applying only the next
//! position). The server is SIGKILLed and restarted mid-run; everyone
//! reconnects, and writers retry unacknowledged sends with the same
//! `client_msg_id`. At the end every reader's state equals a fresh load, and
//! over at least [`MIN_EVENTS`] applied events nothing was lost, duplicated
//! or reordered:
//!
//! - **lost**: a position a reader never applied (its final position short
//!   of the room's `last_pos`), or one a `sync` replay skipped;
//! - **duplicated**: on a connection whose `sync` of the room is done, an
//!   event at or below a position that connection already delivered;
//! - **reordered**: on such a connection, an event ahead of the next
//!   position (something overtook it or went missing);
//! - **mismatched**: one position showing different events to different
//!   readers, or to a reader and `GET /rooms/{id}/events`.
//!
//! `CHAOS_SEED=<u64>` replays a run's choices (the interleaving still
//! depends on timing). Run with `--nocapture` to see the counts. Skipped
//! (loudly) without a database, failed in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::print_stdout)] // the counts are this test's report

mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::rt::task::JoinHandle;
use awc::ws::Message;
use common::process::ServerProcess;
use common::resume::{
    self, Outcome, RoomState, as_refs, fetch_state, full_history, is_event, pos_of, process_vars,
};
use common::ws::{Frame, WsClient};
use common::{Reply, TestApp, TestUser};
use p_chat_persistence::postgres::testing::TestDatabase;
use serde_json::{Value, json};

/// Users changing the rooms.
const WRITERS: usize = 5;
/// Users following the rooms, dropping and resuming.
const READERS: usize = 5;
/// What each writer does before it stops (about one event each).
const OPS_PER_WRITER: usize = 1000;
/// The public rooms everyone is in.
const ROOMS: usize = 2;
/// How often the server is SIGKILLed and restarted, spread over the run.
const KILLS: usize = 2;
/// The least number of events the readers must have applied in all.
const MIN_EVENTS: u64 = 20_000;
/// The seed when `CHAOS_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5EED_0011;
/// The variable that picks the seed.
const SEED_VAR: &str = "CHAOS_SEED";
/// Events a connection may have queued before the server closes it as too
/// slow: above what a reader lets pile up while it loads, so that the run
/// is about resuming, not about the slow-consumer limit.
const QUEUE_CAPACITY: &str = "4096";
/// How long a request or a connection is retried while the server is away.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// The pause between two attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long an answer (an `ack`, `ready`, a `sync` replay's next frame) may
/// take before the connection counts as dead.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// The longest a reader stays connected before it drops its socket.
const MAX_STAY_MS: u64 = 2500;
/// The longest a reader stays away.
const MAX_AWAY_MS: u64 = 400;
/// How long readers may take to catch up once the writers are done.
const CATCH_UP: Duration = Duration::from_secs(90);

// ------------------------------------------------------------ randomness

/// xorshift64*: tiny, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    /// A generator for actor `stream` of the run seeded `seed` (splitmix64
    /// spreads the two into a non-zero state).
    fn new(seed: u64, stream: u64) -> Self {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index into something of `len` items.
    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(u64::try_from(len).unwrap())).unwrap()
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

// ------------------------------------------------------------ the world

/// What every actor shares: where the server is now, and the tallies.
struct World {
    /// `http://host:port` of the current server process.
    base: RefCell<String>,
    http: awc::Client,
    /// Writer operations done so far (what the kills are spread over).
    ops_done: Cell<usize>,
    /// Set once every writer is done: the owner stops.
    writers_done: Cell<bool>,
    /// Each room's final `last_pos`, once nothing changes any more.
    targets: RefCell<Option<BTreeMap<String, i64>>>,
    /// By room and position, what the first reader to apply it saw.
    identities: RefCell<BTreeMap<(String, i64), String>>,
    stats: RefCell<Stats>,
}

/// The run's tallies.
#[derive(Debug, Default)]
struct Stats {
    received: u64,
    applied: u64,
    lost_in_replay: u64,
    duplicated: u64,
    reordered: u64,
    mismatched: u64,
    typing: u64,
    typing_with_pos: u64,
    reader_sessions: u64,
    reader_drops: u64,
    reader_connections_lost: u64,
    reader_resyncs: u64,
    ws_resends: u64,
    rest_retries: u64,
    closes: BTreeMap<String, u64>,
}

impl World {
    fn base(&self) -> String {
        self.base.borrow().clone()
    }

    /// One request, or why it got no answer.
    async fn try_call(
        &self,
        method: &Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base()))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let sent = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|error| format!("{error}"))?;
        let bytes = response
            .body()
            .limit(1 << 22)
            .await
            .map_err(|error| format!("{error}"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|error| format!("{error}"))?
        };
        Ok(Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        })
    }

    /// A request, retried while the server is away (no answer, or 503);
    /// the answer and the number of attempts it took.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (Reply, u32) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let deadline = Instant::now() + RETRY_FOR;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.try_call(&method, path, token, body.as_ref()).await {
                Ok(reply) if reply.status != StatusCode::SERVICE_UNAVAILABLE => {
                    return (reply, attempts);
                }
                Ok(reply) => format!("{reply:?}"),
                Err(error) => error,
            };
            assert!(
                Instant::now() < deadline,
                "{method} {path}: no answer for {RETRY_FOR:?}: {failure}"
            );
            self.stats.borrow_mut().rest_retries += 1;
            actix_web::rt::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// A request that must succeed with `status` (or, when it was retried,
    /// with `retried`: the first attempt may have been done before its answer
    /// was lost); the answer.
    async fn expect(
        &self,
        user: &TestUser,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
        retried: &[StatusCode],
    ) -> Reply {
        let (reply, attempts) = self.call(method, path, &user.token, body).await;
        assert!(
            reply.status == status || (attempts > 1 && retried.contains(&reply.status)),
            "{method} {path} after {attempts} attempts: {reply:?}"
        );
        reply
    }

    /// A WebSocket of `user` past its `ready`, retried while the server is
    /// away.
    async fn connect(&self, user: &TestUser) -> WsClient {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let failure = match WsClient::try_connect_to(&self.base(), &user.token).await {
                Ok(mut client) => match client.try_next_json(ANSWER_WAIT).await {
                    Ok(ready) if ready["type"] == "ready" => return client,
                    Ok(other) => panic!("{}: the first frame is not ready: {other}", user.email),
                    Err(error) => error,
                },
                Err(error) => error,
            };
            assert!(
                Instant::now() < deadline,
                "{}: no connection for {RETRY_FOR:?}: {failure}",
                user.email
            );
            actix_web::rt::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Records what `event` is at its position, and counts a mismatch with
    /// what another reader saw there.
    fn identify(&self, event: &Value) {
        let key = (event["room_id"].as_str().unwrap().to_owned(), pos_of(event));
        let identity = identity(event);
        let mut identities = self.identities.borrow_mut();
        match identities.get(&key) {
            Some(known) if *known != identity => {
                println!("mismatch at {key:?}: {known} and {identity}");
                self.stats.borrow_mut().mismatched += 1;
            }
            Some(_) => {}
            None => {
                identities.insert(key, identity);
            }
        }
    }
}

/// What an event is, in terms that are the same live and replayed (a
/// replayed message shows its current body, so a message is its id).
fn identity(event: &Value) -> String {
    let kind = event["type"].as_str().unwrap_or("?");
    let subject = match kind {
        "message" | "message_updated" | "message_deleted" => event["message"]["id"].to_string(),
        "member_joined" | "member_updated" => {
            format!("{} {}", event["member"]["user_id"], event["member"]["role"])
        }
        "member_left" => event["user_id"].to_string(),
        "room_updated" => format!("{} {}", event["room"]["name"], event["room"]["topic"]),
        _ => event.to_string(),
    };
    format!("{kind} {subject}")
}

/// Where the next frame of a connection went.
enum Read {
    Json(Value),
    /// Nothing before the deadline.
    Quiet,
    /// The connection ended (how).
    Gone(String),
}

/// The next JSON frame of `client` before `deadline` (pings and the like
/// are skipped).
async fn read(client: &mut WsClient, deadline: Instant) -> Read {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_frame(left).await {
            None => return Read::Quiet,
            Some(Frame::Json(value)) => return Read::Json(value),
            Some(Frame::Ping | Frame::Other(_)) => {}
            Some(other) => return Read::Gone(format!("{other:?}")),
        }
    }
}

// ------------------------------------------------------------ writers

/// A writer: random changes to the rooms, each retried until it is done.
struct Writer {
    index: usize,
    user: TestUser,
    rng: Rng,
    world: Rc<World>,
    rooms: Vec<String>,
    joined: Vec<bool>,
    /// Its messages that are not deleted, by room.
    mine: Vec<Vec<String>>,
    socket: Option<WsClient>,
    /// The `client_msg_id`s of its acknowledged sends.
    acked: Vec<String>,
}

impl Writer {
    async fn run(mut self) -> Vec<String> {
        for op in 0..OPS_PER_WRITER {
            let room = self.rng.index(self.rooms.len());
            if !self.joined[room] {
                self.join(room).await;
            } else {
                match self.rng.below(100) {
                    0..35 => self.send_ws(room, op).await,
                    35..60 => self.send_rest(room, op).await,
                    60..75 if !self.mine[room].is_empty() => self.edit(room, op).await,
                    75..87 if !self.mine[room].is_empty() => self.delete(room).await,
                    87..93 => self.leave(room).await,
                    93..96 => self.typing(room).await,
                    _ => self.send_rest(room, op).await,
                }
            }
            self.world.ops_done.set(self.world.ops_done.get() + 1);
            self.drain().await;
        }
        if let Some(socket) = self.socket.take() {
            socket.close().await;
        }
        self.acked
    }

    fn client_msg_id(&self, op: usize) -> String {
        format!("w{}-{op}", self.index)
    }

    /// Reads whatever the socket has ready (the rooms' events, which a
    /// writer does not follow), so that it never counts as too slow.
    async fn drain(&mut self) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        loop {
            match socket.next_frame(Duration::ZERO).await {
                None => return,
                Some(Frame::Close(_) | Frame::Ended(_)) => {
                    self.socket = None;
                    return;
                }
                Some(_) => {}
            }
        }
    }

    async fn socket(&mut self) -> &mut WsClient {
        if self.socket.is_none() {
            self.socket = Some(self.world.connect(&self.user).await);
        }
        self.socket.as_mut().unwrap()
    }

    /// `send` over the WebSocket until acknowledged, again with the same
    /// `client_msg_id` on a new connection when the answer is lost.
    async fn send_ws(&mut self, room: usize, op: usize) {
        let id = self.client_msg_id(op);
        let frame = json!({
            "type": "send",
            "room_id": self.rooms[room],
            "body": format!("{} says {op} over the socket", self.user.email),
            "client_msg_id": id,
        });
        let deadline = Instant::now() + RETRY_FOR;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > 1 {
                self.world.stats.borrow_mut().ws_resends += 1;
            }
            assert!(Instant::now() < deadline, "{id}: never acknowledged");
            let socket = self.socket().await;
            if socket
                .try_send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                self.socket = None;
                continue;
            }
            let wait = Instant::now() + ANSWER_WAIT;
            let acked = loop {
                match read(self.socket.as_mut().unwrap(), wait).await {
                    Read::Json(answer)
                        if answer["type"] == "ack" && answer["client_msg_id"] == id.as_str() =>
                    {
                        break Some(answer);
                    }
                    Read::Json(answer) if answer["type"] == "error" => {
                        panic!("{id}: {answer}");
                    }
                    Read::Json(_) => {}
                    Read::Quiet | Read::Gone(_) => break None,
                }
            };
            match acked {
                Some(ack) => {
                    self.mine[room].push(ack["message"]["id"].as_str().unwrap().to_owned());
                    self.acked.push(id);
                    return;
                }
                None => self.socket = None,
            }
        }
    }

    /// `POST /rooms/{id}/messages` with a `client_msg_id`, retried until
    /// answered: 201, or 200 for a retry whose first attempt was stored.
    async fn send_rest(&mut self, room: usize, op: usize) {
        let id = self.client_msg_id(op);
        let reply = self
            .world
            .expect(
                &self.user,
                "POST",
                &format!("/rooms/{}/messages", self.rooms[room]),
                Some(json!({ "body": format!("{} says {op}", self.user.email), "client_msg_id": id })),
                StatusCode::CREATED,
                &[StatusCode::OK],
            )
            .await;
        self.mine[room].push(reply.data()["id"].as_str().unwrap().to_owned());
        self.acked.push(id);
    }

    async fn edit(&mut self, room: usize, op: usize) {
        let message = self.mine[room][self.rng.index(self.mine[room].len())].clone();
        self.world
            .expect(
                &self.user,
                "PATCH",
                &format!("/rooms/{}/messages/{message}", self.rooms[room]),
                Some(json!({ "body": format!("edited at {op}") })),
                StatusCode::OK,
                &[],
            )
            .await;
    }

    async fn delete(&mut self, room: usize) {
        let at = self.rng.index(self.mine[room].len());
        let message = self.mine[room].swap_remove(at);
        self.world
            .expect(
                &self.user,
                "DELETE",
                &format!("/rooms/{}/messages/{message}", self.rooms[room]),
                None,
                StatusCode::OK,
                &[],
            )
            .await;
    }

    async fn leave(&mut self, room: usize) {
        self.world
            .expect(
                &self.user,
                "DELETE",
                &format!("/rooms/{}/members/me", self.rooms[room]),
                None,
                StatusCode::OK,
                &[StatusCode::NOT_FOUND],
            )
            .await;
        self.joined[room] = false;
    }

    async fn join(&mut self, room: usize) {
        self.world
            .expect(
                &self.user,
                "PUT",
                &format!("/rooms/{}/members/me", self.rooms[room]),
                None,
                StatusCode::OK,
                &[],
            )
            .await;
        self.joined[room] = true;
    }

    /// A `typing` frame: readers get it without a position.
    async fn typing(&mut self, room: usize) {
        let frame = json!({ "type": "typing", "room_id": self.rooms[room] }).to_string();
        let socket = self.socket().await;
        if socket.try_send(Message::Text(frame.into())).await.is_err() {
            self.socket = None;
        }
    }
}

/// The rooms' owner: renames them, changes their topics and the writers'
/// roles, until the writers are done.
async fn owner_acts(
    world: Rc<World>,
    owner: TestUser,
    writers: Vec<TestUser>,
    rooms: Vec<String>,
    mut rng: Rng,
) -> usize {
    let mut acts = 0;
    while !world.writers_done.get() {
        actix_web::rt::time::sleep(rng.millis(150)).await;
        let room = &rooms[rng.index(rooms.len())];
        match rng.below(3) {
            0 => {
                let name = format!("chaos {acts}");
                world
                    .expect(
                        &owner,
                        "PATCH",
                        &format!("/rooms/{room}"),
                        Some(json!({ "name": name })),
                        StatusCode::OK,
                        &[],
                    )
                    .await;
            }
            1 => {
                let topic = format!("topic {acts}");
                world
                    .expect(
                        &owner,
                        "PATCH",
                        &format!("/rooms/{room}"),
                        Some(json!({ "topic": topic })),
                        StatusCode::OK,
                        &[],
                    )
                    .await;
            }
            _ => {
                let writer = &writers[rng.index(writers.len())];
                let role = if rng.below(2) == 0 { "admin" } else { "member" };
                let path = format!("/rooms/{room}/members/{}", writer.id);
                let (reply, _) = world
                    .call("PATCH", &path, &owner.token, Some(json!({ "role": role })))
                    .await;
                // A writer who has left is not a member: 404, nothing changes.
                assert!(
                    reply.status == StatusCode::OK
                        || (reply.status == StatusCode::NOT_FOUND
                            && reply.error_code() == "member_not_found"),
                    "PATCH {path}: {reply:?}"
                );
            }
        }
        acts += 1;
    }
    acts
}

// ------------------------------------------------------------ readers

/// Why a reader's session ended.
enum End {
    /// It dropped its socket on purpose.
    Away,
    /// The connection died (server killed, closed, silent).
    Lost,
    /// A connection whose sync was done showed a gap: resume afresh.
    Resync,
    /// Caught up with the final positions.
    Done,
}

/// What one connection has delivered of one room.
#[derive(Debug, Default)]
struct Delivered {
    /// Whether a `sync` of the room has finished on this connection (from
    /// then on, every event must be the next position).
    synced: bool,
    /// The highest position this connection has delivered.
    max: Option<i64>,
    /// The positions seen during the `sync` in progress, if any.
    window: Option<BTreeSet<i64>>,
}

/// A reader: follows the rooms with docs/protocol.md's recipe.
struct Reader {
    user: TestUser,
    rng: Rng,
    world: Rc<World>,
    rooms: Vec<String>,
    states: BTreeMap<String, RoomState>,
}

impl Reader {
    async fn run(mut self) -> BTreeMap<String, RoomState> {
        loop {
            let mut client = self.world.connect(&self.user).await;
            self.world.stats.borrow_mut().reader_sessions += 1;
            let end = self.session(&mut client).await;
            match end {
                End::Done => {
                    client.close().await;
                    return self.states;
                }
                End::Away => {
                    self.world.stats.borrow_mut().reader_drops += 1;
                    if self.rng.below(2) == 0 {
                        client.close().await;
                    } else {
                        drop(client); // vanishes without a close frame
                    }
                }
                End::Lost => self.world.stats.borrow_mut().reader_connections_lost += 1,
                End::Resync => self.world.stats.borrow_mut().reader_resyncs += 1,
            }
            if self.world.targets.borrow().is_none() {
                actix_web::rt::time::sleep(self.rng.millis(MAX_AWAY_MS)).await;
            }
        }
    }

    fn caught_up(&self) -> bool {
        self.world.targets.borrow().as_ref().is_some_and(|targets| {
            targets
                .iter()
                .all(|(room, target)| self.states[room].pos >= *target)
        })
    }

    /// One connection: the recipe's steps 2 and 3, then live events for a
    /// while.
    async fn session(&mut self, client: &mut WsClient) -> End {
        let (listing, _) = self
            .world
            .call("GET", "/rooms", &self.user.token, None)
            .await;
        assert_eq!(listing.status, StatusCode::OK, "{listing:?}");
        let listed = listing.data().as_array().unwrap().clone();
        for room in self.rooms.clone() {
            let room_object = listed
                .iter()
                .find(|listed| listed["id"] == room.as_str())
                .unwrap_or_else(|| panic!("{}: room {room} is not listed", self.user.email));
            if !self.states.contains_key(&room) {
                let state = self.load(&room, room_object).await;
                self.states.insert(room, state);
            }
        }
        let mut delivered: BTreeMap<String, Delivered> = self
            .rooms
            .iter()
            .map(|room| (room.clone(), Delivered::default()))
            .collect();
        for room in self.rooms.clone() {
            if let Err(end) = self.sync(client, &room, &mut delivered).await {
                return end;
            }
        }
        let finishing = self.world.targets.borrow().is_some();
        let stay = if finishing {
            CATCH_UP
        } else {
            self.rng.millis(MAX_STAY_MS)
        };
        let until = Instant::now() + stay;
        loop {
            if self.caught_up() {
                return End::Done;
            }
            // Ask again for the targets at least twice a second.
            let deadline = until.min(Instant::now() + Duration::from_millis(500));
            match read(client, deadline).await {
                Read::Json(frame) => {
                    if let Err(end) = self.on_frame(&frame, &mut delivered) {
                        return end;
                    }
                }
                Read::Gone(how) => {
                    self.note_close(&how);
                    return End::Lost;
                }
                Read::Quiet if Instant::now() >= until => {
                    return if finishing { End::Done } else { End::Away };
                }
                Read::Quiet => {}
            }
        }
    }

    fn note_close(&self, how: &str) {
        *self
            .world
            .stats
            .borrow_mut()
            .closes
            .entry(how.to_owned())
            .or_default() += 1;
    }

    /// Step 2 for a room new to the reader: the listing's room object
    /// (read first: its `last_pos` is where the load stands), its members
    /// and its whole history.
    async fn load(&self, room: &str, listed: &Value) -> RoomState {
        let (members, _) = self
            .world
            .call(
                "GET",
                &format!("/rooms/{room}/members"),
                &self.user.token,
                None,
            )
            .await;
        assert_eq!(members.status, StatusCode::OK, "{members:?}");
        let mut messages: Vec<Value> = Vec::new();
        loop {
            let after = messages
                .last()
                .map_or(0, |message| message["seq"].as_i64().unwrap());
            let (page, _) = self
                .world
                .call(
                    "GET",
                    &format!(
                        "/rooms/{room}/messages?after_seq={after}&limit={}",
                        resume::MAX_PAGE
                    ),
                    &self.user.token,
                    None,
                )
                .await;
            assert_eq!(page.status, StatusCode::OK, "{page:?}");
            messages.extend(page.data()["messages"].as_array().unwrap().clone());
            if page.data()["has_more"] != true {
                break;
            }
        }
        RoomState::from_parts(listed, members.data().as_array().unwrap(), &messages)
    }

    /// Step 3: `sync` from the applied position, again from `last_pos`
    /// while `has_more`, with a random page size. Checks that each replay
    /// holds every position it covers.
    async fn sync(
        &mut self,
        client: &mut WsClient,
        room: &str,
        delivered: &mut BTreeMap<String, Delivered>,
    ) -> Result<(), End> {
        loop {
            let after = self.states[room].pos;
            let limit = self.rng.below(resume::MAX_PAGE) + 1;
            let frame =
                json!({ "type": "sync", "room_id": room, "after_pos": after, "limit": limit });
            if client
                .try_send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return Err(End::Lost);
            }
            delivered.get_mut(room).unwrap().window = Some(BTreeSet::new());
            let synced = loop {
                match read(client, Instant::now() + ANSWER_WAIT).await {
                    Read::Json(frame) if frame["type"] == "synced" && frame["room_id"] == room => {
                        break frame;
                    }
                    Read::Json(frame) => self.on_frame(&frame, delivered)?,
                    Read::Gone(how) => {
                        self.note_close(&how);
                        return Err(End::Lost);
                    }
                    Read::Quiet => return Err(End::Lost),
                }
            };
            let last = synced["last_pos"].as_i64().unwrap();
            let entry = delivered.get_mut(room).unwrap();
            let window = entry.window.take().unwrap_or_default();
            let skipped = (after + 1..=last)
                .filter(|pos| !window.contains(pos))
                .count();
            if skipped > 0 {
                println!(
                    "{}: the sync of {room} from {after} to {last} skipped {skipped} positions",
                    self.user.email
                );
                self.world.stats.borrow_mut().lost_in_replay += u64::try_from(skipped).unwrap();
            }
            if self.states[room].pos < last {
                return Err(End::Resync);
            }
            if synced["has_more"] != true {
                entry.synced = true;
                entry.max = Some(entry.max.map_or(last, |max| max.max(last)));
                return Ok(());
            }
        }
    }

    /// One frame: an event is checked against what the connection delivered
    /// and applied if it is the next position; typing has no position.
    fn on_frame(
        &mut self,
        frame: &Value,
        delivered: &mut BTreeMap<String, Delivered>,
    ) -> Result<(), End> {
        if frame["type"] == "typing" {
            let mut stats = self.world.stats.borrow_mut();
            stats.typing += 1;
            if frame.get("pos").is_some() {
                stats.typing_with_pos += 1;
            }
            return Ok(());
        }
        assert!(
            is_event(frame),
            "{}: unexpected frame {frame}",
            self.user.email
        );
        let room = frame["room_id"].as_str().unwrap();
        let pos = pos_of(frame);
        let entry = delivered
            .get_mut(room)
            .unwrap_or_else(|| panic!("an event of a room not followed: {frame}"));
        {
            let mut stats = self.world.stats.borrow_mut();
            stats.received += 1;
            if entry.synced {
                let max = entry.max.unwrap_or_default();
                if pos <= max {
                    println!(
                        "{}: {room} delivered {pos} again after {max}",
                        self.user.email
                    );
                    stats.duplicated += 1;
                } else if pos > max + 1 {
                    println!("{}: {room} delivered {pos} after {max}", self.user.email);
                    stats.reordered += 1;
                }
            }
        }
        entry.max = Some(entry.max.map_or(pos, |max| max.max(pos)));
        if let Some(window) = entry.window.as_mut() {
            window.insert(pos);
        }
        let synced = entry.synced;
        match self.states.get_mut(room).unwrap().apply(frame) {
            Outcome::Applied => {
                self.world.stats.borrow_mut().applied += 1;
                self.world.identify(frame);
                Ok(())
            }
            Outcome::Stale => Ok(()),
            // Before the sync is done, the sync replays it; after, it is a
            // gap (counted above): resume afresh to go on.
            Outcome::Ahead if synced => Err(End::Resync),
            Outcome::Ahead => Ok(()),
        }
    }
}

// ------------------------------------------------------------ the run

/// Waits until every task is finished, SIGKILLing and restarting the server
/// (on the same database) each time the writers pass another share of their
/// work; returns how many times it did.
async fn kill_while_writing(
    world: &World,
    server: &mut Option<ServerProcess>,
    vars: &[(&'static str, String)],
    writers: &[JoinHandle<Vec<String>>],
    rng: &mut Rng,
) -> usize {
    let total = WRITERS * OPS_PER_WRITER;
    let mut kills = 0;
    while !writers.iter().all(JoinHandle::is_finished) {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        if kills < KILLS && world.ops_done.get() >= total * (kills + 1) / (KILLS + 1) {
            drop(server.take()); // SIGKILL
            actix_web::rt::time::sleep(rng.millis(MAX_AWAY_MS)).await;
            let next = ServerProcess::start(&as_refs(vars));
            *world.base.borrow_mut() = next.base.clone();
            *server = Some(next);
            kills += 1;
        }
    }
    kills
}

/// Awaits a task, passing its panic on as it was.
async fn joined<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

#[actix_web::test]
async fn readers_that_drop_and_resume_lose_nothing_across_crashes() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let seed = std::env::var(SEED_VAR)
        .ok()
        .map(|seed| seed.parse().expect("CHAOS_SEED is a u64"))
        .unwrap_or(DEFAULT_SEED);
    println!("chaos: seed {seed} ({SEED_VAR} to replay)");
    let started = Instant::now();
    let vars = process_vars(database.config(), &[("WS_QUEUE_CAPACITY", QUEUE_CAPACITY)]);
    let mut server = Some(ServerProcess::start(&as_refs(&vars)));
    let base = server.as_ref().unwrap().base.clone();

    let app = TestApp::connect(&base);
    let owner = app.user("owner@example.com").await;
    let mut writers = Vec::new();
    for index in 0..WRITERS {
        writers.push(app.user(&format!("writer{index}@example.com")).await);
    }
    let mut readers = Vec::new();
    for index in 0..READERS {
        readers.push(app.user(&format!("reader{index}@example.com")).await);
    }
    let mut rooms = Vec::new();
    for index in 0..ROOMS {
        let room = app
            .create_room(
                &owner,
                json!({ "name": format!("chaos room {index}"), "visibility": "public" }),
            )
            .await;
        rooms.push(room["id"].as_str().unwrap().to_owned());
    }
    for room in &rooms {
        for user in writers.iter().chain(&readers) {
            let joined = app
                .call(
                    "PUT",
                    &format!("/rooms/{room}/members/me"),
                    &user.token,
                    None,
                )
                .await;
            assert_eq!(joined.status, StatusCode::OK, "{joined:?}");
        }
    }

    let world = Rc::new(World {
        base: RefCell::new(base),
        http: awc::Client::builder().timeout(ANSWER_WAIT).finish(),
        ops_done: Cell::new(0),
        writers_done: Cell::new(false),
        targets: RefCell::new(None),
        identities: RefCell::new(BTreeMap::new()),
        stats: RefCell::new(Stats::default()),
    });
    let stream = |kind: u64, index: usize| kind * 1000 + u64::try_from(index).unwrap();
    let reader_tasks: Vec<JoinHandle<BTreeMap<String, RoomState>>> = readers
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let reader = Reader {
                user: user.clone(),
                rng: Rng::new(seed, stream(1, index)),
                world: world.clone(),
                rooms: rooms.clone(),
                states: BTreeMap::new(),
            };
            actix_web::rt::spawn(reader.run())
        })
        .collect();
    let writer_tasks: Vec<JoinHandle<Vec<String>>> = writers
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let writer = Writer {
                index,
                user: user.clone(),
                rng: Rng::new(seed, stream(2, index)),
                world: world.clone(),
                rooms: rooms.clone(),
                joined: vec![true; ROOMS],
                mine: vec![Vec::new(); ROOMS],
                socket: None,
                acked: Vec::new(),
            };
            actix_web::rt::spawn(writer.run())
        })
        .collect();
    let owner_task = actix_web::rt::spawn(owner_acts(
        world.clone(),
        owner.clone(),
        writers.clone(),
        rooms.clone(),
        Rng::new(seed, stream(3, 0)),
    ));

    let mut rng = Rng::new(seed, stream(4, 0));
    let kills = kill_while_writing(&world, &mut server, &vars, &writer_tasks, &mut rng).await;
    let mut acked = Vec::new();
    for task in writer_tasks {
        acked.extend(joined(task).await);
    }
    world.writers_done.set(true);
    let owner_acts = joined(owner_task).await;
    let app = TestApp::connect(&world.base());
    let mut targets = BTreeMap::new();
    for room in &rooms {
        targets.insert(room.clone(), resume::last_pos(&app, &owner, room).await);
    }
    *world.targets.borrow_mut() = Some(targets.clone());
    let mut finals = Vec::new();
    for task in reader_tasks {
        finals.push(joined(task).await);
    }

    // Every reader's state is a fresh load's; its position the room's.
    let mut lost = 0;
    let mut differing = Vec::new();
    for room in &rooms {
        let fresh = fetch_state(&app, &owner, room).await;
        for (index, states) in finals.iter().enumerate() {
            let state = &states[room];
            lost += u64::try_from(targets[room] - state.pos).unwrap_or_default();
            if *state != fresh {
                differing.push(format!(
                    "reader {index} in {room}:\n{state:?}\nfresh load:\n{fresh:?}"
                ));
            }
        }
    }
    // Each position is the same event in the log as the readers applied.
    for room in &rooms {
        let log = resume::rest_events_all(&app, &owner, room, 0, resume::MAX_PAGE).await;
        resume::assert_consecutive(&log, 0);
        for event in &log {
            world.identify(event);
        }
    }
    // Every acknowledged send is stored exactly once, retries included.
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    let mut events_in_logs = 0;
    for room in &rooms {
        let history = full_history(&app, &owner, room).await;
        for (index, message) in history.iter().enumerate() {
            assert_eq!(message["seq"], index + 1, "seqs are dense: {message}");
            if let Some(id) = message["client_msg_id"].as_str() {
                *stored.entry(id.to_owned()).or_default() += 1;
            }
        }
        events_in_logs += targets[room];
    }
    let unstored: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    let repeated: Vec<(&String, &usize)> = stored.iter().filter(|(_, count)| **count > 1).collect();

    let stats = world.stats.borrow();
    let lost = lost + stats.lost_in_replay;
    report(format!(
        "chaos: {} events in {ROOMS} rooms ({} acked sends, {owner_acts} owner changes), {kills} kills, {:.1?}",
        events_in_logs,
        acked.len(),
        started.elapsed()
    ));
    report(format!(
        "chaos: readers received {} events and applied {}: lost {lost}, duplicated {}, reordered {}, mismatched {}",
        stats.received, stats.applied, stats.duplicated, stats.reordered, stats.mismatched
    ));
    report(format!(
        "chaos: {} reader sessions ({} dropped on purpose, {} lost, {} resynced after a gap), {} typing ({} with a pos), {} WebSocket resends, {} REST retries, closes {:?}",
        stats.reader_sessions,
        stats.reader_drops,
        stats.reader_connections_lost,
        stats.reader_resyncs,
        stats.typing,
        stats.typing_with_pos,
        stats.ws_resends,
        stats.rest_retries,
        stats.closes
    ));
    assert!(
        differing.is_empty(),
        "{} reader states differ from a fresh load; the first: {}",
        differing.len(),
        differing[0]
    );
    assert!(kills >= 1, "the server was never killed");
    assert!(
        stats.applied >= MIN_EVENTS,
        "only {} events applied",
        stats.applied
    );
    assert_eq!(
        (lost, stats.duplicated, stats.reordered, stats.mismatched),
        (0, 0, 0, 0),
        "lost, duplicated, reordered, mismatched"
    );
    assert_eq!(stats.typing_with_pos, 0, "typing frames with a position");
    assert!(
        unstored.is_empty(),
        "acknowledged, never stored: {unstored:?}"
    );
    assert!(repeated.is_empty(), "stored more than once: {repeated:?}");
}

/// Writes a summary line straight to the process's standard error, past the
/// test harness's capture, so that CI logs show the counts of every run.
fn report(line: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
