//! The [`PasswordResetStore`](p_chat_domain::ports::PasswordResetStore) contract.
//!
//! Every reset belongs to a user inserted first through the users port.

use std::sync::Arc;

use p_chat_domain::ports::StoreError;
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::user::PasswordHash;

use crate::Stores;
use crate::fixtures::{long_ago, race, registered_user, reset_for, unique_token_hash};

/// An inserted reset is taken back equal, every field included; resets of
/// one user under different hashes are independent.
pub async fn inserted_reset_is_taken_back(stores: Stores) {
    let user = registered_user(&stores).await;
    let (first, second) = (reset_for(user.id), reset_for(user.id));
    stores.resets.insert(&first).await.unwrap();
    stores.resets.insert(&second).await.unwrap();

    assert_eq!(
        stores.resets.take(&second.token_hash).await.unwrap(),
        Some(second)
    );
    assert_eq!(
        stores.resets.take(&first.token_hash).await.unwrap(),
        Some(first)
    );
}

/// A second reset under a taken token hash is refused with `Duplicate`; the
/// first stays, unchanged.
pub async fn duplicate_token_hash_is_refused(stores: Stores) {
    let user = registered_user(&stores).await;
    let other_user = registered_user(&stores).await;
    let first = reset_for(user.id);
    stores.resets.insert(&first).await.unwrap();
    let clash = PasswordReset {
        token_hash: first.token_hash.clone(),
        ..reset_for(other_user.id)
    };

    assert_eq!(
        stores.resets.insert(&clash).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        stores.resets.take(&first.token_hash).await.unwrap(),
        Some(first)
    );
}

/// `take` removes: the first call gets the reset, the second `None`.
pub async fn take_is_single_use(stores: Stores) {
    let user = registered_user(&stores).await;
    let reset = reset_for(user.id);
    stores.resets.insert(&reset).await.unwrap();

    assert_eq!(
        stores.resets.take(&reset.token_hash).await.unwrap(),
        Some(reset.clone())
    );
    assert_eq!(stores.resets.take(&reset.token_hash).await.unwrap(), None);
}

/// Of 8 concurrent takes of one hash, exactly one gets the reset and the
/// others get `None`; afterwards it is gone.
pub async fn concurrent_takes_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 8;
    let user = registered_user(&stores).await;
    let reset = reset_for(user.id);
    stores.resets.insert(&reset).await.unwrap();

    let outcomes = race(RACERS, |_| {
        let resets = Arc::clone(&stores.resets);
        let token_hash = reset.token_hash.clone();
        async move { resets.take(&token_hash).await.unwrap() }
    })
    .await;

    let taken: Vec<_> = outcomes.into_iter().flatten().collect();
    assert_eq!(taken, vec![reset.clone()], "exactly one take must succeed");
    assert_eq!(stores.resets.take(&reset.token_hash).await.unwrap(), None);
}

/// `take` of a hash nothing is stored under is `None`, also in a store that
/// holds resets (which stay).
pub async fn take_of_unknown_hash_is_none(stores: Stores) {
    let user = registered_user(&stores).await;
    let reset = reset_for(user.id);
    stores.resets.insert(&reset).await.unwrap();

    assert_eq!(
        stores.resets.take(&unique_token_hash()).await.unwrap(),
        None
    );
    assert_eq!(
        stores.resets.take(&reset.token_hash).await.unwrap(),
        Some(reset)
    );
}

/// `take` hands back an expired reset too (deciding that it is expired is
/// the caller's job), and removes it.
pub async fn take_returns_expired_resets(stores: Stores) {
    let user = registered_user(&stores).await;
    let expired = PasswordReset {
        expires_at: long_ago(),
        ..reset_for(user.id)
    };
    stores.resets.insert(&expired).await.unwrap();

    assert_eq!(
        stores.resets.take(&expired.token_hash).await.unwrap(),
        Some(expired.clone())
    );
    assert_eq!(stores.resets.take(&expired.token_hash).await.unwrap(), None);
}

/// A new password (`UserRepository::set_password_hash`) voids every pending
/// reset of the user, expired or not, and only that user's: another user's
/// reset still works. A user without resets changes password as usual.
pub async fn a_new_password_voids_every_reset_of_that_user_only(stores: Stores) {
    let user = registered_user(&stores).await;
    let other_user = registered_user(&stores).await;
    let lonely = registered_user(&stores).await;
    let mine = [
        reset_for(user.id),
        reset_for(user.id),
        PasswordReset {
            expires_at: long_ago(),
            ..reset_for(user.id)
        },
    ];
    let theirs = reset_for(other_user.id);
    for reset in mine.iter().chain([&theirs]) {
        stores.resets.insert(reset).await.unwrap();
    }

    let hash = PasswordHash::new("$2b$04$another-hash".into());
    stores
        .users
        .set_password_hash(user.id, &hash)
        .await
        .unwrap()
        .unwrap();
    for reset in &mine {
        assert_eq!(stores.resets.take(&reset.token_hash).await.unwrap(), None);
    }
    let changed = stores
        .users
        .set_password_hash(lonely.id, &hash)
        .await
        .unwrap();
    assert_eq!(changed.map(|user| user.password_hash), Some(hash));
    assert_eq!(
        stores.resets.take(&theirs.token_hash).await.unwrap(),
        Some(theirs)
    );
}
