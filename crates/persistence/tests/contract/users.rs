//! The [`UserRepository`](p_chat_domain::ports::UserRepository) contract.

use std::sync::Arc;

use p_chat_domain::ports::StoreError;
use p_chat_domain::user::{User, UserId};

use crate::Stores;
use crate::fixtures::{at, name, race, unique_email, user, user_with_email};

/// An inserted account reads back equal, every field included (timestamps to
/// the microsecond, a missing verification time, non-ASCII names), by id and
/// by email, and each lookup finds its own account.
pub async fn inserted_users_round_trip_by_id_and_email(stores: Stores) {
    let users = stores.users;
    let unverified = user();
    let verified = User {
        display_name: name("Zoë Ångström 🚀"),
        email_verified_at: Some(at(5)),
        created_at: at(-86_400),
        ..user()
    };
    users.insert(&unverified).await.unwrap();
    users.insert(&verified).await.unwrap();

    for expected in [&unverified, &verified] {
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
