//! The [`SessionRepository`](p_chat_domain::ports::SessionRepository) contract.
//!
//! Every session belongs to a user inserted first through the users port.

use std::sync::Arc;

use p_chat_domain::session::{LoginSession, SessionId, UserAgent};
use p_chat_domain::user::UserId;

use crate::Stores;
use crate::fixtures::{at, race, registered_user, session_for, unique_token_hash};

/// A user agent, cleaned from a header value.
fn user_agent(raw: &str) -> UserAgent {
    UserAgent::from_header(raw).expect("a printable user agent")
}

/// Sorts session ids, to compare sets of them.
fn sorted(mut ids: Vec<SessionId>) -> Vec<SessionId> {
    ids.sort();
    ids
}

/// A created session reads back equal, every field included (its last use
/// and its user agent, non-ASCII and at the maximum length too, or none),
/// and each id finds its own session (sessions of one user coexist).
pub async fn created_sessions_round_trip(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let first = session_for(user.id);
    let second = LoginSession {
        created_at: at(60),
        expires_at: at(7_260),
        last_used_at: at(90),
        user_agent: Some(user_agent(
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 — Zoë",
        )),
        ..session_for(user.id)
    };
    let longest = LoginSession {
        user_agent: Some(user_agent(&"é".repeat(UserAgent::MAX_CHARS))),
        ..session_for(user.id)
    };
    sessions.create(&longest).await.unwrap();
    assert_eq!(sessions.by_id(longest.id).await.unwrap(), Some(longest));
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

/// Rotating with the current hash succeeds and replaces the hash, the expiry
/// and the last use, nothing else; the chain then continues from the new
/// hash. Another session of the same user is untouched.
pub async fn rotate_with_current_hash_replaces_hash_expiry_and_last_use(stores: Stores) {
    let user = registered_user(&stores).await;
    let sessions = stores.sessions;
    let session = session_for(user.id);
    let sibling = session_for(user.id);
    sessions.create(&session).await.unwrap();
    sessions.create(&sibling).await.unwrap();

    let next = unique_token_hash();
    assert!(
        sessions
            .rotate(
                session.id,
                &session.refresh_token_hash,
                &next,
                at(7_200),
                at(100)
            )
            .await
            .unwrap()
    );
    let rotated = LoginSession {
        refresh_token_hash: next.clone(),
        expires_at: at(7_200),
        last_used_at: at(100),
        ..session.clone()
    };
    assert_eq!(sessions.by_id(session.id).await.unwrap(), Some(rotated));

    let after = unique_token_hash();
    assert!(
        sessions
            .rotate(session.id, &next, &after, at(10_800), at(200))
            .await
            .unwrap()
    );
    let rotated_again = LoginSession {
        refresh_token_hash: after,
        expires_at: at(10_800),
        last_used_at: at(200),
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
            .rotate(
                session.id,
                &session.refresh_token_hash,
                &next,
                at(7_200),
                at(100)
            )
            .await
            .unwrap()
    );
    let current = LoginSession {
        refresh_token_hash: next,
        expires_at: at(7_200),
        last_used_at: at(100),
        ..session.clone()
    };

    for stale in [session.refresh_token_hash.clone(), unique_token_hash()] {
        assert!(
            !sessions
                .rotate(
                    session.id,
                    &stale,
                    &unique_token_hash(),
                    at(99_999),
                    at(99_999)
                )
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
/// `true`, and the stored hash, expiry and last use are that rotation's.
pub async fn concurrent_rotations_from_one_hash_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 8;
    let user = registered_user(&stores).await;
    let session = session_for(user.id);
    stores.sessions.create(&session).await.unwrap();

    let outcomes = race(RACERS, |racer| {
        let sessions = Arc::clone(&stores.sessions);
        let current = session.refresh_token_hash.clone();
        let next = unique_token_hash();
        let offset = i64::try_from(racer).unwrap();
        let (expires_at, used_at) = (at(7_200 + offset), at(100 + offset));
        async move {
            let rotated = sessions
                .rotate(session.id, &current, &next, expires_at, used_at)
                .await
                .unwrap();
            (rotated, next, expires_at, used_at)
        }
    })
    .await;

    let winners: Vec<_> = outcomes
        .into_iter()
        .filter(|(rotated, ..)| *rotated)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation must succeed");
    let (_, next, expires_at, last_used_at) = winners[0].clone();
    let expected = LoginSession {
        refresh_token_hash: next,
        expires_at,
        last_used_at,
        ..session
    };
    assert_eq!(
        stores.sessions.by_id(expected.id).await.unwrap(),
        Some(expected)
    );
}

/// A revoked session cannot be rotated, even with its current hash: `false`,
/// and hash, expiry, last use and revocation time stay as they were.
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
                at(7_200),
                at(100)
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
                at(7_200),
                at(100)
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

/// `active_of` lists exactly the user's sessions that are neither revoked
/// nor expired at `now` (one expiring exactly at `now` is over), most
/// recently used first, each as stored. Another user's sessions never appear.
pub async fn active_of_lists_live_sessions_most_recently_used_first(stores: Stores) {
    let user = registered_user(&stores).await;
    let other = registered_user(&stores).await;
    let sessions = &stores.sessions;
    let now = at(1_000);
    let used_at = |seconds| LoginSession {
        last_used_at: at(seconds),
        ..session_for(user.id)
    };
    let (oldest, newest, middle) = (used_at(10), used_at(30), used_at(20));
    let middle = LoginSession {
        user_agent: Some(user_agent("curl/8.0")),
        ..middle
    };
    let expired = LoginSession {
        expires_at: now,
        ..used_at(900)
    };
    let revoked = used_at(950);
    let others = LoginSession {
        last_used_at: at(990),
        ..session_for(other.id)
    };
    for session in [&oldest, &newest, &middle, &expired, &revoked, &others] {
        sessions.create(session).await.unwrap();
    }
    sessions.revoke(revoked.id, at(960)).await.unwrap();

    assert_eq!(
        sessions.active_of(user.id, now).await.unwrap(),
        vec![newest.clone(), middle.clone(), oldest.clone()]
    );
    assert_eq!(
        sessions.active_of(other.id, now).await.unwrap(),
        vec![others]
    );

    // A rotation is a use: the rotated session moves to the front.
    assert!(
        sessions
            .rotate(
                oldest.id,
                &oldest.refresh_token_hash,
                &unique_token_hash(),
                at(3_600),
                at(40)
            )
            .await
            .unwrap()
    );
    let ids: Vec<SessionId> = sessions
        .active_of(user.id, now)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.id)
        .collect();
    assert_eq!(ids, vec![oldest.id, newest.id, middle.id]);

    // Later, everything has expired.
    assert_eq!(
        sessions.active_of(user.id, at(3_600)).await.unwrap(),
        vec![]
    );
}

/// `active_of` of a user without sessions (or an unknown one) is empty.
pub async fn active_of_a_user_without_sessions_is_empty(stores: Stores) {
    let user = registered_user(&stores).await;
    let other = registered_user(&stores).await;
    stores
        .sessions
        .create(&session_for(other.id))
        .await
        .unwrap();

    assert_eq!(
        stores.sessions.active_of(user.id, at(10)).await.unwrap(),
        vec![]
    );
    assert_eq!(
        stores
            .sessions
            .active_of(UserId::new(), at(10))
            .await
            .unwrap(),
        vec![]
    );
}

/// `revoke_all` with `keep` ends every session of the user not yet revoked
/// (expired ones included) except `keep`, at `at`, and returns exactly the
/// ids it ended: not `keep`, not one revoked before (which keeps its first
/// time), not another user's. A second call ends nothing more.
pub async fn revoke_all_ends_every_other_session_and_returns_their_ids(stores: Stores) {
    let user = registered_user(&stores).await;
    let other = registered_user(&stores).await;
    let sessions = &stores.sessions;
    let (first, kept, third) = (
        session_for(user.id),
        session_for(user.id),
        session_for(user.id),
    );
    let expired = LoginSession {
        expires_at: at(10),
        ..session_for(user.id)
    };
    let revoked_before = session_for(user.id);
    let others = session_for(other.id);
    for session in [&first, &kept, &third, &expired, &revoked_before, &others] {
        sessions.create(session).await.unwrap();
    }
    sessions.revoke(revoked_before.id, at(5)).await.unwrap();

    let ended = sessions
        .revoke_all(user.id, Some(kept.id), at(50))
        .await
        .unwrap();
    assert_eq!(sorted(ended), sorted(vec![first.id, third.id, expired.id]));

    for session in [&first, &third, &expired] {
        let revoked = LoginSession {
            revoked_at: Some(at(50)),
            ..session.clone()
        };
        assert_eq!(sessions.by_id(session.id).await.unwrap(), Some(revoked));
    }
    assert_eq!(sessions.by_id(kept.id).await.unwrap(), Some(kept.clone()));
    assert_eq!(
        sessions.by_id(revoked_before.id).await.unwrap(),
        Some(LoginSession {
            revoked_at: Some(at(5)),
            ..revoked_before
        })
    );
    assert_eq!(sessions.by_id(others.id).await.unwrap(), Some(others));
    assert_eq!(
        sessions.active_of(user.id, at(0)).await.unwrap(),
        vec![kept.clone()]
    );

    assert_eq!(
        sessions
            .revoke_all(user.id, Some(kept.id), at(60))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(sessions.by_id(kept.id).await.unwrap(), Some(kept));
}

/// `revoke_all` without `keep` ends every live session of the user, and
/// returns only those; a user without sessions gets an empty list.
pub async fn revoke_all_without_keep_ends_every_session(stores: Stores) {
    let user = registered_user(&stores).await;
    let lonely = registered_user(&stores).await;
    let sessions = &stores.sessions;
    let (first, second) = (session_for(user.id), session_for(user.id));
    let revoked_before = session_for(user.id);
    for session in [&first, &second, &revoked_before] {
        sessions.create(session).await.unwrap();
    }
    sessions.revoke(revoked_before.id, at(5)).await.unwrap();

    let ended = sessions.revoke_all(user.id, None, at(50)).await.unwrap();
    assert_eq!(sorted(ended), sorted(vec![first.id, second.id]));
    for session in [&first, &second] {
        assert_eq!(
            sessions
                .by_id(session.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(at(50))
        );
    }
    assert_eq!(
        sessions
            .by_id(revoked_before.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(5))
    );
    assert_eq!(sessions.active_of(user.id, at(0)).await.unwrap(), vec![]);

    assert_eq!(
        sessions.revoke_all(lonely.id, None, at(50)).await.unwrap(),
        vec![]
    );
}
