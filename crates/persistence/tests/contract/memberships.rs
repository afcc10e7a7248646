//! The [`MembershipRepository`](p_chat_domain::ports::MembershipRepository)
//! contract.
//!
//! Every membership is of a stored room and of a user inserted first through
//! the users port. No test adds a second owner: a store may allow only one.

use std::sync::Arc;

use p_chat_domain::ports::StoreError;
use p_chat_domain::room::{Membership, Role, Room, RoomId, Visibility};
use p_chat_domain::user::UserId;

use crate::ChatStores;
use crate::fixtures::{
    added_member, at, chat_user, created_room, membership, owner_membership, race, stored_room,
};

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
/// own user, and are listed with the owner's.
pub async fn added_memberships_round_trip(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Private).await;
    let admin = chat_user(&stores).await;
    let member = chat_user(&stores).await;
    let as_admin = membership(room.id, admin.id, Role::Admin, at(7));
    let as_member = membership(room.id, member.id, Role::Member, at(8));
    stores.memberships.add(&as_admin).await.unwrap();
    stores.memberships.add(&as_member).await.unwrap();

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
/// membership is kept as it was (also for the owner).
pub async fn duplicate_membership_is_refused(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let user = chat_user(&stores).await;
    let first = membership(room.id, user.id, Role::Member, at(5));
    stores.memberships.add(&first).await.unwrap();

    let again = membership(room.id, user.id, Role::Admin, at(99));
    assert_eq!(
        stores.memberships.add(&again).await,
        Err(StoreError::Duplicate)
    );
    let owner_again = membership(room.id, owner.id, Role::Member, at(99));
    assert_eq!(
        stores.memberships.add(&owner_again).await,
        Err(StoreError::Duplicate)
    );

    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room), first]
    );
}

/// Of 8 concurrent adds of one user to one room (differing in role and
/// joining time), exactly one succeeds and the other 7 get `Duplicate`; the
/// winner is the membership stored.
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
        let candidate = membership(room.id, user.id, role, joined_at);
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
    let winner = winners[0].0.clone();
    assert_eq!(
        stores.memberships.get(room.id, user.id).await.unwrap(),
        Some(winner.clone())
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![owner_membership(&room), winner]
    );
}

/// `remove` returns `true` for a member, who is then gone (and may be added
/// again), and `false` once they are not; other members stay.
pub async fn remove_reports_whether_the_user_was_a_member(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let leaver = added_member(&stores, room.id, at(5)).await;
    let stayer = added_member(&stores, room.id, at(6)).await;

    assert!(stores.memberships.remove(room.id, leaver.id).await.unwrap());
    assert_eq!(
        stores.memberships.get(room.id, leaver.id).await.unwrap(),
        None
    );
    assert!(!stores.memberships.remove(room.id, leaver.id).await.unwrap());
    assert!(
        !stores
            .memberships
            .remove(RoomId::new(), owner.id)
            .await
            .unwrap()
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            owner_membership(&room),
            membership(room.id, stayer.id, Role::Member, at(6)),
        ]
    );

    let back = membership(room.id, leaver.id, Role::Member, at(9));
    stores.memberships.add(&back).await.unwrap();
    assert_eq!(
        stores.memberships.get(room.id, leaver.id).await.unwrap(),
        Some(back)
    );
}

/// `set_role` changes the member's role and nothing else, returns the whole
/// membership, and other members are untouched.
pub async fn set_role_changes_only_the_role(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Public).await;
    let user = added_member(&stores, room.id, at(5)).await;
    let bystander = added_member(&stores, room.id, at(6)).await;

    for role in [Role::Admin, Role::Member] {
        let expected = membership(room.id, user.id, role, at(5));
        assert_eq!(
            stores
                .memberships
                .set_role(room.id, user.id, role)
                .await
                .unwrap(),
            Some(expected.clone())
        );
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

/// `set_role` of a non-member (or in an unknown room) is `None` and makes
/// nobody a member.
pub async fn set_role_of_a_non_member_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let outsider = chat_user(&stores).await;

    assert_eq!(
        stores
            .memberships
            .set_role(room.id, outsider.id, Role::Admin)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores.memberships.get(room.id, outsider.id).await.unwrap(),
        None
    );
    assert_eq!(
        stores
            .memberships
            .set_role(RoomId::new(), owner.id, Role::Admin)
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
/// times kept; other members and the room's other fields are untouched. The
/// new owner can hand it on in turn.
pub async fn transfer_ownership_moves_the_owner_role_and_room_owner(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let heir = added_member(&stores, room.id, at(5)).await;
    let bystander = added_member(&stores, room.id, at(6)).await;
    let bystanding = membership(room.id, bystander.id, Role::Member, at(6));

    assert!(
        stores
            .memberships
            .transfer_ownership(room.id, owner.id, heir.id)
            .await
            .unwrap()
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            membership(room.id, owner.id, Role::Admin, room.created_at),
            membership(room.id, heir.id, Role::Owner, at(5)),
            bystanding.clone(),
        ]
    );
    assert_eq!(
        stored_room(&stores, room.id).await,
        Room {
            owner_id: heir.id,
            ..room.clone()
        }
    );

    assert!(
        stores
            .memberships
            .transfer_ownership(room.id, heir.id, owner.id)
            .await
            .unwrap()
    );
    assert_eq!(
        stores.memberships.list(room.id).await.unwrap(),
        vec![
            owner_membership(&room),
            membership(room.id, heir.id, Role::Admin, at(5)),
            bystanding,
        ]
    );
    assert_eq!(stored_room(&stores, room.id).await, room);
}

/// `transfer_ownership` returns `false` and changes nothing (memberships and
/// room alike) when `from` is not the owner, `to` is not a member, `from` and
/// `to` are one user, or the room does not exist.
pub async fn refused_transfers_of_ownership_change_nothing(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let admin = chat_user(&stores).await;
    stores
        .memberships
        .add(&membership(room.id, admin.id, Role::Admin, at(5)))
        .await
        .unwrap();
    let member = added_member(&stores, room.id, at(6)).await;
    let outsider = chat_user(&stores).await;
    let members_before: Vec<Membership> = stores.memberships.list(room.id).await.unwrap();

    for (room_id, from, to, why) in [
        (room.id, admin.id, member.id, "from an admin"),
        (room.id, member.id, admin.id, "from a member"),
        (room.id, outsider.id, member.id, "from an outsider"),
        (room.id, owner.id, outsider.id, "to an outsider"),
        (room.id, owner.id, UserId::new(), "to an unknown user"),
        (room.id, owner.id, owner.id, "to the owner"),
        (RoomId::new(), owner.id, member.id, "in an unknown room"),
    ] {
        assert!(
            !stores
                .memberships
                .transfer_ownership(room_id, from, to)
                .await
                .unwrap(),
            "{why}"
        );
        assert_eq!(
            stores.memberships.list(room.id).await.unwrap(),
            members_before,
            "{why}"
        );
        assert_eq!(stored_room(&stores, room.id).await, room, "{why}");
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
        membership(room.id, first.id, Role::Member, at(30)),
        membership(room.id, second.id, Role::Admin, at(20)),
        membership(room.id, third.id, Role::Member, at(10)),
    ];
    for member in &joined {
        stores.memberships.add(member).await.unwrap();
    }
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
