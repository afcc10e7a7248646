//! Builders for the values the suites store. Every builder draws fresh ids,
//! emails and token hashes, so tests never collide in a shared store; times
//! are fixed and cut to microseconds, the precision every store must keep.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{DisplayName, Email, PasswordHash, User, UserId};
use p_chat_domain::verification::EmailVerification;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::Stores;

/// A fixed instant `offset_seconds` after 2027-01-15T08:00:00.123456Z. The
/// sub-second part is deliberately not zero, so a store that drops
/// microseconds fails the round-trip tests.
pub fn at(offset_seconds: i64) -> DateTime<Utc> {
    let base = Utc
        .timestamp_opt(1_800_000_000, 123_456_000)
        .single()
        .expect("a valid base instant");
    base + TimeDelta::seconds(offset_seconds)
}

/// An instant long past by any wall clock (2000-01-01T00:00:00.654321Z).
pub fn long_ago() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
        + TimeDelta::microseconds(654_321)
}

/// An email no other test uses.
pub fn unique_email() -> Email {
    Email::parse(&format!("user-{}@example.com", Uuid::new_v4())).expect("a valid email")
}

/// A token hash no other test uses.
pub fn unique_token_hash() -> TokenHash {
    TokenHash::of(&Uuid::new_v4().to_string())
}

/// A display name, parsed.
pub fn name(raw: &str) -> DisplayName {
    DisplayName::parse(raw).expect("a valid display name")
}

/// An unverified account with a fresh id and `email`.
pub fn user_with_email(email: Email) -> User {
    User {
        id: UserId::new(),
        display_name: DisplayName::from_email(&email),
        email,
        password_hash: PasswordHash::new(format!("$2b$04${}", Uuid::new_v4().simple())),
        email_verified_at: None,
        created_at: at(0),
    }
}

/// An unverified account with a fresh id and a unique email.
pub fn user() -> User {
    user_with_email(unique_email())
}

/// Inserts a fresh account through the users port (sessions and
/// verifications must reference an existing user) and returns it.
pub async fn registered_user(stores: &Stores) -> User {
    let user = user();
    stores
        .users
        .insert(&user)
        .await
        .expect("inserting a fresh user succeeds");
    user
}

/// A live session of `user_id`, with a fresh id and refresh-token hash.
pub fn session_for(user_id: UserId) -> LoginSession {
    LoginSession {
        id: SessionId::new(),
        user_id,
        refresh_token_hash: unique_token_hash(),
        created_at: at(0),
        expires_at: at(3_600),
        revoked_at: None,
    }
}

/// A pending verification of `user_id`, with a fresh token hash.
pub fn verification_for(user_id: UserId) -> EmailVerification {
    EmailVerification {
        token_hash: unique_token_hash(),
        user_id,
        expires_at: at(86_400),
    }
}

/// Runs `racers` operations at once: each on its own task, all released
/// together by a barrier so they truly overlap. `start(i)` builds racer `i`'s
/// operation; the outcomes come back in completion order.
pub async fn race<T, F, Fut>(racers: usize, start: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = JoinSet::new();
    for racer in 0..racers {
        let barrier = Arc::clone(&barrier);
        let operation = start(racer);
        tasks.spawn(async move {
            barrier.wait().await;
            operation.await
        });
    }
    tasks.join_all().await
}
