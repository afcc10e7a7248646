//! The [`SessionRepository`](p_chat_domain::ports::SessionRepository) contract.
//!
//! Every session belongs to a user inserted first through the users port.

use std::sync::Arc;

use p_chat_domain::session::{LoginSession, SessionId};

use crate::Stores;
use crate::fixtures::{at, race, registered_user, session_for, unique_token_hash};

/// A created session reads back equal, every field included, and each id
/// finds its own session (two sessions of one user coexist).
pub async fn created_sessions_round_trip(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let first = session_for(user.id);
    let second = LoginSession {
        created_at: at(60),
        expires_at: at(7_260),
        ..session_for(user.id)
    };
    sessions.create(&first).await.unwrap();
    sessions.create(&second).await.unwrap();

    assert_eq!(sessions.by_id(first.id).await.unwrap(), Some(first));
    assert_eq!(sessions.by_id(second.id).await.unwrap(), Some(second));
}

/// `by_id` of an unknown id is `None`, also in a store that holds sessions.
pub async fn by_id_of_unknown_session_is_none(stores: Stores) {
    let user = registered_user(&stores).await;
    stores.sessions.create(&session_for(user.id)).await.unwrap();

    assert_eq!(stores.sessions.by_id(SessionId::new()).await.unwrap(), None);
}

/// Rotating with the current hash succeeds and replaces the hash and the
/// expiry, nothing else; the chain then continues from the new hash. Another
/// session of the same user is untouched.
pub async fn rotate_with_current_hash_replaces_hash_and_expiry(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let session = session_for(user.id);
    let sibling = session_for(user.id);
    sessions.create(&session).await.unwrap();
    sessions.create(&sibling).await.unwrap();

    let next = unique_token_hash();
    assert!(
        sessions
            .rotate(session.id, &session.refresh_token_hash, &next, at(7_200))
            .await
            .unwrap()
    );
    let rotated = LoginSession {
        refresh_token_hash: next.clone(),
        expires_at: at(7_200),
        ..session.clone()
    };
    assert_eq!(sessions.by_id(session.id).await.unwrap(), Some(rotated));

    let after = unique_token_hash();
    assert!(
        sessions
            .rotate(session.id, &next, &after, at(10_800))
            .await
            .unwrap()
    );
    let rotated_again = LoginSession {
        refresh_token_hash: after,
        expires_at: at(10_800),
        ..session
    };
    assert_eq!(
        sessions.by_id(rotated_again.id).await.unwrap(),
        Some(rotated_again)
    );

    assert_eq!(sessions.by_id(sibling.id).await.unwrap(), Some(sibling));
}

/// Rotating with a hash that is no longer (or never was) the current one
/// returns `false` and changes nothing.
pub async fn rotate_with_stale_hash_changes_nothing(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let session = session_for(user.id);
    sessions.create(&session).await.unwrap();
    let next = unique_token_hash();
    assert!(
        sessions
            .rotate(session.id, &session.refresh_token_hash, &next, at(7_200))
            .await
            .unwrap()
    );
    let current = LoginSession {
        refresh_token_hash: next,
        expires_at: at(7_200),
        ..session.clone()
    };

    for stale in [session.refresh_token_hash.clone(), unique_token_hash()] {
        assert!(
            !sessions
                .rotate(session.id, &stale, &unique_token_hash(), at(99_999))
                .await
                .unwrap()
        );
        assert_eq!(
            sessions.by_id(session.id).await.unwrap(),
            Some(current.clone())
        );
    }
}

/// Of 8 concurrent rotations from one current hash, exactly one returns
/// `true`, and the stored hash and expiry are that rotation's.
pub async fn concurrent_rotations_from_one_hash_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 8;
    let user = registered_user(&stores).await;
    let session = session_for(user.id);
    stores.sessions.create(&session).await.unwrap();

    let outcomes = race(RACERS, |racer| {
        let sessions = Arc::clone(&stores.sessions);
        let current = session.refresh_token_hash.clone();
        let next = unique_token_hash();
        let expires_at = at(7_200 + i64::try_from(racer).unwrap());
        async move {
            let rotated = sessions
                .rotate(session.id, &current, &next, expires_at)
                .await
                .unwrap();
            (rotated, next, expires_at)
        }
    })
    .await;

    let winners: Vec<_> = outcomes
        .into_iter()
        .filter(|(rotated, ..)| *rotated)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation must succeed");
    let (_, next, expires_at) = winners[0].clone();
    let expected = LoginSession {
        refresh_token_hash: next,
        expires_at,
        ..session
    };
    assert_eq!(
        stores.sessions.by_id(expected.id).await.unwrap(),
        Some(expected)
    );
}

/// A revoked session cannot be rotated, even with its current hash: `false`,
/// and hash, expiry and revocation time stay as they were.
pub async fn rotate_of_revoked_session_is_refused(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let session = session_for(user.id);
    sessions.create(&session).await.unwrap();
    sessions.revoke(session.id, at(10)).await.unwrap();
    let revoked = LoginSession {
        revoked_at: Some(at(10)),
        ..session.clone()
    };

    assert!(
        !sessions
            .rotate(
                session.id,
                &session.refresh_token_hash,
                &unique_token_hash(),
                at(7_200)
            )
            .await
            .unwrap()
    );
    assert_eq!(sessions.by_id(session.id).await.unwrap(), Some(revoked));
}

/// Rotating an unknown session returns `false` and creates nothing.
pub async fn rotate_of_unknown_session_is_false(stores: Stores) {
    let user = registered_user(&stores).await;
    let session = session_for(user.id);
    stores.sessions.create(&session).await.unwrap();
    let unknown = SessionId::new();

    assert!(
        !stores
            .sessions
            .rotate(
                unknown,
                &session.refresh_token_hash,
                &unique_token_hash(),
                at(7_200)
            )
            .await
            .unwrap()
    );
    assert_eq!(stores.sessions.by_id(unknown).await.unwrap(), None);
    assert_eq!(
        stores.sessions.by_id(session.id).await.unwrap(),
        Some(session)
    );
}

/// `revoke` records the time once: a second revocation keeps the first time.
/// Nothing else changes, and another session of the same user stays live.
pub async fn revoke_keeps_the_first_time(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let session = session_for(user.id);
    let sibling = session_for(user.id);
    sessions.create(&session).await.unwrap();
    sessions.create(&sibling).await.unwrap();
    let revoked = LoginSession {
        revoked_at: Some(at(10)),
        ..session.clone()
    };

    sessions.revoke(session.id, at(10)).await.unwrap();
    assert_eq!(
        sessions.by_id(session.id).await.unwrap(),
        Some(revoked.clone())
    );

    sessions.revoke(session.id, at(20)).await.unwrap();
    assert_eq!(sessions.by_id(session.id).await.unwrap(), Some(revoked));

    assert_eq!(sessions.by_id(sibling.id).await.unwrap(), Some(sibling));
}

/// Revoking an unknown session is not an error and creates nothing.
pub async fn revoke_of_unknown_session_is_ok(stores: Stores) {
    let user = registered_user(&stores).await;
    let session = session_for(user.id);
    stores.sessions.create(&session).await.unwrap();
    let unknown = SessionId::new();

    assert_eq!(stores.sessions.revoke(unknown, at(10)).await, Ok(()));
    assert_eq!(stores.sessions.by_id(unknown).await.unwrap(), None);
    assert_eq!(
        stores.sessions.by_id(session.id).await.unwrap(),
        Some(session)
    );
}
