//! Room events end to end over the real in-memory stores, with a fan-out
//! that records what it is told: every change of a room publishes exactly
//! the events its store logged, in order, and a call that changes nothing
//! publishes nothing; `Messaging::events` replays a room's log with the
//! resume rules (a position ahead of the room is `invalid_pos`, a pruned
//! one asks for a resync, only members read it, as with history). Then the
//! rules of replies, mentions, reactions, read markers and search.

// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use p_chat_auth::{BcryptHasher, JwtIssuer};
use p_chat_domain::DomainError;
use p_chat_domain::error::{ConflictError, Missing, ValidationError};
use p_chat_domain::events::{Broadcast, Change, EventPage, EventQuery, RoomEvent};
use p_chat_domain::message::{
    ClientMsgId, Draft, HistoryQuery, Mentions, MessageBody, MessageId, PageLimit, Seq,
};
use p_chat_domain::ports::{
    Clock, EventLog, FanOut, ManualClock, NoFanOut, PasswordHasher, RoomRepository, Subscriber,
    Subscription, UserRepository,
};
use p_chat_domain::position::Pos;
use p_chat_domain::reaction::{Emoji, Reaction};
use p_chat_domain::room::{Role, Room, RoomId, RoomName, Visibility};
use p_chat_domain::search::{SearchLimit, SearchQuery, SearchText};
use p_chat_domain::services::{
    Accounts, Messaging, NewRoom, RoomAccess, RoomChanges, Rooms, Sessions, UserRef,
};
use p_chat_domain::session::{SessionId, SessionPolicy};
use p_chat_domain::user::{Email, PasswordDigest, User, UserId};
use p_chat_domain::verification::VerificationPolicy;
use p_chat_persistence::memory::{
    MemoryAccounts, MemoryChat, MemoryEvents, MemoryRooms, MemorySessions, MemoryUsers,
};

const SECRET: &[u8] = b"integration-test secret, 32+ bytes long";

/// SHA-256 of "password".
const PASSWORD: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

/// The largest page the log hands out.
const WHOLE_PAGE: i64 = 100;

/// A fan-out that keeps everything published, in order.
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<Broadcast>>,
}

impl Recorder {
    /// What was published since the last call.
    fn take(&self) -> Vec<Broadcast> {
        std::mem::take(&mut *self.published.lock().unwrap())
    }
}

#[async_trait]
impl FanOut for Recorder {
    async fn publish(&self, event: Broadcast) {
        self.published.lock().unwrap().push(event);
    }

    async fn end_session(&self, _session: SessionId) {}

    fn subscribe(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription> {
        NoFanOut.subscribe(subscriber, capacity)
    }
}

/// The room services and account deletion wired to one set of in-memory
/// stores, one clock and one recording fan-out; the stores stay reachable
/// so tests can read what was logged.
struct App {
    rooms: Rooms,
    messaging: Messaging,
    accounts: Accounts,
    users: Arc<MemoryUsers>,
    store: MemoryRooms,
    log: MemoryEvents,
    hasher: Arc<BcryptHasher>,
    fanout: Arc<Recorder>,
    clock: Arc<ManualClock>,
}

fn app() -> App {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap(),
    ));
    let chat = MemoryChat::default();
    let account_store = MemoryAccounts::new(&chat);
    let users = Arc::new(account_store.users());
    let fanout = Arc::new(Recorder::default());
    let hasher = Arc::new(BcryptHasher::new(4).unwrap());
    let access = RoomAccess::new(Arc::new(chat.rooms()), Arc::new(chat.memberships()));
    let rooms = Rooms::new(access.clone(), users.clone(), clock.clone(), fanout.clone());
    let messaging = Messaging::new(
        access,
        Arc::new(chat.messages()),
        Arc::new(chat.events()),
        clock.clone(),
        fanout.clone(),
    );
    let sessions = Sessions::new(
        users.clone(),
        Arc::new(MemorySessions::default()),
        hasher.clone(),
        Arc::new(JwtIssuer::new(SECRET)),
        clock.clone(),
        SessionPolicy::default(),
    );
    let accounts = Accounts::new(
        users.clone(),
        Arc::new(account_store.verifications()),
        hasher.clone(),
        clock.clone(),
        sessions,
        VerificationPolicy::default(),
    )
    .with_fanout(fanout.clone());
    App {
        rooms,
        messaging,
        accounts,
        users,
        store: chat.rooms(),
        log: chat.events(),
        hasher,
        fanout,
        clock,
    }
}

fn password() -> PasswordDigest {
    PasswordDigest::parse(PASSWORD).unwrap()
}

fn pos(value: i64) -> Pos {
    Pos::new(value).unwrap()
}

fn after(position: i64, limit: i64) -> EventQuery {
    EventQuery {
        after: pos(position),
        limit: PageLimit::new(limit).unwrap(),
    }
}

fn new_room(name: &str, visibility: Visibility) -> NewRoom {
    NewRoom {
        name: RoomName::parse(name).unwrap(),
        topic: None,
        visibility,
    }
}

fn body(text: &str) -> MessageBody {
    MessageBody::parse(text).unwrap()
}

fn broadcasts(events: &[RoomEvent]) -> Vec<Broadcast> {
    events.iter().cloned().map(Broadcast::Event).collect()
}

fn kinds(events: &[RoomEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.change.kind()).collect()
}

fn positions(events: &[RoomEvent]) -> Vec<i64> {
    events.iter().map(|event| event.pos.value()).collect()
}

fn is_not_found_room<T>(result: &Result<T, DomainError>) -> bool {
    matches!(result, Err(DomainError::NotFound(Missing::Room)))
}

fn is_resync<T>(result: &Result<T, DomainError>) -> bool {
    matches!(result, Err(DomainError::ResyncRequired))
}

impl App {
    /// Stores an account named `name` (verified or not) whose password is
    /// [`PASSWORD`].
    async fn account(&self, name: &str, verified: bool) -> User {
        let email = Email::parse(&format!("{name}@example.com")).unwrap();
        let hash = self.hasher.hash(&password()).await.unwrap();
        let mut user = User::new(email, hash, self.clock.now());
        if verified {
            user.email_verified_at = Some(self.clock.now());
        }
        self.users.insert(&user).await.unwrap();
        user
    }

    /// A room created by `owner`, with what its creation published dropped.
    async fn room(&self, owner: UserId, name: &str, visibility: Visibility) -> Room {
        let room = self
            .rooms
            .create(owner, new_room(name, visibility))
            .await
            .unwrap();
        self.fanout.take();
        room
    }

    /// The room's `last_pos`, as stored.
    async fn last_pos(&self, room: RoomId) -> Pos {
        self.store
            .by_id(room)
            .await
            .unwrap()
            .expect("the room exists")
            .last_pos
    }

    /// Every event of the room's log after `position`, read straight from
    /// the store page by page.
    async fn logged_after(&self, room: RoomId, position: Pos) -> Vec<RoomEvent> {
        let mut events = Vec::new();
        let mut query = EventQuery {
            after: position,
            limit: PageLimit::new(WHOLE_PAGE).unwrap(),
        };
        loop {
            let page: EventPage = self.log.after(room, &query).await.unwrap();
            query.after = page.last_pos(query.after);
            events.extend(page.events);
            if !page.has_more {
                return events;
            }
        }
    }

    /// Asserts that what was published since the last look is exactly what
    /// the room's log holds after `before` (the events its store returned),
    /// in order and at the positions that follow `before`; returns them.
    async fn published_as_logged(&self, room: RoomId, before: Pos) -> Vec<RoomEvent> {
        let logged = self.logged_after(room, before).await;
        let expected: Vec<i64> = (1..=logged.len())
            .map(|offset| before.value() + i64::try_from(offset).unwrap())
            .collect();
        assert_eq!(positions(&logged), expected, "{logged:#?}");
        assert_eq!(
            self.last_pos(room).await,
            logged.last().map_or(before, |e| e.pos)
        );
        assert_eq!(self.fanout.take(), broadcasts(&logged));
        logged
    }

    /// Asserts that nothing was published and the room's log did not grow.
    async fn nothing_published(&self, room: RoomId, before: Pos) {
        assert_eq!(self.fanout.take(), Vec::new());
        assert_eq!(self.last_pos(room).await, before);
    }
}

#[tokio::test]
async fn creating_a_room_publishes_its_owners_join_at_position_one() {
    let app = app();
    let ada = app.account("ada", true).await;

    let room = app
        .rooms
        .create(ada.id, new_room("general", Visibility::Private))
        .await
        .unwrap();

    assert_eq!(room.last_pos, pos(1));
    let logged = app.published_as_logged(room.id, Pos::ZERO).await;
    let [event] = logged.as_slice() else {
        panic!("one event: {logged:#?}")
    };
    let Change::MemberJoined {
        room: joined,
        member,
    } = &event.change
    else {
        panic!("{event:#?}")
    };
    assert_eq!(joined, &room);
    assert_eq!(member.membership.user_id, ada.id);
    assert_eq!(member.membership.role, Role::Owner);
    assert_eq!(member.display_name, ada.display_name);
    assert_eq!(event.at, app.clock.now());
}

#[tokio::test]
async fn every_room_change_publishes_the_one_event_its_store_logged() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let carol = app.account("carol", true).await;
    let room = app.room(ada.id, "lobby", Visibility::Public).await.id;

    // A rename.
    let before = app.last_pos(room).await;
    let renamed = app
        .rooms
        .update(
            ada.id,
            room,
            RoomChanges {
                name: Some(RoomName::parse("hall").unwrap()),
                ..RoomChanges::default()
            },
        )
        .await
        .unwrap();
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::RoomUpdated(renamed.clone()));
    assert_eq!(renamed.name.as_str(), "hall");

    // An admin adds Bob by email.
    let before = app.last_pos(room).await;
    let (added, fresh) = app
        .rooms
        .add_member(ada.id, room, UserRef::Email(bob.email.clone()))
        .await
        .unwrap();
    assert!(fresh);
    let logged = app.published_as_logged(room, before).await;
    let [event] = logged.as_slice() else {
        panic!("{logged:#?}")
    };
    let Change::MemberJoined {
        room: joined,
        member,
    } = &event.change
    else {
        panic!("{event:#?}")
    };
    assert_eq!(member, &added);
    assert_eq!(joined.last_pos, event.pos);

    // Carol joins by herself.
    let before = app.last_pos(room).await;
    let carol_member = app.rooms.join(carol.id, room).await.unwrap();
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(kinds(&logged), ["member_joined"]);
    assert_eq!(logged[0].change.member_id(), Some(carol.id));
    assert!(
        matches!(&logged[0].change, Change::MemberJoined { member, .. } if member == &carol_member)
    );

    // Bob becomes an admin.
    let before = app.last_pos(room).await;
    let promoted = app
        .rooms
        .change_role(ada.id, room, bob.id, Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.membership.role, Role::Admin);
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::MemberUpdated(promoted));

    // Bob kicks Carol, then leaves.
    let before = app.last_pos(room).await;
    app.rooms
        .remove_member(bob.id, room, carol.id)
        .await
        .unwrap();
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::MemberLeft { user_id: carol.id });
    let before = app.last_pos(room).await;
    app.rooms.remove_member(bob.id, room, bob.id).await.unwrap();
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::MemberLeft { user_id: bob.id });

    assert_eq!(
        kinds(&app.logged_after(room, Pos::ZERO).await),
        [
            "member_joined",
            "room_updated",
            "member_joined",
            "member_joined",
            "member_updated",
            "member_left",
            "member_left",
        ]
    );
}

#[tokio::test]
async fn handing_over_ownership_publishes_three_events_in_order() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let room = app.room(ada.id, "handover", Visibility::Private).await.id;
    app.rooms
        .add_member(ada.id, room, UserRef::Id(bob.id))
        .await
        .unwrap();
    app.fanout.take();
    let before = app.last_pos(room).await;

    let owner = app
        .rooms
        .change_role(ada.id, room, bob.id, Role::Owner)
        .await
        .unwrap();

    assert_eq!(owner.membership.user_id, bob.id);
    assert_eq!(owner.membership.role, Role::Owner);
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(
        kinds(&logged),
        ["member_updated", "member_updated", "room_updated"]
    );
    let Change::MemberUpdated(demoted) = &logged[0].change else {
        panic!("{logged:#?}")
    };
    assert_eq!(
        (demoted.membership.user_id, demoted.membership.role),
        (ada.id, Role::Admin)
    );
    assert_eq!(logged[1].change, Change::MemberUpdated(owner));
    let Change::RoomUpdated(updated) = &logged[2].change else {
        panic!("{logged:#?}")
    };
    assert_eq!(updated.owner_id, bob.id);
    // The room as everyone now reads it agrees.
    assert_eq!(app.rooms.get(ada.id, room).await.unwrap().owner_id, bob.id);
}

#[tokio::test]
async fn sends_edits_and_deletes_publish_their_logged_events_and_repeats_publish_nothing() {
    let app = app();
    let ada = app.account("ada", true).await;
    let room = app.room(ada.id, "chat", Visibility::Private).await.id;
    let client_id = ClientMsgId::parse("c-1").unwrap();

    // A send returns the event it logged and publishes it.
    let before = app.last_pos(room).await;
    let sent = app
        .messaging
        .send(
            ada.id,
            room,
            Draft {
                client_msg_id: Some(client_id.clone()),
                ..Draft::text(body("hello"))
            },
        )
        .await
        .unwrap();
    let event = sent.event.clone().expect("a first send logs its message");
    assert_eq!(event.change, Change::Message(sent.value.clone()));
    assert_eq!(app.published_as_logged(room, before).await, vec![event]);

    // Its repeat returns the first message, logs and publishes nothing.
    let before = app.last_pos(room).await;
    let repeat = app
        .messaging
        .send(
            ada.id,
            room,
            Draft {
                client_msg_id: Some(client_id),
                ..Draft::text(body("hello again"))
            },
        )
        .await
        .unwrap();
    assert_eq!(repeat.value, sent.value);
    assert_eq!(repeat.event, None);
    assert!(!repeat.changed());
    app.nothing_published(room, before).await;

    // An edit.
    let edited = app
        .messaging
        .edit(ada.id, room, sent.value.id, body("hello, world"))
        .await
        .unwrap();
    assert_eq!(edited.body, Some(body("hello, world")));
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::MessageUpdated(edited));

    // A delete.
    let before = app.last_pos(room).await;
    let tombstone = app
        .messaging
        .delete(ada.id, room, sent.value.id)
        .await
        .unwrap();
    assert!(tombstone.is_deleted());
    let logged = app.published_as_logged(room, before).await;
    assert_eq!(logged[0].change, Change::MessageDeleted(tombstone.clone()));

    // Deleting it again returns the tombstone and publishes nothing; editing
    // it is refused and publishes nothing either.
    let before = app.last_pos(room).await;
    let again = app
        .messaging
        .delete(ada.id, room, sent.value.id)
        .await
        .unwrap();
    assert_eq!(again, tombstone);
    let refused = app
        .messaging
        .edit(ada.id, room, sent.value.id, body("back"))
        .await;
    assert!(
        matches!(
            refused,
            Err(DomainError::Conflict(ConflictError::MessageDeleted))
        ),
        "{refused:?}"
    );
    app.nothing_published(room, before).await;
}

#[tokio::test]
async fn calls_that_change_nothing_or_are_refused_publish_nothing() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let carol = app.account("carol", true).await;
    let room = app.room(ada.id, "quiet", Visibility::Public).await.id;
    app.rooms.join(bob.id, room).await.unwrap();
    app.fanout.take();
    let before = app.last_pos(room).await;

    // Joining again, adding a member again, the owner "becoming" owner.
    let rejoined = app.rooms.join(bob.id, room).await.unwrap();
    assert_eq!(rejoined.membership.user_id, bob.id);
    let (_, fresh) = app
        .rooms
        .add_member(ada.id, room, UserRef::Id(bob.id))
        .await
        .unwrap();
    assert!(!fresh);
    let still = app
        .rooms
        .change_role(ada.id, room, ada.id, Role::Owner)
        .await
        .unwrap();
    assert_eq!(still.membership.role, Role::Owner);

    // Refusals: removing a non-member, a member kicking, the owner leaving.
    let not_member = app.rooms.remove_member(ada.id, room, carol.id).await;
    assert!(
        matches!(not_member, Err(DomainError::NotFound(Missing::Member))),
        "{not_member:?}"
    );
    let kick = app.rooms.remove_member(bob.id, room, ada.id).await;
    assert!(matches!(kick, Err(DomainError::Forbidden)), "{kick:?}");
    let leave = app.rooms.remove_member(ada.id, room, ada.id).await;
    assert!(
        matches!(
            leave,
            Err(DomainError::Conflict(ConflictError::OwnerMustHandOver))
        ),
        "{leave:?}"
    );
    let post = app
        .messaging
        .send(carol.id, room, Draft::text(body("hi")))
        .await;
    assert!(matches!(post, Err(DomainError::Forbidden)), "{post:?}");

    app.nothing_published(room, before).await;
}

#[tokio::test]
async fn opening_a_direct_room_publishes_a_join_per_membership_it_stored() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;

    // New: both users join.
    let (room, created) = app
        .rooms
        .open_direct(ada.id, UserRef::Id(bob.id))
        .await
        .unwrap();
    assert!(created);
    let logged = app.published_as_logged(room.id, Pos::ZERO).await;
    assert_eq!(kinds(&logged), ["member_joined", "member_joined"]);
    let joined: HashSet<UserId> = logged
        .iter()
        .filter_map(|event| event.change.member_id())
        .collect();
    assert_eq!(joined, HashSet::from([ada.id, bob.id]));
    // The room returned is the room as of its last join.
    assert_eq!(room.last_pos, pos(2));
    assert!(matches!(&logged[1].change, Change::MemberJoined { room: last, .. } if last == &room));

    // Opened again, from the other side: nothing to store or publish.
    let (again, created) = app
        .rooms
        .open_direct(bob.id, UserRef::Email(ada.email.clone()))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, room.id);
    app.nothing_published(room.id, pos(2)).await;

    // Bob leaves; Ada opening it again re-adds him, with one join.
    app.rooms
        .remove_member(bob.id, room.id, bob.id)
        .await
        .unwrap();
    let logged = app.published_as_logged(room.id, pos(2)).await;
    assert_eq!(logged[0].change, Change::MemberLeft { user_id: bob.id });
    let (reopened, created) = app
        .rooms
        .open_direct(ada.id, UserRef::Id(bob.id))
        .await
        .unwrap();
    assert!(!created);
    let logged = app.published_as_logged(room.id, pos(3)).await;
    assert_eq!(kinds(&logged), ["member_joined"]);
    assert_eq!(logged[0].change.member_id(), Some(bob.id));
    assert_eq!(reopened.last_pos, pos(4));
    assert!(
        matches!(&logged[0].change, Change::MemberJoined { room: last, .. } if last == &reopened)
    );
}

#[tokio::test]
async fn unverified_accounts_are_not_found_for_adding_and_direct_rooms_until_verified() {
    let app = app();
    let ada = app.account("ada", true).await;
    let eve = app.account("eve", false).await;
    let room = app.room(ada.id, "private", Visibility::Private).await.id;
    let before = app.last_pos(room).await;

    for target in [UserRef::Id(eve.id), UserRef::Email(eve.email.clone())] {
        let added = app.rooms.add_member(ada.id, room, target.clone()).await;
        assert!(
            matches!(added, Err(DomainError::NotFound(Missing::User))),
            "{target:?}: {added:?}"
        );
        let opened = app.rooms.open_direct(ada.id, target.clone()).await;
        assert!(
            matches!(opened, Err(DomainError::NotFound(Missing::User))),
            "{target:?}: {opened:?}"
        );
    }

    app.nothing_published(room, before).await;
    assert_eq!(app.rooms.members(ada.id, room).await.unwrap().len(), 1);
    assert!(app.rooms.mine(eve.id).await.unwrap().is_empty());
    assert_eq!(app.rooms.mine(ada.id).await.unwrap().len(), 1);

    // Verified, the same account can be added and talked to.
    app.users
        .mark_verified(eve.id, app.clock.now())
        .await
        .unwrap();
    let (member, fresh) = app
        .rooms
        .add_member(ada.id, room, UserRef::Email(eve.email.clone()))
        .await
        .unwrap();
    assert!(fresh);
    assert_eq!(member.membership.user_id, eve.id);
    let (_, created) = app
        .rooms
        .open_direct(ada.id, UserRef::Id(eve.id))
        .await
        .unwrap();
    assert!(created);
}

#[tokio::test]
async fn deleting_a_room_publishes_room_deleted_after_its_last_position() {
    let app = app();
    let ada = app.account("ada", true).await;
    let room = app.room(ada.id, "doomed", Visibility::Private).await.id;
    app.messaging
        .send(ada.id, room, Draft::text(body("bye")))
        .await
        .unwrap();
    app.fanout.take();

    app.rooms.delete(ada.id, room).await.unwrap();

    assert_eq!(
        app.fanout.take(),
        vec![Broadcast::Event(RoomEvent {
            room_id: room,
            pos: pos(3),
            at: app.clock.now(),
            change: Change::RoomDeleted,
        })]
    );
    // The log went with the room, and the room is gone for everyone.
    assert!(app.logged_after(room, Pos::ZERO).await.is_empty());
    assert!(is_not_found_room(
        &app.messaging.events(ada.id, room, after(0, 10)).await
    ));
    assert!(is_not_found_room(&app.rooms.delete(ada.id, room).await));
    assert_eq!(app.fanout.take(), Vec::new());
}

#[tokio::test]
async fn deleting_an_account_publishes_the_member_left_its_store_logged_in_each_room() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let public = app.room(ada.id, "public", Visibility::Public).await.id;
    let private = app.room(ada.id, "private", Visibility::Private).await.id;
    app.rooms.join(bob.id, public).await.unwrap();
    app.rooms
        .add_member(ada.id, private, UserRef::Id(bob.id))
        .await
        .unwrap();
    let (direct, _) = app
        .rooms
        .open_direct(ada.id, UserRef::Id(bob.id))
        .await
        .unwrap();
    app.fanout.take();
    let mut befores = Vec::new();
    for room in [public, private, direct.id] {
        befores.push((room, app.last_pos(room).await));
    }

    app.accounts.delete(bob.id, &password()).await.unwrap();

    let mut logged = Vec::new();
    for (room, before) in befores {
        let left = app.logged_after(room, before).await;
        assert_eq!(positions(&left), [before.next().value()], "{left:#?}");
        assert_eq!(left[0].change, Change::MemberLeft { user_id: bob.id });
        logged.extend(left);
    }
    // One publication per room left, each exactly the logged event.
    let mut published = app.fanout.take();
    let mut expected = broadcasts(&logged);
    published.sort_by_key(Broadcast::room_id);
    expected.sort_by_key(Broadcast::room_id);
    assert_eq!(published, expected);
}

#[tokio::test]
async fn events_replay_a_rooms_log_in_pages_with_messages_as_they_are_now() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let room = app.room(ada.id, "replay", Visibility::Private).await.id;
    let first = app
        .messaging
        .send(ada.id, room, Draft::text(body("first")))
        .await
        .unwrap()
        .value;
    let second = app
        .messaging
        .send(ada.id, room, Draft::text(body("second")))
        .await
        .unwrap()
        .value;
    app.messaging
        .edit(ada.id, room, first.id, body("first, edited"))
        .await
        .unwrap();
    app.rooms
        .add_member(ada.id, room, UserRef::Id(bob.id))
        .await
        .unwrap();
    app.messaging.delete(ada.id, room, second.id).await.unwrap();
    app.rooms
        .update(
            ada.id,
            room,
            RoomChanges {
                visibility: Some(Visibility::Public),
                ..RoomChanges::default()
            },
        )
        .await
        .unwrap();

    let whole = app
        .messaging
        .events(bob.id, room, after(0, WHOLE_PAGE))
        .await
        .unwrap();

    assert!(!whole.has_more);
    assert_eq!(positions(&whole.events), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        kinds(&whole.events),
        [
            "member_joined",
            "message",
            "message",
            "message_updated",
            "member_joined",
            "message_deleted",
            "room_updated",
        ]
    );
    assert_eq!(whole.events, app.logged_after(room, Pos::ZERO).await);
    // A replayed message event shows the message as it is now.
    let shown = |index: usize| whole.events[index].change.message().cloned().unwrap();
    assert_eq!(shown(1).body, Some(body("first, edited")));
    assert!(shown(2).is_deleted());

    // Paged by three: the same events, `has_more` until the last page.
    let mut paged = Vec::new();
    let mut cursor = Pos::ZERO;
    let mut more = Vec::new();
    loop {
        let page = app
            .messaging
            .events(ada.id, room, after(cursor.value(), 3))
            .await
            .unwrap();
        cursor = page.last_pos(cursor);
        more.push(page.has_more);
        paged.extend(page.events);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(more, [true, true, false]);
    assert_eq!(paged, whole.events);
    assert_eq!(cursor, app.rooms.get(ada.id, room).await.unwrap().last_pos);
}

#[tokio::test]
async fn events_from_the_last_position_are_an_empty_page_and_beyond_it_invalid_pos() {
    let app = app();
    let ada = app.account("ada", true).await;
    let room = app.room(ada.id, "edge", Visibility::Private).await.id;
    app.messaging
        .send(ada.id, room, Draft::text(body("one")))
        .await
        .unwrap();
    let last = app.rooms.get(ada.id, room).await.unwrap().last_pos;
    assert_eq!(last, pos(2));

    let at_last = app
        .messaging
        .events(ada.id, room, after(2, 10))
        .await
        .unwrap();
    assert_eq!(
        at_last,
        EventPage {
            events: Vec::new(),
            has_more: false,
        }
    );

    for ahead in [3, 4, 1_000_000] {
        match app.messaging.events(ada.id, room, after(ahead, 10)).await {
            Err(DomainError::Invalid(error)) => {
                assert_eq!(error, ValidationError::PosAhead, "after {ahead}");
                assert_eq!(error.code(), "invalid_pos");
            }
            other => panic!("after {ahead}: {other:?}"),
        }
    }
    // The room's next event makes the position one the server gave.
    app.messaging
        .send(ada.id, room, Draft::text(body("two")))
        .await
        .unwrap();
    let page = app
        .messaging
        .events(ada.id, room, after(2, 10))
        .await
        .unwrap();
    assert_eq!(positions(&page.events), [3]);
    assert!(
        app.messaging
            .events(ada.id, room, after(3, 10))
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

#[tokio::test]
async fn events_from_a_pruned_position_require_a_resync_and_nothing_is_skipped() {
    let app = app();
    let ada = app.account("ada", true).await;
    let room = app.room(ada.id, "retention", Visibility::Private).await.id;
    let old = app
        .messaging
        .send(ada.id, room, Draft::text(body("old")))
        .await
        .unwrap()
        .value;
    app.messaging
        .send(ada.id, room, Draft::text(body("older news")))
        .await
        .unwrap();
    let cut = app.clock.now() + TimeDelta::hours(1);
    app.clock.advance(TimeDelta::days(1));
    app.messaging
        .send(ada.id, room, Draft::text(body("new")))
        .await
        .unwrap();
    app.messaging
        .edit(ada.id, room, old.id, body("old, edited"))
        .await
        .unwrap();

    // Positions 1 to 3 are older than the cut.
    assert_eq!(app.messaging.prune_events(cut).await.unwrap(), 3);

    for from in 0..=2 {
        let result = app.messaging.events(ada.id, room, after(from, 10)).await;
        assert!(is_resync(&result), "after {from}: {result:?}");
    }
    let kept = app
        .messaging
        .events(ada.id, room, after(3, 10))
        .await
        .unwrap();
    assert_eq!(positions(&kept.events), [4, 5]);
    assert!(!kept.has_more);
    // The messages themselves stay in history.
    let history = app
        .messaging
        .history(ada.id, room, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 3);

    // Everything pruned: the page is empty though the room has events
    // after the position asked for.
    app.clock.advance(TimeDelta::days(1));
    assert_eq!(
        app.messaging.prune_events(app.clock.now()).await.unwrap(),
        2
    );
    for from in [3, 4] {
        let result = app.messaging.events(ada.id, room, after(from, 10)).await;
        assert!(is_resync(&result), "after {from}: {result:?}");
    }
    let caught_up = app
        .messaging
        .events(ada.id, room, after(5, 10))
        .await
        .unwrap();
    assert!(caught_up.events.is_empty() && !caught_up.has_more);

    // The log goes on where it was.
    app.messaging
        .send(ada.id, room, Draft::text(body("later")))
        .await
        .unwrap();
    let next = app
        .messaging
        .events(ada.id, room, after(5, 10))
        .await
        .unwrap();
    assert_eq!(positions(&next.events), [6]);
    let behind = app.messaging.events(ada.id, room, after(4, 10)).await;
    assert!(is_resync(&behind), "{behind:?}");
}

#[tokio::test]
async fn only_members_read_events_and_private_rooms_answer_like_missing_ones() {
    let app = app();
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let mallory = app.account("mallory", true).await;
    let private = app.room(ada.id, "secret", Visibility::Private).await.id;
    let public = app.room(ada.id, "open", Visibility::Public).await.id;
    let (direct, _) = app
        .rooms
        .open_direct(ada.id, UserRef::Id(bob.id))
        .await
        .unwrap();
    app.rooms
        .add_member(ada.id, private, UserRef::Id(bob.id))
        .await
        .unwrap();
    app.rooms
        .remove_member(bob.id, private, bob.id)
        .await
        .unwrap();
    let missing = app
        .messaging
        .events(mallory.id, RoomId::new(), after(0, 10))
        .await;
    assert!(is_not_found_room(&missing), "{missing:?}");

    // A private or direct room one is not (or no longer) in: exactly like a
    // missing room, whatever the position (an ahead one would tell last_pos).
    for (who, room) in [
        (mallory.id, private),
        (bob.id, private),
        (mallory.id, direct.id),
    ] {
        for from in [0, 1, 1_000_000] {
            let result = app.messaging.events(who, room, after(from, 10)).await;
            assert!(is_not_found_room(&result), "after {from}: {result:?}");
            assert_eq!(format!("{result:?}"), format!("{missing:?}"));
        }
    }

    // A public room one is not in: refused like its history.
    let history = app
        .messaging
        .history(mallory.id, public, HistoryQuery::default())
        .await;
    assert!(
        matches!(history, Err(DomainError::Forbidden)),
        "{history:?}"
    );
    for from in [0, 1_000_000] {
        let events = app
            .messaging
            .events(mallory.id, public, after(from, 10))
            .await;
        assert_eq!(format!("{events:?}"), format!("{history:?}"));
    }
    // Once in, it reads.
    app.rooms.join(mallory.id, public).await.unwrap();
    let page = app
        .messaging
        .events(mallory.id, public, after(0, 10))
        .await
        .unwrap();
    assert_eq!(kinds(&page.events), ["member_joined", "member_joined"]);
}

// Replies, mentions, reactions, read markers and search (issue 13).

/// Ada's public room with Bob as a member, and Carol outside it.
async fn trio(app: &App) -> (User, User, User, RoomId) {
    let ada = app.account("ada", true).await;
    let bob = app.account("bob", true).await;
    let carol = app.account("carol", true).await;
    let room = app.room(ada.id, "general", Visibility::Public).await.id;
    app.rooms.join(bob.id, room).await.unwrap();
    app.fanout.take();
    (ada, bob, carol, room)
}

fn emoji(raw: &str) -> Emoji {
    Emoji::parse(raw).unwrap()
}

fn seq(value: i64) -> Seq {
    Seq::new(value).unwrap()
}

#[tokio::test]
async fn a_reply_names_a_message_of_the_same_room_even_a_deleted_one() {
    let app = app();
    let (ada, bob, _, room) = trio(&app).await;
    let other = app.room(ada.id, "other", Visibility::Public).await.id;
    let elsewhere = app
        .messaging
        .send(ada.id, other, Draft::text(body("elsewhere")))
        .await
        .unwrap()
        .value;
    let reply = |to| Draft {
        reply_to: Some(to),
        ..Draft::text(body("re"))
    };
    let foreign = app.messaging.send(bob.id, room, reply(elsewhere.id)).await;
    assert!(matches!(
        foreign,
        Err(DomainError::Invalid(ValidationError::Reply))
    ));
    let missing = app
        .messaging
        .send(bob.id, room, reply(MessageId::new()))
        .await;
    assert!(matches!(
        missing,
        Err(DomainError::Invalid(ValidationError::Reply))
    ));

    let first = app
        .messaging
        .send(ada.id, room, Draft::text(body("first")))
        .await
        .unwrap()
        .value;
    app.messaging.delete(ada.id, room, first.id).await.unwrap();
    let answer = app
        .messaging
        .send(bob.id, room, reply(first.id))
        .await
        .unwrap();
    assert_eq!(answer.value.reply_to, Some(first.id));
    let logged = answer.event.expect("a message event");
    assert_eq!(logged.change.message().unwrap().reply_to, Some(first.id));
}

#[tokio::test]
async fn only_members_can_be_mentioned() {
    let app = app();
    let (ada, bob, carol, room) = trio(&app).await;
    let mention = |users: Vec<UserId>| Draft {
        mentions: Mentions::parse(users).unwrap(),
        ..Draft::text(body("hey"))
    };
    let outsider = app
        .messaging
        .send(ada.id, room, mention(vec![bob.id, carol.id]))
        .await;
    assert!(matches!(
        outsider,
        Err(DomainError::Invalid(ValidationError::Mentions))
    ));
    let sent = app
        .messaging
        .send(ada.id, room, mention(vec![bob.id, ada.id, bob.id]))
        .await
        .unwrap();
    assert_eq!(sent.value.mentions.users(), &[bob.id, ada.id]);
}

#[tokio::test]
async fn reactions_are_idempotent_logged_events_refused_on_tombstones() {
    let app = app();
    let (ada, bob, carol, room) = trio(&app).await;
    let message = app
        .messaging
        .send(ada.id, room, Draft::text(body("react to me")))
        .await
        .unwrap()
        .value;
    app.fanout.take();

    let reacted = app
        .messaging
        .react(bob.id, room, message.id, emoji("👍"))
        .await
        .unwrap();
    assert_eq!(reacted.reactions.len(), 1);
    assert_eq!(reacted.reactions[0].user_ids, vec![bob.id]);
    let published = app.fanout.take();
    assert!(matches!(
        published.as_slice(),
        [Broadcast::Event(RoomEvent { change: Change::ReactionAdded(change), .. })]
            if change.user_id == bob.id && change.emoji == emoji("👍")
    ));
    let again = app
        .messaging
        .react(bob.id, room, message.id, emoji("👍"))
        .await
        .unwrap();
    assert_eq!(again, reacted);
    assert!(app.fanout.take().is_empty(), "a repeat publishes nothing");

    let outsider = app
        .messaging
        .react(carol.id, room, message.id, emoji("👍"))
        .await;
    assert!(matches!(outsider, Err(DomainError::Forbidden)));
    let unknown = app
        .messaging
        .react(bob.id, room, MessageId::new(), emoji("👍"))
        .await;
    assert!(matches!(
        unknown,
        Err(DomainError::NotFound(Missing::Message))
    ));

    let removed = app
        .messaging
        .unreact(bob.id, room, message.id, emoji("👍"))
        .await
        .unwrap();
    assert!(removed.reactions.is_empty());
    assert_eq!(kinds(&events_of(app.fanout.take())), ["reaction_removed"]);
    app.messaging
        .unreact(bob.id, room, message.id, emoji("👍"))
        .await
        .unwrap();
    assert!(
        app.fanout.take().is_empty(),
        "removing twice publishes nothing"
    );

    app.messaging
        .react(bob.id, room, message.id, emoji("🎉"))
        .await
        .unwrap();
    let tombstone = app
        .messaging
        .delete(ada.id, room, message.id)
        .await
        .unwrap();
    assert!(
        tombstone.reactions.is_empty(),
        "a tombstone loses its reactions"
    );
    for result in [
        app.messaging
            .react(bob.id, room, message.id, emoji("👍"))
            .await,
        app.messaging
            .unreact(bob.id, room, message.id, emoji("🎉"))
            .await,
    ] {
        assert!(matches!(
            result,
            Err(DomainError::Conflict(ConflictError::MessageDeleted))
        ));
    }
}

#[tokio::test]
async fn a_message_carries_at_most_twenty_distinct_emoji() {
    let app = app();
    let (ada, bob, _, room) = trio(&app).await;
    let message = app
        .messaging
        .send(ada.id, room, Draft::text(body("so many")))
        .await
        .unwrap()
        .value;
    let palette: Vec<char> = ('😀'..='😵').collect();
    for face in &palette[..Reaction::MAX_PER_MESSAGE] {
        app.messaging
            .react(ada.id, room, message.id, emoji(&face.to_string()))
            .await
            .unwrap();
    }
    let one_more = emoji(&palette[Reaction::MAX_PER_MESSAGE].to_string());
    let refused = app
        .messaging
        .react(bob.id, room, message.id, one_more)
        .await;
    assert!(matches!(
        refused,
        Err(DomainError::Conflict(ConflictError::TooManyReactions))
    ));
    let joined = app
        .messaging
        .react(bob.id, room, message.id, emoji(&palette[0].to_string()))
        .await
        .unwrap();
    assert_eq!(joined.reactions[0].user_ids, vec![ada.id, bob.id]);
}

#[tokio::test]
async fn read_markers_move_forward_only_and_announce_each_move() {
    let app = app();
    let (ada, bob, carol, room) = trio(&app).await;
    for text in ["one", "two", "three"] {
        app.messaging
            .send(ada.id, room, Draft::text(body(text)))
            .await
            .unwrap();
    }
    let mention = Draft {
        mentions: Mentions::parse([bob.id]).unwrap(),
        ..Draft::text(body("@bob"))
    };
    app.messaging.send(ada.id, room, mention).await.unwrap();
    app.messaging
        .send(bob.id, room, Draft::text(body("mine")))
        .await
        .unwrap();
    app.fanout.take();

    let (_, unread) = app.rooms.overview(bob.id).await.unwrap().pop().unwrap();
    assert_eq!(
        (unread.unread, unread.mentions),
        (4, 1),
        "own messages never count"
    );

    let ahead = app.messaging.mark_read(bob.id, room, seq(6)).await;
    assert!(matches!(
        ahead,
        Err(DomainError::Invalid(ValidationError::SeqAhead))
    ));
    let read = app.messaging.mark_read(bob.id, room, seq(2)).await.unwrap();
    assert_eq!(
        (read.last_read_seq, read.unread, read.mentions),
        (seq(2), 2, 1)
    );
    assert_eq!(
        app.fanout.take(),
        vec![Broadcast::ReadMarker {
            user_id: bob.id,
            counts: read
        }]
    );
    let back = app.messaging.mark_read(bob.id, room, seq(1)).await.unwrap();
    assert_eq!(back, read, "a marker never moves backward");
    assert!(
        app.fanout.take().is_empty(),
        "nothing moved, nothing announced"
    );
    let all = app.messaging.mark_read(bob.id, room, seq(5)).await.unwrap();
    assert_eq!((all.unread, all.mentions), (0, 0));

    let receipts = app.messaging.receipts(ada.id, room).await.unwrap();
    let marks: Vec<(UserId, Seq)> = receipts
        .iter()
        .map(|r| (r.user_id, r.last_read_seq))
        .collect();
    assert_eq!(marks, vec![(ada.id, Seq::ZERO), (bob.id, seq(5))]);
    let visitor = app.messaging.mark_read(carol.id, room, seq(1)).await;
    assert!(matches!(visitor, Err(DomainError::Forbidden)));
}

#[tokio::test]
async fn search_reads_only_the_callers_rooms_and_never_tombstones() {
    let app = app();
    let (ada, bob, carol, room) = trio(&app).await;
    let secret = app.room(carol.id, "carol's", Visibility::Private).await.id;
    app.messaging
        .send(carol.id, secret, Draft::text(body("deploy plans")))
        .await
        .unwrap();
    let kept = app
        .messaging
        .send(
            ada.id,
            room,
            Draft::text(body("Deploy at noon, deploy twice")),
        )
        .await
        .unwrap()
        .value;
    let gone = app
        .messaging
        .send(bob.id, room, Draft::text(body("deploy later")))
        .await
        .unwrap()
        .value;
    app.messaging.delete(bob.id, room, gone.id).await.unwrap();
    let query = |user: UserId, only: Option<RoomId>| SearchQuery {
        user,
        text: SearchText::parse("deploy").unwrap(),
        room: only,
        before: None,
        limit: SearchLimit::default(),
    };
    let found = app.messaging.search(query(bob.id, None)).await.unwrap();
    let ids: Vec<MessageId> = found.iter().map(|hit| hit.message.id).collect();
    assert_eq!(ids, vec![kept.id]);
    assert_eq!(found[0].room_name.as_str(), "general");
    let private = app.messaging.search(query(bob.id, Some(secret))).await;
    assert!(is_not_found_room(&private));
}

fn events_of(published: Vec<Broadcast>) -> Vec<RoomEvent> {
    published
        .into_iter()
        .filter_map(|broadcast| match broadcast {
            Broadcast::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}
