//! The [`EventLog`](p_chat_domain::ports::EventLog) contract, with what the
//! chat ports promise about the log they write: every change of a room is an
//! event at the room's next position (1, 2, 3, ... with no gap and no
//! reuse, however many writers race), stored iff the change is; the log is
//! read back in pages, message events showing the message as it is now,
//! pruned by prefixes, and goes with its room.
//!
//! (That a group commit of the PostgreSQL store which fails as a whole
//! leaves no hole either is `group_commit`'s, as only that store batches.)

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use p_chat_domain::events::{Change, EventPage, RoomEvent};
use p_chat_domain::message::{ClientMsgId, Message, MessageId, NewMessage};
use p_chat_domain::ports::{Anonymisation, RoomDetails, StoreError};
use p_chat_domain::room::{Member, Role, Room, RoomId, Visibility};
use p_chat_domain::user::{Anonymised, PasswordHash, User};

use crate::ChatStores;
use crate::fixtures::{
    added_member, append_messages, assert_logged, assert_unlogged, at, body, chat_user,
    create_room, created_room, events_after, long_ago, member, membership, new_message,
    new_message_with_client_id, pos, race, room_name, room_owned_by, stored_room,
};

/// The whole log of `room` (what is left of it), read from 0 in pages of
/// `limit`, checking on the way that each page holds consecutive positions
/// and starts right after the previous one (the first one may start later:
/// after a pruned prefix), holds `limit` events unless it is the last, and
/// says `has_more` unless it is.
async fn read_log(stores: &ChatStores, room: RoomId, limit: i64) -> Vec<RoomEvent> {
    let mut log: Vec<RoomEvent> = Vec::new();
    loop {
        let after = log.last().map_or(0, |event| event.pos.value());
        let page = stores
            .events
            .after(room, &events_after(after, limit))
            .await
            .unwrap();
        let positions: Vec<i64> = page.events.iter().map(|event| event.pos.value()).collect();
        let count = i64::try_from(positions.len()).unwrap();
        let first = match (log.is_empty(), positions.first()) {
            (true, Some(first)) => *first,
            _ => after + 1,
        };
        assert!(first > after, "a page starts after its position");
        assert_eq!(
            positions,
            (first..first + count).collect::<Vec<_>>(),
            "a page continues the log without a gap"
        );
        assert!(
            count == limit || !page.has_more,
            "only a full page has more after it"
        );
        log.extend(page.events);
        if !page.has_more {
            return log;
        }
    }
}

/// The message of a message event.
fn message_of(event: &RoomEvent) -> &Message {
    event.change.message().expect("a message event")
}

/// What one writer of [`positions_are_gap_free_and_unique_under_concurrent_writers`]
/// got back.
#[derive(Default)]
struct Writes {
    /// The events its calls returned, in call order.
    events: Vec<RoomEvent>,
    /// How many of its calls changed nothing (and returned no event).
    unchanged: usize,
}

impl Writes {
    /// Notes what a call returned: an event, or nothing.
    fn note(&mut self, event: Option<RoomEvent>) {
        match event {
            Some(event) => self.events.push(event),
            None => self.unchanged += 1,
        }
    }

    /// Notes a call that must have changed the room.
    fn changed(&mut self, event: Option<RoomEvent>, what: &str) {
        assert!(event.is_some(), "{what} must log an event");
        self.note(event);
    }

    /// Notes a call that must have changed nothing.
    fn unchanged(&mut self, event: Option<RoomEvent>, what: &str) {
        assert_eq!(event, None, "{what} must log nothing");
        self.note(None);
    }
}

/// 10 writers at once in one room, each mixing sends (a repeated client id
/// among them, and a client id all of them send for the same author),
/// edits and deletes of messages they share (double deletes included),
/// adds, duplicate adds, role changes, removes and removes of non-members,
/// adds of a user they all try to add, and refused ownership transfers.
/// Afterwards the log, read back in pages, is exactly positions 1 to the
/// room's `last_pos`, each once; every event a call returned is there at
/// its position, of its kind (the very event, or for a message event, the
/// same message as it is now); each writer's events come in its call
/// order; and the returned events account for every position taken since
/// the writers started, so that no call that changed nothing consumed one.
pub async fn positions_are_gap_free_and_unique_under_concurrent_writers(stores: ChatStores) {
    const WRITERS: usize = 10;
    const ROUNDS: usize = 3;
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    // Each writer edits one of these and deletes the next: writers collide.
    let shared = append_messages(&stores, room.id, owner.id, WRITERS).await;
    let mut authors = Vec::new();
    let mut joiners = Vec::new();
    for _ in 0..WRITERS {
        authors.push(chat_user(&stores).await);
        joiners.push(chat_user(&stores).await);
    }
    let contested = chat_user(&stores).await;
    let start = stored_room(&stores, room.id).await;

    let writes: Vec<Writes> = race(WRITERS, |writer| {
        let stores = stores.clone();
        let room = room.clone();
        let (owner, author, joiner, contested) = (
            owner.clone(),
            authors[writer].clone(),
            joiners[writer].clone(),
            contested.clone(),
        );
        let shared = shared.clone();
        async move {
            let as_member =
                |user: &User, role: Role| member(user, membership(room.id, user.id, role, at(300)));
            let mut done = Writes::default();
            for round in 0..ROUNDS {
                let send = async |message: NewMessage| {
                    stores
                        .messages
                        .append(&message)
                        .await
                        .unwrap()
                        .expect("the room exists")
                        .event
                };
                done.changed(send(new_message(room.id, author.id)).await, "a send");
                let own_id = ClientMsgId::parse(&format!("own-{round}")).unwrap();
                let own = new_message_with_client_id(room.id, author.id, own_id);
                done.changed(send(own.clone()).await, "a new client id");
                done.unchanged(
                    send(NewMessage {
                        id: MessageId::new(),
                        ..own
                    })
                    .await,
                    "a repeated client id",
                );
                // Every writer sends this for the owner: one of them stores it.
                let everyones = ClientMsgId::parse(&format!("everyone-{round}")).unwrap();
                done.note(send(new_message_with_client_id(room.id, owner.id, everyones)).await);

                let edited = shared[(writer + round) % WRITERS].id;
                let text = body(&format!("edited by {writer} in round {round}"));
                done.note(
                    stores
                        .messages
                        .edit(room.id, edited, &text, at(100))
                        .await
                        .unwrap(),
                );
                let deleted = shared[(writer + round + 1) % WRITERS].id;
                for _ in 0..2 {
                    let tombstone = stores
                        .messages
                        .tombstone(room.id, deleted, at(200))
                        .await
                        .unwrap()
                        .expect("the message exists");
                    done.note(tombstone.event);
                }

                let joining = as_member(&joiner, Role::Member);
                done.changed(
                    Some(stores.memberships.add(&joining).await.unwrap()),
                    "an add",
                );
                assert_eq!(
                    stores.memberships.add(&joining).await,
                    Err(StoreError::Duplicate)
                );
                done.note(None);
                done.changed(
                    stores
                        .memberships
                        .set_role(&joining, Role::Admin, at(310))
                        .await
                        .unwrap(),
                    "a role change",
                );
                for (remove, what) in [(true, "a remove"), (false, "a second remove")] {
                    let left = stores
                        .memberships
                        .remove(room.id, joiner.id, at(320))
                        .await
                        .unwrap();
                    if remove {
                        done.changed(left, what);
                    } else {
                        done.unchanged(left, what);
                    }
                }
                done.unchanged(
                    stores
                        .memberships
                        .set_role(&joining, Role::Admin, at(330))
                        .await
                        .unwrap(),
                    "a role change of a non-member",
                );
                match stores
                    .memberships
                    .add(&as_member(&contested, Role::Member))
                    .await
                {
                    Ok(joined) => {
                        done.note(Some(joined));
                        // Only whoever added them removes them.
                        let left = stores
                            .memberships
                            .remove(room.id, contested.id, at(340))
                            .await
                            .unwrap();
                        done.changed(left, "removing the contested user");
                    }
                    Err(StoreError::Duplicate) => done.note(None),
                    Err(error) => panic!("adding the contested user: {error}"),
                }
                let refused = stores
                    .memberships
                    .transfer_ownership(
                        &as_member(&author, Role::Owner),
                        &as_member(&owner, Role::Owner),
                        at(350),
                    )
                    .await
                    .unwrap();
                assert_eq!(refused, Vec::new(), "a transfer from a non-member");
                done.note(None);
            }
            done
        }
    })
    .await;

    let last_pos = stored_room(&stores, room.id).await.last_pos;
    for own in &writes {
        assert!(
            own.events.windows(2).all(|pair| pair[0].pos < pair[1].pos),
            "a writer's events come in the order of its calls"
        );
    }
    let unchanged: usize = writes.iter().map(|own| own.unchanged).sum();
    assert!(
        unchanged >= WRITERS * ROUNDS * 4,
        "{unchanged} calls changed nothing"
    );
    let mut returned: Vec<RoomEvent> = writes.into_iter().flat_map(|own| own.events).collect();
    returned.sort_by_key(|event| event.pos);
    assert_eq!(
        returned
            .iter()
            .map(|event| event.pos.value())
            .collect::<Vec<_>>(),
        (start.last_pos.value() + 1..=last_pos.value()).collect::<Vec<_>>(),
        "the calls that changed the room took every position since the start, each once"
    );

    let log = read_log(&stores, room.id, 7).await;
    assert_eq!(
        log.iter()
            .map(|event| event.pos.value())
            .collect::<Vec<_>>(),
        (1..=last_pos.value()).collect::<Vec<_>>()
    );
    let by_pos: BTreeMap<i64, &RoomEvent> =
        log.iter().map(|event| (event.pos.value(), event)).collect();
    for event in &returned {
        let logged = by_pos[&event.pos.value()];
        assert_eq!(logged.change.kind(), event.change.kind(), "{event:?}");
        match event.change.message() {
            Some(message) => {
                let now = stores
                    .messages
                    .by_id(room.id, message.id)
                    .await
                    .unwrap()
                    .expect("the message is stored");
                assert_eq!(message_of(logged), &now, "{event:?}");
            }
            None => assert_eq!(logged, event, "{event:?}"),
        }
    }
}

/// A change is logged if and only if it is stored: refused or idle calls
/// (a duplicate add, an add to or a send in a missing room, refused
/// transfers, edits of a tombstone or a missing message, a second delete,
/// removes and role changes of a non-member, updates and deletes of a
/// missing room) leave the log and `last_pos` as they were, and the next
/// change that does something lands right after the last position taken.
pub async fn an_event_is_stored_iff_its_change_is(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let joiner = added_member(&stores, room.id, at(5)).await;
    let sent = append_messages(&stores, room.id, owner.id, 2).await;
    stores
        .messages
        .tombstone(room.id, sent[0].id, at(10))
        .await
        .unwrap();
    let outsider = chat_user(&stores).await;
    let missing = RoomId::new();
    let before = stored_room(&stores, room.id).await;
    let in_room =
        |user: &User, role: Role| member(user, membership(room.id, user.id, role, at(20)));

    assert_eq!(
        stores
            .memberships
            .add(&in_room(&joiner, Role::Member))
            .await,
        Err(StoreError::Duplicate)
    );
    let nowhere = member(
        &outsider,
        membership(missing, outsider.id, Role::Member, at(20)),
    );
    assert!(matches!(
        stores.memberships.add(&nowhere).await,
        Err(StoreError::Failure(_))
    ));
    assert_eq!(
        stores
            .messages
            .append(&new_message(missing, owner.id))
            .await
            .unwrap(),
        None
    );
    for (from, to) in [
        (in_room(&joiner, Role::Owner), in_room(&owner, Role::Member)),
        (
            in_room(&owner, Role::Owner),
            in_room(&outsider, Role::Member),
        ),
    ] {
        assert_eq!(
            stores
                .memberships
                .transfer_ownership(&from, &to, at(20))
                .await
                .unwrap(),
            Vec::new()
        );
    }
    for id in [sent[0].id, MessageId::new()] {
        assert_eq!(
            stores
                .messages
                .edit(room.id, id, &body("no"), at(20))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        stores
            .messages
            .tombstone(room.id, sent[0].id, at(20))
            .await
            .unwrap()
            .and_then(|tombstone| tombstone.event),
        None
    );
    assert_eq!(
        stores
            .memberships
            .remove(room.id, outsider.id, at(20))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .set_role(&in_room(&outsider, Role::Member), Role::Admin, at(20))
            .await
            .unwrap(),
        None
    );
    let details = RoomDetails {
        name: room_name("Nowhere"),
        topic: None,
        visibility: Visibility::Public,
    };
    assert_eq!(
        stores
            .rooms
            .update_details(missing, &details, at(20))
            .await
            .unwrap(),
        None
    );
    assert_eq!(stores.rooms.delete(missing, at(20)).await.unwrap(), None);

    assert_unlogged(&stores, &before).await;
    assert_eq!(
        stores
            .events
            .after(missing, &events_after(0, 100))
            .await
            .unwrap(),
        EventPage {
            events: Vec::new(),
            has_more: false,
        }
    );
    let joined = stores
        .memberships
        .add(&in_room(&outsider, Role::Member))
        .await
        .unwrap();
    assert_logged(&stores, &before, &[joined], &["member_joined"]).await;
}

/// `after` reads the events above a position, ascending, at most `limit`,
/// with `has_more` telling whether the log goes on; pages at or beyond the
/// end are empty; a missing room's page is empty; other rooms' events never
/// show. Message events, old and new, show the message as it is now: an
/// edited body, a tombstone.
pub async fn after_pages_the_log_with_its_messages_as_they_are_now(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await; // 1
    let joiner = added_member(&stores, room.id, at(5)).await; // 2
    let sent = append_messages(&stores, room.id, owner.id, 3).await; // 3 to 5
    stores
        .messages
        .edit(room.id, sent[0].id, &body("edited"), at(10))
        .await
        .unwrap(); // 6
    stores
        .messages
        .tombstone(room.id, sent[1].id, at(11))
        .await
        .unwrap(); // 7
    let details = RoomDetails {
        name: room_name("Renamed"),
        topic: None,
        visibility: Visibility::Private,
    };
    stores
        .rooms
        .update_details(room.id, &details, at(12))
        .await
        .unwrap(); // 8
    let joining = member(&joiner, membership(room.id, joiner.id, Role::Member, at(5)));
    stores
        .memberships
        .set_role(&joining, Role::Admin, at(13))
        .await
        .unwrap(); // 9
    stores
        .memberships
        .remove(room.id, joiner.id, at(14))
        .await
        .unwrap(); // 10
    let (other_owner, bystander) = created_room(&stores, Visibility::Public).await;
    append_messages(&stores, bystander.id, other_owner.id, 2).await;

    let all = stores
        .events
        .after(room.id, &events_after(0, 100))
        .await
        .unwrap();
    assert!(!all.has_more);
    let log = all.events;
    assert_eq!(
        log.iter()
            .map(|event| event.change.kind())
            .collect::<Vec<_>>(),
        [
            "member_joined",
            "member_joined",
            "message",
            "message",
            "message",
            "message_updated",
            "message_deleted",
            "room_updated",
            "member_updated",
            "member_left",
        ]
    );
    assert!(log.iter().all(|event| event.room_id == room.id));
    assert_eq!(
        log.iter()
            .map(|event| event.pos.value())
            .collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    for (limit, starts) in [(1, 0..10), (3, 0..10), (4, 3..10), (10, 0..1), (100, 5..6)] {
        for after in starts {
            let page = stores
                .events
                .after(room.id, &events_after(after, limit))
                .await
                .unwrap();
            let from = usize::try_from(after).unwrap();
            let to = usize::try_from((after + limit).min(10)).unwrap();
            assert_eq!(
                page,
                EventPage {
                    events: log[from..to].to_vec(),
                    has_more: after + limit < 10,
                },
                "after {after}, limit {limit}"
            );
        }
    }
    for after in [10, 11, 1_000] {
        assert_eq!(
            stores
                .events
                .after(room.id, &events_after(after, 5))
                .await
                .unwrap(),
            EventPage {
                events: Vec::new(),
                has_more: false,
            },
            "after {after}"
        );
    }
    assert_eq!(
        stores
            .events
            .after(RoomId::new(), &events_after(0, 5))
            .await
            .unwrap(),
        EventPage {
            events: Vec::new(),
            has_more: false,
        }
    );

    let now = |index: usize| {
        let stores = stores.clone();
        let id = sent[index].id;
        async move { stores.messages.by_id(room.id, id).await.unwrap().unwrap() }
    };
    let (edited, deleted) = (now(0).await, now(1).await);
    assert_eq!(
        edited.body.as_ref().map(|text| text.as_str()),
        Some("edited")
    );
    assert!(deleted.is_deleted());
    for (at_pos, shown) in [
        (3, &edited),
        (4, &deleted),
        (5, &sent[2]),
        (6, &edited),
        (7, &deleted),
    ] {
        assert_eq!(message_of(&log[at_pos - 1]), shown, "position {at_pos}");
    }
    assert_eq!(
        log[7].change,
        Change::RoomUpdated(Room {
            name: details.name.clone(),
            visibility: Visibility::Private,
            last_seq: sent[2].seq,
            last_pos: pos(8),
            ..room.clone()
        })
    );
    assert_eq!(log[9].change, Change::MemberLeft { user_id: joiner.id });
}

/// An instant `seconds` after a base long before any other test's events,
/// so that pruning before it reaches only this test's rooms.
fn early(seconds: i64) -> DateTime<Utc> {
    long_ago() - TimeDelta::days(1) + TimeDelta::seconds(seconds)
}

/// A message of `author` to `room` sent at `sent_at`.
fn message_at(room: RoomId, author: &User, sent_at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        created_at: sent_at,
        ..new_message(room, author.id)
    }
}

/// `prune(before)` removes, room by room, every event up to the newest one
/// that happened before `before`, also events after it in time that come
/// before it in the log (an edit logged with an earlier time than the
/// message before it), so that what is left is a suffix of each log; it
/// returns how many it removed. Reading from 0 afterwards starts past the
/// pruned prefix (or finds nothing, for a log pruned whole, though the room
/// keeps its `last_pos`); rooms with nothing that old are untouched; and a
/// second prune with the same bound removes nothing.
pub async fn prune_removes_a_prefix_of_each_log(stores: ChatStores) {
    let owner = chat_user(&stores).await;
    let open = async |created_at: DateTime<Utc>| {
        let room = Room {
            created_at,
            ..room_owned_by(owner.id, Visibility::Public)
        };
        create_room(&stores, &room).await;
        room
    };
    let room = open(early(0)).await; // 1 at 0
    let first = stores
        .messages
        .append(&message_at(room.id, &owner, early(10)))
        .await
        .unwrap()
        .unwrap()
        .value; // 2 at 10
    stores
        .messages
        .edit(room.id, first.id, &body("edited"), early(5))
        .await
        .unwrap(); // 3 at 5
    for sent_at in [early(20), early(30)] {
        stores
            .messages
            .append(&message_at(room.id, &owner, sent_at))
            .await
            .unwrap(); // 4 at 20, 5 at 30
    }
    let gone = open(early(1)).await; // 1 at 1
    stores
        .messages
        .append(&message_at(gone.id, &owner, early(2)))
        .await
        .unwrap(); // 2 at 2
    let kept = open(early(50)).await; // 1 at 50
    stores
        .messages
        .append(&message_at(kept.id, &owner, early(60)))
        .await
        .unwrap(); // 2 at 60
    let kept_log = read_log(&stores, kept.id, 100).await;
    let room_log = read_log(&stores, room.id, 100).await;

    assert_eq!(stores.events.prune(early(8)).await.unwrap(), 3 + 2);
    assert_eq!(
        read_log(&stores, room.id, 100).await,
        room_log[3..].to_vec()
    );
    assert_eq!(read_log(&stores, room.id, 1).await[0].pos, pos(4));
    assert_eq!(read_log(&stores, gone.id, 100).await, Vec::new());
    assert_eq!(stored_room(&stores, gone.id).await.last_pos, pos(2));
    assert_eq!(read_log(&stores, kept.id, 100).await, kept_log);
    assert_eq!(stores.events.prune(early(8)).await.unwrap(), 0);

    assert_eq!(stores.events.prune(early(25)).await.unwrap(), 1);
    assert_eq!(
        read_log(&stores, room.id, 100).await,
        room_log[4..].to_vec()
    );
    assert_eq!(read_log(&stores, kept.id, 100).await, kept_log);
    // The log goes on from where it was.
    let next = stores
        .messages
        .append(&message_at(room.id, &owner, early(40)))
        .await
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(next.pos, pos(6));
    assert_eq!(
        read_log(&stores, room.id, 100).await,
        vec![room_log[4].clone(), next]
    );
}

/// Deleting a room deletes its log: nothing can be read from it, whatever
/// the position; a room stored again under the same id starts a log of
/// its own at 1; other rooms' logs are untouched.
pub async fn a_deleted_room_takes_its_log_along(stores: ChatStores) {
    let owner = chat_user(&stores).await;
    let room = room_owned_by(owner.id, Visibility::Public);
    create_room(&stores, &room).await;
    added_member(&stores, room.id, at(5)).await;
    let sent = append_messages(&stores, room.id, owner.id, 2).await;
    stores
        .messages
        .edit(room.id, sent[0].id, &body("edited"), at(10))
        .await
        .unwrap();
    let (other_owner, bystander) = created_room(&stores, Visibility::Public).await;
    append_messages(&stores, bystander.id, other_owner.id, 2).await;
    let bystanders_log = read_log(&stores, bystander.id, 100).await;

    let deleted = stores.rooms.delete(room.id, at(20)).await.unwrap().unwrap();
    assert_eq!(deleted.pos, pos(6));
    for after in [0, 3, 5] {
        assert_eq!(
            stores
                .events
                .after(room.id, &events_after(after, 100))
                .await
                .unwrap(),
            EventPage {
                events: Vec::new(),
                has_more: false,
            }
        );
    }
    assert_eq!(read_log(&stores, bystander.id, 100).await, bystanders_log);

    let again = create_room(&stores, &room).await;
    assert_eq!(read_log(&stores, room.id, 100).await, vec![again]);
}

/// Anonymising an account logs `member_left` in each room it was in (at
/// the deletion time, at each room's next position, returned by room id)
/// and shows its new name in its earlier membership events (joins and role
/// changes alike), while the rest of each event, and everyone else's
/// events, stay as they were.
pub async fn anonymise_logs_the_rooms_left_and_renames_the_account_in_its_events(
    stores: ChatStores,
) {
    let account = chat_user(&stores).await;
    let (owner, first) = created_room(&stores, Visibility::Public).await;
    let (_, second) = created_room(&stores, Visibility::Private).await;
    let joining = member(
        &account,
        membership(first.id, account.id, Role::Member, at(2)),
    );
    stores.memberships.add(&joining).await.unwrap(); // first: 2
    stores
        .memberships
        .set_role(&joining, Role::Admin, at(3))
        .await
        .unwrap(); // first: 3
    added_member(&stores, first.id, at(4)).await; // first: 4
    stores
        .messages
        .append(&new_message(first.id, account.id))
        .await
        .unwrap(); // first: 5
    stores
        .memberships
        .add(&member(
            &account,
            membership(second.id, account.id, Role::Member, at(6)),
        ))
        .await
        .unwrap(); // second: 2
    let logs_before = [
        read_log(&stores, first.id, 100).await,
        read_log(&stores, second.id, 100).await,
    ];
    let anonymised = Anonymised::of(account.id, at(100));

    let outcome = stores
        .users
        .anonymise(
            account.id,
            &anonymised,
            &PasswordHash::new(PasswordHash::UNUSABLE.to_owned()),
        )
        .await
        .unwrap();
    let Anonymisation::Done(_, left) = outcome else {
        panic!("anonymise must be done, got {outcome:?}");
    };
    let mut expected: Vec<RoomEvent> = [(first.id, 6), (second.id, 3)]
        .into_iter()
        .map(|(room_id, at_pos)| RoomEvent {
            room_id,
            pos: pos(at_pos),
            at: at(100),
            change: Change::MemberLeft {
                user_id: account.id,
            },
        })
        .collect();
    expected.sort_by_key(|event| event.room_id);
    assert_eq!(left, expected);

    let renamed = |member: &Member| Member {
        display_name: anonymised.display_name.clone(),
        ..member.clone()
    };
    for before in &logs_before {
        let room = before[0].room_id;
        let mut now_expected: Vec<RoomEvent> = before
            .iter()
            .map(|event| {
                let change = match &event.change {
                    Change::MemberJoined { room, member }
                        if member.membership.user_id == account.id =>
                    {
                        Change::MemberJoined {
                            room: room.clone(),
                            member: renamed(member),
                        }
                    }
                    Change::MemberUpdated(member) if member.membership.user_id == account.id => {
                        Change::MemberUpdated(renamed(member))
                    }
                    other => other.clone(),
                };
                RoomEvent {
                    change,
                    ..event.clone()
                }
            })
            .collect();
        assert_ne!(&now_expected, before, "the account was in the room's log");
        now_expected.extend(expected.iter().filter(|left| left.room_id == room).cloned());
        assert_eq!(read_log(&stores, room, 100).await, now_expected);
    }
    assert_eq!(
        stores
            .memberships
            .get(first.id, owner.id)
            .await
            .unwrap()
            .map(|membership| membership.role),
        Some(Role::Owner)
    );
}
