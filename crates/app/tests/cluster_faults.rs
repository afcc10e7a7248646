//! Faults of a multi-node deployment (issue 12), while members on both
//! nodes are sent messages without pause:
//!
//! - **Redis stops mid-stream** (a private `redis-server`, never the shared
//!   one): both nodes keep accepting messages and say `"fanout":"degraded"`
//!   on `/ready`; once Redis is back they say `"cluster"` again, and every
//!   connection on either node ends up with every event of its rooms, each
//!   once and in order, without the client asking for anything (`sync`):
//!   the nodes catch their connections up themselves.
//! - **A node is SIGKILLed mid-stream** (two `p-chat` processes on one
//!   database and the shared Redis): its clients reconnect to the other
//!   node and resume with `sync` from the position they applied; in the end
//!   every client has applied exactly the room's log, and every message
//!   acknowledged by the dead node is in it.
//!
//! Skipped (loudly) without PostgreSQL, Redis or `redis-server`; failed in
//! CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::task::JoinHandle;
use actix_web::rt::time::{Instant, sleep};
use common::cluster::Cluster;
use common::process::ServerProcess;
use common::resume::{
    MAX_PAGE, add_member, as_refs, assert_consecutive, is_event, last_pos, pos_of, post,
    process_vars, rest_events_all,
};
use common::ws::{Frame, WsClient};
use common::{TestApp, TestUser};
use p_chat_fanout::testing::{RedisServer, redis_url, unique_prefix};
use p_chat_persistence::postgres::testing::TestDatabase;
use serde_json::{Value, json};

/// What the nodes are called in failure reports, by index.
const NODE_NAMES: [&str; 2] = ["A", "B"];
/// The pause between two sends of one sender.
const SEND_PAUSE: Duration = Duration::from_millis(10);
/// How often a reader looks at the shared state while its socket is quiet,
/// and `/ready` is polled.
const POLL: Duration = Duration::from_millis(50);
/// How long `/ready` may take to show a change of the link to Redis (the
/// nodes check it every 500 ms).
const PROBE_WITHIN: Duration = Duration::from_secs(10);
/// How long an `ack` may take.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// How long every connection may take to reach the rooms' final positions
/// once the sending has stopped.
const CATCH_UP: Duration = Duration::from_secs(15);
/// The fewest acknowledged sends per sender in each phase of a run, so
/// that the fault really happened mid-stream.
const MIN_ACKS_PER_PHASE: usize = 5;

/// `GET /ready` on `app` until its `fanout` is `want` (within
/// [`PROBE_WITHIN`]); the time it took.
async fn wait_for_fanout(app: &TestApp, node: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.get("/ready", None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "node {node}: /ready {reply:?}"
        );
        let data = reply.data();
        assert_eq!(data["status"], "ready", "node {node}: /ready {data}");
        if data["fanout"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROBE_WITHIN,
            "node {node}: /ready still says {data} after {PROBE_WITHIN:?}, expected fanout {want:?}"
        );
        sleep(POLL).await;
    }
}

/// Awaits a task, passing its panic on as it was.
async fn joined<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// What must be the same in a live event and in the log's copy of it (no
/// message is edited in these tests, so a message shows as it was sent).
fn identity(event: &Value) -> Value {
    let message = &event["message"];
    json!({
        "type": event["type"],
        "room_id": event["room_id"],
        "pos": event["pos"],
        "message_id": message["id"],
        "seq": message["seq"],
        "author_id": message["author_id"],
        "body": message["body"],
        "client_msg_id": message["client_msg_id"],
    })
}

/// Whether `received` is exactly `log`, event by event; else what is wrong
/// first (a missing event, a repeat, one out of order, one differing, one
/// beyond the log).
fn difference(received: &[Value], log: &[Value]) -> Option<String> {
    for (index, expected) in log.iter().enumerate() {
        let want = pos_of(expected);
        let Some(got) = received.get(index) else {
            return Some(format!(
                "received {} of the {} events: pos {want} and after never came (last received: {:?})",
                received.len(),
                log.len(),
                received.last().map(pos_of)
            ));
        };
        let pos = pos_of(got);
        if pos != want {
            let how = if received[..index].iter().any(|seen| pos_of(seen) == pos) {
                "a repeat"
            } else if pos < want {
                "out of order"
            } else {
                "a gap"
            };
            return Some(format!(
                "event {index} is pos {pos} where pos {want} belongs ({how}); received around it: {:?}",
                received[index.saturating_sub(3)..received.len().min(index + 4)]
                    .iter()
                    .map(pos_of)
                    .collect::<Vec<_>>()
            ));
        }
        if identity(got) != identity(expected) {
            return Some(format!(
                "pos {pos} differs from the log: received {got}, the log has {expected}"
            ));
        }
    }
    received.get(log.len()).map(|extra| {
        format!(
            "{} events beyond the log's {}, the first: {extra}",
            received.len() - log.len(),
            log.len()
        )
    })
}

/// A room of `owner`'s on `app` with `members` added: its id.
async fn room_with(app: &TestApp, owner: &TestUser, name: &str, members: &[&TestUser]) -> String {
    let room = app
        .create_room(owner, json!({ "name": name, "visibility": "private" }))
        .await["id"]
        .as_str()
        .expect("a room id")
        .to_owned();
    for member in members {
        add_member(app, owner, &room, member).await;
    }
    room
}

/// A `send` frame's answer: the `ack` of `id`, with the room events that
/// came before it handed to `keep`. `Err` when the connection ended or said
/// nothing within [`ACK_WAIT`]; an `error` frame or anything else fails the
/// test.
async fn await_ack(
    client: &mut WsClient,
    label: &str,
    id: &str,
    mut keep: impl FnMut(Value),
) -> Result<Value, String> {
    let deadline = Instant::now() + ACK_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_frame(left).await {
            None => return Err(format!("no ack of {id} within {ACK_WAIT:?}")),
            Some(Frame::Json(frame)) if is_event(&frame) => keep(frame),
            Some(Frame::Json(frame)) if frame["type"] == "ack" && frame["client_msg_id"] == id => {
                return Ok(frame);
            }
            Some(Frame::Json(frame)) => panic!("{label}: unexpected answer to send {id}: {frame}"),
            Some(Frame::Ping | Frame::Other(_)) => {}
            Some(ended) => return Err(format!("{ended:?}")),
        }
    }
}

// ------------------------------------------------------------ Redis outage

/// Where the outage run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Redis up, before the outage.
    Before,
    /// Redis stopped.
    Outage,
    /// Redis started again.
    After,
    /// The senders stop.
    Stopped,
}

/// What the outage run's tasks share.
struct Outage {
    phase: Cell<Phase>,
    /// Each room's `last_pos` before anything was sent.
    starts: BTreeMap<String, i64>,
    /// Each room's final `last_pos`, once the sending is over.
    targets: RefCell<Option<BTreeMap<String, i64>>>,
}

/// One connection of the outage run, and every room event it received.
struct Tap {
    label: String,
    client: WsClient,
    /// By room, in arrival order.
    received: BTreeMap<String, Vec<Value>>,
    /// Frames that are neither room events nor the answers awaited.
    unexpected: Vec<Value>,
    /// How the connection ended, if it did.
    ended: Option<String>,
}

impl Tap {
    async fn connect(app: &TestApp, user: &TestUser, label: String) -> Self {
        let (client, _ready) = WsClient::connect_ready(app, &user.token).await;
        Self {
            label,
            client,
            received: BTreeMap::new(),
            unexpected: Vec::new(),
            ended: None,
        }
    }

    fn keep(&mut self, event: Value) {
        let room = event["room_id"].as_str().expect("a room id").to_owned();
        self.received.entry(room).or_default().push(event);
    }

    /// Whether the last event received of every room is at its target.
    fn caught_up(&self, starts: &BTreeMap<String, i64>, targets: &BTreeMap<String, i64>) -> bool {
        targets.iter().all(|(room, target)| {
            let last = self
                .received
                .get(room)
                .and_then(|events| events.last())
                .map_or(starts[room], pos_of);
            last >= *target
        })
    }

    /// Reads until the connection has every room's target position (or
    /// [`CATCH_UP`] after the targets are known): nothing is asked of the
    /// server meanwhile.
    async fn follow(mut self, run: Rc<Outage>) -> Self {
        let mut deadline = None;
        loop {
            let done = run.targets.borrow().as_ref().map(|targets| {
                self.caught_up(&run.starts, targets)
                    || Instant::now() > *deadline.get_or_insert_with(|| Instant::now() + CATCH_UP)
            });
            if done == Some(true) {
                return self;
            }
            match self.client.next_frame(POLL).await {
                None | Some(Frame::Ping | Frame::Other(_)) => {}
                Some(Frame::Json(frame)) if is_event(&frame) => self.keep(frame),
                Some(Frame::Json(frame)) => self.unexpected.push(frame),
                Some(ended) => {
                    self.ended = Some(format!("{ended:?}"));
                    return self;
                }
            }
        }
    }
}

/// What one sender of the outage run did.
struct Sends {
    /// Acknowledged sends by the phase they were sent and acknowledged in.
    acked: BTreeMap<Phase, usize>,
    /// The `client_msg_id`s acknowledged.
    ids: Vec<String>,
}

/// Sends to `room` over the tap's socket, one message at a time (each
/// awaited), until the run stops; the socket's room events are kept.
async fn send_until_stopped(mut tap: Tap, room: String, run: Rc<Outage>) -> (Tap, Sends) {
    let mut sends = Sends {
        acked: BTreeMap::new(),
        ids: Vec::new(),
    };
    let mut count = 0;
    while run.phase.get() != Phase::Stopped {
        let sent_in = run.phase.get();
        let id = format!("{}-{count}", tap.label.replace(' ', "-"));
        let body = format!("{} #{count}", tap.label);
        tap.client.send_message_to(&room, &body, &id).await;
        let mut kept = Vec::new();
        let answer = await_ack(&mut tap.client, &tap.label, &id, |event| kept.push(event)).await;
        for event in kept {
            tap.keep(event);
        }
        if let Err(error) = answer {
            panic!(
                "{}: send {id} in phase {sent_in:?} was not acknowledged: {error}",
                tap.label
            );
        }
        if run.phase.get() == sent_in {
            *sends.acked.entry(sent_in).or_default() += 1;
        }
        sends.ids.push(id);
        count += 1;
        sleep(SEND_PAUSE).await;
    }
    (tap, sends)
}

/// Stops or restarts the private Redis off the runtime's thread (the
/// nodes' tasks run on it, and must go on meanwhile).
async fn redis_off_thread(mut redis: RedisServer, start: bool) -> RedisServer {
    actix_web::rt::task::spawn_blocking(move || {
        if start {
            redis
                .start_again()
                .expect("the private redis-server did not start again");
        } else {
            redis.stop();
        }
        redis
    })
    .await
    .expect("the thread driving redis-server")
}

/// Readers (per node) of the outage run, each with one connection to each
/// node.
const OUTAGE_READERS: usize = 3;
/// Sends on each node while Redis is up, before the outage.
const BEFORE_OUTAGE: Duration = Duration::from_secs(1);
/// How long Redis stays down once both nodes report `degraded`.
const OUTAGE: Duration = Duration::from_millis(1500);
/// Sends on each node once both report `cluster` again.
const AFTER_OUTAGE: Duration = Duration::from_secs(1);
/// Messages posted over REST on one node only during the outage, into a
/// room that gets nothing else: the other node's connections see them only
/// if their node catches them up once Redis is back.
const QUIET_BURST: usize = 10;

/// Redis stops while both nodes' senders are busy, and comes back. Every
/// connection on both nodes ends up with every event of each room exactly
/// once and in order without sending a `sync`. Besides the busy room, each
/// node gets a burst of messages (over REST) in a room of its own during
/// the outage and nothing after: the other node's connections can only get
/// those from their node's catch-up (or its peer's queued publications).
#[actix_web::test]
async fn after_a_redis_outage_every_connection_catches_up_without_asking() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(cluster) = Cluster::spawn_on(&redis.url(), 2, &[]).await else {
        return;
    };
    let nodes = [&cluster.nodes[0], &cluster.nodes[1]];
    for (node, name) in nodes.iter().zip(NODE_NAMES) {
        wait_for_fanout(node, name, "cluster").await;
    }
    let a = nodes[0];
    let owner = a.user("owner@example.com").await;
    let senders = [
        a.user("sender-a@example.com").await,
        a.user("sender-b@example.com").await,
    ];
    let mut readers = Vec::new();
    for index in 0..OUTAGE_READERS {
        readers.push(a.user(&format!("reader{index}@example.com")).await);
    }
    let members: Vec<&TestUser> = senders.iter().chain(&readers).collect();
    let busy = room_with(a, &owner, "busy", &members).await;
    let quiet = [
        room_with(a, &owner, "quiet on A", &members).await,
        room_with(a, &owner, "quiet on B", &members).await,
    ];
    let rooms: Vec<&String> = std::iter::once(&busy).chain(&quiet).collect();
    let mut starts = BTreeMap::new();
    for room in &rooms {
        starts.insert((*room).clone(), last_pos(a, &owner, room).await);
    }
    let run = Rc::new(Outage {
        phase: Cell::new(Phase::Before),
        starts,
        targets: RefCell::new(None),
    });

    // Everyone connects before anything is sent: live delivery starts at
    // the rooms' positions when a connection is ready.
    let mut reader_taps = Vec::new();
    let mut sender_taps = Vec::new();
    for (index, (node, name)) in nodes.iter().zip(NODE_NAMES).enumerate() {
        for (reader, user) in readers.iter().enumerate() {
            reader_taps
                .push(Tap::connect(node, user, format!("reader {reader} on node {name}")).await);
        }
        sender_taps
            .push(Tap::connect(node, &senders[index], format!("sender on node {name}")).await);
    }
    let mut followers: Vec<JoinHandle<Tap>> = reader_taps
        .into_iter()
        .map(|tap| actix_web::rt::spawn(tap.follow(run.clone())))
        .collect();
    let sending: Vec<JoinHandle<(Tap, Sends)>> = sender_taps
        .into_iter()
        .map(|tap| actix_web::rt::spawn(send_until_stopped(tap, busy.clone(), run.clone())))
        .collect();

    sleep(BEFORE_OUTAGE).await;
    let redis = redis_off_thread(redis, false).await;
    run.phase.set(Phase::Outage);
    for (node, name) in nodes.iter().zip(NODE_NAMES) {
        wait_for_fanout(node, name, "degraded").await;
    }
    for (index, node) in nodes.iter().enumerate() {
        for count in 0..QUIET_BURST {
            let body = format!("node {} alone, #{count}", NODE_NAMES[index]);
            post(node, &senders[index], &quiet[index], &body).await;
        }
    }
    sleep(OUTAGE).await;
    let redis = redis_off_thread(redis, true).await;
    run.phase.set(Phase::After);
    let mut reconnected = Vec::new();
    for (node, name) in nodes.iter().zip(NODE_NAMES) {
        reconnected.push(wait_for_fanout(node, name, "cluster").await);
    }
    sleep(AFTER_OUTAGE).await;
    run.phase.set(Phase::Stopped);
    let mut sends = Vec::new();
    for task in sending {
        let (tap, done) = joined(task).await;
        followers.push(actix_web::rt::spawn(tap.follow(run.clone())));
        sends.push(done);
    }
    let mut targets = BTreeMap::new();
    for room in &rooms {
        targets.insert((*room).clone(), last_pos(a, &owner, room).await);
    }
    *run.targets.borrow_mut() = Some(targets.clone());
    let mut taps = Vec::new();
    for task in followers {
        taps.push(joined(task).await);
    }

    // The log: consecutive, ending at the target; the quiet rooms hold
    // their bursts; every acknowledged send is in the busy room once.
    let mut logs = BTreeMap::new();
    for room in &rooms {
        let start = run.starts[*room];
        let log = rest_events_all(a, &owner, room, start, MAX_PAGE).await;
        assert_consecutive(&log, start);
        assert_eq!(
            log.last().map_or(start, pos_of),
            targets[*room],
            "the log of {room} ends at its last_pos"
        );
        logs.insert((*room).clone(), log);
    }
    for (index, room) in quiet.iter().enumerate() {
        assert_eq!(
            logs[room].len(),
            QUIET_BURST,
            "the room quiet but on node {} during the outage: {:?}",
            NODE_NAMES[index],
            logs[room]
        );
    }
    let mut stored: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &logs[&busy] {
        if let Some(id) = event["message"]["client_msg_id"].as_str() {
            *stored.entry(id).or_default() += 1;
        }
    }
    for (name, done) in NODE_NAMES.iter().zip(&sends) {
        for phase in [Phase::Before, Phase::Outage, Phase::After] {
            let count = done.acked.get(&phase).copied().unwrap_or_default();
            assert!(
                count >= MIN_ACKS_PER_PHASE,
                "the sender on node {name} had only {count} sends acknowledged in phase {phase:?} \
                 (all: {:?}): not sending throughout",
                done.acked
            );
        }
        for id in &done.ids {
            assert_eq!(
                stored.get(id.as_str()),
                Some(&1),
                "acknowledged send {id} (node {name}) is not in the busy room's log exactly once"
            );
        }
    }
    assert_eq!(
        stored.len(),
        sends.iter().map(|done| done.ids.len()).sum::<usize>(),
        "the busy room holds sends nobody acknowledged"
    );

    // Every connection received exactly the log of every room.
    let mut problems = Vec::new();
    for tap in &taps {
        if let Some(ended) = &tap.ended {
            problems.push(format!("{}: the connection ended: {ended}", tap.label));
        }
        if !tap.unexpected.is_empty() {
            problems.push(format!(
                "{}: unexpected frames {:?}",
                tap.label, tap.unexpected
            ));
        }
        for room in &rooms {
            let name = if *room == &busy {
                "busy".to_owned()
            } else {
                let node = quiet.iter().position(|quiet| quiet == *room).unwrap();
                format!("quiet on {}", NODE_NAMES[node])
            };
            let received = tap.received.get(*room).map_or(&[][..], Vec::as_slice);
            if let Some(problem) = difference(received, &logs[*room]) {
                problems.push(format!("{} in room {name:?}: {problem}", tap.label));
            }
        }
    }
    report(format!(
        "cluster_faults: Redis outage: {} events in the busy room, sends acked per node and phase {:?}, \
         cluster again after {reconnected:?}, {} connections",
        logs[&busy].len(),
        sends.iter().map(|done| &done.acked).collect::<Vec<_>>(),
        taps.len()
    ));
    assert!(
        problems.is_empty(),
        "{} of {} connections did not receive exactly their rooms' logs (without a sync):\n{}",
        problems.len(),
        taps.len(),
        problems.join("\n")
    );
    for (node, name) in nodes.iter().zip(NODE_NAMES) {
        wait_for_fanout(node, name, "cluster").await;
    }
    drop(redis);
}

// ------------------------------------------------------------ SIGKILL

/// Readers connected to each node at the start.
const KILL_READERS: usize = 3;
/// Sends on both nodes before node A is killed.
const BEFORE_KILL: Duration = Duration::from_secs(1);
/// Sends (all through node B) after the kill.
const AFTER_KILL: Duration = Duration::from_millis(1500);
/// How long node A's readers stay away before they reconnect (a client's
/// backoff): the events they missed then take several `sync` pages.
const AWAY: Duration = Duration::from_millis(500);
/// The page size of the readers' `sync`.
const SYNC_PAGE: u64 = 20;
/// How long a client keeps trying to connect to node B.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// How long a killed process may take to be gone.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// SIGKILL's number.
const SIGKILL: i32 = 9;

/// What the kill run's tasks share.
struct Kill {
    room: String,
    /// Node B's address: where everyone ends up.
    survivor: String,
    /// Set just before node A is killed.
    killed: Cell<bool>,
    /// Set when the senders are to stop.
    stopped: Cell<bool>,
    /// The room's final `last_pos`, once the sending is over.
    target: Cell<Option<i64>>,
}

/// Connects to `base` as `token`'s user and waits for `ready`, retrying for
/// [`CONNECT_WITHIN`].
async fn connect_retrying(base: &str, token: &str, label: &str) -> WsClient {
    let deadline = Instant::now() + CONNECT_WITHIN;
    loop {
        let failure = match WsClient::try_connect_to(base, token).await {
            Ok(mut client) => match client.try_next_json(ACK_WAIT).await {
                Ok(ready) if ready["type"] == "ready" => return client,
                Ok(other) => panic!("{label}: the first frame from {base} is not ready: {other}"),
                Err(error) => error,
            },
            Err(error) => error,
        };
        assert!(
            Instant::now() < deadline,
            "{label}: cannot connect to {base} within {CONNECT_WITHIN:?}: {failure}"
        );
        sleep(POLL).await;
    }
}

/// A client following the room by the protocol's recipe: it applies each
/// event only as the next position, and resumes with `sync` after a
/// reconnect.
struct Follower {
    label: String,
    token: String,
    client: WsClient,
    /// Whether it is connected to node A (the one killed).
    on_a: bool,
    /// The events applied, consecutive from the start position.
    applied: Vec<Value>,
    /// The position applied up to.
    pos: i64,
    /// Reconnections, `sync` pages asked for, events applied from them.
    resumes: usize,
    pages: usize,
    replayed: usize,
    /// The first thing that went wrong; it stops following then.
    problem: Option<String>,
}

impl Follower {
    fn apply(&mut self, event: Value) {
        self.pos = pos_of(&event);
        self.applied.push(event);
    }

    /// Follows the room until its final position (or [`CATCH_UP`] after it
    /// is known). Live events must come exactly in order; when node A dies,
    /// reconnects to node B after [`AWAY`] and resumes.
    async fn run(mut self, run: Rc<Kill>) -> Self {
        let mut deadline = None;
        loop {
            if let Some(target) = run.target.get() {
                if self.pos >= target {
                    return self;
                }
                if Instant::now() > *deadline.get_or_insert_with(|| Instant::now() + CATCH_UP) {
                    self.problem = Some(format!(
                        "applied up to {} only, the room is at {target}, {CATCH_UP:?} after the end",
                        self.pos
                    ));
                    return self;
                }
            }
            match self.client.next_frame(POLL).await {
                None | Some(Frame::Ping | Frame::Other(_)) => {}
                Some(Frame::Json(frame)) if is_event(&frame) && frame["room_id"] == run.room => {
                    let pos = pos_of(&frame);
                    if pos != self.pos + 1 {
                        self.problem = Some(format!(
                            "a live event at pos {pos} after pos {} was applied (resumes: {}): {frame}",
                            self.pos, self.resumes
                        ));
                        return self;
                    }
                    self.apply(frame);
                }
                Some(Frame::Json(frame)) => {
                    self.problem = Some(format!("unexpected frame {frame}"));
                    return self;
                }
                Some(ended) => {
                    if !(self.on_a && run.killed.get()) {
                        self.problem = Some(format!(
                            "the connection (to node {}) ended: {ended:?}",
                            if self.on_a { "A" } else { "B" }
                        ));
                        return self;
                    }
                    sleep(AWAY).await;
                    if let Err(problem) = self.resume(&run).await {
                        self.problem = Some(problem);
                        return self;
                    }
                }
            }
        }
    }

    /// The recipe on node B: connect, then `sync` from the position applied,
    /// again from `last_pos` while `has_more`. Events before the last
    /// `synced` may be live ones ahead of the replay (ignored: the replay
    /// brings them in turn) or repeats (ignored); the replay must bring
    /// every position up to its `last_pos`.
    async fn resume(&mut self, run: &Kill) -> Result<(), String> {
        self.client = connect_retrying(&run.survivor, &self.token, &self.label).await;
        self.on_a = false;
        self.resumes += 1;
        loop {
            let after = self.pos;
            self.client
                .send_json(json!({
                    "type": "sync",
                    "room_id": run.room,
                    "after_pos": after,
                    "limit": SYNC_PAGE,
                }))
                .await;
            self.pages += 1;
            let synced = loop {
                let frame = self
                    .client
                    .try_next_json(ACK_WAIT)
                    .await
                    .map_err(|error| format!("during the sync from {after}: {error}"))?;
                if is_event(&frame) && frame["room_id"] == run.room {
                    if pos_of(&frame) == self.pos + 1 {
                        self.apply(frame);
                        self.replayed += 1;
                    }
                } else if frame["type"] == "synced" && frame["room_id"] == run.room {
                    break frame;
                } else {
                    return Err(format!(
                        "unexpected frame during the sync from {after}: {frame}"
                    ));
                }
            };
            let last = synced["last_pos"]
                .as_i64()
                .ok_or_else(|| format!("no last_pos in {synced}"))?;
            if last != self.pos {
                return Err(format!(
                    "the sync from {after} answered {synced} but brought positions only up to {}",
                    self.pos
                ));
            }
            if synced["has_more"] != true {
                return Ok(());
            }
        }
    }
}

/// What one sender of the kill run did.
struct Sender {
    label: String,
    token: String,
    client: WsClient,
    on_a: bool,
    /// `client_msg_id`s acknowledged by node A before it was killed.
    acked_by_a: Vec<String>,
    /// `client_msg_id`s acknowledged by node B.
    acked_by_b: Vec<String>,
    /// Sends whose connection died before their `ack`, sent again (same
    /// `client_msg_id`) on node B.
    resent: Vec<String>,
}

impl Sender {
    /// Sends one message at a time until the run stops; when node A dies,
    /// goes on through node B, first sending the unacknowledged message
    /// again with its `client_msg_id`.
    async fn run(mut self, run: Rc<Kill>) -> Self {
        let mut count = 0;
        while !run.stopped.get() {
            let id = format!("{}-{count}", self.label.replace(' ', "-"));
            let body = format!("{} #{count}", self.label);
            loop {
                self.client.send_message_to(&run.room, &body, &id).await;
                match await_ack(&mut self.client, &self.label, &id, drop).await {
                    Ok(_) if self.on_a => break self.acked_by_a.push(id.clone()),
                    Ok(_) => break self.acked_by_b.push(id.clone()),
                    Err(error) => {
                        assert!(
                            self.on_a && run.killed.get(),
                            "{}: send {id} not acknowledged: {error}",
                            self.label
                        );
                        self.client =
                            connect_retrying(&run.survivor, &self.token, &self.label).await;
                        self.on_a = false;
                        self.resent.push(id.clone());
                    }
                }
            }
            count += 1;
            sleep(SEND_PAUSE).await;
        }
        self
    }
}

/// Two `p-chat` processes on one database and the shared Redis; readers
/// and a sender on each. Node A is SIGKILLed mid-stream: its readers come
/// back on node B after a while and resume with `sync` pages from the
/// position they applied, its sender goes on through node B. Every reader
/// applies exactly the room's log (each position once, in order, no gap),
/// node B's readers without ever reconnecting, and every message node A
/// acknowledged is in the log.
#[actix_web::test]
async fn clients_of_a_sigkilled_node_resume_on_the_other_and_lose_nothing() {
    let Some(redis) = redis_url() else {
        return;
    };
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let prefix = unique_prefix();
    let vars = process_vars(
        database.config(),
        &[("REDIS_URL", &redis), ("REDIS_PREFIX", prefix.as_str())],
    );
    let mut node_a = ServerProcess::start(&as_refs(&vars));
    let node_b = ServerProcess::start(&as_refs(&vars));
    let apps = [
        TestApp::connect(&node_a.base),
        TestApp::connect(&node_b.base),
    ];
    for (app, name) in apps.iter().zip(NODE_NAMES) {
        wait_for_fanout(app, name, "cluster").await;
    }
    let b = &apps[1];
    let owner = b.user("owner@example.com").await;
    let senders = [
        b.user("sender-a@example.com").await,
        b.user("sender-b@example.com").await,
    ];
    let mut readers = Vec::new();
    for index in 0..2 * KILL_READERS {
        readers.push(b.user(&format!("reader{index}@example.com")).await);
    }
    let members: Vec<&TestUser> = senders.iter().chain(&readers).collect();
    let room = room_with(b, &owner, "survivors", &members).await;
    let start = last_pos(b, &owner, &room).await;
    let run = Rc::new(Kill {
        room: room.clone(),
        survivor: node_b.base.clone(),
        killed: Cell::new(false),
        stopped: Cell::new(false),
        target: Cell::new(None),
    });

    let mut following = Vec::new();
    for (index, user) in readers.iter().enumerate() {
        let node = index / KILL_READERS;
        let label = format!("reader {index} (on node {})", NODE_NAMES[node]);
        let client = connect_retrying(apps[node].base(), &user.token, &label).await;
        let follower = Follower {
            label,
            token: user.token.clone(),
            client,
            on_a: node == 0,
            applied: Vec::new(),
            pos: start,
            resumes: 0,
            pages: 0,
            replayed: 0,
            problem: None,
        };
        following.push(actix_web::rt::spawn(follower.run(run.clone())));
    }
    let mut sending = Vec::new();
    for (node, user) in senders.iter().enumerate() {
        let label = format!("sender on node {}", NODE_NAMES[node]);
        let client = connect_retrying(apps[node].base(), &user.token, &label).await;
        let sender = Sender {
            label,
            token: user.token.clone(),
            client,
            on_a: node == 0,
            acked_by_a: Vec::new(),
            acked_by_b: Vec::new(),
            resent: Vec::new(),
        };
        sending.push(actix_web::rt::spawn(sender.run(run.clone())));
    }

    sleep(BEFORE_KILL).await;
    run.killed.set(true);
    let killed = Command::new("kill")
        .args(["-9", &node_a.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -9 {}: {killed}", node_a.pid());
    let exit = node_a
        .wait_for_exit(EXIT_WITHIN)
        .expect("node A outlived its SIGKILL");
    assert_eq!(exit.signal(), Some(SIGKILL), "node A's end: {exit}");
    sleep(AFTER_KILL).await;
    run.stopped.set(true);
    let mut sent = Vec::new();
    for task in sending {
        sent.push(joined(task).await);
    }
    let target = last_pos(b, &owner, &room).await;
    run.target.set(Some(target));
    let mut followers = Vec::new();
    for task in following {
        followers.push(joined(task).await);
    }

    let log = rest_events_all(b, &owner, &room, start, MAX_PAGE).await;
    assert_consecutive(&log, start);
    assert_eq!(
        log.last().map_or(start, pos_of),
        target,
        "the log ends at last_pos"
    );
    let mut stored: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &log {
        if let Some(id) = event["message"]["client_msg_id"].as_str() {
            *stored.entry(id).or_default() += 1;
        }
    }
    let [sent_a, sent_b] = &sent[..] else {
        unreachable!("two senders")
    };
    for (sender, phase, count) in [
        (
            sent_a,
            "acknowledged by node A before the kill",
            sent_a.acked_by_a.len(),
        ),
        (
            sent_a,
            "acknowledged by node B after the kill",
            sent_a.acked_by_b.len(),
        ),
        (sent_b, "acknowledged by node B", sent_b.acked_by_b.len()),
    ] {
        assert!(
            count >= MIN_ACKS_PER_PHASE,
            "{}: only {count} sends {phase}: not sending throughout",
            sender.label
        );
    }
    assert!(
        sent_b.acked_by_a.is_empty() && sent_b.resent.is_empty(),
        "the sender on node B was never on node A"
    );
    for sender in &sent {
        for id in sender.acked_by_a.iter().chain(&sender.acked_by_b) {
            assert_eq!(
                stored.get(id.as_str()),
                Some(&1),
                "{}: acknowledged send {id} is not in the log exactly once (resent after the kill: {:?})",
                sender.label,
                sender.resent
            );
        }
    }
    let acked: usize = sent
        .iter()
        .map(|sender| sender.acked_by_a.len() + sender.acked_by_b.len())
        .sum();
    assert_eq!(
        stored.len(),
        acked,
        "the log holds sends nobody acknowledged"
    );

    let mut problems = Vec::new();
    for follower in &followers {
        let resumes = usize::from(follower.label.contains("node A"));
        if let Some(problem) = &follower.problem {
            problems.push(format!("{}: {problem}", follower.label));
        } else if let Some(problem) = difference(&follower.applied, &log) {
            problems.push(format!("{}: {problem}", follower.label));
        } else if follower.resumes != resumes {
            problems.push(format!(
                "{}: reconnected {} times, expected {resumes}",
                follower.label, follower.resumes
            ));
        } else if resumes == 1 && follower.replayed == 0 {
            problems.push(format!(
                "{}: its sync replayed nothing: the kill was not mid-stream",
                follower.label
            ));
        }
    }
    report(format!(
        "cluster_faults: SIGKILL: {} events; node A acked {} sends before the kill, {} resent on B; \
         resumes of node A's readers: {:?} (pages, events replayed)",
        log.len(),
        sent_a.acked_by_a.len(),
        sent_a.resent.len(),
        followers
            .iter()
            .filter(|follower| follower.resumes > 0)
            .map(|follower| (follower.pages, follower.replayed))
            .collect::<Vec<_>>()
    ));
    assert!(
        problems.is_empty(),
        "{} of {} readers did not apply exactly the room's log:\n{}\nnode B's log:\n{}",
        problems.len(),
        followers.len(),
        problems.join("\n"),
        node_b.log()
    );
}

/// Writes a summary line straight to the process's standard error, past the
/// test harness's capture, so that CI logs show what each run did.
fn report(line: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
