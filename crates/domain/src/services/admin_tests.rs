//! Unit tests of [`Admin`] against mocked ports.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mockall::predicate::eq;

use super::*;
use crate::ports::{
    ManualClock, MockInviteStore, MockPasswordHasher, MockSessionRepository, MockTokenIssuer,
    MockUserRepository,
};
use crate::services::fakes::RecordingFanOut;
use crate::session::{SessionId, SessionPolicy};
use crate::token::TokenHash;
use crate::user::{Email, PasswordHash};

/// Where every test's clock starts.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

fn password() -> PasswordDigest {
    PasswordDigest::parse(&"ab".repeat(32)).unwrap()
}

fn new_hash() -> PasswordHash {
    PasswordHash::new("$2b$04$new-hash".into())
}

/// A verified, enabled member account of `email`.
fn account(email: &str) -> User {
    User {
        email_verified_at: Some(t0() - TimeDelta::days(1)),
        ..User::new(
            Email::parse(email).unwrap(),
            PasswordHash::new("$2b$04$stored-hash".into()),
            t0() - TimeDelta::days(2),
        )
    }
}

fn member() -> User {
    account("member@example.com")
}

fn admin() -> User {
    User {
        role: InstanceRole::Admin,
        ..account("admin@example.com")
    }
}

fn query() -> UserQuery {
    UserQuery {
        contains: crate::user::UserSearch::parse("exa").unwrap(),
        after: None,
        limit: 20,
    }
}

fn uses() -> InviteUses {
    InviteUses::new(3).unwrap()
}

fn lifetime() -> InviteLifetime {
    InviteLifetime::from_seconds(3600).unwrap()
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, DomainError>, refusal: Refusal) {
    assert!(
        matches!(&result, Err(DomainError::Refused(got)) if *got == refusal),
        "expected {refusal:?}, got {result:?}"
    );
}

/// The mocked ports of one [`Admin`], configured by each test before `build`.
struct Fixture {
    users: MockUserRepository,
    invites: MockInviteStore,
    hasher: MockPasswordHasher,
    session_store: MockSessionRepository,
    clock: Arc<ManualClock>,
    fanout: Arc<RecordingFanOut>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            invites: MockInviteStore::new(),
            hasher: MockPasswordHasher::new(),
            session_store: MockSessionRepository::new(),
            clock: Arc::new(ManualClock::new(t0())),
            fanout: Arc::new(RecordingFanOut::default()),
        }
    }

    /// The account `user` is found by its id, `times` times.
    fn finds(&mut self, user: &User, times: usize) {
        let stored = user.clone();
        self.users
            .expect_by_id()
            .with(eq(user.id))
            .times(times)
            .returning(move |_| Ok(Some(stored.clone())));
    }

    /// States that no account, invitation or session is changed and no
    /// password hashed.
    fn expect_no_change(&mut self) {
        self.users.expect_insert().never();
        self.users.expect_list().never();
        self.users.expect_set_disabled().never();
        self.users.expect_set_role().never();
        self.users.expect_set_password_hash().never();
        self.hasher.expect_hash().never();
        self.invites.expect_insert().never();
        self.invites.expect_active().never();
        self.invites.expect_revoke().never();
        self.session_store.expect_revoke_all().never();
    }

    /// The session store ends `ended` when told to end all of `user`'s sessions now.
    fn ends_all(&mut self, user: UserId, ended: Vec<SessionId>) {
        self.session_store
            .expect_revoke_all()
            .with(eq(user), eq(None), eq(self.clock.now()))
            .times(1)
            .returning(move |_, _, _| Ok(ended.clone()));
    }

    fn build(self) -> Admin {
        // `Sessions::end_all` only reaches the session store: the other
        // ports are mocks without expectations, which fail on any call.
        let sessions = Sessions::new(
            Arc::new(MockUserRepository::new()),
            Arc::new(self.session_store),
            Arc::new(MockPasswordHasher::new()),
            Arc::new(MockTokenIssuer::new()),
            self.clock.clone(),
            SessionPolicy::default(),
        )
        .with_fanout(self.fanout);
        Admin::new(
            Arc::new(self.users),
            Arc::new(self.invites),
            Arc::new(self.hasher),
            self.clock,
            sessions,
        )
    }
}

/// Runs every administrative operation as `operator`, returning each result
/// (as `Result<(), _>`) with the operation's name.
async fn every_operation(
    admin: &Admin,
    operator: Operator,
) -> Vec<(&'static str, Result<(), DomainError>)> {
    let target = UserRef::Id(UserId::new());
    let credentials = Credentials {
        email: Email::parse("new@example.com").unwrap(),
        password: password(),
    };
    vec![
        ("users", admin.users(operator, &query()).await.map(drop)),
        ("user", admin.user(operator, &target).await.map(drop)),
        (
            "create_user",
            admin
                .create_user(operator, &credentials, InstanceRole::Member)
                .await
                .map(drop),
        ),
        ("disable", admin.disable(operator, &target).await.map(drop)),
        ("enable", admin.enable(operator, &target).await.map(drop)),
        (
            "set_role",
            admin
                .set_role(operator, &target, InstanceRole::Admin)
                .await
                .map(drop),
        ),
        (
            "reset_password",
            admin
                .reset_password(operator, &target, &password())
                .await
                .map(drop),
        ),
        (
            "create_invite",
            admin
                .create_invite(operator, uses(), lifetime())
                .await
                .map(drop),
        ),
        ("invites", admin.invites(operator).await.map(drop)),
        (
            "revoke_invite",
            admin.revoke_invite(operator, InviteId::new()).await,
        ),
    ]
}

/// How many operations [`every_operation`] runs.
const OPERATIONS: usize = 10;

// ------------------------------------------------------------ who may act

#[tokio::test]
async fn every_operation_refuses_a_member_a_disabled_admin_and_an_unknown_user_before_any_work() {
    let disabled_admin = User {
        disabled_at: Some(t0() - TimeDelta::hours(1)),
        ..admin()
    };
    for operator in [Some(member()), Some(disabled_admin), None] {
        let mut fx = Fixture::new();
        let id = operator.as_ref().map_or_else(UserId::new, |user| user.id);
        let found = operator.clone();
        fx.users
            .expect_by_id()
            .with(eq(id))
            .times(OPERATIONS)
            .returning(move |_| Ok(found.clone()));
        fx.users.expect_by_email().never();
        fx.expect_no_change();
        let fanout = fx.fanout.clone();

        let results = every_operation(&fx.build(), Operator::User(id)).await;

        assert_eq!(results.len(), OPERATIONS);
        for (operation, result) in results {
            assert!(
                matches!(result, Err(DomainError::Refused(Refusal::NotAdmin))),
                "{operation} by {operator:?}: {result:?}"
            );
        }
        assert!(fanout.ended().is_empty());
    }
}

#[tokio::test]
async fn the_console_is_allowed_without_looking_up_any_operator() {
    let mut fx = Fixture::new();
    let listed = vec![admin(), member()];
    let answer = listed.clone();
    fx.users
        .expect_list()
        .with(eq(query()))
        .times(1)
        .returning(move |_| Ok(answer.clone()));
    fx.users.expect_by_id().never();

    let users = fx.build().users(Operator::Console, &query()).await.unwrap();

    assert_eq!(users, listed);
}

#[tokio::test]
async fn an_enabled_admin_may_list_accounts_and_invitations() {
    let mut fx = Fixture::new();
    let operator = admin();
    fx.finds(&operator, 2);
    fx.users
        .expect_list()
        .with(eq(query()))
        .times(1)
        .returning(|_| Ok(vec![member()]));
    let invite = Invite {
        id: InviteId::new(),
        token_hash: TokenHash::of("some-token"),
        created_by: Some(operator.id),
        created_at: t0(),
        expires_at: t0() + TimeDelta::hours(1),
        uses_left: 1,
    };
    let active = vec![invite];
    let answer = active.clone();
    fx.invites
        .expect_active()
        .with(eq(t0()))
        .times(1)
        .returning(move |_| Ok(answer.clone()));
    let admin = fx.build();

    let users = admin.users(Operator::User(operator.id), &query()).await;
    let invites = admin.invites(Operator::User(operator.id)).await;

    assert_eq!(users.unwrap().len(), 1);
    assert_eq!(invites.unwrap(), active);
}

// ------------------------------------------------------ changing accounts

#[tokio::test]
async fn disable_marks_the_account_disabled_now_and_ends_every_session_of_it() {
    let mut fx = Fixture::new();
    let operator = admin();
    let target = member();
    fx.finds(&operator, 1);
    fx.finds(&target, 1);
    let disabled = User {
        disabled_at: Some(t0()),
        ..target.clone()
    };
    let answer = disabled.clone();
    fx.users
        .expect_set_disabled()
        .with(eq(target.id), eq(Some(t0())))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    let sessions = vec![SessionId::new(), SessionId::new()];
    fx.ends_all(target.id, sessions.clone());
    let fanout = fx.fanout.clone();

    let result = fx
        .build()
        .disable(Operator::User(operator.id), &UserRef::Id(target.id))
        .await;

    assert_eq!(result.unwrap(), disabled);
    assert_eq!(fanout.ended(), sessions);
}

#[tokio::test]
async fn disable_from_the_console_finds_the_account_by_email() {
    let mut fx = Fixture::new();
    let target = member();
    let found = target.clone();
    fx.users
        .expect_by_email()
        .with(eq(target.email.clone()))
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    fx.users.expect_by_id().never();
    let disabled = User {
        disabled_at: Some(t0()),
        ..target.clone()
    };
    fx.users
        .expect_set_disabled()
        .with(eq(target.id), eq(Some(t0())))
        .times(1)
        .returning(move |_, _| Ok(Some(disabled.clone())));
    let sessions = vec![SessionId::new()];
    fx.ends_all(target.id, sessions.clone());
    let fanout = fx.fanout.clone();

    fx.build()
        .disable(Operator::Console, &UserRef::Email(target.email.clone()))
        .await
        .unwrap();

    assert_eq!(fanout.ended(), sessions);
}

#[tokio::test]
async fn enable_clears_the_disable_and_ends_no_session() {
    let mut fx = Fixture::new();
    let target = User {
        disabled_at: Some(t0() - TimeDelta::days(1)),
        ..member()
    };
    fx.finds(&target, 1);
    let enabled = User {
        disabled_at: None,
        ..target.clone()
    };
    let answer = enabled.clone();
    fx.users
        .expect_set_disabled()
        .with(eq(target.id), eq(None))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .enable(Operator::Console, &UserRef::Id(target.id))
        .await;

    assert_eq!(result.unwrap(), enabled);
}

#[tokio::test]
async fn set_role_stores_the_instance_role_and_ends_no_session() {
    let mut fx = Fixture::new();
    let operator = admin();
    let target = member();
    fx.finds(&operator, 1);
    fx.finds(&target, 1);
    let promoted = User {
        role: InstanceRole::Admin,
        ..target.clone()
    };
    let answer = promoted.clone();
    fx.users
        .expect_set_role()
        .with(eq(target.id), eq(InstanceRole::Admin))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .set_role(
            Operator::User(operator.id),
            &UserRef::Id(target.id),
            InstanceRole::Admin,
        )
        .await;

    assert_eq!(result.unwrap(), promoted);
}

#[tokio::test]
async fn the_console_may_demote_an_admin() {
    let mut fx = Fixture::new();
    let target = admin();
    fx.finds(&target, 1);
    let demoted = User {
        role: InstanceRole::Member,
        ..target.clone()
    };
    fx.users
        .expect_set_role()
        .with(eq(target.id), eq(InstanceRole::Member))
        .times(1)
        .returning(move |_, _| Ok(Some(demoted.clone())));

    let result = fx
        .build()
        .set_role(
            Operator::Console,
            &UserRef::Id(target.id),
            InstanceRole::Member,
        )
        .await;

    assert_eq!(result.unwrap().role, InstanceRole::Member);
}

#[tokio::test]
async fn reset_password_stores_the_new_hash_and_ends_every_session_of_the_account() {
    let mut fx = Fixture::new();
    let target = member();
    fx.finds(&target, 1);
    fx.hasher
        .expect_hash()
        .with(eq(password()))
        .times(1)
        .returning(|_| Ok(new_hash()));
    let changed = User {
        password_hash: new_hash(),
        ..target.clone()
    };
    fx.users
        .expect_set_password_hash()
        .with(eq(target.id), eq(new_hash()))
        .times(1)
        .returning(move |_, _| Ok(Some(changed.clone())));
    let sessions = vec![SessionId::new(), SessionId::new()];
    fx.ends_all(target.id, sessions.clone());
    let fanout = fx.fanout.clone();

    let result = fx
        .build()
        .reset_password(Operator::Console, &UserRef::Id(target.id), &password())
        .await;

    assert_eq!(result.unwrap().password_hash, new_hash());
    assert_eq!(fanout.ended(), sessions);
}

#[tokio::test]
async fn an_admin_cannot_disable_enable_demote_or_reset_their_own_account() {
    let operator = admin();
    let me = UserRef::Id(operator.id);
    let by = Operator::User(operator.id);
    for operation in ["disable", "enable", "set_role", "reset_password"] {
        let mut fx = Fixture::new();
        // Once as the operator, once as the target.
        fx.finds(&operator, 2);
        fx.expect_no_change();
        let fanout = fx.fanout.clone();
        let admin = fx.build();

        let result = match operation {
            "disable" => admin.disable(by, &me).await,
            "enable" => admin.enable(by, &me).await,
            "set_role" => admin.set_role(by, &me, InstanceRole::Member).await,
            _ => admin.reset_password(by, &me, &password()).await,
        };

        assert_refused(result, Refusal::OwnAccount);
        assert!(fanout.ended().is_empty(), "{operation}");
    }
}

#[tokio::test]
async fn a_deleted_account_cannot_be_disabled_enabled_given_a_role_or_reset() {
    let deleted = User {
        disabled_at: Some(t0() - TimeDelta::days(1)),
        deleted_at: Some(t0() - TimeDelta::days(1)),
        ..member()
    };
    let target = UserRef::Id(deleted.id);
    for operation in ["disable", "enable", "set_role", "reset_password"] {
        let mut fx = Fixture::new();
        fx.finds(&deleted, 1);
        fx.expect_no_change();
        let admin = fx.build();
        let console = Operator::Console;

        let result = match operation {
            "disable" => admin.disable(console, &target).await,
            "enable" => admin.enable(console, &target).await,
            "set_role" => admin.set_role(console, &target, InstanceRole::Admin).await,
            _ => admin.reset_password(console, &target, &password()).await,
        };

        assert_refused(result, Refusal::AccountDeleted);
    }
}

#[tokio::test]
async fn an_unknown_target_is_user_not_found_and_nothing_changes() {
    let mut fx = Fixture::new();
    let unknown = UserId::new();
    fx.users
        .expect_by_id()
        .with(eq(unknown))
        .times(2)
        .returning(|_| Ok(None));
    fx.expect_no_change();
    let admin = fx.build();

    let disable = admin
        .disable(Operator::Console, &UserRef::Id(unknown))
        .await;
    let user = admin.user(Operator::Console, &UserRef::Id(unknown)).await;

    for result in [disable, user] {
        assert!(
            matches!(result, Err(DomainError::NotFound(Missing::User))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_target_gone_before_the_write_is_user_not_found_and_ends_no_session() {
    let mut fx = Fixture::new();
    let target = member();
    fx.finds(&target, 1);
    fx.users
        .expect_set_disabled()
        .times(1)
        .returning(|_, _| Ok(None));
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .disable(Operator::Console, &UserRef::Id(target.id))
        .await;

    assert!(
        matches!(result, Err(DomainError::NotFound(Missing::User))),
        "{result:?}"
    );
}

// ------------------------------------------------------------ create_user

#[tokio::test]
async fn create_user_stores_a_verified_enabled_account_with_the_given_role() {
    let mut fx = Fixture::new();
    let credentials = Credentials {
        email: Email::parse(" New@Example.com ").unwrap(),
        password: password(),
    };
    fx.hasher
        .expect_hash()
        .with(eq(password()))
        .times(1)
        .returning(|_| Ok(new_hash()));
    let stored = Arc::new(Mutex::new(None));
    let sink = stored.clone();
    fx.users
        .expect_insert()
        .times(1)
        .returning(move |user: &User| {
            *sink.lock().unwrap() = Some(user.clone());
            Ok(())
        });

    let created = fx
        .build()
        .create_user(Operator::Console, &credentials, InstanceRole::Admin)
        .await
        .unwrap();

    let stored = stored.lock().unwrap().take().unwrap();
    assert_eq!(created, stored);
    assert_eq!(stored.email.as_str(), "new@example.com");
    assert_eq!(stored.password_hash, new_hash());
    assert_eq!(stored.role, InstanceRole::Admin);
    assert_eq!(stored.email_verified_at, Some(t0()));
    assert_eq!(stored.created_at, t0());
    assert!(stored.may_log_in() && stored.is_admin());
}

#[tokio::test]
async fn create_user_of_a_taken_email_is_email_taken_and_a_store_outage_is_unavailable() {
    for (failure, is_expected) in [
        (
            StoreError::Duplicate,
            (|result| {
                matches!(
                    result,
                    Err(DomainError::Conflict(ConflictError::EmailTaken))
                )
            }) as fn(&Result<User, DomainError>) -> bool,
        ),
        (StoreError::Unavailable("down".into()), |result| {
            matches!(result, Err(DomainError::Unavailable(_)))
        }),
    ] {
        let mut fx = Fixture::new();
        fx.hasher.expect_hash().returning(|_| Ok(new_hash()));
        let answer = failure.clone();
        fx.users
            .expect_insert()
            .times(1)
            .returning(move |_| Err(answer.clone()));
        let credentials = Credentials {
            email: Email::parse("new@example.com").unwrap(),
            password: password(),
        };

        let result = fx
            .build()
            .create_user(Operator::Console, &credentials, InstanceRole::Member)
            .await;

        assert!(is_expected(&result), "{failure:?}: {result:?}");
    }
}

// ------------------------------------------------------------ invitations

#[tokio::test]
async fn create_invite_stores_only_the_hash_of_the_token_with_its_uses_and_lifetime() {
    let mut fx = Fixture::new();
    let stored = Arc::new(Mutex::new(None));
    let sink = stored.clone();
    fx.invites
        .expect_insert()
        .times(1)
        .returning(move |invite: &Invite| {
            *sink.lock().unwrap() = Some(invite.clone());
            Ok(())
        });
    fx.users.expect_by_id().never();

    let issued = fx
        .build()
        .create_invite(Operator::Console, uses(), lifetime())
        .await
        .unwrap();

    let stored = stored.lock().unwrap().take().unwrap();
    assert_eq!(stored, issued.invite);
    assert_eq!(stored.token_hash, TokenHash::of(issued.token.expose()));
    assert_eq!(stored.token_hash, issued.token.hash());
    assert_eq!(stored.uses_left, 3);
    assert_eq!(stored.created_at, t0());
    assert_eq!(stored.expires_at, t0() + TimeDelta::hours(1));
    assert_eq!(stored.created_by, None);
    assert!(!format!("{stored:?}").contains(issued.token.expose()));
}

#[tokio::test]
async fn create_invite_by_an_admin_names_them_as_its_creator() {
    let mut fx = Fixture::new();
    let operator = admin();
    fx.finds(&operator, 1);
    let creator = operator.id;
    fx.invites
        .expect_insert()
        .withf(move |invite| invite.created_by == Some(creator))
        .times(1)
        .returning(|_| Ok(()));

    let issued = fx
        .build()
        .create_invite(Operator::User(operator.id), uses(), lifetime())
        .await
        .unwrap();

    assert_eq!(issued.invite.created_by, Some(operator.id));
}

#[tokio::test]
async fn revoke_invite_removes_a_known_invitation_and_an_unknown_one_is_invite_not_found() {
    for known in [true, false] {
        let mut fx = Fixture::new();
        let id = InviteId::new();
        fx.invites
            .expect_revoke()
            .with(eq(id))
            .times(1)
            .returning(move |_| Ok(known));

        let result = fx.build().revoke_invite(Operator::Console, id).await;

        if known {
            assert!(result.is_ok(), "{result:?}");
        } else {
            assert!(
                matches!(result, Err(DomainError::NotFound(Missing::Invite))),
                "{result:?}"
            );
        }
    }
}
