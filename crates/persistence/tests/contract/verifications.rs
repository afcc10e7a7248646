//! The [`VerificationStore`](p_chat_domain::ports::VerificationStore) contract.
//!
//! Every verification belongs to a user inserted first through the users port.

use std::sync::Arc;

use p_chat_domain::ports::StoreError;
use p_chat_domain::verification::EmailVerification;

use crate::Stores;
use crate::fixtures::{at, long_ago, race, registered_user, unique_token_hash, verification_for};

/// An inserted verification is taken back equal, every field included.
pub async fn inserted_verification_is_taken_back(stores: Stores) {
    let user = registered_user(&stores).await;
    let pending = verification_for(user.id);
    stores.verifications.insert(&pending).await.unwrap();

    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        Some(pending)
    );
}

/// `take` removes: the first call gets the verification, the second `None`.
pub async fn take_is_single_use(stores: Stores) {
    let user = registered_user(&stores).await;
    let verifications = stores.verifications;
    let pending = verification_for(user.id);
    verifications.insert(&pending).await.unwrap();

    assert_eq!(
        verifications.take(&pending.token_hash).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(verifications.take(&pending.token_hash).await.unwrap(), None);
}

/// Of 8 concurrent takes of one hash, exactly one gets the verification and
/// the others get `None`; afterwards it is gone.
pub async fn concurrent_takes_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 8;
    let user = registered_user(&stores).await;
    let pending = verification_for(user.id);
    stores.verifications.insert(&pending).await.unwrap();

    let outcomes = race(RACERS, |_| {
        let verifications = Arc::clone(&stores.verifications);
        let token_hash = pending.token_hash.clone();
        async move { verifications.take(&token_hash).await.unwrap() }
    })
    .await;

    let taken: Vec<_> = outcomes.into_iter().flatten().collect();
    assert_eq!(
        taken,
        vec![pending.clone()],
        "exactly one take must succeed"
    );
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        None
    );
}

/// A second verification under a taken token hash is refused with
/// `Duplicate`; the first stays, unchanged.
pub async fn duplicate_token_hash_is_refused(stores: Stores) {
    let user = registered_user(&stores).await;
    let other_user = registered_user(&stores).await;
    let verifications = stores.verifications;
    let first = verification_for(user.id);
    verifications.insert(&first).await.unwrap();
    let second = EmailVerification {
        user_id: other_user.id,
        expires_at: at(172_800),
        ..first.clone()
    };

    assert_eq!(
        verifications.insert(&second).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        verifications.take(&first.token_hash).await.unwrap(),
        Some(first)
    );
}

/// `take` of a hash nobody stored is `None` and consumes nothing else.
pub async fn take_of_unknown_hash_is_none(stores: Stores) {
    let user = registered_user(&stores).await;
    let verifications = stores.verifications;
    let pending = verification_for(user.id);
    verifications.insert(&pending).await.unwrap();

    assert_eq!(
        verifications.take(&unique_token_hash()).await.unwrap(),
        None
    );
    assert_eq!(
        verifications.take(&pending.token_hash).await.unwrap(),
        Some(pending)
    );
}

/// `take` hands back expired verifications too: expiry is the service's
/// rule, not the store's (the service tells "expired" from "unknown").
pub async fn take_returns_expired_verifications(stores: Stores) {
    let user = registered_user(&stores).await;
    let expired = EmailVerification {
        expires_at: long_ago(),
        ..verification_for(user.id)
    };
    stores.verifications.insert(&expired).await.unwrap();

    assert_eq!(
        stores
            .verifications
            .take(&expired.token_hash)
            .await
            .unwrap(),
        Some(expired)
    );
}

/// Two pending verifications of one user are independent: taking one leaves
/// the other.
pub async fn verifications_of_one_user_are_independent(stores: Stores) {
    let user = registered_user(&stores).await;
    let verifications = stores.verifications;
    let first = verification_for(user.id);
    let second = verification_for(user.id);
    verifications.insert(&first).await.unwrap();
    verifications.insert(&second).await.unwrap();

    assert_eq!(
        verifications.take(&first.token_hash).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        verifications.take(&second.token_hash).await.unwrap(),
        Some(second)
    );
}
