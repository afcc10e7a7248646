//! Read markers, unread counts and receipts: the `which_members`,
//! `mark_read`, `unread` and `receipts` part of the
//! [`MembershipRepository`](p_chat_domain::ports::MembershipRepository)
//! contract.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use p_chat_domain::message::{Mentions, NewMessage, Seq};
use p_chat_domain::read::{MarkerMove, Receipt, UnreadCounts};
use p_chat_domain::room::{RoomId, Visibility};
use p_chat_domain::user::UserId;

use crate::ChatStores;
use crate::fixtures::{
    add_member, added_member, append_messages, at, body, chat_user, created_room, new_message,
    race, seq,
};

/// A marker move, spelled out.
fn marker(last_read_seq: i64, moved: bool) -> MarkerMove {
    MarkerMove {
        last_read_seq: seq(last_read_seq),
        moved,
    }
}

/// The read state of one room, spelled out.
fn counts(room: RoomId, last_read_seq: i64, unread: u32, mentions: u32) -> UnreadCounts {
    UnreadCounts {
        room_id: room,
        last_read_seq: seq(last_read_seq),
        unread,
        mentions,
    }
}

/// `user`'s read state of `room` alone (they must be a member).
async fn unread_of(stores: &ChatStores, user: UserId, room: RoomId) -> UnreadCounts {
    let found = stores.memberships.unread(user, Some(room)).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0]
}

/// `user`'s read state of each of their rooms, by room id.
async fn unread_of_all(stores: &ChatStores, user: UserId) -> Vec<UnreadCounts> {
    let mut found = stores.memberships.unread(user, None).await.unwrap();
    found.sort_by_key(|counts| counts.room_id);
    found
}

/// Sends a message of `author` to `room` mentioning `mentions`, at `sent`.
async fn send(
    stores: &ChatStores,
    room: RoomId,
    author: UserId,
    mentions: &[UserId],
    sent: DateTime<Utc>,
) -> p_chat_domain::message::Message {
    let message = NewMessage {
        body: body("hello"),
        created_at: sent,
        mentions: Mentions::parse(mentions.iter().copied()).unwrap(),
        ..new_message(room, author)
    };
    stores
        .messages
        .append(&message)
        .await
        .unwrap()
        .unwrap()
        .value
}

/// `mark_read` moves a member's marker to a seq ahead of it and says so;
/// a seq at or behind it leaves it where it is (`moved: false`, the marker
/// as it stands). A non-member, or a room that does not exist, is `None`.
pub async fn mark_read_moves_the_marker_only_forward(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    let outsider = chat_user(&stores).await;
    append_messages(&stores, room.id, owner.id, 5).await;

    for (to, expected) in [
        (3, marker(3, true)),
        (2, marker(3, false)),
        (3, marker(3, false)),
        (0, marker(3, false)),
        (5, marker(5, true)),
    ] {
        assert_eq!(
            stores
                .memberships
                .mark_read(room.id, bob.id, seq(to))
                .await
                .unwrap(),
            Some(expected),
            "marking {to}"
        );
    }
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await.last_read_seq,
        seq(5)
    );
    assert_eq!(
        stores
            .memberships
            .mark_read(room.id, outsider.id, seq(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .mark_read(RoomId::new(), bob.id, seq(1))
            .await
            .unwrap(),
        None
    );
    // The owner's marker is their own.
    assert_eq!(
        unread_of(&stores, owner.id, room.id).await.last_read_seq,
        Seq::ZERO
    );
}

/// Twenty racing `mark_read` calls with seqs in a scrambled order leave
/// the marker at the highest; each call answers a marker at or ahead of
/// its seq, and exactly its seq when it moved it.
pub async fn concurrent_marks_never_move_the_marker_backward(stores: ChatStores) {
    /// Racing calls, with the seqs 1 to this.
    const RACERS: i64 = 20;
    /// Scrambles the seqs (coprime with `RACERS`).
    const STRIDE: i64 = 7;
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    append_messages(&stores, room.id, owner.id, 20).await;
    let memberships = Arc::clone(&stores.memberships);

    let outcomes = race(usize::try_from(RACERS).unwrap(), |racer| {
        let memberships = Arc::clone(&memberships);
        let to = i64::try_from(racer).unwrap() * STRIDE % RACERS + 1;
        async move {
            let moved = memberships.mark_read(room.id, bob.id, seq(to)).await;
            (to, moved.unwrap().unwrap())
        }
    })
    .await;
    let mut moved_to = Vec::new();
    for (to, answer) in &outcomes {
        assert!(answer.last_read_seq >= seq(*to), "{to}: {answer:?}");
        if answer.moved {
            assert_eq!(answer.last_read_seq, seq(*to));
            moved_to.push(*to);
        }
    }
    assert!(
        moved_to.contains(&RACERS),
        "the highest seq always moves it"
    );
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, RACERS, 0, 0)
    );
}

/// Unread counts are the messages after the marker by others and not
/// deleted; mention counts, those of them that mention the member (not a
/// mention of oneself in one's own message, nor one in a deleted message).
/// Moving the marker lowers both.
pub async fn unread_counts_exclude_own_and_deleted_messages(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    let cat = added_member(&stores, room.id, at(2)).await;

    let plain = send(&stores, room.id, owner.id, &[], at(3)).await; // 1
    send(&stores, room.id, owner.id, &[bob.id], at(4)).await; // 2
    send(&stores, room.id, bob.id, &[bob.id, cat.id], at(5)).await; // 3: bob's own
    let deleted = send(&stores, room.id, cat.id, &[bob.id], at(6)).await; // 4
    send(&stores, room.id, cat.id, &[bob.id, owner.id], at(7)).await; // 5
    stores
        .messages
        .tombstone(room.id, deleted.id, at(8))
        .await
        .unwrap();

    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 0, 3, 2)
    );
    assert_eq!(
        unread_of(&stores, cat.id, room.id).await,
        counts(room.id, 0, 3, 1)
    );
    assert_eq!(
        unread_of(&stores, owner.id, room.id).await,
        counts(room.id, 0, 2, 1)
    );

    stores
        .memberships
        .mark_read(room.id, bob.id, plain.seq)
        .await
        .unwrap();
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 1, 2, 2)
    );
    stores
        .memberships
        .mark_read(room.id, bob.id, seq(2))
        .await
        .unwrap();
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 2, 1, 1)
    );
    stores
        .memberships
        .mark_read(room.id, bob.id, seq(5))
        .await
        .unwrap();
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 5, 0, 0)
    );
}

/// `unread(user, None)` lists every room the user is a member of (and no
/// other); `Some(room)` only that one, nothing if not a member.
pub async fn unread_lists_the_rooms_of_the_member(stores: ChatStores) {
    let (ann, first) = created_room(&stores, Visibility::Public).await;
    let (_, second) = created_room(&stores, Visibility::Private).await;
    let (cat, elsewhere) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, first.id, at(1)).await;
    add_member(&stores, &bob, second.id, at(1)).await;
    append_messages(&stores, first.id, ann.id, 2).await;
    append_messages(&stores, elsewhere.id, cat.id, 3).await;

    let mut expected = vec![counts(first.id, 0, 2, 0), counts(second.id, 0, 0, 0)];
    expected.sort_by_key(|counts| counts.room_id);
    assert_eq!(unread_of_all(&stores, bob.id).await, expected);
    assert_eq!(
        stores
            .memberships
            .unread(bob.id, Some(elsewhere.id))
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        stores
            .memberships
            .unread(bob.id, Some(RoomId::new()))
            .await
            .unwrap(),
        []
    );
    let stranger = chat_user(&stores).await;
    assert_eq!(
        stores.memberships.unread(stranger.id, None).await.unwrap(),
        []
    );
}

/// Both counts stop at `UnreadCounts::CAP`: 1001 unread messages that all
/// mention the member count 1000 of each.
pub async fn unread_counts_stop_at_the_cap(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    let over = usize::try_from(UnreadCounts::CAP).unwrap() + 1;
    // Senders in parallel: the PostgreSQL store commits them in groups.
    let messages = Arc::clone(&stores.messages);
    let outcomes = race(over, |_| {
        let messages = Arc::clone(&messages);
        let message = NewMessage {
            mentions: Mentions::parse([bob.id]).unwrap(),
            ..new_message(room.id, owner.id)
        };
        async move { messages.append(&message).await }
    })
    .await;
    assert!(
        outcomes
            .into_iter()
            .all(|outcome| outcome.unwrap().is_some())
    );

    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 0, UnreadCounts::CAP, UnreadCounts::CAP)
    );
    stores
        .memberships
        .mark_read(room.id, bob.id, seq(2))
        .await
        .unwrap();
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 2, UnreadCounts::CAP - 1, UnreadCounts::CAP - 1)
    );
}

/// `receipts` lists every member's marker (0 before they read anything)
/// in the order they joined.
pub async fn receipts_list_every_members_marker_in_joined_order(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(2)).await;
    let cat = added_member(&stores, room.id, at(1)).await;
    append_messages(&stores, room.id, owner.id, 4).await;
    for (user, to) in [(bob.id, 3), (owner.id, 4)] {
        stores
            .memberships
            .mark_read(room.id, user, seq(to))
            .await
            .unwrap();
    }
    let receipt = |user_id: UserId, last: i64| Receipt {
        user_id,
        last_read_seq: seq(last),
    };
    assert_eq!(
        stores.memberships.receipts(room.id).await.unwrap(),
        [receipt(owner.id, 4), receipt(cat.id, 0), receipt(bob.id, 3)]
    );
    assert_eq!(
        stores.memberships.receipts(RoomId::new()).await.unwrap(),
        []
    );
}

/// Leaving clears the marker: it is gone from the receipts and the
/// member's rooms, and starts again from 0 when they join again.
pub async fn leaving_clears_the_marker(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    append_messages(&stores, room.id, owner.id, 3).await;
    stores
        .memberships
        .mark_read(room.id, bob.id, seq(3))
        .await
        .unwrap();
    stores
        .memberships
        .remove(room.id, bob.id, at(2))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(stores.memberships.unread(bob.id, None).await.unwrap(), []);
    let receipts = stores.memberships.receipts(room.id).await.unwrap();
    assert!(receipts.iter().all(|receipt| receipt.user_id != bob.id));

    add_member(&stores, &bob, room.id, at(3)).await;
    assert_eq!(
        unread_of(&stores, bob.id, room.id).await,
        counts(room.id, 0, 3, 0)
    );
}

/// `which_members` keeps those of the given users who are members, each
/// once, in id order: not outsiders, unknown ids, or members of another
/// room.
pub async fn which_members_keeps_the_members_once(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let (_, other) = created_room(&stores, Visibility::Public).await;
    let bob = added_member(&stores, room.id, at(1)).await;
    let elsewhere = added_member(&stores, other.id, at(1)).await;
    let outsider = chat_user(&stores).await;

    let asked = [
        bob.id,
        outsider.id,
        UserId::new(),
        owner.id,
        elsewhere.id,
        bob.id,
    ];
    let mut expected = vec![owner.id, bob.id];
    expected.sort();
    assert_eq!(
        stores
            .memberships
            .which_members(room.id, &asked)
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        stores
            .memberships
            .which_members(room.id, &[])
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        stores
            .memberships
            .which_members(RoomId::new(), &asked)
            .await
            .unwrap(),
        []
    );
}
