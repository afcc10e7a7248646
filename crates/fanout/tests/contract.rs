//! The contract of the domain's `FanOut` port, written once and run on
//! every adapter: the in-process [`Hub`], and [`RedisFanOut`] with the
//! publishing node and the listening node two different nodes (two
//! adapters on one Redis under one prefix), so that each rule is checked
//! across nodes as well.
//!
//! A [`Deployment`] hands out the node events are published on and the node
//! connections subscribe to (the same hub for the local adapter). Events
//! are appended to a shared [`Log`] before they are published, as the chat
//! store commits them before the services publish.

// Test code: a failed `unwrap` or `expect` is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::events::{Broadcast, Change, EventPage, EventQuery, RoomEvent};
use p_chat_domain::message::{Message, MessageBody, MessageId, Seq};
use p_chat_domain::ports::{
    Delivery, EventLog, FanOut, FanOutStatus, StoreError, Subscriber, Subscription,
};
use p_chat_domain::position::Pos;
use p_chat_domain::presence::{Presence, PresenceChange, Transition};
use p_chat_domain::room::{Member, Membership, Role, Room, RoomId, RoomName, Visibility};
use p_chat_domain::session::SessionId;
use p_chat_domain::user::{DisplayName, UserId};
use p_chat_fanout::local::Hub;
use p_chat_fanout::redis::{RedisFanOut, RedisUrl};
use p_chat_fanout::testing::{redis_url, unique_prefix};
use tokio::time::timeout;

/// How long a delivery that must come may take (across Redis included).
const ARRIVES: Duration = Duration::from_secs(2);
/// How long to watch for a delivery that must not come.
const QUIET: Duration = Duration::from_millis(300);
/// How long a user lingers after their last connection closes.
const GRACE: Duration = Duration::from_millis(300);
/// Queue room for the subscriptions of most tests.
const CAPACITY: usize = 64;

/// A room's event log as the chat store would hold it.
#[derive(Default)]
struct Log {
    rooms: Mutex<HashMap<RoomId, Vec<RoomEvent>>>,
}

#[async_trait]
impl EventLog for Log {
    async fn after(&self, room: RoomId, query: &EventQuery) -> Result<EventPage, StoreError> {
        let rooms = self.rooms.lock().unwrap();
        let mut events: Vec<RoomEvent> = rooms
            .get(&room)
            .map(|events| {
                events
                    .iter()
                    .filter(|event| event.pos > query.after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        events.sort_by_key(|event| event.pos);
        let limit = query.limit.get();
        let has_more = events.len() > limit;
        events.truncate(limit);
        Ok(EventPage { events, has_more })
    }

    async fn prune(&self, _before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// The nodes of one deployment under test.
struct Deployment {
    /// Where events are published and sessions ended.
    publisher: Arc<dyn FanOut>,
    /// Where connections subscribe.
    listener: Arc<dyn FanOut>,
    /// The listening node as a Redis adapter, to wait until its
    /// subscriptions are in place (`None`: the local hub, always settled).
    redis_listener: Option<Arc<RedisFanOut>>,
    log: Arc<Log>,
}

impl Deployment {
    fn local() -> Self {
        let hub = Arc::new(Hub::with_grace(GRACE));
        Self {
            publisher: hub.clone(),
            listener: hub,
            redis_listener: None,
            log: Arc::new(Log::default()),
        }
    }

    async fn redis() -> Option<Self> {
        let url = RedisUrl::parse(&redis_url()?).unwrap();
        let prefix = unique_prefix();
        let log = Arc::new(Log::default());
        let publisher =
            Arc::new(RedisFanOut::start(&url, prefix.clone(), log.clone(), GRACE).unwrap());
        let listener = Arc::new(RedisFanOut::start(&url, prefix, log.clone(), GRACE).unwrap());
        publisher.settled().await;
        listener.settled().await;
        Some(Self {
            publisher,
            listener: listener.clone(),
            redis_listener: Some(listener),
            log,
        })
    }

    /// Subscribes a connection on the listening node and waits until it is
    /// ready: it hears everything published from then on.
    async fn connect(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription> {
        Self::connect_to(&self.listener, subscriber, capacity).await
    }

    /// Subscribes a connection on `node` and waits until it is ready.
    async fn connect_to(
        node: &Arc<dyn FanOut>,
        subscriber: Subscriber,
        capacity: usize,
    ) -> Box<dyn Subscription> {
        let mut subscription = node.subscribe(subscriber, capacity);
        timeout(ARRIVES, subscription.ready())
            .await
            .expect("the subscription gets ready");
        subscription
    }

    /// Logs `event`, then publishes it (commit, then publication).
    async fn commit(&self, event: RoomEvent) {
        self.log
            .rooms
            .lock()
            .unwrap()
            .entry(event.room_id)
            .or_default()
            .push(event.clone());
        self.publisher.publish(Broadcast::Event(event)).await;
    }
}

fn pos(value: i64) -> Pos {
    Pos::new(value).unwrap()
}

fn room(id: RoomId, last_pos: i64) -> Room {
    Room {
        id,
        name: RoomName::parse("Contract").unwrap(),
        topic: None,
        visibility: Visibility::Private,
        owner_id: UserId::new(),
        created_at: Utc::now(),
        last_seq: Seq::ZERO,
        last_pos: pos(last_pos),
    }
}

fn message(room: RoomId, at: i64) -> RoomEvent {
    RoomEvent {
        room_id: room,
        pos: pos(at),
        at: Utc::now(),
        change: Change::Message(Message {
            id: MessageId::new(),
            room_id: room,
            seq: Seq::new(at).unwrap(),
            author_id: UserId::new(),
            body: Some(MessageBody::parse(&format!("message at {at}")).unwrap()),
            client_msg_id: None,
            created_at: Utc::now(),
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            mentions: Default::default(),
            reactions: Vec::new(),
        }),
    }
}

fn joined(room_id: RoomId, user: UserId, at: i64) -> RoomEvent {
    RoomEvent {
        room_id,
        pos: pos(at),
        at: Utc::now(),
        change: Change::MemberJoined {
            room: room(room_id, at),
            member: Member {
                membership: Membership {
                    room_id,
                    user_id: user,
                    role: Role::Member,
                    joined_at: Utc::now(),
                },
                display_name: DisplayName::parse("Newcomer").unwrap(),
            },
        },
    }
}

fn change(room_id: RoomId, at: i64, change: Change) -> RoomEvent {
    RoomEvent {
        room_id,
        pos: pos(at),
        at: Utc::now(),
        change,
    }
}

/// A connection of a new user and session in `rooms` (each at position 0).
fn subscriber(user: UserId, rooms: &[RoomId]) -> Subscriber {
    Subscriber {
        user_id: user,
        session_id: SessionId::new(),
        rooms: rooms.iter().map(|room| (*room, Pos::ZERO)).collect(),
    }
}

async fn next(subscription: &mut Box<dyn Subscription>, wait: Duration) -> Option<Delivery> {
    timeout(wait, subscription.next()).await.ok().flatten()
}

/// The next delivery, which must be a room event.
async fn event(subscription: &mut Box<dyn Subscription>) -> RoomEvent {
    match next(subscription, ARRIVES).await {
        Some(Delivery::Event(broadcast)) => match broadcast.value() {
            Broadcast::Event(event) => event.clone(),
            typing => panic!("expected a room event, got {typing:?}"),
        },
        other => panic!("expected a room event, got {other:?}"),
    }
}

async fn positions(subscription: &mut Box<dyn Subscription>, count: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    for _ in 0..count {
        seen.push(event(subscription).await.pos.value());
    }
    seen
}

async fn quiet(subscription: &mut Box<dyn Subscription>, what: &str) {
    if let Some(delivery) = next(subscription, QUIET).await {
        panic!("{what}: got {delivery:?}");
    }
}

async fn routes_by_membership(deployment: Deployment) {
    let (first, second) = (RoomId::new(), RoomId::new());
    let mut in_first = deployment
        .connect(subscriber(UserId::new(), &[first]), CAPACITY)
        .await;
    let mut in_second = deployment
        .connect(subscriber(UserId::new(), &[second]), CAPACITY)
        .await;
    deployment.commit(message(first, 1)).await;
    assert_eq!(event(&mut in_first).await.room_id, first);
    quiet(&mut in_second, "an event of a room it is not in").await;
    deployment.commit(message(second, 1)).await;
    assert_eq!(event(&mut in_second).await.room_id, second);
    quiet(&mut in_first, "an event of the other room").await;
}

async fn a_room_events_arrive_in_position_order(deployment: Deployment) {
    let room = RoomId::new();
    let mut subscription = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    for at in [1, 3, 4, 2, 5] {
        deployment.commit(message(room, at)).await;
    }
    assert_eq!(positions(&mut subscription, 5).await, [1, 2, 3, 4, 5]);
}

async fn a_join_subscribes_before_its_delivery(deployment: Deployment) {
    let room = RoomId::new();
    let newcomer = UserId::new();
    let mut member = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    let mut elsewhere = deployment
        .connect(subscriber(newcomer, &[]), CAPACITY)
        .await;
    deployment.commit(joined(room, newcomer, 1)).await;
    // Published right after the join, with no wait for any subscription.
    deployment.commit(message(room, 2)).await;
    let join = event(&mut elsewhere).await;
    assert_eq!(join.change.kind(), "member_joined");
    assert_eq!(join.change.member_id(), Some(newcomer));
    assert_eq!(event(&mut elsewhere).await.pos, pos(2), "the next event");
    assert_eq!(positions(&mut member, 2).await, [1, 2]);
}

async fn a_followed_room_is_routed_from_its_position(deployment: Deployment) {
    let room = RoomId::new();
    let mut subscription = deployment
        .connect(subscriber(UserId::new(), &[]), CAPACITY)
        .await;
    // Joined after subscribing, its join (1) unseen: followed from 1 on.
    deployment.commit(joined(room, UserId::new(), 1)).await;
    subscription.follow(room, pos(1));
    deployment.commit(message(room, 2)).await;
    assert_eq!(event(&mut subscription).await.pos, pos(2));
}

async fn a_departure_unsubscribes_after_its_delivery(deployment: Deployment) {
    let room = RoomId::new();
    let leaver = UserId::new();
    let mut leaving = deployment
        .connect(subscriber(leaver, &[room]), CAPACITY)
        .await;
    let mut staying = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    deployment
        .commit(change(room, 1, Change::MemberLeft { user_id: leaver }))
        .await;
    let left = event(&mut leaving).await;
    assert_eq!(left.change.kind(), "member_left", "its own departure");
    deployment.commit(message(room, 2)).await;
    assert_eq!(positions(&mut staying, 2).await, [1, 2]);
    quiet(&mut leaving, "an event after its departure").await;
}

async fn a_deleted_room_is_unsubscribed_after_its_delivery(deployment: Deployment) {
    let room = RoomId::new();
    let mut subscription = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    deployment
        .commit(change(room, 1, Change::RoomDeleted))
        .await;
    assert_eq!(event(&mut subscription).await.change.kind(), "room_deleted");
    deployment.commit(message(room, 2)).await;
    quiet(&mut subscription, "an event of a deleted room").await;
}

async fn a_connection_that_cannot_keep_up_is_told_it_overflowed(deployment: Deployment) {
    let room = RoomId::new();
    let mut slow = deployment
        .connect(subscriber(UserId::new(), &[room]), 2)
        .await;
    let mut reader = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    for at in 1..=5 {
        deployment.commit(message(room, at)).await;
    }
    assert_eq!(positions(&mut reader, 5).await, [1, 2, 3, 4, 5]);
    assert_eq!(
        next(&mut slow, ARRIVES).await,
        Some(Delivery::Overflowed),
        "events are never skipped silently"
    );
}

async fn an_ended_session_ends_its_connections_only(deployment: Deployment) {
    let user = UserId::new();
    let ending = subscriber(user, &[]);
    let session = ending.session_id;
    let mut first = deployment.connect(ending.clone(), CAPACITY).await;
    let mut second = deployment.connect(ending, CAPACITY).await;
    let mut other = deployment.connect(subscriber(user, &[]), CAPACITY).await;
    deployment.publisher.end_session(session).await;
    assert_eq!(
        next(&mut first, ARRIVES).await,
        Some(Delivery::SessionEnded)
    );
    assert_eq!(
        next(&mut second, ARRIVES).await,
        Some(Delivery::SessionEnded)
    );
    quiet(&mut other, "another session of the same user").await;
}

async fn a_rebound_connection_ends_with_its_new_session(deployment: Deployment) {
    let user = UserId::new();
    let (old, new) = (SessionId::new(), SessionId::new());
    let mut subscription = deployment
        .connect(
            Subscriber {
                user_id: user,
                session_id: old,
                rooms: Vec::new(),
            },
            CAPACITY,
        )
        .await;
    subscription.rebind(new);
    deployment.publisher.end_session(old).await;
    quiet(&mut subscription, "ended with the session it left").await;
    deployment.publisher.end_session(new).await;
    assert_eq!(
        next(&mut subscription, ARRIVES).await,
        Some(Delivery::SessionEnded)
    );
}

async fn typing_reaches_the_room_but_the_typist(deployment: Deployment) {
    let room = RoomId::new();
    let typist = UserId::new();
    let mut own = deployment
        .connect(subscriber(typist, &[room]), CAPACITY)
        .await;
    let mut peer = deployment
        .connect(subscriber(UserId::new(), &[room]), CAPACITY)
        .await;
    deployment
        .publisher
        .publish(Broadcast::Typing {
            room_id: room,
            user_id: typist,
        })
        .await;
    match next(&mut peer, ARRIVES).await {
        Some(Delivery::Event(broadcast)) => assert_eq!(
            broadcast.value(),
            &Broadcast::Typing {
                room_id: room,
                user_id: typist
            }
        ),
        other => panic!("expected typing, got {other:?}"),
    }
    quiet(&mut own, "its own typing").await;
}

async fn the_status_says_whether_events_reach_other_nodes(deployment: Deployment) {
    let expected = if deployment.redis_listener.is_some() {
        FanOutStatus::Cluster
    } else {
        FanOutStatus::Local
    };
    assert_eq!(deployment.listener.status(), expected);
    assert_eq!(deployment.publisher.status(), expected);
}

/// The next transition `node` decides for `user` within `wait` (others'
/// are skipped).
async fn transition_of(node: &Arc<dyn FanOut>, user: UserId, wait: Duration) -> Option<Transition> {
    let of_user = async {
        while let Some(transition) = node.transition().await {
            if transition.user_id() == user {
                return Some(transition);
            }
        }
        None
    };
    timeout(wait, of_user).await.ok().flatten()
}

/// Waits until `node` says `user` is `online` (or panics after
/// [`ARRIVES`]).
async fn until_online_is(node: &Arc<dyn FanOut>, user: UserId, online: bool) {
    let settled = async {
        while node.online(user).await != online {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(ARRIVES, settled)
        .await
        .unwrap_or_else(|_| panic!("online({user}) never became {online}"));
}

/// The next delivery, which must be a presence change.
async fn presence(subscription: &mut Box<dyn Subscription>) -> PresenceChange {
    match next(subscription, ARRIVES).await {
        Some(Delivery::Presence(change)) => change.value().clone(),
        other => panic!("expected a presence change, got {other:?}"),
    }
}

async fn a_user_is_online_while_connected_and_offline_after_the_grace(deployment: Deployment) {
    let user = UserId::new();
    let connection =
        Deployment::connect_to(&deployment.publisher, subscriber(user, &[]), CAPACITY).await;
    assert_eq!(
        transition_of(&deployment.publisher, user, ARRIVES).await,
        Some(Transition::Online(user))
    );
    until_online_is(&deployment.listener, user, true).await;
    assert!(deployment.publisher.online(user).await);
    let closed = Utc::now();
    drop(connection);
    assert!(
        deployment.listener.online(user).await,
        "online within the grace"
    );
    match transition_of(&deployment.publisher, user, GRACE + ARRIVES).await {
        Some(Transition::Offline { user_id, at }) => {
            assert_eq!(user_id, user);
            let off = (at - closed).num_milliseconds().abs();
            assert!(off < 1_000, "last seen {at}, closed at {closed}");
            assert!(
                Utc::now() - closed >= chrono::Duration::from_std(GRACE).unwrap(),
                "offline before the grace ran out"
            );
        }
        other => panic!("expected offline, got {other:?}"),
    }
    until_online_is(&deployment.listener, user, false).await;
    assert!(!deployment.publisher.online(user).await);
}

async fn a_reconnect_within_the_grace_changes_nothing(deployment: Deployment) {
    let user = UserId::new();
    let first =
        Deployment::connect_to(&deployment.publisher, subscriber(user, &[]), CAPACITY).await;
    assert_eq!(
        transition_of(&deployment.publisher, user, ARRIVES).await,
        Some(Transition::Online(user))
    );
    drop(first);
    tokio::time::sleep(GRACE / 3).await;
    // Back on the other node (the same one for the local hub).
    let second =
        Deployment::connect_to(&deployment.listener, subscriber(user, &[]), CAPACITY).await;
    for node in [&deployment.publisher, &deployment.listener] {
        assert_eq!(
            transition_of(node, user, GRACE * 2).await,
            None,
            "a reconnect within the grace"
        );
    }
    assert!(deployment.listener.online(user).await);
    drop(second);
    assert!(matches!(
        transition_of(&deployment.listener, user, GRACE + ARRIVES).await,
        Some(Transition::Offline { .. })
    ));
}

async fn a_user_connected_on_two_nodes_stays_online_until_both_close(deployment: Deployment) {
    let user = UserId::new();
    let on_publisher =
        Deployment::connect_to(&deployment.publisher, subscriber(user, &[]), CAPACITY).await;
    let on_listener = deployment.connect(subscriber(user, &[]), CAPACITY).await;
    let onlines = [
        transition_of(&deployment.publisher, user, QUIET).await,
        transition_of(&deployment.listener, user, QUIET).await,
    ];
    assert_eq!(
        onlines
            .iter()
            .filter(|transition| **transition == Some(Transition::Online(user)))
            .count(),
        1,
        "one node announces the user online: {onlines:?}"
    );
    drop(on_publisher);
    for node in [&deployment.publisher, &deployment.listener] {
        assert_eq!(
            transition_of(node, user, GRACE * 2).await,
            None,
            "still connected on the other node"
        );
    }
    assert!(deployment.publisher.online(user).await);
    drop(on_listener);
    assert!(matches!(
        transition_of(&deployment.listener, user, GRACE + ARRIVES).await,
        Some(Transition::Offline { .. })
    ));
    until_online_is(&deployment.publisher, user, false).await;
}

async fn a_presence_change_reaches_each_sharing_connection_once(deployment: Deployment) {
    let (first, second, elsewhere) = (RoomId::new(), RoomId::new(), RoomId::new());
    let user = UserId::new();
    let mut sharing_both = deployment
        .connect(subscriber(UserId::new(), &[first, second]), CAPACITY)
        .await;
    let mut sharing_one = deployment
        .connect(subscriber(UserId::new(), &[second]), CAPACITY)
        .await;
    let mut stranger = deployment
        .connect(subscriber(UserId::new(), &[elsewhere]), CAPACITY)
        .await;
    let mut own = deployment
        .connect(subscriber(user, &[first, second]), CAPACITY)
        .await;
    let change = PresenceChange {
        user_id: user,
        presence: Presence::Offline,
        last_seen_at: Some(Utc::now()),
        rooms: vec![first, second],
    };
    deployment.publisher.announce(change.clone()).await;
    assert_eq!(presence(&mut sharing_both).await, change);
    assert_eq!(presence(&mut sharing_one).await, change);
    quiet(&mut sharing_both, "the same change twice").await;
    quiet(&mut stranger, "a change of a user it shares no room with").await;
    quiet(&mut own, "a change of its own user").await;
}

/// One `#[tokio::test]` per body for an adapter, given an async factory of
/// its [`Deployment`] (`None`: skipped, reported by the factory).
macro_rules! fanout_contract_suite {
    ($adapter:ident, $factory:expr, [$($name:ident),* $(,)?]) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(deployment) = $factory.await {
                        super::$name(deployment).await;
                    }
                }
            )*
        }
    };
}

macro_rules! on_every_adapter {
    ($($name:ident),* $(,)?) => {
        fanout_contract_suite!(local, async { Some(super::Deployment::local()) }, [$($name),*]);
        fanout_contract_suite!(redis, super::Deployment::redis(), [$($name),*]);
    };
}

on_every_adapter!(
    routes_by_membership,
    a_room_events_arrive_in_position_order,
    a_join_subscribes_before_its_delivery,
    a_followed_room_is_routed_from_its_position,
    a_departure_unsubscribes_after_its_delivery,
    a_deleted_room_is_unsubscribed_after_its_delivery,
    a_connection_that_cannot_keep_up_is_told_it_overflowed,
    an_ended_session_ends_its_connections_only,
    a_rebound_connection_ends_with_its_new_session,
    typing_reaches_the_room_but_the_typist,
    the_status_says_whether_events_reach_other_nodes,
    a_user_is_online_while_connected_and_offline_after_the_grace,
    a_reconnect_within_the_grace_changes_nothing,
    a_user_connected_on_two_nodes_stays_online_until_both_close,
    a_presence_change_reaches_each_sharing_connection_once,
);
