//! Contract suites for the storage ports: what every adapter of
//! [`UserRepository`], [`SessionRepository`], [`VerificationStore`],
//! [`RoomRepository`], [`MembershipRepository`] and [`MessageRepository`] must
//! do, as documented on the traits.
//!
//! Each suite (`users`, `sessions`, `verifications`; `rooms`, `memberships`,
//! `messages`) is a set of test bodies written once against the port traits.
//! [`contract_suite!`] turns the account suites into one `#[tokio::test]` per
//! body for one adapter, given a factory that builds that adapter's
//! [`Stores`]; [`chat_contract_suite!`] does the same for the chat suites,
//! given a factory of [`ChatStores`]. Adding an adapter is one more invocation
//! of each:
//!
//! ```ignore
//! contract_suite!(postgres, postgres_stores);
//! // where `async fn postgres_stores() -> Option<Stores>` hands out stores
//! // over a fresh database, or `None` when the test must be skipped.
//!
//! mod chat {
//!     use super::*;
//!     chat_contract_suite!(postgres, postgres_chat_stores);
//!     // likewise, `async fn postgres_chat_stores() -> Option<ChatStores>`.
//! }
//! ```
//!
//! The bodies never assume an empty store: every value they write carries a
//! fresh id, email, token hash, room name or client message id, so tests
//! could share one database.
//!
//! `group_commit` holds the PostgreSQL message store's own tests (its group
//! commit, beyond the port's contract), built on the same fixtures.

// Test code: a failed `unwrap` or `expect` is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod group_commit;
mod memberships;
mod messages;
mod rooms;
mod sessions;
mod users;
mod verifications;

use std::sync::Arc;

use p_chat_domain::ports::{
    MembershipRepository, MessageRepository, RoomRepository, SessionRepository, UserRepository,
    VerificationStore,
};
use p_chat_persistence::memory::{MemoryChat, MemorySessions, MemoryUsers, MemoryVerifications};
use p_chat_persistence::postgres::testing::TestDatabase;
use p_chat_persistence::postgres::{
    PgMemberships, PgMessages, PgRooms, PgSessions, PgUsers, PgVerifications,
};

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

/// One adapter's implementation of the chat ports, over one backing store
/// (rooms, memberships and messages are one store whose cross-port operations
/// are atomic; all three reference users, as SQL foreign keys require).
#[derive(Clone)]
pub struct ChatStores {
    /// Accounts: every room owner, member and author is inserted here first.
    pub users: Arc<dyn UserRepository>,
    /// Rooms.
    pub rooms: Arc<dyn RoomRepository>,
    /// Who is in which room.
    pub memberships: Arc<dyn MembershipRepository>,
    /// Messages.
    pub messages: Arc<dyn MessageRepository>,
    /// Whatever must outlive the test for the stores to work (a throwaway
    /// database, dropped with the last clone).
    pub _keep_alive: Option<Arc<TestDatabase>>,
}

/// Instantiates every account contract suite for one adapter.
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
                by_ids_returns_exactly_the_existing_users,
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

/// Instantiates every chat contract suite for one adapter.
///
/// `chat_contract_suite!(name, factory)` is [`contract_suite!`] for the chat
/// ports: it expands to a module `name` holding one multi-threaded
/// `#[tokio::test]` per body of the `rooms`, `memberships` and `messages`
/// suites, and `factory` returns a future of `Option<ChatStores>` (called once
/// per test; `None` skips it). Invoke it inside the `chat` module below, so
/// that its `name` (`memory`, `postgres`) does not clash with the account
/// suites' module of the same adapter: tests are named e.g.
/// `chat::memory::messages::concurrent_senders_get_gap_free_seqs`.
macro_rules! chat_contract_suite {
    ($adapter:ident, $factory:expr $(,)?) => {
        mod $adapter {
            #[allow(unused_imports)]
            use super::*;

            async fn stores() -> Option<crate::ChatStores> {
                ($factory)().await
            }

            contract_suite!(@cases rooms [
                created_rooms_round_trip_with_their_owner,
                by_id_of_unknown_room_is_none,
                with_membership_reads_the_room_and_one_users_membership,
                update_details_changes_only_name_topic_and_visibility,
                update_details_of_unknown_room_is_none,
                delete_removes_the_room_with_its_members_and_messages,
                delete_of_unknown_room_is_false,
                of_member_lists_the_rooms_of_a_member_oldest_first,
                search_public_finds_public_rooms_by_name_case_insensitively,
                search_public_takes_the_query_literally,
                empty_search_matches_every_public_room,
                open_direct_creates_the_room_of_a_pair_once,
                open_direct_re_adds_users_who_left,
                concurrent_open_direct_of_one_pair_yields_one_room,
                open_direct_after_delete_creates_a_new_room,
            ]);

            contract_suite!(@cases memberships [
                get_of_a_non_member_is_none,
                added_memberships_round_trip,
                duplicate_membership_is_refused,
                concurrent_adds_of_one_membership_admit_exactly_one,
                remove_reports_whether_the_user_was_a_member,
                set_role_changes_only_the_role,
                set_role_of_a_non_member_is_none,
                transfer_ownership_moves_the_owner_role_and_room_owner,
                refused_transfers_of_ownership_change_nothing,
                list_is_in_joined_order,
            ]);

            contract_suite!(@cases messages [
                append_to_a_missing_room_is_none,
                first_append_gets_seq_1_and_round_trips,
                seqs_are_consecutive_per_room_and_independent_between_rooms,
                concurrent_senders_get_gap_free_seqs,
                repeated_client_msg_id_returns_the_first_message,
                concurrent_repeats_of_one_client_msg_id_store_one_message,
                client_msg_id_is_scoped_to_author_and_room,
                messages_without_client_msg_id_are_never_deduplicated,
                page_without_cursor_holds_the_newest_messages,
                page_after_a_seq_reads_forward,
                page_before_a_seq_reads_backward,
                page_after_and_before_bounds_the_window,
                page_of_an_empty_room_is_empty,
                edit_replaces_the_body_and_sets_edited_at,
                edit_of_a_deleted_or_missing_message_is_none,
                tombstone_clears_the_body_and_keeps_the_seq,
                tombstone_of_a_missing_message_is_none,
                by_id_in_the_wrong_room_is_none,
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

/// The chat suites, one module per adapter (`chat::memory`, ...).
mod chat {
    #[allow(unused_imports)]
    use super::*;

    chat_contract_suite!(memory, || async {
        // One shared state behind the three chat ports, as in the server.
        let chat = MemoryChat::default();
        Some(ChatStores {
            users: Arc::new(MemoryUsers::default()),
            rooms: Arc::new(chat.rooms()),
            memberships: Arc::new(chat.memberships()),
            messages: Arc::new(chat.messages()),
            _keep_alive: None,
        })
    });

    chat_contract_suite!(postgres, postgres_chat_stores);
}

/// The PostgreSQL chat stores over a fresh database, or `None` when the test
/// must be skipped.
async fn postgres_chat_stores() -> Option<ChatStores> {
    let database = TestDatabase::create().await?;
    let store = database.store();
    Some(ChatStores {
        users: Arc::new(PgUsers::new(store.clone())),
        rooms: Arc::new(PgRooms::new(store.clone())),
        memberships: Arc::new(PgMemberships::new(store.clone())),
        messages: Arc::new(PgMessages::new(store)),
        _keep_alive: Some(Arc::new(database)),
    })
}
