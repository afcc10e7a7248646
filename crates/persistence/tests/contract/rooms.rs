//! The [`RoomRepository`](p_chat_domain::ports::RoomRepository) contract.
//!
//! Every room is owned by a user inserted first through the users port.
//! Public and private rooms come from `create`, direct rooms only from
//! `open_direct` (a store may keep a direct room's pair with it).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, EventPage, RoomEvent};
use p_chat_domain::message::HistoryPage;
use p_chat_domain::ports::{OpenedDirect, RoomDetails};
use p_chat_domain::room::{Membership, Role, Room, RoomId, Visibility};
use p_chat_domain::user::{User, UserId};

use crate::ChatStores;
use crate::fixtures::{
    added_member, append_messages, assert_logged, assert_unlogged, at, chat_user, create_room,
    created_room, direct_room, events_after, member, membership, new_message, owner_membership,
    people, pos, race, room_name, room_owned_by, seq, stored_room, topic, unique_word,
};

/// A created room reads back equal, every field included (a non-ASCII name,
/// a multi-line topic or none, the creation time to the microsecond,
/// `last_seq` 0), but for its `last_pos`, 1: its owner's membership was
/// stored with it (the owner is its one member, with the owner role) and
/// logged as `member_joined` at position 1, showing the room as stored.
pub async fn created_rooms_round_trip_with_their_owner(stores: ChatStores) {
    let owner = chat_user(&stores).await;
    let plain = room_owned_by(owner.id, Visibility::Public);
    let detailed = Room {
        name: room_name("Café ☕ — Ünïcode"),
        topic: Some(topic("Line one\nline two\twith a tab")),
        created_at: at(-3_600),
        ..room_owned_by(owner.id, Visibility::Private)
    };
    for room in [&plain, &detailed] {
        let owner_member = member(&owner, owner_membership(room));
        let joined = stores.rooms.create(room, &owner_member).await.unwrap();
        assert_eq!(
            joined,
            RoomEvent {
                room_id: room.id,
                pos: pos(1),
                at: room.created_at,
                change: Change::MemberJoined {
                    room: Room {
                        last_pos: pos(1),
                        ..room.clone()
                    },
                    member: owner_member,
                },
            }
        );
        assert_logged(&stores, room, &[joined], &["member_joined"]).await;
    }

    for room in [&plain, &detailed] {
        assert_eq!(
            stores.rooms.by_id(room.id).await.unwrap(),
            Some(Room {
                last_pos: pos(1),
                ..room.clone()
            })
        );
        assert_eq!(
            stores.memberships.get(room.id, owner.id).await.unwrap(),
            Some(membership(room.id, owner.id, Role::Owner, room.created_at))
        );
        assert_eq!(
            stores.memberships.list(room.id).await.unwrap(),
            vec![owner_membership(room)]
        );
    }
}

/// `by_id` of an unknown id is `None`, also in a store that holds rooms.
pub async fn by_id_of_unknown_room_is_none(stores: ChatStores) {
    created_room(&stores, Visibility::Public).await;

    assert_eq!(stores.rooms.by_id(RoomId::new()).await.unwrap(), None);
}

/// `update_details` replaces name, topic and visibility and logs
/// `room_updated` at the room's next position, showing the whole room; its
/// id, owner, creation time and `last_seq` are kept, its owner stays the
/// owner, and other rooms are untouched.
pub async fn update_details_changes_only_name_topic_and_visibility(stores: ChatStores) {
    let owner = chat_user(&stores).await;
    let room = Room {
        topic: Some(topic("The old topic")),
        created_at: at(-60),
        ..room_owned_by(owner.id, Visibility::Public)
    };
    create_room(&stores, &room).await;
    append_messages(&stores, room.id, owner.id, 1).await;
    let (_, bystander) = created_room(&stores, Visibility::Public).await;

    let private = RoomDetails {
        name: room_name("Renamed"),
        topic: None,
        visibility: Visibility::Private,
    };
    let updated = Room {
        name: private.name.clone(),
        topic: None,
        visibility: Visibility::Private,
        last_seq: seq(1),
        last_pos: pos(3),
        ..room.clone()
    };
    let before = stored_room(&stores, room.id).await;
    let event = stores
        .rooms
        .update_details(room.id, &private, at(70))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event,
        RoomEvent {
            room_id: room.id,
            pos: pos(3),
            at: at(70),
            change: Change::RoomUpdated(updated.clone()),
        }
    );
    assert_logged(&stores, &before, &[event], &["room_updated"]).await;
    assert_eq!(stores.rooms.by_id(room.id).await.unwrap(), Some(updated));

    let public = RoomDetails {
        name: room_name("Renamed again"),
        topic: Some(topic("A new topic")),
        visibility: Visibility::Public,
    };
    let updated_again = Room {
        name: public.name.clone(),
        topic: public.topic.clone(),
        last_seq: seq(1),
        last_pos: pos(4),
        ..room.clone()
    };
    assert_eq!(
        stores
            .rooms
            .update_details(room.id, &public, at(80))
            .await
            .unwrap(),
        Some(RoomEvent {
            room_id: room.id,
            pos: pos(4),
            at: at(80),
            change: Change::RoomUpdated(updated_again.clone()),
        })
    );
    assert_eq!(
        stores.rooms.by_id(room.id).await.unwrap(),
        Some(updated_again)
    );

    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room)]
    );
    assert_eq!(
        stores.rooms.by_id(bystander.id).await.unwrap(),
        Some(bystander)
    );
}

/// `update_details` of an unknown room is `None`, creates nothing and logs
/// nothing.
pub async fn update_details_of_unknown_room_is_none(stores: ChatStores) {
    created_room(&stores, Visibility::Public).await;
    let unknown = RoomId::new();
    let details = RoomDetails {
        name: room_name("Nowhere"),
        topic: None,
        visibility: Visibility::Public,
    };

    assert_eq!(
        stores
            .rooms
            .update_details(unknown, &details, at(10))
            .await
            .unwrap(),
        None
    );
    assert_eq!(stores.rooms.by_id(unknown).await.unwrap(), None);
    assert_eq!(
        stores
            .events
            .after(unknown, &events_after(0, 10))
            .await
            .unwrap(),
        EventPage {
            events: Vec::new(),
            has_more: false,
        }
    );
}

/// Deleting a room takes its memberships, messages and event log with it
/// (nothing of it can be read, and nothing more appended) and returns its
/// `room_deleted` event, at the position after its last; a second delete
/// returns `None`. Another room, its members, messages and log are
/// untouched.
pub async fn delete_removes_the_room_with_its_members_and_messages(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let member = added_member(&stores, room.id, at(5)).await;
    let messages = append_messages(&stores, room.id, member.id, 3).await;
    let (other_owner, bystander) = created_room(&stores, Visibility::Public).await;
    let kept = append_messages(&stores, bystander.id, other_owner.id, 1).await;
    let bystanders_log = stores
        .events
        .after(bystander.id, &events_after(0, 10))
        .await
        .unwrap();
    // Created (1), a member added (2), three messages (3 to 5).
    assert_eq!(stored_room(&stores, room.id).await.last_pos, pos(5));

    assert_eq!(
        stores.rooms.delete(room.id, at(50)).await.unwrap(),
        Some(RoomEvent {
            room_id: room.id,
            pos: pos(6),
            at: at(50),
            change: Change::RoomDeleted,
        })
    );

    assert_eq!(stores.rooms.by_id(room.id).await.unwrap(), None);
    assert_eq!(
        stores
            .events
            .after(room.id, &events_after(0, 10))
            .await
            .unwrap(),
        EventPage {
            events: Vec::new(),
            has_more: false,
        }
    );
    for user in [&owner, &member] {
        assert_eq!(
            stores.memberships.get(room.id, user.id).await.unwrap(),
            None
        );
        assert_eq!(
            stores.rooms.of_member(user.id).await.unwrap(),
            Vec::<Room>::new()
        );
    }
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        Vec::<Membership>::new()
    );
    for message in &messages {
        assert_eq!(
            stores.messages.by_id(room.id, message.id).await.unwrap(),
            None
        );
    }
    assert_eq!(
        stores
            .messages
            .page(room.id, &Default::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: Vec::new(),
            has_more: false,
        }
    );
    assert_eq!(
        stores
            .messages
            .append(&new_message(room.id, owner.id))
            .await
            .unwrap(),
        None
    );

    assert_eq!(stores.rooms.delete(room.id, at(60)).await.unwrap(), None);

    assert_eq!(
        stores.rooms.by_id(bystander.id).await.unwrap(),
        Some(Room {
            last_seq: seq(1),
            last_pos: pos(2),
            ..bystander.clone()
        })
    );
    assert_eq!(
        stores
            .events
            .after(bystander.id, &events_after(0, 10))
            .await
            .unwrap(),
        bystanders_log
    );
    assert_eq!(
        stores.memberships.list(bystander.id).await.unwrap(),
        vec![owner_membership(&bystander)]
    );
    assert_eq!(
        stores
            .messages
            .by_id(bystander.id, kept[0].id)
            .await
            .unwrap()
            .as_ref(),
        Some(&kept[0])
    );
}

/// Deleting an unknown room returns `None` and touches no other room.
pub async fn delete_of_unknown_room_is_false(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Public).await;

    assert_eq!(
        stores.rooms.delete(RoomId::new(), at(10)).await.unwrap(),
        None
    );
    assert_eq!(stores.rooms.by_id(room.id).await.unwrap(), Some(room));
}

/// `of_member` lists exactly the rooms the user is in (whatever their role),
/// oldest first by creation time (not by id, nor by when they joined); rooms
/// they left or never joined are not listed. An unknown user is in none.
pub async fn of_member_lists_the_rooms_of_a_member_oldest_first(stores: ChatStores) {
    let user = chat_user(&stores).await;
    let other = chat_user(&stores).await;
    // Created (and so numbered) in an order unlike their creation times.
    let newest = Room {
        created_at: at(30),
        ..room_owned_by(user.id, Visibility::Public)
    };
    let oldest = Room {
        created_at: at(10),
        ..room_owned_by(other.id, Visibility::Private)
    };
    let middle = Room {
        created_at: at(20),
        ..room_owned_by(other.id, Visibility::Public)
    };
    let left = Room {
        created_at: at(15),
        ..room_owned_by(other.id, Visibility::Public)
    };
    let never_joined = Room {
        created_at: at(12),
        ..room_owned_by(other.id, Visibility::Public)
    };
    for room in [&newest, &oldest, &middle, &left, &never_joined] {
        create_room(&stores, room).await;
    }
    for (room, role, joined_at) in [
        (&oldest, Role::Member, at(40)),
        (&middle, Role::Admin, at(35)),
        (&left, Role::Member, at(36)),
    ] {
        stores
            .memberships
            .add(&member(
                &user,
                membership(room.id, user.id, role, joined_at),
            ))
            .await
            .unwrap();
    }
    assert!(
        stores
            .memberships
            .remove(left.id, user.id, at(37))
            .await
            .unwrap()
            .is_some()
    );
    // As stored: created (1), joined (2), left (3).
    let (newest, oldest, middle, left, never_joined) = (
        logged_up_to(&newest, 1),
        logged_up_to(&oldest, 2),
        logged_up_to(&middle, 2),
        logged_up_to(&left, 3),
        logged_up_to(&never_joined, 1),
    );

    assert_eq!(
        stores.rooms.of_member(user.id).await.unwrap(),
        vec![oldest.clone(), middle.clone(), newest]
    );
    assert_eq!(
        stores.rooms.of_member(other.id).await.unwrap(),
        vec![oldest, never_joined, left, middle]
    );
    assert_eq!(
        stores.rooms.of_member(UserId::new()).await.unwrap(),
        Vec::<Room>::new()
    );
}

/// Public rooms named `"{word} {token}"` for each word, stored in the given
/// order, plus a private and a direct room whose names also hold `token`.
/// Returns the public rooms in the order given.
async fn rooms_named_with(stores: &ChatStores, token: &str, public_words: &[&str]) -> Vec<Room> {
    let owner = chat_user(stores).await;
    let mut public = Vec::new();
    for word in public_words {
        let room = Room {
            name: room_name(&format!("{word} {token}")),
            ..room_owned_by(owner.id, Visibility::Public)
        };
        create_room(stores, &room).await;
        public.push(room);
    }
    let private = Room {
        name: room_name(&format!("Private {token}")),
        ..room_owned_by(owner.id, Visibility::Private)
    };
    create_room(stores, &private).await;
    let peer = chat_user(stores).await;
    let direct = Room {
        name: room_name(&format!("Direct {token}")),
        ..direct_room(&owner, &peer)
    };
    stores
        .rooms
        .open_direct(&direct, &people(&owner, &peer), at(0))
        .await
        .unwrap();
    public
        .into_iter()
        .map(|room| Room {
            last_pos: pos(1),
            ..room
        })
        .collect()
}

/// `search_public` finds the public rooms whose name contains the query,
/// ignoring case, sorted by name, at most `limit`; private and direct rooms
/// are never found, whatever their name.
pub async fn search_public_finds_public_rooms_by_name_case_insensitively(stores: ChatStores) {
    let token = unique_word();
    let stored = rooms_named_with(&stores, &token, &["Charlie", "Alpha", "Bravo"]).await;
    let [charlie, alpha, bravo] = [&stored[0], &stored[1], &stored[2]].map(Room::clone);
    let by_name = vec![alpha.clone(), bravo.clone(), charlie];

    assert_eq!(
        stores
            .rooms
            .search_public(&token.to_uppercase(), 10)
            .await
            .unwrap(),
        by_name
    );
    assert_eq!(
        stores.rooms.search_public(&token, 2).await.unwrap(),
        by_name[..2].to_vec()
    );
    assert_eq!(
        stores.rooms.search_public(&token, 1).await.unwrap(),
        vec![alpha]
    );
    assert_eq!(
        stores
            .rooms
            .search_public(&format!("bRAVO {token}"), 10)
            .await
            .unwrap(),
        vec![bravo]
    );
    for hidden in [format!("private {token}"), format!("direct {token}")] {
        assert_eq!(
            stores.rooms.search_public(&hidden, 10).await.unwrap(),
            Vec::<Room>::new(),
            "{hidden}"
        );
    }
    assert_eq!(
        stores
            .rooms
            .search_public(&format!("{token} nowhere"), 10)
            .await
            .unwrap(),
        Vec::<Room>::new()
    );
}

/// The query is a plain substring: characters that are wildcards or escapes
/// in SQL patterns (`%`, `_`, `\`) match only themselves.
pub async fn search_public_takes_the_query_literally(stores: ChatStores) {
    let token = unique_word();
    let stored = rooms_named_with(
        &stores,
        &token,
        &[
            "Sale 100%",
            "Sale 1000",
            "snake_case",
            "snakeXcase",
            "back\\slash",
            "backslash",
        ],
    )
    .await;

    for (query, expected) in [
        (format!("100% {token}"), &stored[0]),
        (format!("snake_case {token}"), &stored[2]),
        (format!("k\\slash {token}"), &stored[4]),
    ] {
        assert_eq!(
            stores.rooms.search_public(&query, 10).await.unwrap(),
            vec![expected.clone()],
            "{query}"
        );
    }
}

/// The empty query matches every public room (and no other), still sorted
/// by name and cut at `limit`.
pub async fn empty_search_matches_every_public_room(stores: ChatStores) {
    let token = unique_word();
    let stored = rooms_named_with(&stores, &token, &["Charlie", "Alpha", "Bravo"]).await;

    // The store may hold other tests' rooms: look for ours among them.
    let listed = stores.rooms.search_public("", 10_000).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|room| room.visibility == Visibility::Public),
        "{listed:?}"
    );
    let ours: Vec<Room> = listed
        .into_iter()
        .filter(|room| room.name.as_str().ends_with(&token))
        .collect();
    assert_eq!(
        ours,
        vec![stored[1].clone(), stored[2].clone(), stored[0].clone()]
    );

    assert_eq!(stores.rooms.search_public("", 1).await.unwrap().len(), 1);
}

/// The memberships of a direct room's two users, both role member, joined at
/// the given times, sorted by user.
fn direct_members(room: RoomId, joined: [(&User, DateTime<Utc>); 2]) -> Vec<Membership> {
    let mut members: Vec<Membership> = joined
        .into_iter()
        .map(|(user, joined_at)| membership(room, user.id, Role::Member, joined_at))
        .collect();
    members.sort_by_key(|member| member.user_id);
    members
}

/// The `member_joined` events of a direct room's users joining (at the
/// given times), by user id, at consecutive positions from `first`, each
/// showing `room` (as stored after) at its own position.
fn direct_joins(room: &Room, joined: &[(&User, DateTime<Utc>)], first: i64) -> Vec<RoomEvent> {
    let mut joined = joined.to_vec();
    joined.sort_by_key(|(user, _)| user.id);
    joined
        .into_iter()
        .zip(first..)
        .map(|((user, joined_at), at_pos)| RoomEvent {
            room_id: room.id,
            pos: pos(at_pos),
            at: joined_at,
            change: Change::MemberJoined {
                room: Room {
                    last_pos: pos(at_pos),
                    ..room.clone()
                },
                member: member(user, membership(room.id, user.id, Role::Member, joined_at)),
            },
        })
        .collect()
}

/// The room as stored, up to its event at `last_pos`.
fn logged_up_to(room: &Room, last_pos: i64) -> Room {
    Room {
        last_pos: pos(last_pos),
        ..room.clone()
    }
}

/// The room's memberships, sorted by user (members who joined together may
/// be listed in any order).
async fn members_by_user(stores: &ChatStores, room: RoomId) -> Vec<Membership> {
    let mut members = stores.memberships.list(room).await.unwrap();
    members.sort_by_key(|member| member.user_id);
    members
}

/// `with_membership` reads a room with one user's membership in it: the
/// owner's and a member's as stored, none for a user who is not (or no
/// longer) a member; an unknown room is `None`, whoever asks.
pub async fn with_membership_reads_the_room_and_one_users_membership(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Private).await;
    let joiner = added_member(&stores, room.id, at(5)).await;
    let stranger = chat_user(&stores).await;
    let stored = stored_room(&stores, room.id).await;
    let read = |user: UserId| {
        let rooms = Arc::clone(&stores.rooms);
        async move { rooms.with_membership(room.id, user).await.unwrap() }
    };

    assert_eq!(
        read(owner.id).await,
        Some((stored.clone(), Some(owner_membership(&room))))
    );
    assert_eq!(
        read(joiner.id).await,
        Some((
            stored.clone(),
            Some(membership(room.id, joiner.id, Role::Member, at(5)))
        ))
    );
    assert_eq!(read(stranger.id).await, Some((stored.clone(), None)));
    assert!(
        stores
            .memberships
            .remove(room.id, joiner.id, at(6))
            .await
            .unwrap()
            .is_some()
    );
    let stored = stored_room(&stores, room.id).await;
    assert_eq!(read(joiner.id).await, Some((stored, None)));
    assert_eq!(
        stores
            .rooms
            .with_membership(RoomId::new(), owner.id)
            .await
            .unwrap(),
        None
    );
}

/// The first `open_direct` of a pair stores the given room with both users
/// as members (role member, joined at `now`) and reports it created with
/// both `member_joined` events (positions 1 and 2, by user id, under the
/// names given); opening it again, from the other side and with another
/// room value, returns the stored room, stores nothing new, and reports and
/// logs no event.
pub async fn open_direct_creates_the_room_of_a_pair_once(stores: ChatStores) {
    let a = chat_user(&stores).await;
    let b = chat_user(&stores).await;
    let first = direct_room(&a, &b);
    let stored = logged_up_to(&first, 2);

    let members = direct_members(first.id, [(&a, at(10)), (&b, at(10))]);
    let opened = stores
        .rooms
        .open_direct(&first, &people(&a, &b), at(10))
        .await
        .unwrap();
    assert_eq!(
        opened,
        OpenedDirect {
            room: stored.clone(),
            created: true,
            joined: direct_joins(&stored, &[(&a, at(10)), (&b, at(10))], 1),
        }
    );
    assert_logged(
        &stores,
        &first,
        &opened.joined,
        &["member_joined", "member_joined"],
    )
    .await;
    assert_eq!(
        stores.rooms.by_id(first.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(members_by_user(&stores, first.id).await, members);

    let second = direct_room(&b, &a);
    assert_eq!(
        stores
            .rooms
            .open_direct(&second, &people(&b, &a), at(20))
            .await
            .unwrap(),
        OpenedDirect {
            room: stored.clone(),
            created: false,
            joined: Vec::new(),
        }
    );
    assert_unlogged(&stores, &stored).await;
    assert_eq!(stores.rooms.by_id(second.id).await.unwrap(), None);
    assert_eq!(members_by_user(&stores, first.id).await, members);
    for user in [&a, &b] {
        assert_eq!(
            stores.rooms.of_member(user.id).await.unwrap(),
            vec![stored.clone()]
        );
    }
}

/// Opening a direct room again re-adds whoever left it (role member, joined
/// at the new `now`) and reports and logs just them, keeps whoever stayed
/// as they were, and returns the existing room, not created.
pub async fn open_direct_re_adds_users_who_left(stores: ChatStores) {
    let a = chat_user(&stores).await;
    let b = chat_user(&stores).await;
    let room = direct_room(&a, &b);
    let both = people(&a, &b);
    stores
        .rooms
        .open_direct(&room, &both, at(10))
        .await
        .unwrap();

    assert!(
        stores
            .memberships
            .remove(room.id, a.id, at(15))
            .await
            .unwrap()
            .is_some()
    );
    // Opened (1, 2), a left (3), a joins again (4).
    let rejoined = stores
        .rooms
        .open_direct(&direct_room(&b, &a), &people(&b, &a), at(20))
        .await
        .unwrap();
    let stored = logged_up_to(&room, 4);
    assert_eq!(
        rejoined,
        OpenedDirect {
            room: stored.clone(),
            created: false,
            joined: direct_joins(&stored, &[(&a, at(20))], 4),
        }
    );
    assert_logged(
        &stores,
        &logged_up_to(&room, 3),
        &rejoined.joined,
        &["member_joined"],
    )
    .await;
    assert_eq!(
        members_by_user(&stores, room.id).await,
        direct_members(room.id, [(&a, at(20)), (&b, at(10))])
    );

    for (user, left_at) in [(&a, at(25)), (&b, at(26))] {
        assert!(
            stores
                .memberships
                .remove(room.id, user.id, left_at)
                .await
                .unwrap()
                .is_some()
        );
    }
    // Both left (5, 6), both join again (7, 8).
    let stored = logged_up_to(&room, 8);
    assert_eq!(
        stores
            .rooms
            .open_direct(&direct_room(&a, &b), &both, at(30))
            .await
            .unwrap(),
        OpenedDirect {
            room: stored.clone(),
            created: false,
            joined: direct_joins(&stored, &[(&a, at(30)), (&b, at(30))], 7),
        }
    );
    assert_eq!(
        members_by_user(&stores, room.id).await,
        direct_members(room.id, [(&a, at(30)), (&b, at(30))])
    );
}

/// Of 6 concurrent `open_direct` calls for one pair (from both sides, each
/// with its own room value), exactly one creates, and reports both
/// `member_joined` events (positions 1 and 2); all return that room, the
/// only one stored, with exactly the two users as members. When both have
/// left, 6 concurrent calls re-add each user once: each membership is
/// reported by exactly one call, at the next two positions.
pub async fn concurrent_open_direct_of_one_pair_yields_one_room(stores: ChatStores) {
    const RACERS: usize = 6;
    let a = chat_user(&stores).await;
    let b = chat_user(&stores).await;

    let outcomes = race(RACERS, |racer| {
        let rooms = Arc::clone(&stores.rooms);
        let (candidate, both) = if racer % 2 == 0 {
            (direct_room(&a, &b), people(&a, &b))
        } else {
            (direct_room(&b, &a), people(&b, &a))
        };
        async move {
            let opened = rooms.open_direct(&candidate, &both, at(10)).await.unwrap();
            (candidate, opened)
        }
    })
    .await;

    let winners: Vec<&(Room, OpenedDirect)> = outcomes
        .iter()
        .filter(|(_, opened)| opened.created)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one open_direct must create");
    let winner = logged_up_to(&winners[0].0, 2);
    let members = direct_members(winner.id, [(&a, at(10)), (&b, at(10))]);
    assert_eq!(
        winners[0].1.joined,
        direct_joins(&winner, &[(&a, at(10)), (&b, at(10))], 1)
    );
    for (candidate, opened) in &outcomes {
        assert_eq!(opened.room, winner);
        if candidate.id != winner.id {
            assert!(opened.joined.is_empty(), "{opened:?}");
            assert_eq!(stores.rooms.by_id(candidate.id).await.unwrap(), None);
        }
    }
    assert_eq!(stored_room(&stores, winner.id).await, winner);
    assert_eq!(members_by_user(&stores, winner.id).await, members);
    for user in [&a, &b] {
        assert_eq!(
            stores.rooms.of_member(user.id).await.unwrap(),
            vec![winner.clone()]
        );
    }

    for user in [&a, &b] {
        assert!(
            stores
                .memberships
                .remove(winner.id, user.id, at(15))
                .await
                .unwrap()
                .is_some()
        );
    }
    // Opened (1, 2), both left (3, 4), both join again (5, 6).
    let rejoined = logged_up_to(&winner, 6);
    let outcomes = race(RACERS, |_| {
        let rooms = Arc::clone(&stores.rooms);
        let candidate = direct_room(&a, &b);
        let both = people(&a, &b);
        async move { rooms.open_direct(&candidate, &both, at(20)).await.unwrap() }
    })
    .await;
    let mut reported: Vec<RoomEvent> = outcomes
        .into_iter()
        .inspect(|opened| assert!(!opened.created && opened.room == rejoined))
        .flat_map(|opened| opened.joined)
        .collect();
    reported.sort_by_key(|event| event.pos);
    assert_eq!(
        reported.iter().map(|event| event.pos).collect::<Vec<_>>(),
        [pos(5), pos(6)]
    );
    let mut joined: Vec<Membership> = reported
        .iter()
        .map(|event| match &event.change {
            Change::MemberJoined { member, .. } => member.membership.clone(),
            other => panic!("not a join: {other:?}"),
        })
        .collect();
    joined.sort_by_key(|member| member.user_id);
    assert_eq!(
        joined,
        direct_members(winner.id, [(&a, at(20)), (&b, at(20))])
    );
    assert_logged(
        &stores,
        &logged_up_to(&winner, 4),
        &reported,
        &["member_joined", "member_joined"],
    )
    .await;
}

/// Once a pair's direct room is deleted, opening it again creates a new
/// one, with a log of its own from position 1.
pub async fn open_direct_after_delete_creates_a_new_room(stores: ChatStores) {
    let a = chat_user(&stores).await;
    let b = chat_user(&stores).await;
    let both = people(&a, &b);
    let first = direct_room(&a, &b);
    stores
        .rooms
        .open_direct(&first, &both, at(10))
        .await
        .unwrap();
    assert_eq!(
        stores.rooms.delete(first.id, at(15)).await.unwrap(),
        Some(RoomEvent {
            room_id: first.id,
            pos: pos(3),
            at: at(15),
            change: Change::RoomDeleted,
        })
    );

    let second = direct_room(&b, &a);
    let stored = logged_up_to(&second, 2);
    assert_eq!(
        stores
            .rooms
            .open_direct(&second, &people(&b, &a), at(20))
            .await
            .unwrap(),
        OpenedDirect {
            room: stored.clone(),
            created: true,
            joined: direct_joins(&stored, &[(&a, at(20)), (&b, at(20))], 1),
        }
    );
    assert_eq!(stores.rooms.by_id(first.id).await.unwrap(), None);
    assert_eq!(
        members_by_user(&stores, second.id).await,
        direct_members(second.id, [(&a, at(20)), (&b, at(20))])
    );
}
