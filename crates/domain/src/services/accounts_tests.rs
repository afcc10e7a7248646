//! Unit tests of [`Accounts`] against mocked ports.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mockall::Sequence;
use mockall::predicate::{always, eq};

use super::*;
use crate::mail::MailContent;
use crate::ports::{
    ManualClock, MockMailer, MockPasswordHasher, MockSessionRepository, MockTokenIssuer,
    MockUserRepository, MockVerificationStore,
};
use crate::session::{LoginSession, SessionPolicy, TokenClaims, TokenKind};
use crate::user::{Email, PasswordDigest, PasswordHash};

/// Where every test's clock starts (whole seconds, so token times are exact).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

/// A verification lifetime unlike the default, so tests see that the policy is used.
fn policy() -> VerificationPolicy {
    VerificationPolicy {
        ttl: TimeDelta::hours(2),
    }
}

fn credentials() -> Credentials {
    Credentials {
        email: Email::parse(" Ada@Example.com ").unwrap(),
        password: PasswordDigest::parse(&"ab".repeat(32)).unwrap(),
    }
}

fn stored_hash() -> PasswordHash {
    PasswordHash::new("$2b$04$stored-hash".into())
}

fn existing_user() -> User {
    let email = Email::parse("ada@example.com").unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_email(&email),
        email,
        password_hash: stored_hash(),
        email_verified_at: None,
        created_at: t0() - TimeDelta::days(1),
    }
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

/// Signs a token as a readable string naming its kind, session and id.
fn fake_signature(claims: &TokenClaims) -> String {
    format!(
        "{:?}.{}.{}",
        claims.kind, claims.session_id, claims.token_id
    )
}

/// The mocked ports of one [`Accounts`], configured by each test before `build`.
struct Fixture {
    users: MockUserRepository,
    verifications: MockVerificationStore,
    hasher: MockPasswordHasher,
    session_store: MockSessionRepository,
    tokens: MockTokenIssuer,
    clock: Arc<ManualClock>,
    /// `None`: the service keeps its default mailer (none configured).
    mailer: Option<MockMailer>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            verifications: MockVerificationStore::new(),
            hasher: MockPasswordHasher::new(),
            session_store: MockSessionRepository::new(),
            tokens: MockTokenIssuer::new(),
            clock: Arc::new(ManualClock::new(t0())),
            mailer: None,
        }
    }

    /// Installs a mock mailer that says whether it `delivers`, and returns it
    /// for the test's own expectations on `send`.
    fn mailer(&mut self, delivers: bool) -> &mut MockMailer {
        let mailer = self.mailer.insert(MockMailer::new());
        mailer.expect_delivers().return_const(delivers);
        mailer
    }

    /// Lets registration reach the point where it mails (nothing taken,
    /// every write succeeds), with `sequence` ordering the verification's
    /// insert, if given.
    fn registration_succeeds(&mut self, sequence: Option<&mut Sequence>) {
        self.users.expect_by_email().returning(|_| Ok(None));
        self.hasher.expect_hash().returning(|_| Ok(stored_hash()));
        self.users.expect_insert().returning(|_| Ok(()));
        let insert = self.verifications.expect_insert().times(1);
        if let Some(sequence) = sequence {
            insert.in_sequence(sequence);
        }
        insert.returning(|_| Ok(()));
    }

    /// States that no login session may be opened (no token signed, no session stored).
    fn expect_no_session(&mut self) {
        self.session_store.expect_create().never();
        self.tokens.expect_sign().never();
    }

    fn build(self) -> Accounts {
        let mailer = self.mailer;
        // The session service's own user store and hasher are never used by
        // `Sessions::start`: mocks without expectations fail on any call.
        let sessions = Sessions::new(
            Arc::new(MockUserRepository::new()),
            Arc::new(self.session_store),
            Arc::new(MockPasswordHasher::new()),
            Arc::new(self.tokens),
            self.clock.clone(),
            SessionPolicy::default(),
        );
        let accounts = Accounts::new(
            Arc::new(self.users),
            Arc::new(self.verifications),
            Arc::new(self.hasher),
            self.clock,
            sessions,
            policy(),
        );
        match mailer {
            Some(mailer) => accounts.with_mailer(Arc::new(mailer)),
            None => accounts,
        }
    }
}

// ---------------------------------------------------------------- register

#[tokio::test]
async fn register_stores_an_unverified_user_and_a_verification_of_the_returned_token() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users
        .expect_by_email()
        .with(eq(creds.email.clone()))
        .times(1)
        .returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .with(eq(creds.password.clone()))
        .times(1)
        .returning(|_| Ok(stored_hash()));
    let inserted_user = Arc::new(Mutex::new(None));
    let sink = inserted_user.clone();
    fx.users
        .expect_insert()
        .times(1)
        .returning(move |user: &User| {
            *sink.lock().unwrap() = Some(user.clone());
            Ok(())
        });
    let inserted_verification = Arc::new(Mutex::new(None));
    let sink = inserted_verification.clone();
    fx.verifications
        .expect_insert()
        .times(1)
        .returning(move |verification: &EmailVerification| {
            *sink.lock().unwrap() = Some(verification.clone());
            Ok(())
        });
    fx.expect_no_session();

    let token = fx
        .build()
        .register(&creds)
        .await
        .unwrap()
        .expect("without a mailer the token is returned");

    let user = inserted_user.lock().unwrap().clone().unwrap();
    assert_eq!(user.email.as_str(), "ada@example.com");
    assert_eq!(user.display_name.as_str(), "ada");
    assert_eq!(user.password_hash, stored_hash());
    assert_eq!(user.email_verified_at, None);
    assert!(!user.is_verified());
    assert_eq!(user.created_at, t0());

    let verification = inserted_verification.lock().unwrap().clone().unwrap();
    assert_eq!(verification.token_hash, TokenHash::of(token.expose()));
    assert_eq!(verification.user_id, user.id);
    assert_eq!(verification.expires_at, t0() + policy().ttl);
}

#[tokio::test]
async fn register_with_a_taken_email_is_email_taken_and_never_hashes_or_writes() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(|_| Ok(Some(existing_user())));
    fx.hasher.expect_hash().never();
    fx.users.expect_insert().never();
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(matches!(
        result,
        Err(DomainError::Conflict(ConflictError::EmailTaken))
    ));
}

#[tokio::test]
async fn register_turns_a_duplicate_from_insert_into_email_taken_and_stores_no_verification() {
    // The early lookup saw nothing, but a concurrent registration won the insert.
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    fx.users
        .expect_insert()
        .times(1)
        .returning(|_| Err(StoreError::Duplicate));
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(matches!(
        result,
        Err(DomainError::Conflict(ConflictError::EmailTaken))
    ));
}

#[tokio::test]
async fn register_when_the_lookup_store_is_unavailable_is_unavailable_and_hashes_nothing() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.hasher.expect_hash().never();
    fx.users.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(&result, Err(DomainError::Unavailable(detail)) if detail == "connection refused"),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_the_insert_is_unavailable_is_unavailable_not_email_taken() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users
        .expect_insert()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_the_insert_fails_otherwise_is_internal() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users
        .expect_insert()
        .times(1)
        .returning(|_| Err(StoreError::Failure("corrupt row".into())));
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_hashing_fails_is_internal_and_inserts_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Err(crate::ports::HashError("worker gone".into())));
    fx.users.expect_insert().never();
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_the_verification_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users.expect_insert().times(1).returning(|_| Ok(()));
    fx.verifications
        .expect_insert()
        .times(1)
        .returning(|_| Err(unavailable()));

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

// --------------------------------------------------------- register: mail

/// The verification token and lifetime of a mail that must be a verification.
fn verification_of(mail: &Mail) -> (OpaqueToken, TimeDelta) {
    match &mail.content {
        MailContent::Verification { token, valid_for } => (token.clone(), *valid_for),
        other => panic!("expected a verification mail, got {other:?}"),
    }
}

#[tokio::test]
async fn register_with_a_delivering_mailer_mails_the_stored_token_and_returns_none() {
    let mut fx = Fixture::new();
    let stored = Arc::new(Mutex::new(None));
    let sink = stored.clone();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users.expect_insert().returning(|_| Ok(()));
    fx.verifications
        .expect_insert()
        .times(1)
        .returning(move |verification: &EmailVerification| {
            *sink.lock().unwrap() = Some(verification.token_hash.clone());
            Ok(())
        });
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sink = sent.clone();
    fx.mailer(true)
        .expect_send()
        .times(1)
        .returning(move |mail| sink.lock().unwrap().push(mail));

    let returned = fx.build().register(&credentials()).await.unwrap();

    assert!(returned.is_none(), "a mailed token is not handed back");
    let sent = sent.lock().unwrap();
    let mail = &sent[0];
    assert_eq!(mail.to.as_str(), "ada@example.com");
    let (token, valid_for) = verification_of(mail);
    assert_eq!(Some(token.hash()), *stored.lock().unwrap());
    assert_eq!(valid_for, policy().ttl);
}

#[tokio::test]
async fn register_with_a_mailer_that_does_not_deliver_returns_the_mailed_token() {
    let mut fx = Fixture::new();
    fx.registration_succeeds(None);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sink = sent.clone();
    fx.mailer(false)
        .expect_send()
        .times(1)
        .returning(move |mail| sink.lock().unwrap().push(mail));

    let returned = fx.build().register(&credentials()).await.unwrap();

    let (mailed, _) = verification_of(&sent.lock().unwrap()[0]);
    assert_eq!(returned, Some(mailed));
}

#[tokio::test]
async fn register_mails_only_after_the_verification_is_stored() {
    let mut fx = Fixture::new();
    let mut sequence = Sequence::new();
    fx.registration_succeeds(Some(&mut sequence));
    fx.mailer(true)
        .expect_send()
        .times(1)
        .in_sequence(&mut sequence)
        .return_const(());

    assert!(fx.build().register(&credentials()).await.is_ok());
}

#[tokio::test]
async fn register_that_fails_to_store_the_verification_mails_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users.expect_insert().returning(|_| Ok(()));
    fx.verifications
        .expect_insert()
        .returning(|_| Err(unavailable()));
    fx.mailer(true).expect_send().never();

    let result = fx.build().register(&credentials()).await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_with_a_taken_email_mails_nothing() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(existing_user())));
    fx.mailer(true).expect_send().never();

    let result = fx.build().register(&credentials()).await;

    assert!(matches!(
        result,
        Err(DomainError::Conflict(ConflictError::EmailTaken))
    ));
}

// ------------------------------------------------------------ verify_email

fn pending(user_id: UserId, expires_at: DateTime<Utc>) -> EmailVerification {
    EmailVerification {
        token_hash: TokenHash::of("the-token"),
        user_id,
        expires_at,
    }
}

#[tokio::test]
async fn verify_email_marks_the_user_verified_now_and_starts_a_session_for_them() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.clock.advance(TimeDelta::minutes(30));
    let now = t0() + TimeDelta::minutes(30);
    fx.verifications
        .expect_take()
        .with(eq(TokenHash::of("the-token")))
        .times(1)
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users
        .expect_mark_verified()
        .with(eq(user_id), eq(now))
        .times(1)
        .returning(|_, _| Ok(true));
    let signed = Arc::new(Mutex::new(Vec::new()));
    let sink = signed.clone();
    fx.tokens
        .expect_sign()
        .times(2)
        .returning(move |claims: &TokenClaims| {
            sink.lock().unwrap().push(claims.clone());
            Ok(fake_signature(claims))
        });
    let created = Arc::new(Mutex::new(None));
    let sink = created.clone();
    fx.session_store
        .expect_create()
        .times(1)
        .returning(move |session: &LoginSession| {
            *sink.lock().unwrap() = Some(session.clone());
            Ok(())
        });

    let tokens = fx.build().verify_email("the-token").await.unwrap();

    let session = created.lock().unwrap().clone().unwrap();
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.revoked_at, None);
    assert_eq!(
        session.refresh_token_hash,
        TokenHash::of(&tokens.refresh_token)
    );
    let signed = signed.lock().unwrap();
    let kinds: Vec<TokenKind> = signed.iter().map(|claims| claims.kind).collect();
    assert!(kinds.contains(&TokenKind::Access) && kinds.contains(&TokenKind::Refresh));
    assert!(
        signed
            .iter()
            .all(|claims| claims.user_id == user_id && claims.session_id == session.id)
    );
}

#[tokio::test]
async fn verify_email_with_an_unknown_or_used_token_is_unauthorized_and_marks_nothing() {
    let mut fx = Fixture::new();
    fx.verifications
        .expect_take()
        .with(eq(TokenHash::of("never-issued")))
        .times(1)
        .returning(|_| Ok(None));
    fx.users.expect_mark_verified().never();
    fx.expect_no_session();

    let result = fx.build().verify_email("never-issued").await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn verify_email_with_an_expired_verification_is_unauthorized_and_never_starts_a_session() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.verifications
        .expect_take()
        .times(1)
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users.expect_mark_verified().never();
    fx.expect_no_session();
    // A verification expires at exactly `expires_at`.
    fx.clock.advance(policy().ttl);

    let result = fx.build().verify_email("the-token").await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn verify_email_just_before_expiry_still_verifies() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.verifications
        .expect_take()
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users
        .expect_mark_verified()
        .with(eq(user_id), always())
        .times(1)
        .returning(|_, _| Ok(true));
    fx.tokens
        .expect_sign()
        .returning(|claims| Ok(fake_signature(claims)));
    fx.session_store
        .expect_create()
        .times(1)
        .returning(|_| Ok(()));
    fx.clock.advance(policy().ttl - TimeDelta::microseconds(1));

    assert!(fx.build().verify_email("the-token").await.is_ok());
}

#[tokio::test]
async fn verify_email_for_an_account_that_no_longer_exists_is_unauthorized_and_starts_no_session() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.verifications
        .expect_take()
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users
        .expect_mark_verified()
        .times(1)
        .returning(|_, _| Ok(false));
    fx.expect_no_session();

    let result = fx.build().verify_email("the-token").await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn verify_email_when_the_verification_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.verifications
        .expect_take()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.users.expect_mark_verified().never();
    fx.expect_no_session();

    let result = fx.build().verify_email("the-token").await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn verify_email_when_marking_is_unavailable_is_unavailable_and_starts_no_session() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.verifications
        .expect_take()
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users
        .expect_mark_verified()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    fx.expect_no_session();

    let result = fx.build().verify_email("the-token").await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

// ------------------------------------------------------ profile and rename

#[tokio::test]
async fn profile_returns_the_stored_user() {
    let mut fx = Fixture::new();
    let user = existing_user();
    let stored = user.clone();
    fx.users
        .expect_by_id()
        .with(eq(user.id))
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));

    assert_eq!(fx.build().profile(user.id).await.unwrap(), user);
}

#[tokio::test]
async fn profile_of_an_unknown_user_is_unauthorized() {
    let mut fx = Fixture::new();
    fx.users.expect_by_id().times(1).returning(|_| Ok(None));

    let result = fx.build().profile(UserId::new()).await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn profile_when_the_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_id()
        .times(1)
        .returning(|_| Err(unavailable()));

    let result = fx.build().profile(UserId::new()).await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn rename_stores_the_new_name_for_that_user_and_returns_the_updated_user() {
    let mut fx = Fixture::new();
    let user = existing_user();
    let name = DisplayName::parse("Countess Lovelace").unwrap();
    let renamed = User {
        display_name: name.clone(),
        ..user.clone()
    };
    fx.users
        .expect_set_display_name()
        .with(eq(user.id), eq(name.clone()))
        .times(1)
        .returning(move |_, _| Ok(Some(renamed.clone())));

    let updated = fx.build().rename(user.id, &name).await.unwrap();

    assert_eq!(updated.display_name.as_str(), "Countess Lovelace");
    assert_eq!(updated.id, user.id);
}

#[tokio::test]
async fn rename_of_an_unknown_user_is_unauthorized() {
    let mut fx = Fixture::new();
    fx.users
        .expect_set_display_name()
        .times(1)
        .returning(|_, _| Ok(None));

    let result = fx
        .build()
        .rename(UserId::new(), &DisplayName::parse("x").unwrap())
        .await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn rename_when_the_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_set_display_name()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    let result = fx
        .build()
        .rename(UserId::new(), &DisplayName::parse("x").unwrap())
        .await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}
