//! The [`MembershipRepository`](p_chat_domain::ports::MembershipRepository)
//! contract.
//!
//! Every membership is of a stored room and of a user inserted first through
//! the users port. No test adds a second owner: a store may allow only one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::ports::StoreError;
use p_chat_domain::room::{Member, Membership, Role, Room, RoomId, Visibility};
use p_chat_domain::user::{User, UserId};

use crate::ChatStores;
use crate::fixtures::{
    added_member, assert_logged, assert_unlogged, at, chat_user, created_room, member, membership,
    name, owner_membership, pos, race, stored_room, user,
};

/// The event at `pos` in `room`, at `at`, of `change`.
fn event(room: RoomId, at_pos: i64, at: DateTime<Utc>, change: Change) -> RoomEvent {
    RoomEvent {
        room_id: room,
        pos: pos(at_pos),
        at,
        change,
    }
}

/// `user` as a member of `room` with `role`, joined at `joined_at`.
fn as_member(user: &User, room: RoomId, role: Role, joined_at: DateTime<Utc>) -> Member {
    member(user, membership(room, user.id, role, joined_at))
}

/// `get` of a user who is not in the room is `None`, as is `get` in an
/// unknown room, also when the user is a member elsewhere.
pub async fn get_of_a_non_member_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let outsider = chat_user(&stores).await;

    assert_eq!(
        stores.memberships.get(room.id, outsider.id).await.unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .get(RoomId::new(), owner.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .get(room.id, UserId::new())
            .await
            .unwrap(),
        None
    );
}

/// Added memberships read back equal, every field included, each under its
/// own user, and are listed with the owner's. Each add logs `member_joined`
/// at the room's next position (at the joining time), showing the member as
/// given and the room as it is right after.
pub async fn added_memberships_round_trip(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Private).await;
    let admin = chat_user(&stores).await;
    let member = chat_user(&stores).await;
    let as_admin = membership(room.id, admin.id, Role::Admin, at(7));
    let as_member = membership(room.id, member.id, Role::Member, at(8));
    for (user, added, at_pos) in [(&admin, &as_admin, 2), (&member, &as_member, 3)] {
        let before = stored_room(&stores, room.id).await;
        let joining = crate::fixtures::member(user, added.clone());
        let joined = stores.memberships.add(&joining).await.unwrap();
        assert_eq!(
            joined,
            event(
                room.id,
                at_pos,
                added.joined_at,
                Change::MemberJoined {
                    room: Room {
                        last_pos: pos(at_pos),
                        ..room.clone()
                    },
                    member: joining,
                }
            )
        );
        assert_logged(&stores, &before, &[joined], &["member_joined"]).await;
    }

    assert_eq!(
        stores.memberships.get(room.id, admin.id).await.unwrap(),
        Some(as_admin.clone())
    );
    assert_eq!(
        stores.memberships.get(room.id, member.id).await.unwrap(),
        Some(as_member.clone())
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room), as_admin, as_member]
    );
}

/// Adding a member twice is refused with `Duplicate`, and the first
/// membership is kept as it was (also for the owner); a refused add logs
/// nothing and consumes no position. Adding to a room that does not exist
/// is a `Failure`.
pub async fn duplicate_membership_is_refused(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let user = chat_user(&stores).await;
    let first = membership(room.id, user.id, Role::Member, at(5));
    stores
        .memberships
        .add(&member(&user, first.clone()))
        .await
        .unwrap();
    let before = stored_room(&stores, room.id).await;

    let again = as_member(&user, room.id, Role::Admin, at(99));
    assert_eq!(
        stores.memberships.add(&again).await,
        Err(StoreError::Duplicate)
    );
    let owner_again = as_member(&owner, room.id, Role::Member, at(99));
    assert_eq!(
        stores.memberships.add(&owner_again).await,
        Err(StoreError::Duplicate)
    );
    assert_unlogged(&stores, &before).await;
    let nowhere = stores
        .memberships
        .add(&as_member(&user, RoomId::new(), Role::Member, at(99)))
        .await;
    assert!(
        matches!(nowhere, Err(StoreError::Failure(_))),
        "{nowhere:?}"
    );
    assert_unlogged(&stores, &before).await;

    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room), first]
    );
}

/// Of 8 concurrent adds of one user to one room (differing in role and
/// joining time), exactly one succeeds and the other 7 get `Duplicate`; the
/// winner is the membership stored, and its `member_joined` the one event
/// logged.
pub async fn concurrent_adds_of_one_membership_admit_exactly_one(stores: ChatStores) {
    const RACERS: usize = 8;
    let (_, room) = created_room(&stores, Visibility::Public).await;
    let user = chat_user(&stores).await;

    let outcomes = race(RACERS, |racer| {
        let memberships = Arc::clone(&stores.memberships);
        let role = if racer % 2 == 0 {
            Role::Member
        } else {
            Role::Admin
        };
        // Joining after the owner (at 0), so the listing order is known.
        let joined_at = at(1 + i64::try_from(racer).unwrap());
        let candidate = as_member(&user, room.id, role, joined_at);
        async move {
            let outcome = memberships.add(&candidate).await;
            (candidate, outcome)
        }
    })
    .await;

    let (winners, losers): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|(_, outcome)| outcome.is_ok());
    assert_eq!(winners.len(), 1, "exactly one add must succeed");
    assert_eq!(losers.len(), RACERS - 1);
    for (_, outcome) in &losers {
        assert_eq!(outcome, &Err(StoreError::Duplicate));
    }
    let (winner, joined) = &winners[0];
    let joined = joined.clone().unwrap();
    assert_eq!(
        joined.change,
        Change::MemberJoined {
            room: Room {
                last_pos: pos(2),
                ..room.clone()
            },
            member: winner.clone(),
        }
    );
    assert_logged(&stores, &room, &[joined], &["member_joined"]).await;
    let winner = winner.membership.clone();
    assert_eq!(
        stores.memberships.get(room.id, user.id).await.unwrap(),
        Some(winner.clone())
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room), winner]
    );
}

/// `remove` of a member logs `member_left` at the room's next position and
/// returns it; the member is then gone (and may be added again). Once they
/// are not a member it is `None` and logs nothing; other members stay.
pub async fn remove_reports_whether_the_user_was_a_member(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let leaver = added_member(&stores, room.id, at(5)).await;
    let stayer = added_member(&stores, room.id, at(6)).await;
    let before = stored_room(&stores, room.id).await;

    let left = stores
        .memberships
        .remove(room.id, leaver.id, at(7))
        .await
        .unwrap();
    assert_eq!(
        left,
        Some(event(
            room.id,
            4,
            at(7),
            Change::MemberLeft { user_id: leaver.id }
        ))
    );
    assert_logged(&stores, &before, &[left.unwrap()], &["member_left"]).await;
    assert_eq!(
        stores.memberships.get(room.id, leaver.id).await.unwrap(),
        None
    );
    let after = stored_room(&stores, room.id).await;
    assert_eq!(
        stores
            .memberships
            .remove(room.id, leaver.id, at(8))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .remove(RoomId::new(), owner.id, at(8))
            .await
            .unwrap(),
        None
    );
    assert_unlogged(&stores, &after).await;
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            owner_membership(&room),
            membership(room.id, stayer.id, Role::Member, at(6)),
        ]
    );

    let back = membership(room.id, leaver.id, Role::Member, at(9));
    let rejoined = stores
        .memberships
        .add(&member(&leaver, back.clone()))
        .await
        .unwrap();
    assert_logged(&stores, &after, &[rejoined], &["member_joined"]).await;
    assert_eq!(
        stores.memberships.get(room.id, leaver.id).await.unwrap(),
        Some(back)
    );
}

/// `set_role` changes the member's role and nothing else, and logs
/// `member_updated` at the room's next position, showing the whole
/// membership under the name the caller passed; other members are
/// untouched.
pub async fn set_role_changes_only_the_role(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Public).await;
    let user = added_member(&stores, room.id, at(5)).await;
    let bystander = added_member(&stores, room.id, at(6)).await;
    // As the caller read it: the name is what the event shows.
    let read = Member {
        display_name: name("Read by the caller"),
        ..as_member(&user, room.id, Role::Member, at(5))
    };

    for (role, changed_at) in [(Role::Admin, at(10)), (Role::Member, at(11))] {
        let expected = membership(room.id, user.id, role, at(5));
        let before = stored_room(&stores, room.id).await;
        let updated = stores
            .memberships
            .set_role(&read, role, changed_at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            updated,
            event(
                room.id,
                before.last_pos.value() + 1,
                changed_at,
                Change::MemberUpdated(Member {
                    membership: expected.clone(),
                    display_name: read.display_name.clone(),
                })
            )
        );
        assert_logged(&stores, &before, &[updated], &["member_updated"]).await;
        assert_eq!(
            stores.memberships.get(room.id, user.id).await.unwrap(),
            Some(expected)
        );
    }
    assert_eq!(
        stores.memberships.get(room.id, bystander.id).await.unwrap(),
        Some(membership(room.id, bystander.id, Role::Member, at(6)))
    );
    assert_eq!(
        stores
            .memberships
            .get(room.id, room.owner_id)
            .await
            .unwrap(),
        Some(owner_membership(&room))
    );
}

/// `set_role` of a non-member (or in an unknown room) is `None`, makes
/// nobody a member and logs nothing.
pub async fn set_role_of_a_non_member_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let outsider = chat_user(&stores).await;

    assert_eq!(
        stores
            .memberships
            .set_role(
                &as_member(&outsider, room.id, Role::Member, at(1)),
                Role::Admin,
                at(2)
            )
            .await
            .unwrap(),
        None
    );
    assert_unlogged(&stores, &room).await;
    assert_eq!(
        stores.memberships.get(room.id, outsider.id).await.unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .set_role(
                &as_member(&owner, RoomId::new(), Role::Member, at(1)),
                Role::Admin,
                at(2)
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room)]
    );
}

/// `transfer_ownership` from the owner to a member makes that member the
/// owner (and the room's `owner_id`) and the previous owner an admin, joining
/// times kept; other members and the room's other fields are untouched. It
/// logs, at the room's next three positions, `member_updated` of the
/// previous owner, `member_updated` of the new one (under the names
/// passed) and `room_updated` (the room as it is after). The new owner can
/// hand it on in turn.
pub async fn transfer_ownership_moves_the_owner_role_and_room_owner(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let heir = added_member(&stores, room.id, at(5)).await;
    let bystander = added_member(&stores, room.id, at(6)).await;
    let bystanding = membership(room.id, bystander.id, Role::Member, at(6));
    let as_owner = as_member(&owner, room.id, Role::Owner, room.created_at);
    let as_heir = as_member(&heir, room.id, Role::Member, at(5));

    let before = stored_room(&stores, room.id).await;
    let handed_over = stores
        .memberships
        .transfer_ownership(&as_owner, &as_heir, at(10))
        .await
        .unwrap();
    let after = Room {
        owner_id: heir.id,
        last_pos: pos(6),
        ..room.clone()
    };
    assert_eq!(
        handed_over,
        vec![
            event(
                room.id,
                4,
                at(10),
                Change::MemberUpdated(as_member(&owner, room.id, Role::Admin, room.created_at))
            ),
            event(
                room.id,
                5,
                at(10),
                Change::MemberUpdated(as_member(&heir, room.id, Role::Owner, at(5)))
            ),
            event(room.id, 6, at(10), Change::RoomUpdated(after.clone())),
        ]
    );
    assert_logged(
        &stores,
        &before,
        &handed_over,
        &["member_updated", "member_updated", "room_updated"],
    )
    .await;
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            membership(room.id, owner.id, Role::Admin, room.created_at),
            membership(room.id, heir.id, Role::Owner, at(5)),
            bystanding.clone(),
        ]
    );
    assert_eq!(stored_room(&stores, room.id).await, after);

    let handed_back = stores
        .memberships
        .transfer_ownership(
            &as_member(&heir, room.id, Role::Owner, at(5)),
            &as_member(&owner, room.id, Role::Admin, room.created_at),
            at(20),
        )
        .await
        .unwrap();
    assert_logged(
        &stores,
        &after,
        &handed_back,
        &["member_updated", "member_updated", "room_updated"],
    )
    .await;
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            owner_membership(&room),
            membership(room.id, heir.id, Role::Admin, at(5)),
            bystanding,
        ]
    );
    assert_eq!(
        stored_room(&stores, room.id).await,
        Room {
            last_pos: pos(9),
            ..room
        }
    );
}

/// `transfer_ownership` returns no event and changes nothing (memberships,
/// room and log alike) when `from` is not the owner, `to` is not a member,
/// `from` and `to` are one user, `to` is of another room, or the room does
/// not exist.
pub async fn refused_transfers_of_ownership_change_nothing(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let admin = chat_user(&stores).await;
    stores
        .memberships
        .add(&as_member(&admin, room.id, Role::Admin, at(5)))
        .await
        .unwrap();
    let member = added_member(&stores, room.id, at(6)).await;
    let outsider = chat_user(&stores).await;
    let (_, elsewhere) = created_room(&stores, Visibility::Public).await;
    let members_before: Vec<Membership> = stores.memberships.list(room.id).await.unwrap();
    let before = stored_room(&stores, room.id).await;
    let in_room = |user: &User, role: Role| as_member(user, room.id, role, at(1));
    let unknown = User {
        id: UserId::new(),
        ..user()
    };

    for (from, to, why) in [
        (
            in_room(&admin, Role::Owner),
            in_room(&member, Role::Member),
            "from an admin",
        ),
        (
            in_room(&member, Role::Owner),
            in_room(&admin, Role::Admin),
            "from a member",
        ),
        (
            in_room(&outsider, Role::Owner),
            in_room(&member, Role::Member),
            "from an outsider",
        ),
        (
            in_room(&owner, Role::Owner),
            in_room(&outsider, Role::Member),
            "to an outsider",
        ),
        (
            in_room(&owner, Role::Owner),
            in_room(&unknown, Role::Member),
            "to an unknown user",
        ),
        (
            in_room(&owner, Role::Owner),
            in_room(&owner, Role::Owner),
            "to the owner",
        ),
        (
            in_room(&owner, Role::Owner),
            as_member(&member, elsewhere.id, Role::Member, at(1)),
            "to a member named in another room",
        ),
        (
            as_member(&owner, RoomId::new(), Role::Owner, at(1)),
            as_member(&member, RoomId::new(), Role::Member, at(1)),
            "in an unknown room",
        ),
    ] {
        assert_eq!(
            stores
                .memberships
                .transfer_ownership(&from, &to, at(10))
                .await
                .unwrap(),
            Vec::new(),
            "{why}"
        );
        assert_eq!(
            stores.memberships.list(room.id).await.unwrap(),
            members_before,
            "{why}"
        );
        assert_eq!(stored_room(&stores, room.id).await, before, "{why}");
        assert_unlogged(&stores, &before).await;
    }
    assert_eq!(
        stores.memberships.get(room.id, outsider.id).await.unwrap(),
        None
    );
}

/// `list` holds exactly the room's memberships, in the order members joined
/// (not in the order they were added, nor by user id); an unknown room has
/// none.
pub async fn list_is_in_joined_order(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Public).await;
    // Users are numbered in the order they register: join in reverse.
    let first = chat_user(&stores).await;
    let second = chat_user(&stores).await;
    let third = chat_user(&stores).await;
    let joined = [
        (&first, membership(room.id, first.id, Role::Member, at(30))),
        (&second, membership(room.id, second.id, Role::Admin, at(20))),
        (&third, membership(room.id, third.id, Role::Member, at(10))),
    ];
    for (user, joining) in &joined {
        stores
            .memberships
            .add(&member(user, joining.clone()))
            .await
            .unwrap();
    }
    let joined = joined.map(|(_, joining)| joining);
    let (_, elsewhere) = created_room(&stores, Visibility::Public).await;
    added_member(&stores, elsewhere.id, at(15)).await;

    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            owner_membership(&room),
            joined[2].clone(),
            joined[1].clone(),
            joined[0].clone(),
        ]
    );
    assert_eq!(
        stores.memberships.list(RoomId::new()).await.unwrap(),
        Vec::<Membership>::new()
    );
}

/// `share_room` is true exactly for two members of one room (either order,
/// and a member with themselves), false for members of different rooms, a
/// former member, and users in no room.
pub async fn share_room_is_true_for_members_of_one_room(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Private).await;
    let member = added_member(&stores, room.id, at(10)).await;
    let (stranger, _) = created_room(&stores, Visibility::Private).await;
    let roomless = chat_user(&stores).await;
    let shares = |a: UserId, b: UserId| {
        let memberships = stores.memberships.clone();
        async move { memberships.share_room(a, b).await.unwrap() }
    };
    assert!(shares(owner.id, member.id).await);
    assert!(shares(member.id, owner.id).await);
    assert!(shares(member.id, member.id).await);
    assert!(
        !shares(owner.id, stranger.id).await,
        "members of other rooms"
    );
    assert!(!shares(stranger.id, member.id).await);
    assert!(!shares(roomless.id, owner.id).await, "in no room");
    assert!(!shares(roomless.id, roomless.id).await);
    stores
        .memberships
        .remove(room.id, member.id, at(20))
        .await
        .unwrap()
        .unwrap();
    assert!(!shares(owner.id, member.id).await, "after leaving");
}
