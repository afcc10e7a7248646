//! Contract suites for the storage ports: what every adapter of
//! [`UserRepository`], [`SessionRepository`] and [`VerificationStore`] must do,
//! as documented on the traits.
//!
//! Each suite (`users`, `sessions`, `verifications`) is a set of test bodies
//! written once against the port traits. [`contract_suite!`] turns them into
//! one `#[tokio::test]` per body for one adapter, given a factory that builds
//! that adapter's [`Stores`]. Adding an adapter is one more invocation:
//!
//! ```ignore
//! contract_suite!(postgres, postgres_stores);
//! // where `async fn postgres_stores() -> Option<Stores>` hands out stores
//! // over a fresh database, or `None` when the test must be skipped.
//! ```
//!
//! The bodies never assume an empty store: every value they write carries a
//! fresh id, email and token hash, so tests could share one database.

// Test code: a failed `unwrap` or `expect` is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod sessions;
mod users;
mod verifications;

use std::sync::Arc;

use p_chat_domain::ports::{SessionRepository, UserRepository, VerificationStore};
use p_chat_persistence::memory::{MemorySessions, MemoryUsers, MemoryVerifications};
use p_chat_persistence::postgres::testing::TestDatabase;
use p_chat_persistence::postgres::{PgSessions, PgUsers, PgVerifications};

/// One adapter's implementation of every storage port, over one backing store
/// (so that sessions and verifications may reference users, as SQL foreign
/// keys require).
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub users: Arc<dyn UserRepository>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Pending email verifications.
    pub verifications: Arc<dyn VerificationStore>,
    /// Whatever must outlive the test for the stores to work (a throwaway
    /// database, dropped with the last clone).
    pub _keep_alive: Option<Arc<TestDatabase>>,
}

/// Instantiates every contract suite for one adapter.
///
/// `contract_suite!(name, factory)` expands to a module `name` holding one
/// multi-threaded `#[tokio::test]` per test body, e.g.
/// `name::sessions::concurrent_rotations_from_one_hash_admit_exactly_one`.
/// `factory` is any expression callable with no argument that returns a
/// future of `Option<Stores>`: an `async fn` path or an `|| async { .. }`
/// closure. It is called once per test, on that test's runtime; `None` means
/// the adapter is unavailable here and the test is skipped (the factory says so).
///
/// A body missing from the lists below is reported by the compiler as dead
/// code (and `clippy -D warnings` fails), so none can be forgotten.
macro_rules! contract_suite {
    (@cases $suite:ident [$($case:ident),* $(,)?]) => {
        mod $suite {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(stores) = super::stores().await else {
                        return;
                    };
                    crate::$suite::$case(stores).await;
                }
            )*
        }
    };
    ($adapter:ident, $factory:expr $(,)?) => {
        mod $adapter {
            #[allow(unused_imports)]
            use super::*;

            async fn stores() -> Option<crate::Stores> {
                ($factory)().await
            }

            contract_suite!(@cases users [
                inserted_users_round_trip_by_id_and_email,
                duplicate_email_is_refused,
                concurrent_inserts_of_one_email_admit_exactly_one,
                lookups_of_unknown_users_are_none,
                mark_verified_keeps_the_first_time,
                mark_verified_of_unknown_user_is_false,
                set_display_name_returns_the_updated_user,
                set_display_name_of_unknown_user_is_none,
            ]);

            contract_suite!(@cases sessions [
                created_sessions_round_trip,
                by_id_of_unknown_session_is_none,
                rotate_with_current_hash_replaces_hash_and_expiry,
                rotate_with_stale_hash_changes_nothing,
                concurrent_rotations_from_one_hash_admit_exactly_one,
                rotate_of_revoked_session_is_refused,
                rotate_of_unknown_session_is_false,
                revoke_keeps_the_first_time,
                revoke_of_unknown_session_is_ok,
            ]);

            contract_suite!(@cases verifications [
                inserted_verification_is_taken_back,
                take_is_single_use,
                concurrent_takes_admit_exactly_one,
                duplicate_token_hash_is_refused,
                take_of_unknown_hash_is_none,
                take_returns_expired_verifications,
                verifications_of_one_user_are_independent,
            ]);
        }
    };
}

contract_suite!(memory, || async {
    Some(Stores {
        users: Arc::new(MemoryUsers::default()),
        sessions: Arc::new(MemorySessions::default()),
        verifications: Arc::new(MemoryVerifications::default()),
        _keep_alive: None,
    })
});

contract_suite!(postgres, || async {
    let database = TestDatabase::create().await?;
    let store = database.store();
    Some(Stores {
        users: Arc::new(PgUsers::new(store.clone())),
        sessions: Arc::new(PgSessions::new(store.clone())),
        verifications: Arc::new(PgVerifications::new(store)),
        _keep_alive: Some(Arc::new(database)),
    })
});
