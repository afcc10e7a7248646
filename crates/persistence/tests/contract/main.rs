//! Contract suites for the storage ports: what every adapter of
//! [`UserRepository`], [`SessionRepository`], [`VerificationStore`],
//! [`PasswordResetStore`], [`InviteStore`], [`RoomRepository`],
//! [`MembershipRepository`], [`MessageRepository`] and [`EventLog`] must do,
//! as documented on the traits.
//!
//! Each suite (`users`, `sessions`, `verifications`, `resets`, `invites`;
//! `rooms`, `memberships`, `messages`, `reactions`, `read_markers`, `search`,
//! `events`) is a set of test bodies written once
//! against the port traits. [`contract_suite!`] turns the account suites into
//! one `#[tokio::test]` per body for one adapter, given a factory that builds
//! that adapter's [`Stores`]; [`chat_contract_suite!`] does the same for the
//! chat suites, given a factory of [`ChatStores`]. Each adapter has ONE
//! factory of [`Stores`], wired the way the server wires it; the chat suites
//! take its [`Stores::chat`]. Adding an adapter is one more invocation of each:
//!
//! ```ignore
//! contract_suite!(postgres, postgres_stores);
//! // where `async fn postgres_stores() -> Option<Stores>` hands out stores
//! // over a fresh database, or `None` when the test must be skipped.
//!
//! mod chat {
//!     use super::*;
//!     chat_contract_suite!(postgres, postgres_chat_stores);
//!     // `async fn postgres_chat_stores() -> Option<ChatStores>`: the
//!     // `chat` field of `postgres_stores()`.
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

mod events;
mod fixtures;
mod group_commit;
mod invites;
mod memberships;
mod messages;
mod reactions;
mod read_markers;
mod resets;
mod rooms;
mod search;
mod sessions;
mod users;
mod verifications;

use std::sync::Arc;

use p_chat_domain::ports::{
    EventLog, InviteStore, MembershipRepository, MessageRepository, PasswordResetStore,
    RoomRepository, SessionRepository, UserRepository, VerificationStore,
};
use p_chat_persistence::memory::{MemoryAccounts, MemoryChat, MemorySessions};
use p_chat_persistence::postgres::testing::TestDatabase;
use p_chat_persistence::postgres::{
    PgEvents, PgInvites, PgMemberships, PgMessages, PgResets, PgRooms, PgSessions, PgUsers,
    PgVerifications,
};

/// One adapter's implementation of every storage port, over one backing store
/// (so that sessions, verifications, resets, invitations and memberships may
/// reference users, as SQL foreign keys require, and so that registration
/// and account deletion can reach memberships atomically).
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub users: Arc<dyn UserRepository>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Pending email verifications.
    pub verifications: Arc<dyn VerificationStore>,
    /// Pending password resets.
    pub resets: Arc<dyn PasswordResetStore>,
    /// Invitations to register.
    pub invites: Arc<dyn InviteStore>,
    /// The chat ports over the same backing store (its `users` is the one
    /// above): to give accounts rooms, memberships and messages.
    pub chat: ChatStores,
    /// Whatever must outlive the test for the stores to work (a throwaway
    /// database, dropped with the last clone).
    pub _keep_alive: Option<Arc<TestDatabase>>,
}

/// One adapter's implementation of the chat ports, over one backing store
/// (rooms, memberships, messages and room events are one store whose
/// cross-port operations are atomic; all but the events reference users,
/// as SQL foreign keys require).
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
    /// The rooms' event logs, which every change of the three above writes.
    pub events: Arc<dyn EventLog>,
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
                register_stores_the_account_and_its_verification,
                register_of_a_taken_email_is_refused,
                register_replaces_a_stale_unverified_registration,
                register_with_an_invite_uses_it,
                register_with_a_refused_invite_stores_nothing,
                register_failing_at_the_verification_leaves_nothing,
                concurrent_registrations_of_one_email_admit_exactly_one,
                concurrent_replacements_of_a_stale_registration_admit_exactly_one,
                concurrent_registrations_with_a_one_use_invite_admit_exactly_one,
                list_orders_by_email_and_pages_after_an_email,
                list_orders_emails_by_code_point,
                list_filters_by_email_or_display_name_case_insensitively,
                list_takes_the_filter_literally,
                set_password_hash_returns_the_updated_user,
                set_role_returns_the_updated_user,
                set_disabled_keeps_the_first_time_and_enables_again,
                set_disabled_never_enables_a_deleted_account,
                set_disabled_of_unknown_user_is_none,
                anonymise_of_unknown_user_is_missing,
                anonymise_of_a_room_owner_is_refused_and_changes_nothing,
                anonymise_replaces_the_account_and_leaves_its_rooms,
                record_last_seen_replaces_the_time_of_one_account,
            ]);

            contract_suite!(@cases sessions [
                created_sessions_round_trip,
                by_id_of_unknown_session_is_none,
                rotate_with_current_hash_replaces_hash_expiry_and_last_use,
                rotate_with_stale_hash_changes_nothing,
                concurrent_rotations_from_one_hash_admit_exactly_one,
                rotate_of_revoked_session_is_refused,
                rotate_of_unknown_session_is_false,
                revoke_keeps_the_first_time,
                revoke_of_unknown_session_is_ok,
                active_of_lists_live_sessions_most_recently_used_first,
                active_of_a_user_without_sessions_is_empty,
                revoke_all_ends_every_other_session_and_returns_their_ids,
                revoke_all_without_keep_ends_every_session,
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

            contract_suite!(@cases resets [
                inserted_reset_is_taken_back,
                duplicate_token_hash_is_refused,
                take_is_single_use,
                concurrent_takes_admit_exactly_one,
                take_of_unknown_hash_is_none,
                take_returns_expired_resets,
                a_new_password_voids_every_reset_of_that_user_only,
            ]);

            contract_suite!(@cases invites [
                inserted_invites_round_trip,
                duplicate_id_or_token_hash_is_refused,
                active_lists_admitting_invites_newest_first,
                revoke_removes_the_invite,
                revoked_invite_can_be_inserted_again,
            ]);
        }
    };
}

/// Instantiates every chat contract suite for one adapter.
///
/// `chat_contract_suite!(name, factory)` is [`contract_suite!`] for the chat
/// ports: it expands to a module `name` holding one multi-threaded
/// `#[tokio::test]` per body of the `rooms`, `memberships`, `messages` and
/// `events` suites, and `factory` returns a future of `Option<ChatStores>` (called once
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
                share_room_is_true_for_members_of_one_room,
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
                reply_to_and_mentions_round_trip,
                tombstone_clears_mentions_and_reactions_and_keeps_reply_to,
                deleting_a_room_takes_replies_mentions_and_reactions_along,
            ]);

            contract_suite!(@cases reactions [
                reactions_show_in_order_of_first_add_and_of_reacting,
                repeated_adds_and_missing_removes_change_nothing,
                reactions_to_missing_or_deleted_messages_are_refused,
                a_message_takes_at_most_twenty_distinct_emoji,
                concurrent_togglers_of_one_emoji_count_exactly,
                the_emoji_limit_is_exact_under_a_race,
                a_repeated_send_shows_the_reactions,
            ]);

            contract_suite!(@cases read_markers [
                mark_read_moves_the_marker_only_forward,
                concurrent_marks_never_move_the_marker_backward,
                unread_counts_exclude_own_and_deleted_messages,
                unread_lists_the_rooms_of_the_member,
                unread_counts_stop_at_the_cap,
                receipts_list_every_members_marker_in_joined_order,
                leaving_clears_the_marker,
                which_members_keeps_the_members_once,
            ]);

            contract_suite!(@cases search [
                search_finds_every_word_in_the_members_rooms_only,
                search_filters_by_room_and_time_and_limits,
                better_matches_rank_first_then_newest,
                only_the_newest_matches_are_ranked,
            ]);

            contract_suite!(@cases events [
                positions_are_gap_free_and_unique_under_concurrent_writers,
                an_event_is_stored_iff_its_change_is,
                after_pages_the_log_with_its_messages_as_they_are_now,
                prune_removes_a_prefix_of_each_log,
                a_deleted_room_takes_its_log_along,
                anonymise_logs_the_rooms_left_and_renames_the_account_in_its_events,
            ]);
        }
    };
}

contract_suite!(memory, || async { Some(memory_stores()) });

contract_suite!(postgres, postgres_stores);

/// The chat suites, one module per adapter (`chat::memory`, ...).
mod chat {
    #[allow(unused_imports)]
    use super::*;

    chat_contract_suite!(memory, || async { Some(memory_stores().chat) });

    chat_contract_suite!(postgres, postgres_chat_stores);
}

/// The in-memory stores, wired as the server wires them: one chat state, the
/// account state linked to it, and each port a view of one of the two.
fn memory_stores() -> Stores {
    let chat = MemoryChat::default();
    let accounts = MemoryAccounts::new(&chat);
    let users: Arc<dyn UserRepository> = Arc::new(accounts.users());
    Stores {
        users: Arc::clone(&users),
        sessions: Arc::new(MemorySessions::default()),
        verifications: Arc::new(accounts.verifications()),
        resets: Arc::new(accounts.resets()),
        invites: Arc::new(accounts.invites()),
        chat: ChatStores {
            users,
            rooms: Arc::new(chat.rooms()),
            memberships: Arc::new(chat.memberships()),
            messages: Arc::new(chat.messages()),
            events: Arc::new(chat.events()),
            _keep_alive: None,
        },
        _keep_alive: None,
    }
}

/// The PostgreSQL stores over a fresh database, or `None` when the test must
/// be skipped.
async fn postgres_stores() -> Option<Stores> {
    let database = Arc::new(TestDatabase::create().await?);
    let store = database.store();
    let users: Arc<dyn UserRepository> = Arc::new(PgUsers::new(store.clone()));
    Some(Stores {
        users: Arc::clone(&users),
        sessions: Arc::new(PgSessions::new(store.clone())),
        verifications: Arc::new(PgVerifications::new(store.clone())),
        resets: Arc::new(PgResets::new(store.clone())),
        invites: Arc::new(PgInvites::new(store.clone())),
        chat: ChatStores {
            users,
            rooms: Arc::new(PgRooms::new(store.clone())),
            memberships: Arc::new(PgMemberships::new(store.clone())),
            messages: Arc::new(PgMessages::new(store.clone())),
            events: Arc::new(PgEvents::new(store)),
            _keep_alive: Some(Arc::clone(&database)),
        },
        _keep_alive: Some(database),
    })
}

/// The PostgreSQL chat stores over a fresh database (those of
/// [`postgres_stores`]), or `None` when the test must be skipped.
async fn postgres_chat_stores() -> Option<ChatStores> {
    Some(postgres_stores().await?.chat)
}
