//! Builders for the values the suites store. Every builder draws fresh ids,
//! emails, token hashes, room names, invitation ids and client message ids,
//! so tests never collide in a shared store; times are fixed and cut to microseconds, the
//! precision every store must keep.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use p_chat_domain::events::{EventQuery, RoomEvent};
use p_chat_domain::message::{
    ClientMsgId, Mentions, Message, MessageBody, MessageId, NewMessage, PageLimit, Seq,
};
use p_chat_domain::ports::{DirectPeople, UserRepository};
use p_chat_domain::position::Pos;
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::registration::{Invite, InviteId};
use p_chat_domain::room::{
    DirectPair, Member, Membership, Role, Room, RoomId, RoomName, Topic, Visibility,
};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{DisplayName, Email, PasswordHash, User, UserId};
use p_chat_domain::verification::EmailVerification;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::{ChatStores, Stores};

/// A fixed instant `offset_seconds` after 2027-01-15T08:00:00.123456Z. The
/// sub-second part is deliberately not zero, so a store that drops
/// microseconds fails the round-trip tests.
pub fn at(offset_seconds: i64) -> DateTime<Utc> {
    let base = Utc
        .timestamp_opt(1_800_000_000, 123_456_000)
        .single()
        .expect("a valid base instant");
    base + TimeDelta::seconds(offset_seconds)
}

/// An instant long past by any wall clock (2000-01-01T00:00:00.654321Z).
pub fn long_ago() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
        + TimeDelta::microseconds(654_321)
}

/// An email no other test uses.
pub fn unique_email() -> Email {
    Email::parse(&format!("user-{}@example.com", Uuid::new_v4())).expect("a valid email")
}

/// A token hash no other test uses.
pub fn unique_token_hash() -> TokenHash {
    TokenHash::of(&Uuid::new_v4().to_string())
}

/// A display name, parsed.
pub fn name(raw: &str) -> DisplayName {
    DisplayName::parse(raw).expect("a valid display name")
}

/// A password hash no other account has.
pub fn unique_password_hash() -> PasswordHash {
    PasswordHash::new(format!("$2b$04${}", Uuid::new_v4().simple()))
}

/// An unverified, enabled member account with a fresh id and `email`,
/// registered at `at(0)`.
pub fn user_with_email(email: Email) -> User {
    User::new(email, unique_password_hash(), at(0))
}

/// An unverified account with a fresh id and a unique email.
pub fn user() -> User {
    user_with_email(unique_email())
}

/// Inserts a fresh account through the users port (sessions and
/// verifications must reference an existing user) and returns it.
pub async fn registered_user(stores: &Stores) -> User {
    insert_fresh_user(stores.users.as_ref()).await
}

/// Inserts a fresh account through the chat stores' users port (rooms,
/// memberships and messages must reference existing users) and returns it.
pub async fn chat_user(stores: &ChatStores) -> User {
    insert_fresh_user(stores.users.as_ref()).await
}

async fn insert_fresh_user(users: &dyn UserRepository) -> User {
    let user = user();
    users
        .insert(&user)
        .await
        .expect("inserting a fresh user succeeds");
    user
}

/// A live session of `user_id`, with a fresh id and refresh-token hash.
pub fn session_for(user_id: UserId) -> LoginSession {
    LoginSession {
        id: SessionId::new(),
        user_id,
        refresh_token_hash: unique_token_hash(),
        created_at: at(0),
        expires_at: at(3_600),
        revoked_at: None,
        last_used_at: at(0),
        user_agent: None,
    }
}

/// A pending verification of `user_id`, with a fresh token hash.
pub fn verification_for(user_id: UserId) -> EmailVerification {
    EmailVerification {
        token_hash: unique_token_hash(),
        user_id,
        expires_at: at(86_400),
    }
}

/// A pending password reset of `user_id`, with a fresh token hash.
pub fn reset_for(user_id: UserId) -> PasswordReset {
    PasswordReset {
        token_hash: unique_token_hash(),
        user_id,
        expires_at: at(1_800),
    }
}

/// An invitation from the console (no creator) with a fresh id and token
/// hash, created at `at(0)`, admitting `uses_left` registrations until
/// `expires_at`.
pub fn invite(uses_left: u32, expires_at: DateTime<Utc>) -> Invite {
    Invite {
        id: InviteId::new(),
        token_hash: unique_token_hash(),
        created_by: None,
        created_at: at(0),
        expires_at,
        uses_left,
    }
}

/// A room name, parsed.
pub fn room_name(raw: &str) -> RoomName {
    RoomName::parse(raw).expect("a valid room name")
}

/// A (non-empty) topic, parsed.
pub fn topic(raw: &str) -> Topic {
    Topic::parse(raw)
        .expect("a valid topic")
        .expect("a non-empty topic")
}

/// A word no other test uses (32 lowercase hex digits), to put in names.
pub fn unique_word() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A public or private room owned by `owner`, not stored: a fresh id, a
/// unique name, no topic, created at `at(0)`, no message nor event yet.
/// (Direct rooms come from [`direct_room`] and `open_direct` only.)
pub fn room_owned_by(owner: UserId, visibility: Visibility) -> Room {
    Room {
        id: RoomId::new(),
        name: room_name(&format!("Room {}", unique_word())),
        topic: None,
        visibility,
        owner_id: owner,
        created_at: at(0),
        last_seq: Seq::ZERO,
        last_pos: Pos::ZERO,
    }
}

/// The membership that goes with a new room: its owner, role owner, joined
/// when the room was created.
pub fn owner_membership(room: &Room) -> Membership {
    membership(room.id, room.owner_id, Role::Owner, room.created_at)
}

/// A membership, spelled out.
pub fn membership(
    room_id: RoomId,
    user_id: UserId,
    role: Role,
    joined_at: DateTime<Utc>,
) -> Membership {
    Membership {
        room_id,
        user_id,
        role,
        joined_at,
    }
}

/// The member of `membership`, shown under `user`'s name.
pub fn member(user: &User, membership: Membership) -> Member {
    Member {
        membership,
        display_name: user.display_name.clone(),
    }
}

/// Stores `room` with its owner's membership ([`owner_membership`], under
/// the owner's name as stored), checking that it logged the owner joining
/// at position 1; returns that event.
pub async fn create_room(stores: &ChatStores, room: &Room) -> RoomEvent {
    let owner = stores
        .users
        .by_id(room.owner_id)
        .await
        .expect("reading the owner succeeds")
        .expect("the owner is registered");
    let joined = stores
        .rooms
        .create(room, &member(&owner, owner_membership(room)))
        .await
        .expect("creating a fresh room succeeds");
    assert_eq!(joined.room_id, room.id);
    assert_eq!(joined.pos, pos(1));
    assert_eq!(joined.change.kind(), "member_joined");
    joined
}

/// A stored room of `visibility` (public or private) owned by a freshly
/// registered user: returns the owner and the room as stored (its log at
/// position 1, the owner joining).
pub async fn created_room(stores: &ChatStores, visibility: Visibility) -> (User, Room) {
    let owner = chat_user(stores).await;
    let room = room_owned_by(owner.id, visibility);
    create_room(stores, &room).await;
    (
        owner,
        Room {
            last_pos: pos(1),
            ..room
        },
    )
}

/// A member (role member) added to `room` at `joined_at`: a freshly
/// registered user, returned.
pub async fn added_member(stores: &ChatStores, room: RoomId, joined_at: DateTime<Utc>) -> User {
    let user = chat_user(stores).await;
    add_member(stores, &user, room, joined_at).await;
    user
}

/// Adds `user` (not yet a member) to `room` at `joined_at`, role member.
pub async fn add_member(stores: &ChatStores, user: &User, room: RoomId, joined_at: DateTime<Utc>) {
    stores
        .memberships
        .add(&member(
            user,
            membership(room, user.id, Role::Member, joined_at),
        ))
        .await
        .expect("adding a new member succeeds");
}

/// The room `opener` would pass to `open_direct` to talk with `other`, not
/// stored: a fresh id, both names, direct, created at `at(0)`.
pub fn direct_room(opener: &User, other: &User) -> Room {
    Room {
        id: RoomId::new(),
        name: RoomName::for_direct(&opener.display_name, &other.display_name),
        topic: None,
        visibility: Visibility::Direct,
        owner_id: opener.id,
        created_at: at(0),
        last_seq: Seq::ZERO,
        last_pos: Pos::ZERO,
    }
}

/// The direct pair of two different users.
pub fn pair(first: UserId, second: UserId) -> DirectPair {
    DirectPair::new(first, second).expect("two different users")
}

/// The direct pair of two different users, with their names.
pub fn people(first: &User, second: &User) -> DirectPeople {
    let the_pair = pair(first.id, second.id);
    let name_of = |id: UserId| {
        if id == first.id {
            first.display_name.clone()
        } else {
            second.display_name.clone()
        }
    };
    DirectPeople {
        pair: the_pair,
        low_name: name_of(the_pair.low()),
        high_name: name_of(the_pair.high()),
    }
}

/// A message body, parsed.
pub fn body(raw: &str) -> MessageBody {
    MessageBody::parse(raw).expect("a valid message body")
}

/// A client message id no other test uses.
pub fn unique_client_msg_id() -> ClientMsgId {
    ClientMsgId::parse(&Uuid::new_v4().to_string()).expect("a valid client message id")
}

/// A message of `author_id` to `room_id` without a client id: a fresh id, a
/// fixed body, sent at `at(0)`.
pub fn new_message(room_id: RoomId, author_id: UserId) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        room_id,
        author_id,
        body: body("Hello, room!"),
        client_msg_id: None,
        created_at: at(0),
        reply_to: None,
        mentions: Mentions::default(),
    }
}

/// Like [`new_message`], with the sender's idempotency key `client_msg_id`.
pub fn new_message_with_client_id(
    room_id: RoomId,
    author_id: UserId,
    client_msg_id: ClientMsgId,
) -> NewMessage {
    NewMessage {
        client_msg_id: Some(client_msg_id),
        ..new_message(room_id, author_id)
    }
}

/// Appends `count` messages of `author_id` to `room_id` (message `i`, from 1,
/// has body "message i" and is sent at `at(i)`), checking that each is
/// stored; returns the stored messages in order.
pub async fn append_messages(
    stores: &ChatStores,
    room_id: RoomId,
    author_id: UserId,
    count: usize,
) -> Vec<Message> {
    let mut stored = Vec::with_capacity(count);
    for index in 1..=count {
        let offset = i64::try_from(index).expect("a small count");
        let message = NewMessage {
            body: body(&format!("message {index}")),
            created_at: at(offset),
            ..new_message(room_id, author_id)
        };
        let appended = stores
            .messages
            .append(&message)
            .await
            .expect("appending succeeds")
            .expect("the room exists");
        assert!(appended.changed(), "a message without client id is new");
        stored.push(appended.value);
    }
    stored
}

/// A seq, from its number.
pub fn seq(value: i64) -> Seq {
    Seq::new(value).expect("a valid seq")
}

/// A position, from its number.
pub fn pos(value: i64) -> Pos {
    Pos::new(value).expect("a valid position")
}

/// Reading a room's log: the events after `after`, at most `limit`.
pub fn events_after(after: i64, limit: i64) -> EventQuery {
    EventQuery {
        after: pos(after),
        limit: PageLimit::new(limit).expect("a valid limit"),
    }
}

/// Checks what a change of the room `before` (as read right before the
/// change) logged: `events`, of `kinds` in that order, in that room, at
/// the positions right after `before.last_pos`; the room's `last_pos` now
/// the last of them; and its log holding exactly these events after
/// `before.last_pos` (as read back, message events show the message as it
/// is now: the tests check right after the change).
pub async fn assert_logged(
    stores: &ChatStores,
    before: &Room,
    events: &[RoomEvent],
    kinds: &[&str],
) {
    let found: Vec<&str> = events.iter().map(|event| event.change.kind()).collect();
    assert_eq!(found, kinds, "{events:?}");
    for (event, expected) in events.iter().zip(before.last_pos.value() + 1..) {
        assert_eq!(event.room_id, before.id, "{event:?}");
        assert_eq!(event.pos, pos(expected), "{event:?}");
    }
    let count = i64::try_from(events.len()).expect("a few events");
    assert_eq!(
        stored_room(stores, before.id).await.last_pos,
        pos(before.last_pos.value() + count),
        "the room's last_pos moves past its new events"
    );
    let page = stores
        .events
        .after(before.id, &events_after(before.last_pos.value(), 100))
        .await
        .expect("reading the log succeeds");
    assert_eq!(page.events, events, "the log holds the events returned");
    assert!(!page.has_more);
}

/// Checks that a call changed nothing of the room `before` (as read right
/// before the call): its `last_pos` is the same and its log holds nothing
/// after it.
pub async fn assert_unlogged(stores: &ChatStores, before: &Room) {
    assert_eq!(
        stored_room(stores, before.id).await.last_pos,
        before.last_pos,
        "a call that changes nothing consumes no position"
    );
    let page = stores
        .events
        .after(before.id, &events_after(before.last_pos.value(), 100))
        .await
        .expect("reading the log succeeds");
    assert_eq!(page.events, Vec::<RoomEvent>::new());
}

/// The room as stored now (it must exist).
pub async fn stored_room(stores: &ChatStores, id: RoomId) -> Room {
    stores
        .rooms
        .by_id(id)
        .await
        .expect("reading a room succeeds")
        .expect("the room exists")
}

/// Runs `racers` operations at once: each on its own task, all released
/// together by a barrier so they truly overlap. `start(i)` builds racer `i`'s
/// operation; the outcomes come back in completion order.
pub async fn race<T, F, Fut>(racers: usize, start: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = JoinSet::new();
    for racer in 0..racers {
        let barrier = Arc::clone(&barrier);
        let operation = start(racer);
        tasks.spawn(async move {
            barrier.wait().await;
            operation.await
        });
    }
    tasks.join_all().await
}
