//! The [`InviteStore`](p_chat_domain::ports::InviteStore) contract. Redeeming
//! an invitation is [`UserRepository::register`]'s, tested in `users`.
//!
//! [`UserRepository::register`]: p_chat_domain::ports::UserRepository::register
//!
//! `active` lists every invitation of the store, so the bodies look only at
//! the invitations they created themselves.

use p_chat_domain::ports::StoreError;
use p_chat_domain::registration::{Invite, InviteId};

use crate::Stores;
use crate::fixtures::{at, invite, registered_user, unique_token_hash};

/// The invitations of `active` among `ours`, in the order `active` gave.
async fn active_among(stores: &Stores, now_offset: i64, ours: &[&Invite]) -> Vec<Invite> {
    stores
        .invites
        .active(at(now_offset))
        .await
        .unwrap()
        .into_iter()
        .filter(|active| ours.iter().any(|invite| invite.id == active.id))
        .collect()
}

/// An inserted invitation reads back equal through `active`, every field
/// included (a creator or none, the creation and expiry to the microsecond,
/// the uses left).
pub async fn inserted_invites_round_trip(stores: Stores) {
    let admin = registered_user(&stores).await;
    let by_admin = Invite {
        created_by: Some(admin.id),
        created_at: at(10),
        ..invite(1_000, at(86_400))
    };
    let from_console = invite(1, at(3_600));
    stores.invites.insert(&by_admin).await.unwrap();
    stores.invites.insert(&from_console).await.unwrap();

    assert_eq!(
        active_among(&stores, 20, &[&by_admin, &from_console]).await,
        vec![by_admin, from_console]
    );
}

/// A second invitation with a taken id, or with a taken token hash, is
/// refused with `Duplicate` and leaves no trace; the first is unchanged.
pub async fn duplicate_id_or_token_hash_is_refused(stores: Stores) {
    let first = invite(3, at(3_600));
    stores.invites.insert(&first).await.unwrap();
    let same_id = Invite {
        token_hash: unique_token_hash(),
        uses_left: 7,
        ..first.clone()
    };
    let same_hash = Invite {
        id: InviteId::new(),
        created_at: at(5),
        ..first.clone()
    };

    assert_eq!(
        stores.invites.insert(&same_id).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        stores.invites.insert(&same_hash).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        active_among(&stores, 10, &[&first, &same_id, &same_hash]).await,
        vec![first]
    );
}

/// `active` holds exactly the invitations that still admit someone at `now`,
/// newest first: not one expiring at or before `now`, not one used up.
pub async fn active_lists_admitting_invites_newest_first(stores: Stores) {
    let now = 1_000;
    let oldest = Invite {
        created_at: at(100),
        ..invite(2, at(5_000))
    };
    let newest = Invite {
        created_at: at(300),
        ..invite(1, at(now + 1))
    };
    let middle = Invite {
        created_at: at(200),
        ..invite(5, at(5_000))
    };
    let expiring_now = Invite {
        created_at: at(400),
        ..invite(5, at(now))
    };
    let expired = Invite {
        created_at: at(500),
        ..invite(5, at(now - 1))
    };
    let used_up = Invite {
        created_at: at(600),
        ..invite(0, at(5_000))
    };
    let all = [&oldest, &newest, &middle, &expiring_now, &expired, &used_up];
    for invite in all {
        stores.invites.insert(invite).await.unwrap();
    }

    assert_eq!(
        active_among(&stores, now, &all).await,
        vec![newest.clone(), middle.clone(), oldest.clone()]
    );
    assert_eq!(
        active_among(&stores, now - 1, &all).await,
        vec![
            expiring_now.clone(),
            newest.clone(),
            middle.clone(),
            oldest.clone()
        ]
    );
    assert_eq!(active_among(&stores, 5_000, &all).await, vec![]);
}

/// `revoke` removes the invitation (no longer active) and returns `true`;
/// a second revocation, or one of an unknown id, returns `false`. Other
/// invitations stay.
pub async fn revoke_removes_the_invite(stores: Stores) {
    let revoked = invite(3, at(3_600));
    let kept = invite(3, at(3_600));
    stores.invites.insert(&revoked).await.unwrap();
    stores.invites.insert(&kept).await.unwrap();

    assert!(stores.invites.revoke(revoked.id).await.unwrap());
    assert_eq!(
        active_among(&stores, 10, &[&revoked, &kept]).await,
        vec![kept.clone()]
    );
    assert!(!stores.invites.revoke(revoked.id).await.unwrap());
    assert!(!stores.invites.revoke(InviteId::new()).await.unwrap());
    assert_eq!(
        active_among(&stores, 10, &[&revoked, &kept]).await,
        vec![kept]
    );
}

/// A revoked invitation is gone entirely: its id and token hash are free for
/// a new one.
pub async fn revoked_invite_can_be_inserted_again(stores: Stores) {
    let first = invite(1, at(3_600));
    stores.invites.insert(&first).await.unwrap();
    assert!(stores.invites.revoke(first.id).await.unwrap());

    stores.invites.insert(&first).await.unwrap();
    assert_eq!(active_among(&stores, 10, &[&first]).await, vec![first]);
}
