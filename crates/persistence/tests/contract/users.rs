//! The [`UserRepository`](p_chat_domain::ports::UserRepository) contract.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::message::NewMessage;
use p_chat_domain::ports::{Anonymisation, Registered, StoreError, UserQuery};
use p_chat_domain::registration::Invite;
use p_chat_domain::room::{Membership, Role, RoomId, Visibility};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{
    Anonymised, Email, InstanceRole, PasswordHash, User, UserId, UserSearch,
};
use p_chat_domain::verification::EmailVerification;

use crate::Stores;
use crate::fixtures::{
    added_member, assert_unlogged, at, chat_user, created_room, direct_room, events_after, invite,
    member, membership, name, new_message, owner_membership, people, pos, race, stored_room,
    unique_email, unique_password_hash, unique_token_hash, unique_word, user, user_with_email,
    verification_for,
};

/// An inserted account reads back equal, every field included (timestamps to
/// the microsecond, a missing verification time, non-ASCII names, the
/// instance role, disabled and deleted times), by id and by email, and each
/// lookup finds its own account.
pub async fn inserted_users_round_trip_by_id_and_email(stores: Stores) {
    let users = stores.users;
    let unverified = user();
    let verified = User {
        display_name: name("Zoë Ångström 🚀"),
        email_verified_at: Some(at(5)),
        created_at: at(-86_400),
        ..user()
    };
    let disabled_admin = User {
        email_verified_at: Some(at(5)),
        role: InstanceRole::Admin,
        disabled_at: Some(at(7)),
        ..user()
    };
    let deleted = User {
        email_verified_at: Some(at(5)),
        disabled_at: Some(at(8)),
        deleted_at: Some(at(9)),
        ..user()
    };
    for account in [&unverified, &verified, &disabled_admin, &deleted] {
        users.insert(account).await.unwrap();
    }

    for expected in [&unverified, &verified, &disabled_admin, &deleted] {
        assert_eq!(
            users.by_id(expected.id).await.unwrap().as_ref(),
            Some(expected)
        );
        assert_eq!(
            users.by_email(&expected.email).await.unwrap().as_ref(),
            Some(expected)
        );
    }
}

/// A second account with a taken email is refused with `Duplicate` and
/// leaves no trace; the first account is untouched.
pub async fn duplicate_email_is_refused(stores: Stores) {
    let users = stores.users;
    let first = user();
    users.insert(&first).await.unwrap();
    let second = User {
        id: UserId::new(),
        display_name: name("Someone Else"),
        email_verified_at: Some(at(1)),
        ..first.clone()
    };

    assert_eq!(users.insert(&second).await, Err(StoreError::Duplicate));
    assert_eq!(
        users.by_email(&first.email).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(users.by_id(first.id).await.unwrap(), Some(first));
    assert_eq!(users.by_id(second.id).await.unwrap(), None);
}

/// Of 20 concurrent inserts of one email (different ids), exactly one
/// succeeds and the other 19 get `Duplicate`; the winner is the one stored.
pub async fn concurrent_inserts_of_one_email_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 20;
    let email = unique_email();
    let outcomes = race(RACERS, |_| {
        let users = Arc::clone(&stores.users);
        let candidate = user_with_email(email.clone());
        async move {
            let outcome = users.insert(&candidate).await;
            (candidate, outcome)
        }
    })
    .await;

    let (winners, losers): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|(_, outcome)| outcome.is_ok());
    assert_eq!(winners.len(), 1, "exactly one insert must succeed");
    assert_eq!(losers.len(), RACERS - 1);
    for (_, outcome) in &losers {
        assert_eq!(outcome, &Err(StoreError::Duplicate));
    }

    let winner = &winners[0].0;
    assert_eq!(
        stores.users.by_email(&email).await.unwrap().as_ref(),
        Some(winner)
    );
    for (loser, _) in &losers {
        assert_eq!(stores.users.by_id(loser.id).await.unwrap(), None);
    }
}

/// Lookups of an id or email nobody has are `None`, also in a store that
/// holds other accounts.
pub async fn lookups_of_unknown_users_are_none(stores: Stores) {
    let users = stores.users;
    users.insert(&user()).await.unwrap();

    assert_eq!(users.by_email(&unique_email()).await.unwrap(), None);
    assert_eq!(users.by_id(UserId::new()).await.unwrap(), None);
}

/// `mark_verified` records the time once: a second call still returns `true`
/// (the account exists) but keeps the first time. Other accounts and other
/// fields are untouched.
pub async fn mark_verified_keeps_the_first_time(stores: Stores) {
    let users = stores.users;
    let account = user();
    let bystander = user();
    users.insert(&account).await.unwrap();
    users.insert(&bystander).await.unwrap();
    let verified = User {
        email_verified_at: Some(at(10)),
        ..account.clone()
    };

    assert!(users.mark_verified(account.id, at(10)).await.unwrap());
    assert_eq!(
        users.by_id(account.id).await.unwrap(),
        Some(verified.clone())
    );

    assert!(users.mark_verified(account.id, at(20)).await.unwrap());
    assert_eq!(
        users.by_id(account.id).await.unwrap(),
        Some(verified.clone())
    );
    assert_eq!(
        users.by_email(&account.email).await.unwrap(),
        Some(verified)
    );

    assert_eq!(users.by_id(bystander.id).await.unwrap(), Some(bystander));
}

/// `mark_verified` of an unknown id returns `false` and creates nothing.
pub async fn mark_verified_of_unknown_user_is_false(stores: Stores) {
    let users = stores.users;
    users.insert(&user()).await.unwrap();
    let unknown = UserId::new();

    assert!(!users.mark_verified(unknown, at(10)).await.unwrap());
    assert_eq!(users.by_id(unknown).await.unwrap(), None);
}

/// `set_display_name` returns the whole updated account, and the rename is
/// what later lookups see; other fields and other accounts are untouched.
pub async fn set_display_name_returns_the_updated_user(stores: Stores) {
    let users = stores.users;
    let account = User {
        email_verified_at: Some(at(3)),
        ..user()
    };
    let bystander = user();
    users.insert(&account).await.unwrap();
    users.insert(&bystander).await.unwrap();
    let renamed = User {
        display_name: name("Grace Hopper"),
        ..account.clone()
    };

    assert_eq!(
        users
            .set_display_name(account.id, &renamed.display_name)
            .await
            .unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(
        users.by_id(account.id).await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(users.by_email(&account.email).await.unwrap(), Some(renamed));
    assert_eq!(users.by_id(bystander.id).await.unwrap(), Some(bystander));
}

/// `set_display_name` of an unknown id is `None` and creates nothing.
pub async fn set_display_name_of_unknown_user_is_none(stores: Stores) {
    let users = stores.users;
    users.insert(&user()).await.unwrap();
    let unknown = UserId::new();

    assert_eq!(
        users
            .set_display_name(unknown, &name("Nobody"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(users.by_id(unknown).await.unwrap(), None);
}

/// `by_ids` returns exactly the existing accounts among the ids, each equal
/// to what was inserted: unknown ids are ignored, accounts not asked for are
/// left out, and no ids (or only unknown ones) give no account.
pub async fn by_ids_returns_exactly_the_existing_users(stores: Stores) {
    let users = stores.users;
    let (first, second, third) = (user(), user(), user());
    for account in [&first, &second, &third] {
        users.insert(account).await.unwrap();
    }
    let by_id = |mut found: Vec<User>| {
        found.sort_by_key(|account| account.id);
        found
    };

    let mut expected = vec![first.clone(), third.clone()];
    expected.sort_by_key(|account| account.id);
    assert_eq!(
        by_id(
            users
                .by_ids(&[third.id, UserId::new(), first.id])
                .await
                .unwrap()
        ),
        expected
    );

    let mut everyone = vec![first.clone(), second.clone(), third.clone()];
    everyone.sort_by_key(|account| account.id);
    assert_eq!(
        by_id(
            users
                .by_ids(&[second.id, first.id, third.id])
                .await
                .unwrap()
        ),
        everyone
    );

    assert_eq!(users.by_ids(&[]).await.unwrap(), Vec::<User>::new());
    assert_eq!(
        users.by_ids(&[UserId::new(), UserId::new()]).await.unwrap(),
        Vec::<User>::new()
    );
}

/// The `stale_before` of the registrations below: an unverified account
/// registered at or before it is a stale registration.
fn stale_before() -> DateTime<Utc> {
    at(-3_600)
}

/// The `now` of the registrations below (when fixtures' accounts are
/// registered, so a fresh one is never stale).
fn now() -> DateTime<Utc> {
    at(0)
}

/// Registers `account` with `pending` (and the invitation under `invite`)
/// at [`now`], with [`stale_before`].
async fn register_with(
    stores: &Stores,
    account: &User,
    pending: &EmailVerification,
    invite: Option<&TokenHash>,
) -> Result<Registered, StoreError> {
    stores
        .users
        .register(account, pending, invite.cloned(), stale_before(), now())
        .await
}

/// The uses `invite` has left as stored, if it still has any (read through
/// `active` at an instant before every invitation here expires).
async fn uses_left(stores: &Stores, invite: &Invite) -> Option<u32> {
    stores
        .invites
        .active(crate::fixtures::long_ago())
        .await
        .unwrap()
        .into_iter()
        .find(|stored| stored.id == invite.id)
        .map(|stored| stored.uses_left)
}

/// Stores `invite` and returns it.
async fn stored_invite(stores: &Stores, invite: Invite) -> Invite {
    stores.invites.insert(&invite).await.unwrap();
    invite
}

/// An unverified registration of `email` made at `created_at` (stale when
/// that is at or before [`stale_before`]), with its verification, and a
/// member of a room: returns the account, its verification and the room.
async fn registration_in_a_room(
    stores: &Stores,
    email: &Email,
    created_at: DateTime<Utc>,
) -> (User, EmailVerification, RoomId) {
    let account = User {
        created_at,
        ..user_with_email(email.clone())
    };
    let pending = verification_for(account.id);
    assert_eq!(
        register_with(stores, &account, &pending, None).await,
        Ok(Registered::Created)
    );
    let (_, room) = created_room(&stores.chat, Visibility::Public).await;
    stores
        .chat
        .memberships
        .add(&member(
            &account,
            membership(room.id, account.id, Role::Member, at(1)),
        ))
        .await
        .unwrap();
    (account, pending, room.id)
}

/// `register` without an invitation stores the account as given and its
/// verification (which `take` then hands back), and says `Created`.
pub async fn register_stores_the_account_and_its_verification(stores: Stores) {
    let account = user();
    let pending = verification_for(account.id);

    assert_eq!(
        register_with(&stores, &account, &pending, None).await,
        Ok(Registered::Created)
    );
    assert_eq!(
        stores.users.by_id(account.id).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        stores.users.by_email(&account.email).await.unwrap(),
        Some(account)
    );
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        Some(pending)
    );
}

/// An existing account of the email blocks a registration (`EmailTaken`,
/// nothing stored, an invitation named not used, the existing account and
/// its verification untouched)
/// when it is verified (however old) or when it is an unverified one
/// registered after `stale_before`.
pub async fn register_of_a_taken_email_is_refused(stores: Stores) {
    let verified_old = User {
        email_verified_at: Some(stale_before()),
        created_at: stale_before() - chrono::TimeDelta::days(30),
        ..user()
    };
    let unverified_fresh = User {
        created_at: stale_before() + chrono::TimeDelta::microseconds(1),
        ..user()
    };
    let invitation = stored_invite(&stores, invite(2, at(3_600))).await;
    for existing in [verified_old, unverified_fresh] {
        let existing_pending = verification_for(existing.id);
        assert_eq!(
            register_with(&stores, &existing, &existing_pending, None).await,
            Ok(Registered::Created)
        );
        let newcomer = user_with_email(existing.email.clone());
        let pending = verification_for(newcomer.id);

        assert_eq!(
            register_with(&stores, &newcomer, &pending, None).await,
            Ok(Registered::EmailTaken)
        );
        // An invitation that admits does not make the email free, and is
        // not used by the refused registration.
        assert_eq!(
            register_with(&stores, &newcomer, &pending, Some(&invitation.token_hash)).await,
            Ok(Registered::EmailTaken)
        );
        assert_eq!(uses_left(&stores, &invitation).await, Some(2));
        assert_eq!(stores.users.by_id(newcomer.id).await.unwrap(), None);
        assert_eq!(
            stores.users.by_email(&existing.email).await.unwrap(),
            Some(existing.clone())
        );
        assert_eq!(
            stores
                .verifications
                .take(&pending.token_hash)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            stores
                .verifications
                .take(&existing_pending.token_hash)
                .await
                .unwrap(),
            Some(existing_pending)
        );
    }
}

/// An unverified account registered at or before `stale_before` does not
/// block a registration of its email: it is removed with its verifications
/// and memberships (the room and its other members stay), and the new
/// account takes the email.
pub async fn register_replaces_a_stale_unverified_registration(stores: Stores) {
    for created_at in [stale_before() - chrono::TimeDelta::days(1), stale_before()] {
        let email = unique_email();
        let (stale, stale_pending, room) =
            registration_in_a_room(&stores, &email, created_at).await;
        let members_before = stores.chat.memberships.list(room).await.unwrap();
        let newcomer = user_with_email(email.clone());
        let pending = verification_for(newcomer.id);

        assert_eq!(
            register_with(&stores, &newcomer, &pending, None).await,
            Ok(Registered::Created)
        );
        assert_eq!(stores.users.by_id(stale.id).await.unwrap(), None);
        assert_eq!(
            stores.users.by_email(&email).await.unwrap(),
            Some(newcomer.clone())
        );
        assert_eq!(
            stores
                .verifications
                .take(&stale_pending.token_hash)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            stores.chat.memberships.get(room, stale.id).await.unwrap(),
            None
        );
        let others: Vec<Membership> = members_before
            .into_iter()
            .filter(|member| member.user_id != stale.id)
            .collect();
        assert_eq!(stores.chat.memberships.list(room).await.unwrap(), others);
        assert_eq!(
            stores
                .verifications
                .take(&pending.token_hash)
                .await
                .unwrap(),
            Some(pending)
        );
    }
}

/// A registration naming an invitation that admits it is `Created` and
/// uses one use of it; once used up, the invitation refuses the next one.
pub async fn register_with_an_invite_uses_it(stores: Stores) {
    let invitation = stored_invite(&stores, invite(2, at(3_600))).await;
    let hash = Some(&invitation.token_hash);

    let first = user();
    assert_eq!(
        register_with(&stores, &first, &verification_for(first.id), hash).await,
        Ok(Registered::Created)
    );
    assert_eq!(uses_left(&stores, &invitation).await, Some(1));

    let second = user();
    assert_eq!(
        register_with(&stores, &second, &verification_for(second.id), hash).await,
        Ok(Registered::Created)
    );
    assert_eq!(uses_left(&stores, &invitation).await, None);
    assert_eq!(stores.users.by_id(second.id).await.unwrap(), Some(second));

    let third = user();
    let pending = verification_for(third.id);
    assert_eq!(
        register_with(&stores, &third, &pending, hash).await,
        Ok(Registered::InviteRefused)
    );
    assert_eq!(stores.users.by_email(&third.email).await.unwrap(), None);
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        None
    );
}

/// A registration naming an unknown, expired (at `now` exactly, too), used
/// up or revoked invitation is `InviteRefused` and changes nothing: no
/// account, no verification, the invitation's uses as they were, and a
/// stale registration of the email still in place.
pub async fn register_with_a_refused_invite_stores_nothing(stores: Stores) {
    let expired_now = stored_invite(&stores, invite(3, now())).await;
    let expired = stored_invite(&stores, invite(3, now() - chrono::TimeDelta::seconds(1))).await;
    let used_up = stored_invite(&stores, invite(0, at(3_600))).await;
    let revoked = stored_invite(&stores, invite(3, at(3_600))).await;
    assert!(stores.invites.revoke(revoked.id).await.unwrap());
    let hashes = [
        unique_token_hash(),
        expired_now.token_hash.clone(),
        expired.token_hash.clone(),
        used_up.token_hash.clone(),
        revoked.token_hash.clone(),
    ];

    for hash in &hashes {
        let email = unique_email();
        let (stale, stale_pending, room) =
            registration_in_a_room(&stores, &email, stale_before()).await;
        let newcomer = user_with_email(email.clone());
        let pending = verification_for(newcomer.id);
        let fresh = user();
        let fresh_pending = verification_for(fresh.id);

        assert_eq!(
            register_with(&stores, &newcomer, &pending, Some(hash)).await,
            Ok(Registered::InviteRefused)
        );
        assert_eq!(
            register_with(&stores, &fresh, &fresh_pending, Some(hash)).await,
            Ok(Registered::InviteRefused)
        );

        for (account, pending) in [(&newcomer, &pending), (&fresh, &fresh_pending)] {
            assert_eq!(stores.users.by_id(account.id).await.unwrap(), None);
            assert_eq!(
                stores
                    .verifications
                    .take(&pending.token_hash)
                    .await
                    .unwrap(),
                None
            );
        }
        assert_eq!(stores.users.by_email(&fresh.email).await.unwrap(), None);
        assert_eq!(
            stores.users.by_email(&email).await.unwrap(),
            Some(stale.clone())
        );
        assert!(
            stores
                .chat
                .memberships
                .get(room, stale.id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            stores
                .verifications
                .take(&stale_pending.token_hash)
                .await
                .unwrap(),
            Some(stale_pending)
        );
    }
    assert_eq!(uses_left(&stores, &expired_now).await, Some(3));
    assert_eq!(uses_left(&stores, &expired).await, Some(3));
    assert_eq!(uses_left(&stores, &used_up).await, None);
    assert_eq!(uses_left(&stores, &revoked).await, None);
}

/// Fault injection: a registration whose verification cannot be stored (its
/// token hash is taken by another account's pending verification, so the
/// second write fails) fails as a whole and leaves nothing behind: no account
/// by id or email, the invitation's uses unchanged, a stale registration of
/// the email not removed, the other verification untouched. The invitation
/// then still admits a sound registration.
pub async fn register_failing_at_the_verification_leaves_nothing(stores: Stores) {
    let bystander = user();
    let taken = verification_for(bystander.id);
    assert_eq!(
        register_with(&stores, &bystander, &taken, None).await,
        Ok(Registered::Created)
    );
    let invitation = stored_invite(&stores, invite(1, at(3_600))).await;
    let hash = Some(&invitation.token_hash);

    // Without and with a stale registration of the email to replace.
    let stale_email = unique_email();
    let (stale, stale_pending, room) =
        registration_in_a_room(&stores, &stale_email, stale_before()).await;
    for email in [unique_email(), stale_email.clone()] {
        let newcomer = user_with_email(email.clone());
        let clashing = EmailVerification {
            token_hash: taken.token_hash.clone(),
            ..verification_for(newcomer.id)
        };

        let outcome = register_with(&stores, &newcomer, &clashing, hash).await;
        assert!(
            outcome.is_err(),
            "the failed write must fail the registration: {outcome:?}"
        );
        assert_eq!(stores.users.by_id(newcomer.id).await.unwrap(), None);
        assert_ne!(
            stores
                .users
                .by_email(&email)
                .await
                .unwrap()
                .map(|found| found.id),
            Some(newcomer.id)
        );
        assert_eq!(uses_left(&stores, &invitation).await, Some(1));
    }
    assert_eq!(
        stores.users.by_email(&stale_email).await.unwrap(),
        Some(stale.clone())
    );
    assert!(
        stores
            .chat
            .memberships
            .get(room, stale.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        stores
            .verifications
            .take(&stale_pending.token_hash)
            .await
            .unwrap(),
        Some(stale_pending)
    );
    assert_eq!(
        stores.verifications.take(&taken.token_hash).await.unwrap(),
        Some(taken)
    );

    let newcomer = user_with_email(stale_email.clone());
    assert_eq!(
        register_with(&stores, &newcomer, &verification_for(newcomer.id), hash).await,
        Ok(Registered::Created)
    );
    assert_eq!(uses_left(&stores, &invitation).await, None);
    assert_eq!(
        stores.users.by_email(&stale_email).await.unwrap(),
        Some(newcomer)
    );
}

/// Races `RACERS` registrations of `email` (different ids and
/// verifications): exactly one is `Created`, the others `EmailTaken`; the
/// winner holds the email and its verification is stored, the losers left
/// nothing.
async fn race_registrations_of(stores: &Stores, email: &Email) -> User {
    const RACERS: usize = 10;
    let outcomes = race(RACERS, |_| {
        let stores = stores.clone();
        let candidate = user_with_email(email.clone());
        let pending = verification_for(candidate.id);
        async move {
            let outcome = register_with(&stores, &candidate, &pending, None).await;
            (candidate, pending, outcome)
        }
    })
    .await;

    let (winners, losers): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|(.., outcome)| *outcome == Ok(Registered::Created));
    assert_eq!(winners.len(), 1, "exactly one registration must be created");
    for (candidate, pending, outcome) in &losers {
        assert_eq!(outcome, &Ok(Registered::EmailTaken));
        assert_eq!(stores.users.by_id(candidate.id).await.unwrap(), None);
        assert_eq!(
            stores
                .verifications
                .take(&pending.token_hash)
                .await
                .unwrap(),
            None
        );
    }
    let (winner, pending, _) = winners.into_iter().next().unwrap();
    assert_eq!(
        stores.users.by_email(email).await.unwrap(),
        Some(winner.clone())
    );
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        Some(pending)
    );
    winner
}

/// Of 10 concurrent registrations of one new email, exactly one is `Created`.
pub async fn concurrent_registrations_of_one_email_admit_exactly_one(stores: Stores) {
    race_registrations_of(&stores, &unique_email()).await;
}

/// Of 10 concurrent registrations of an email held by a stale registration,
/// exactly one is `Created`, and the stale account is gone.
pub async fn concurrent_replacements_of_a_stale_registration_admit_exactly_one(stores: Stores) {
    let email = unique_email();
    let (stale, _, room) = registration_in_a_room(&stores, &email, stale_before()).await;

    let winner = race_registrations_of(&stores, &email).await;
    assert_ne!(winner.id, stale.id);
    assert_eq!(stores.users.by_id(stale.id).await.unwrap(), None);
    assert_eq!(
        stores.chat.memberships.get(room, stale.id).await.unwrap(),
        None
    );
}

/// Of 10 concurrent registrations (different emails) with a one-use
/// invitation, exactly one is `Created` and the others `InviteRefused`,
/// leaving nothing; the invitation is used up.
pub async fn concurrent_registrations_with_a_one_use_invite_admit_exactly_one(stores: Stores) {
    const RACERS: usize = 10;
    let invitation = stored_invite(&stores, invite(1, at(3_600))).await;
    let outcomes = race(RACERS, |_| {
        let stores = stores.clone();
        let candidate = user();
        let pending = verification_for(candidate.id);
        let hash = invitation.token_hash.clone();
        async move {
            let outcome = register_with(&stores, &candidate, &pending, Some(&hash)).await;
            (candidate, pending, outcome)
        }
    })
    .await;

    let (winners, losers): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|(.., outcome)| *outcome == Ok(Registered::Created));
    assert_eq!(winners.len(), 1, "exactly one registration must be created");
    for (candidate, pending, outcome) in &losers {
        assert_eq!(outcome, &Ok(Registered::InviteRefused));
        assert_eq!(stores.users.by_email(&candidate.email).await.unwrap(), None);
        assert_eq!(
            stores
                .verifications
                .take(&pending.token_hash)
                .await
                .unwrap(),
            None
        );
    }
    let (winner, ..) = &winners[0];
    assert_eq!(
        stores.users.by_email(&winner.email).await.unwrap().as_ref(),
        Some(winner)
    );
    assert_eq!(uses_left(&stores, &invitation).await, None);
}

/// Inserts accounts with these local parts and display names, all at
/// `@example.com`; returns them in the given order.
async fn inserted_named(stores: &Stores, accounts: &[(String, &str)]) -> Vec<User> {
    let mut inserted = Vec::with_capacity(accounts.len());
    for (local, display) in accounts {
        let email = Email::parse(&format!("{local}@example.com")).unwrap();
        let account = User {
            display_name: name(display),
            ..user_with_email(email)
        };
        stores.users.insert(&account).await.unwrap();
        inserted.push(account);
    }
    inserted
}

/// The list of `query`, as ids.
async fn listed(
    stores: &Stores,
    contains: Option<&str>,
    after: Option<&User>,
    limit: usize,
) -> Vec<UserId> {
    let query = UserQuery {
        contains: contains.and_then(|text| UserSearch::parse(text).unwrap()),
        after: after.map(|account| account.email.clone()),
        limit,
    };
    stores
        .users
        .list(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|account| account.id)
        .collect()
}

/// `list` orders by email; `after` starts strictly after an email (keyset
/// paging), also one no account has; `limit` caps the page. Accounts come
/// back whole.
pub async fn list_orders_by_email_and_pages_after_an_email(stores: Stores) {
    let word = unique_word();
    let accounts = inserted_named(
        &stores,
        &[
            (format!("{word}-c"), "Carol"),
            (format!("{word}-a"), "Alice"),
            (format!("{word}-d"), "Dave"),
            (format!("{word}-b"), "Bob"),
        ],
    )
    .await;
    let [c, a, d, b] = [&accounts[0], &accounts[1], &accounts[2], &accounts[3]];

    assert_eq!(
        listed(&stores, Some(&word), None, 10).await,
        vec![a.id, b.id, c.id, d.id]
    );
    assert_eq!(
        listed(&stores, Some(&word), None, 2).await,
        vec![a.id, b.id]
    );
    assert_eq!(
        listed(&stores, Some(&word), Some(b), 10).await,
        vec![c.id, d.id]
    );
    assert_eq!(listed(&stores, Some(&word), Some(d), 10).await, vec![]);
    assert_eq!(listed(&stores, Some(&word), None, 0).await, vec![]);
    // Without a filter: nobody else's email sorts between two of these.
    assert_eq!(listed(&stores, None, Some(a), 2).await, vec![b.id, c.id]);
    let between = User {
        email: Email::parse(&format!("{word}-bb@example.com")).unwrap(),
        ..user()
    };
    assert_eq!(listed(&stores, None, Some(&between), 1).await, vec![c.id]);

    let page = stores
        .users
        .list(&UserQuery {
            contains: UserSearch::parse(&word).unwrap(),
            after: Some(c.email.clone()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page, vec![d.clone()]);
}

/// The order of `list` is the emails' code point order, the same in every
/// store and whatever a database's collation: `f` before `é` (which a
/// linguistic collation sorts the other way round), and paging after one
/// continues in that order.
pub async fn list_orders_emails_by_code_point(stores: Stores) {
    let word = unique_word();
    let accounts = inserted_named(
        &stores,
        &[
            (format!("{word}-é"), "Accent"),
            (format!("{word}-f"), "Plain"),
            (format!("{word}-z"), "Last"),
        ],
    )
    .await;
    let [accent, plain, last] = [&accounts[0], &accounts[1], &accounts[2]];

    assert_eq!(
        listed(&stores, Some(&word), None, 10).await,
        vec![plain.id, last.id, accent.id]
    );
    assert_eq!(
        listed(&stores, Some(&word), Some(plain), 10).await,
        vec![last.id, accent.id]
    );
    assert_eq!(
        listed(&stores, Some(&word), Some(last), 10).await,
        vec![accent.id]
    );
}

/// `contains` keeps the accounts whose email or display name contains it,
/// ignoring case on both sides.
pub async fn list_filters_by_email_or_display_name_case_insensitively(stores: Stores) {
    let word = unique_word();
    let upper = word.to_uppercase();
    let accounts = inserted_named(
        &stores,
        &[
            (format!("a-{word}"), "Alice"),
            (format!("b-{}", unique_word()), &format!("Bob {upper}")),
            (format!("c-{}", unique_word()), "Carol"),
        ],
    )
    .await;
    let (by_email, by_name) = (&accounts[0], &accounts[1]);

    assert_eq!(
        listed(&stores, Some(&word), None, 10).await,
        vec![by_email.id, by_name.id]
    );
    assert_eq!(
        listed(&stores, Some(&upper), None, 10).await,
        vec![by_email.id, by_name.id]
    );
    assert_eq!(
        listed(&stores, Some(&format!("bob {word}")), None, 10).await,
        vec![by_name.id]
    );
    assert_eq!(
        listed(&stores, Some(&format!("A-{upper}@EXAMPLE")), None, 10).await,
        vec![by_email.id]
    );
    assert_eq!(
        listed(&stores, Some(&format!("{word}!")), None, 10).await,
        vec![]
    );
}

/// `contains` is taken literally: `%`, `_` and `\` match only themselves.
pub async fn list_takes_the_filter_literally(stores: Stores) {
    let word = unique_word();
    let accounts = inserted_named(
        &stores,
        &[
            (format!("a-{}", unique_word()), &format!("100% {word}")),
            (format!("b-{}", unique_word()), &format!("100x {word}")),
            (format!("c-{}", unique_word()), &format!("a_b {word}")),
            (format!("d-{}", unique_word()), &format!("axb {word}")),
            (format!("e-{}", unique_word()), &format!("a\\b {word}")),
        ],
    )
    .await;
    let ids: Vec<UserId> = accounts.iter().map(|account| account.id).collect();

    assert_eq!(
        listed(&stores, Some(&format!("0% {word}")), None, 10).await,
        vec![ids[0]]
    );
    assert_eq!(
        listed(&stores, Some(&format!("a_b {word}")), None, 10).await,
        vec![ids[2]]
    );
    assert_eq!(
        listed(&stores, Some(&format!("a\\b {word}")), None, 10).await,
        vec![ids[4]]
    );
    assert_eq!(
        listed(&stores, Some(&format!("%{word}")), None, 10).await,
        vec![]
    );
    assert_eq!(
        listed(&stores, Some(&format!("_ {word}")), None, 10).await,
        vec![]
    );
}

/// `set_password_hash` returns the whole updated account, and the new hash
/// is what later lookups see; other fields and other accounts are untouched.
/// An unknown id is `None` and creates nothing.
pub async fn set_password_hash_returns_the_updated_user(stores: Stores) {
    let users = &stores.users;
    let account = User {
        email_verified_at: Some(at(3)),
        ..user()
    };
    let bystander = user();
    users.insert(&account).await.unwrap();
    users.insert(&bystander).await.unwrap();
    let changed = User {
        password_hash: unique_password_hash(),
        ..account.clone()
    };

    assert_eq!(
        users
            .set_password_hash(account.id, &changed.password_hash)
            .await
            .unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        users.by_id(account.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(users.by_email(&account.email).await.unwrap(), Some(changed));
    assert_eq!(users.by_id(bystander.id).await.unwrap(), Some(bystander));

    let unknown = UserId::new();
    assert_eq!(
        users
            .set_password_hash(unknown, &unique_password_hash())
            .await
            .unwrap(),
        None
    );
    assert_eq!(users.by_id(unknown).await.unwrap(), None);
}

/// `set_role` returns the whole updated account, both ways, and lookups see
/// it; other accounts are untouched. An unknown id is `None`.
pub async fn set_role_returns_the_updated_user(stores: Stores) {
    let users = &stores.users;
    let account = user();
    let bystander = user();
    users.insert(&account).await.unwrap();
    users.insert(&bystander).await.unwrap();
    let admin = User {
        role: InstanceRole::Admin,
        ..account.clone()
    };

    assert_eq!(
        users
            .set_role(account.id, InstanceRole::Admin)
            .await
            .unwrap(),
        Some(admin.clone())
    );
    assert_eq!(users.by_id(account.id).await.unwrap(), Some(admin));
    assert_eq!(
        users
            .set_role(account.id, InstanceRole::Member)
            .await
            .unwrap(),
        Some(account.clone())
    );
    assert_eq!(users.by_email(&account.email).await.unwrap(), Some(account));
    assert_eq!(users.by_id(bystander.id).await.unwrap(), Some(bystander));

    let unknown = UserId::new();
    assert_eq!(
        users.set_role(unknown, InstanceRole::Admin).await.unwrap(),
        None
    );
    assert_eq!(users.by_id(unknown).await.unwrap(), None);
}

/// `set_disabled` disables from `at`, keeps the first time when asked again,
/// and with `None` enables again; each call returns the whole updated
/// account. Other accounts are untouched.
pub async fn set_disabled_keeps_the_first_time_and_enables_again(stores: Stores) {
    let users = &stores.users;
    let account = User {
        email_verified_at: Some(at(3)),
        ..user()
    };
    let bystander = user();
    users.insert(&account).await.unwrap();
    users.insert(&bystander).await.unwrap();
    let disabled = User {
        disabled_at: Some(at(10)),
        ..account.clone()
    };

    assert_eq!(
        users.set_disabled(account.id, Some(at(10))).await.unwrap(),
        Some(disabled.clone())
    );
    assert_eq!(
        users.set_disabled(account.id, Some(at(20))).await.unwrap(),
        Some(disabled.clone())
    );
    assert_eq!(users.by_id(account.id).await.unwrap(), Some(disabled));

    assert_eq!(
        users.set_disabled(account.id, None).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        users.set_disabled(account.id, None).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        users.by_email(&account.email).await.unwrap(),
        Some(account.clone())
    );

    let again = User {
        disabled_at: Some(at(30)),
        ..account.clone()
    };
    assert_eq!(
        users.set_disabled(account.id, Some(at(30))).await.unwrap(),
        Some(again)
    );
    assert_eq!(users.by_id(bystander.id).await.unwrap(), Some(bystander));
}

/// A deleted account stays disabled whatever is asked: enabling it returns
/// it unchanged, and disabling it again keeps its first time.
pub async fn set_disabled_never_enables_a_deleted_account(stores: Stores) {
    let users = &stores.users;
    let deleted = User {
        email_verified_at: Some(at(3)),
        disabled_at: Some(at(5)),
        deleted_at: Some(at(6)),
        ..user()
    };
    users.insert(&deleted).await.unwrap();

    assert_eq!(
        users.set_disabled(deleted.id, None).await.unwrap(),
        Some(deleted.clone())
    );
    assert_eq!(
        users.set_disabled(deleted.id, Some(at(50))).await.unwrap(),
        Some(deleted.clone())
    );
    assert_eq!(users.by_id(deleted.id).await.unwrap(), Some(deleted));
}

/// `set_disabled` of an unknown id is `None` either way and creates nothing.
pub async fn set_disabled_of_unknown_user_is_none(stores: Stores) {
    let users = &stores.users;
    users.insert(&user()).await.unwrap();
    let unknown = UserId::new();

    assert_eq!(
        users.set_disabled(unknown, Some(at(10))).await.unwrap(),
        None
    );
    assert_eq!(users.set_disabled(unknown, None).await.unwrap(), None);
    assert_eq!(users.by_id(unknown).await.unwrap(), None);
}

/// The unusable password hash deleted accounts get.
fn unusable() -> PasswordHash {
    PasswordHash::new(PasswordHash::UNUSABLE.to_owned())
}

/// `anonymise` of an unknown id is `Missing` and creates nothing.
pub async fn anonymise_of_unknown_user_is_missing(stores: Stores) {
    stores.users.insert(&user()).await.unwrap();
    let unknown = UserId::new();

    assert_eq!(
        stores
            .users
            .anonymise(unknown, &Anonymised::of(unknown, at(100)), &unusable())
            .await
            .unwrap(),
        Anonymisation::Missing
    );
    assert_eq!(stores.users.by_id(unknown).await.unwrap(), None);
}

/// While the account owns a room, `anonymise` is `OwnsRooms` and changes
/// nothing: the account, its memberships and its pending verification stay
/// as they were, and no room logs anything. Once it handed the room over,
/// it may be anonymised.
pub async fn anonymise_of_a_room_owner_is_refused_and_changes_nothing(stores: Stores) {
    let owner = user();
    let pending = verification_for(owner.id);
    assert_eq!(
        register_with(&stores, &owner, &pending, None).await,
        Ok(Registered::Created)
    );
    let owned = crate::fixtures::room_owned_by(owner.id, Visibility::Private);
    crate::fixtures::create_room(&stores.chat, &owned).await;
    let heir = added_member(&stores.chat, owned.id, at(2)).await;
    let (_, joined) = created_room(&stores.chat, Visibility::Public).await;
    stores
        .chat
        .memberships
        .add(&member(
            &owner,
            membership(joined.id, owner.id, Role::Admin, at(3)),
        ))
        .await
        .unwrap();
    let anonymised = Anonymised::of(owner.id, at(100));
    let rooms_before = [
        stored_room(&stores.chat, owned.id).await,
        stored_room(&stores.chat, joined.id).await,
    ];

    assert_eq!(
        stores
            .users
            .anonymise(owner.id, &anonymised, &unusable())
            .await
            .unwrap(),
        Anonymisation::OwnsRooms
    );
    assert_eq!(
        stores.users.by_id(owner.id).await.unwrap(),
        Some(owner.clone())
    );
    assert_eq!(
        stores.users.by_email(&anonymised.email).await.unwrap(),
        None
    );
    for room in [owned.id, joined.id] {
        assert!(
            stores
                .chat
                .memberships
                .get(room, owner.id)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        Some(pending)
    );
    for room in &rooms_before {
        assert_unlogged(&stores.chat, room).await;
    }

    assert_eq!(
        stores
            .chat
            .memberships
            .transfer_ownership(
                &member(&owner, owner_membership(&owned)),
                &member(&heir, membership(owned.id, heir.id, Role::Member, at(2))),
                at(50),
            )
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(matches!(
        stores
            .users
            .anonymise(owner.id, &anonymised, &unusable())
            .await
            .unwrap(),
        Anonymisation::Done(..)
    ));
}

/// `anonymise` of an account that owns no room replaces its email, name and
/// password hash, disables it and marks it deleted, removes its pending
/// verifications and every membership (a direct room it opened included),
/// each logged as `member_left` at the room's next position and the
/// deletion time, and returns the updated account with those events, by
/// room id. The account's earlier membership events show its new name,
/// others' keep theirs. The row stays: its messages keep their author and
/// seq. Its old email is free for a new account, other accounts'
/// memberships stay.
pub async fn anonymise_replaces_the_account_and_leaves_its_rooms(stores: Stores) {
    let account = User {
        display_name: name("Ada Lovelace"),
        role: InstanceRole::Admin,
        ..user()
    };
    let pending = verification_for(account.id);
    assert_eq!(
        register_with(&stores, &account, &pending, None).await,
        Ok(Registered::Created)
    );
    assert!(stores.users.mark_verified(account.id, at(1)).await.unwrap());
    let account = stores.users.by_id(account.id).await.unwrap().unwrap();
    let (owner, public) = created_room(&stores.chat, Visibility::Public).await;
    stores
        .chat
        .memberships
        .add(&member(
            &account,
            membership(public.id, account.id, Role::Member, at(2)),
        ))
        .await
        .unwrap();
    let friend = chat_user(&stores.chat).await;
    let direct = direct_room(&account, &friend);
    stores
        .chat
        .rooms
        .open_direct(&direct, &people(&account, &friend), at(3))
        .await
        .unwrap();
    let message = NewMessage {
        created_at: at(4),
        ..new_message(public.id, account.id)
    };
    let sent = stores
        .chat
        .messages
        .append(&message)
        .await
        .unwrap()
        .unwrap()
        .value;
    let anonymised = Anonymised::of(account.id, at(100));

    let outcome = stores
        .users
        .anonymise(account.id, &anonymised, &unusable())
        .await
        .unwrap();
    let expected = User {
        email: anonymised.email.clone(),
        display_name: anonymised.display_name.clone(),
        password_hash: unusable(),
        disabled_at: Some(at(100)),
        deleted_at: Some(at(100)),
        ..account.clone()
    };
    let Anonymisation::Done(updated, left) = outcome else {
        panic!("anonymise must be done, got {outcome:?}");
    };
    // The public room: created (1), joined (2), the message (3); the direct
    // room: both joined (1, 2).
    let mut expected_left = vec![(public.id, 4), (direct.id, 3)];
    expected_left.sort();
    let expected_left: Vec<RoomEvent> = expected_left
        .into_iter()
        .map(|(room_id, at_pos)| RoomEvent {
            room_id,
            pos: pos(at_pos),
            at: at(100),
            change: Change::MemberLeft {
                user_id: account.id,
            },
        })
        .collect();
    assert_eq!((updated, left), (expected.clone(), expected_left.clone()));
    for left in &expected_left {
        assert_eq!(
            stored_room(&stores.chat, left.room_id).await.last_pos,
            left.pos
        );
    }
    for room in [public.id, direct.id] {
        let log = stores
            .chat
            .events
            .after(room, &events_after(0, 100))
            .await
            .unwrap()
            .events;
        assert!(
            log.iter().any(|event| expected_left.contains(event)),
            "{log:?}"
        );
        let names: Vec<(UserId, String)> = log
            .iter()
            .filter_map(|event| match &event.change {
                Change::MemberJoined { member, .. } | Change::MemberUpdated(member) => Some((
                    member.membership.user_id,
                    member.display_name.as_str().to_owned(),
                )),
                _ => None,
            })
            .collect();
        assert!(
            names.iter().any(|(user, _)| *user == account.id),
            "{names:?}"
        );
        for (user, shown) in names {
            let expected_name = if user == account.id {
                anonymised.display_name.as_str()
            } else if user == owner.id {
                owner.display_name.as_str()
            } else {
                friend.display_name.as_str()
            };
            assert_eq!(shown, expected_name, "the name of {user} in room {room}");
        }
    }

    assert_eq!(
        stores.users.by_id(account.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        stores.users.by_email(&anonymised.email).await.unwrap(),
        Some(expected)
    );
    assert_eq!(stores.users.by_email(&account.email).await.unwrap(), None);
    for room in [public.id, direct.id] {
        assert_eq!(
            stores.chat.memberships.get(room, account.id).await.unwrap(),
            None
        );
    }
    assert!(
        stores
            .chat
            .memberships
            .get(public.id, owner.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        stores
            .chat
            .memberships
            .get(direct.id, friend.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        stores
            .verifications
            .take(&pending.token_hash)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .chat
            .messages
            .by_id(public.id, sent.id)
            .await
            .unwrap(),
        Some(sent)
    );

    let successor = user_with_email(account.email.clone());
    stores.users.insert(&successor).await.unwrap();
    assert_eq!(
        stores.users.by_email(&account.email).await.unwrap(),
        Some(successor)
    );
}

/// `last_seen` is `None` until `record_last_seen`, which replaces the time
/// (also with an earlier one: the newest close is what presence records);
/// both touch only the named account, and an unknown one is `false`/`None`.
pub async fn record_last_seen_replaces_the_time_of_one_account(stores: Stores) {
    let users = stores.users;
    let (seen, other) = (user(), user());
    users.insert(&seen).await.unwrap();
    users.insert(&other).await.unwrap();
    assert_eq!(users.last_seen(seen.id).await.unwrap(), None, "never seen");
    assert!(users.record_last_seen(seen.id, at(20)).await.unwrap());
    assert_eq!(users.last_seen(seen.id).await.unwrap(), Some(at(20)));
    assert!(users.record_last_seen(seen.id, at(10)).await.unwrap());
    assert_eq!(users.last_seen(seen.id).await.unwrap(), Some(at(10)));
    assert_eq!(
        users.last_seen(other.id).await.unwrap(),
        None,
        "another account"
    );
    let unknown = UserId::new();
    assert!(!users.record_last_seen(unknown, at(5)).await.unwrap());
    assert_eq!(users.last_seen(unknown).await.unwrap(), None);
}
