//! Unit tests of [`Accounts`] against mocked ports.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mockall::Sequence;
use mockall::predicate::{always, eq};

use super::*;
use crate::events::{Broadcast, Change, RoomEvent};
use crate::mail::MailContent;
use crate::ports::{
    ManualClock, MockMailer, MockPasswordHasher, MockSessionRepository, MockTokenIssuer,
    MockUserRepository, MockVerificationStore, StoreError,
};
use crate::position::Pos;
use crate::room::RoomId;
use crate::services::fakes::RecordingFanOut;
use crate::session::{LoginSession, SessionPolicy, TokenClaims, TokenKind, UserAgent};
use crate::user::{Email, InstanceRole, PasswordDigest, PasswordHash};

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

/// Before this instant an unverified registration no longer blocks its email.
fn stale_before() -> DateTime<Utc> {
    t0() - policy().ttl
}

fn credentials() -> Credentials {
    Credentials {
        email: Email::parse(" Ada@Example.com ").unwrap(),
        password: PasswordDigest::parse(&"ab".repeat(32)).unwrap(),
    }
}

fn registration() -> Registration {
    Registration {
        credentials: credentials(),
        invite: None,
    }
}

/// The invitation token a registrant presents.
const INVITE: &str = "the-invite-token";

fn invited() -> Registration {
    Registration {
        invite: Some(INVITE.to_owned()),
        ..registration()
    }
}

fn stored_hash() -> PasswordHash {
    PasswordHash::new("$2b$04$stored-hash".into())
}

fn new_hash() -> PasswordHash {
    PasswordHash::new("$2b$04$new-hash".into())
}

fn current_password() -> PasswordDigest {
    PasswordDigest::parse(&"cd".repeat(32)).unwrap()
}

fn new_password() -> PasswordDigest {
    PasswordDigest::parse(&"ef".repeat(32)).unwrap()
}

/// An unverified account of ada@example.com registered at `created_at`.
fn registered_at(created_at: DateTime<Utc>) -> User {
    let email = Email::parse("ada@example.com").unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_email(&email),
        email,
        password_hash: stored_hash(),
        email_verified_at: None,
        created_at,
        role: InstanceRole::Member,
        disabled_at: None,
        deleted_at: None,
    }
}

fn existing_user() -> User {
    registered_at(t0() - TimeDelta::days(1))
}

fn verified_user() -> User {
    User {
        email_verified_at: Some(t0() - TimeDelta::days(1)),
        ..existing_user()
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
    /// The user store of the session service (read again by `Sessions::start`).
    session_users: MockUserRepository,
    session_store: MockSessionRepository,
    tokens: MockTokenIssuer,
    clock: Arc<ManualClock>,
    fanout: Arc<RecordingFanOut>,
    mode: RegistrationMode,
    /// `None`: the service keeps its default mailer (none configured).
    mailer: Option<MockMailer>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            verifications: MockVerificationStore::new(),
            hasher: MockPasswordHasher::new(),
            session_users: MockUserRepository::new(),
            session_store: MockSessionRepository::new(),
            tokens: MockTokenIssuer::new(),
            clock: Arc::new(ManualClock::new(t0())),
            fanout: Arc::new(RecordingFanOut::default()),
            mode: RegistrationMode::Open,
            mailer: None,
        }
    }

    fn with_mode(mode: RegistrationMode) -> Self {
        Self {
            mode,
            ..Self::new()
        }
    }

    /// Installs a mock mailer that says whether it `delivers`, and returns it
    /// for the test's own expectations on `send`.
    fn mailer(&mut self, delivers: bool) -> &mut MockMailer {
        let mailer = self.mailer.insert(MockMailer::new());
        mailer.expect_delivers().return_const(delivers);
        mailer
    }

    /// States that no login session may be opened (no token signed, no session stored).
    fn expect_no_session(&mut self) {
        self.session_store.expect_create().never();
        self.tokens.expect_sign().never();
    }

    /// States that nothing may be stored by a registration: no account
    /// looked up, no password hashed, nothing registered.
    fn expect_no_registration_work(&mut self) {
        self.users.expect_by_email().never();
        self.hasher.expect_hash().never();
        self.users.expect_register().never();
        self.verifications.expect_insert().never();
        self.expect_no_session();
    }

    /// The registration store answers `outcome` once, recording what it was given.
    fn registers(&mut self, outcome: Registered) -> Arc<Mutex<Option<RegisterCall>>> {
        let call = Arc::new(Mutex::new(None));
        let sink = call.clone();
        self.users.expect_register().times(1).returning(
            move |user: &User, verification: &EmailVerification, invite, stale_before, now| {
                *sink.lock().unwrap() = Some(RegisterCall {
                    user: user.clone(),
                    verification: verification.clone(),
                    invite,
                    stale_before,
                    now,
                });
                Ok(outcome)
            },
        );
        call
    }

    /// The account `user` exists (for the password checks of change and delete).
    fn owns(&mut self, user: &User) {
        let stored = user.clone();
        self.users
            .expect_by_id()
            .with(eq(user.id))
            .times(1)
            .returning(move |_| Ok(Some(stored.clone())));
    }

    /// The hasher says whether `password` matches the stored hash, once.
    fn password_matches(&mut self, password: PasswordDigest, matches: bool) {
        self.hasher
            .expect_verify()
            .with(eq(password), eq(stored_hash()))
            .times(1)
            .returning(move |_, _| Ok(matches));
    }

    fn build(self) -> Accounts {
        let mailer = self.mailer;
        // One hasher for both services: the session service checks the
        // password a change or a deletion is confirmed with.
        let hasher = Arc::new(self.hasher);
        let sessions = Sessions::new(
            Arc::new(self.session_users),
            Arc::new(self.session_store),
            hasher.clone(),
            Arc::new(self.tokens),
            self.clock.clone(),
            SessionPolicy::default(),
        )
        .with_fanout(self.fanout.clone());
        let accounts = Accounts::new(
            Arc::new(self.users),
            Arc::new(self.verifications),
            hasher,
            self.clock,
            sessions,
            policy(),
        )
        .with_registration(self.mode)
        .with_fanout(self.fanout);
        match mailer {
            Some(mailer) => accounts.with_mailer(Arc::new(mailer)),
            None => accounts,
        }
    }
}

/// What one call of [`UserRepository::register`] was given.
#[derive(Clone)]
struct RegisterCall {
    user: User,
    verification: EmailVerification,
    invite: Option<TokenHash>,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, DomainError>, refusal: Refusal) {
    assert!(
        matches!(&result, Err(DomainError::Refused(got)) if *got == refusal),
        "expected {refusal:?}, got {result:?}"
    );
}

fn assert_email_taken<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(
            result,
            Err(DomainError::Conflict(ConflictError::EmailTaken))
        ),
        "{result:?}"
    );
}

// ---------------------------------------------------------------- register

#[tokio::test]
async fn register_stores_an_unverified_user_and_a_verification_of_the_returned_token_in_one_call() {
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
    let call = fx.registers(Registered::Created);
    // The verification is part of the atomic registration, never a second write.
    fx.verifications.expect_insert().never();
    fx.users.expect_insert().never();
    fx.expect_no_session();

    let token = fx
        .build()
        .register(&registration())
        .await
        .unwrap()
        .expect("without a mailer the token is returned");

    let call = call.lock().unwrap().take().unwrap();
    let user = call.user;
    assert_eq!(user.email.as_str(), "ada@example.com");
    assert_eq!(user.display_name.as_str(), "ada");
    assert_eq!(user.password_hash, stored_hash());
    assert_eq!(user.email_verified_at, None);
    assert!(!user.is_verified());
    assert_eq!(user.created_at, t0());
    assert_eq!(user.role, InstanceRole::Member);
    assert_eq!(user.disabled_at, None);
    assert_eq!(user.deleted_at, None);

    let verification = call.verification;
    assert_eq!(verification.token_hash, TokenHash::of(token.expose()));
    assert_eq!(verification.user_id, user.id);
    assert_eq!(verification.expires_at, t0() + policy().ttl);

    assert_eq!(call.invite, None);
    assert_eq!(call.stale_before, stale_before());
    assert_eq!(call.now, t0());
}

#[tokio::test]
async fn register_on_an_open_instance_ignores_an_invitation_it_does_not_need() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    let call = fx.registers(Registered::Created);

    fx.build().register(&invited()).await.unwrap();

    assert_eq!(call.lock().unwrap().take().unwrap().invite, None);
}

#[tokio::test]
async fn register_on_a_closed_instance_is_refused_before_any_lookup_hash_or_write() {
    for registration in [registration(), invited()] {
        let mut fx = Fixture::with_mode(RegistrationMode::Closed);
        fx.expect_no_registration_work();

        assert_refused(
            fx.build().register(&registration).await,
            Refusal::RegistrationClosed,
        );
    }
}

#[tokio::test]
async fn register_on_an_invite_only_instance_without_an_invitation_is_refused_before_any_work() {
    let mut fx = Fixture::with_mode(RegistrationMode::Invite);
    fx.expect_no_registration_work();

    assert_refused(
        fx.build().register(&registration()).await,
        Refusal::InviteInvalid,
    );
}

#[tokio::test]
async fn register_with_an_invitation_hands_the_store_only_the_hash_of_its_token() {
    let mut fx = Fixture::with_mode(RegistrationMode::Invite);
    fx.users.expect_by_email().times(1).returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    let call = fx.registers(Registered::Created);
    fx.expect_no_session();

    let token = fx.build().register(&invited()).await.unwrap().unwrap();

    let call = call.lock().unwrap().take().unwrap();
    assert_eq!(call.invite, Some(TokenHash::of(INVITE)));
    assert_ne!(call.invite, Some(TokenHash::of(token.expose())));
    assert_eq!(call.now, t0());
}

#[tokio::test]
async fn register_with_an_invitation_the_store_refuses_is_invite_invalid() {
    let mut fx = Fixture::with_mode(RegistrationMode::Invite);
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.registers(Registered::InviteRefused);
    fx.expect_no_session();

    assert_refused(
        fx.build().register(&invited()).await,
        Refusal::InviteInvalid,
    );
}

#[tokio::test]
async fn register_with_a_verified_email_is_email_taken_and_never_hashes_or_writes() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(|_| Ok(Some(verified_user())));
    fx.hasher.expect_hash().never();
    fx.users.expect_register().never();

    assert_email_taken(fx.build().register(&registration()).await);
}

#[tokio::test]
async fn register_with_a_verified_email_registered_long_ago_is_still_email_taken() {
    let mut fx = Fixture::new();
    let old = User {
        email_verified_at: Some(t0() - TimeDelta::days(300)),
        ..registered_at(t0() - TimeDelta::days(365))
    };
    fx.users
        .expect_by_email()
        .times(1)
        .returning(move |_| Ok(Some(old.clone())));
    fx.hasher.expect_hash().never();
    fx.users.expect_register().never();

    assert_email_taken(fx.build().register(&registration()).await);
}

#[tokio::test]
async fn register_over_a_fresh_unverified_registration_is_email_taken_before_hashing() {
    let mut fx = Fixture::new();
    // Its verification token is still usable for another minute.
    let fresh = registered_at(stale_before() + TimeDelta::minutes(1));
    fx.users
        .expect_by_email()
        .times(1)
        .returning(move |_| Ok(Some(fresh.clone())));
    fx.hasher.expect_hash().never();
    fx.users.expect_register().never();

    assert_email_taken(fx.build().register(&registration()).await);
}

#[tokio::test]
async fn register_over_a_stale_unverified_registration_goes_on_to_the_store() {
    // At `stale_before` exactly, the old verification token has just expired.
    for created_at in [stale_before(), stale_before() - TimeDelta::days(3)] {
        let mut fx = Fixture::new();
        let stale = registered_at(created_at);
        fx.users
            .expect_by_email()
            .times(1)
            .returning(move |_| Ok(Some(stale.clone())));
        fx.hasher
            .expect_hash()
            .times(1)
            .returning(|_| Ok(stored_hash()));
        let call = fx.registers(Registered::Created);

        let token = fx.build().register(&registration()).await.unwrap().unwrap();

        let call = call.lock().unwrap().take().unwrap();
        assert_eq!(call.stale_before, stale_before(), "{created_at}");
        assert_eq!(call.verification.token_hash, token.hash());
    }
}

#[tokio::test]
async fn register_turns_email_taken_from_the_store_into_email_taken() {
    // The early lookup saw nothing, but a concurrent registration won.
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    fx.registers(Registered::EmailTaken);
    fx.expect_no_session();

    assert_email_taken(fx.build().register(&registration()).await);
}

#[tokio::test]
async fn register_when_the_lookup_store_is_unavailable_is_unavailable_and_hashes_nothing() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.hasher.expect_hash().never();
    fx.users.expect_register().never();

    let result = fx.build().register(&registration()).await;

    assert!(
        matches!(&result, Err(DomainError::Unavailable(detail)) if detail == "connection refused"),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_the_registration_store_is_unavailable_is_unavailable_not_email_taken() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users
        .expect_register()
        .times(1)
        .returning(|_, _, _, _, _| Err(unavailable()));

    let result = fx.build().register(&registration()).await;

    assert!(
        matches!(result, Err(DomainError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_the_registration_store_fails_otherwise_is_internal() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users
        .expect_register()
        .times(1)
        .returning(|_, _, _, _, _| Err(StoreError::Failure("corrupt row".into())));

    let result = fx.build().register(&registration()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn register_when_hashing_fails_is_internal_and_registers_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Err(crate::ports::HashError("worker gone".into())));
    fx.users.expect_register().never();
    fx.verifications.expect_insert().never();

    let result = fx.build().register(&registration()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
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
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    let call = fx.registers(Registered::Created);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sink = sent.clone();
    fx.mailer(true)
        .expect_send()
        .times(1)
        .returning(move |mail| sink.lock().unwrap().push(mail));

    let returned = fx.build().register(&registration()).await.unwrap();

    assert!(returned.is_none(), "a mailed token is not handed back");
    let sent = sent.lock().unwrap();
    let mail = &sent[0];
    assert_eq!(mail.to.as_str(), "ada@example.com");
    let (token, valid_for) = verification_of(mail);
    let stored = call.lock().unwrap().clone().unwrap();
    assert_eq!(token.hash(), stored.verification.token_hash);
    assert_eq!(valid_for, policy().ttl);
}

#[tokio::test]
async fn register_with_a_mailer_that_does_not_deliver_returns_the_mailed_token() {
    let mut fx = Fixture::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.registers(Registered::Created);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sink = sent.clone();
    fx.mailer(false)
        .expect_send()
        .times(1)
        .returning(move |mail| sink.lock().unwrap().push(mail));

    let returned = fx.build().register(&registration()).await.unwrap();

    let (mailed, _) = verification_of(&sent.lock().unwrap()[0]);
    assert_eq!(returned, Some(mailed));
}

#[tokio::test]
async fn register_mails_only_after_the_registration_is_stored() {
    let mut fx = Fixture::new();
    let mut sequence = Sequence::new();
    fx.users.expect_by_email().returning(|_| Ok(None));
    fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
    fx.users
        .expect_register()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, _, _, _| Ok(Registered::Created));
    fx.mailer(true)
        .expect_send()
        .times(1)
        .in_sequence(&mut sequence)
        .return_const(());

    assert!(fx.build().register(&registration()).await.is_ok());
}

#[tokio::test]
async fn register_that_fails_to_store_or_is_refused_mails_nothing() {
    for outcome in [
        Err(unavailable()),
        Ok(Registered::EmailTaken),
        Ok(Registered::InviteRefused),
    ] {
        let mut fx = Fixture::new();
        fx.users.expect_by_email().returning(|_| Ok(None));
        fx.hasher.expect_hash().returning(|_| Ok(stored_hash()));
        fx.users
            .expect_register()
            .times(1)
            .returning(move |_, _, _, _, _| outcome.clone());
        fx.mailer(true).expect_send().never();

        assert!(fx.build().register(&registration()).await.is_err());
    }
}

#[tokio::test]
async fn register_with_a_taken_email_mails_nothing() {
    let mut fx = Fixture::new();
    let mut verified = existing_user();
    verified.email_verified_at = Some(t0());
    fx.users
        .expect_by_email()
        .returning(move |_| Ok(Some(verified.clone())));
    fx.mailer(true).expect_send().never();

    let result = fx.build().register(&registration()).await;

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

/// A login from a browser that names itself.
fn browser() -> LoginContext {
    LoginContext {
        user_agent: UserAgent::from_header("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
    }
}

impl Fixture {
    /// The session service's re-read after storing a session finds `user_id`
    /// verified and enabled, once.
    fn still_enabled(&mut self, user_id: UserId) {
        self.session_users
            .expect_by_id()
            .with(eq(user_id))
            .times(1)
            .returning(move |_| {
                Ok(Some(User {
                    id: user_id,
                    ..verified_user()
                }))
            });
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
    fx.still_enabled(user_id);
    fx.session_store.expect_revoke().never();

    let tokens = fx
        .build()
        .verify_email("the-token", &browser())
        .await
        .unwrap();

    let session = created.lock().unwrap().clone().unwrap();
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.revoked_at, None);
    assert_eq!(session.user_agent, browser().user_agent);
    assert!(session.user_agent.is_some());
    assert_eq!(session.created_at, now);
    assert_eq!(session.last_used_at, now);
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

    let result = fx.build().verify_email("never-issued", &browser()).await;

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

    let result = fx.build().verify_email("the-token", &browser()).await;

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
    fx.still_enabled(user_id);
    fx.clock.advance(policy().ttl - TimeDelta::microseconds(1));

    assert!(
        fx.build()
            .verify_email("the-token", &LoginContext::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn verify_email_of_an_account_disabled_meanwhile_revokes_the_new_session_and_is_unauthorized()
{
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    fx.verifications
        .expect_take()
        .returning(move |_| Ok(Some(pending(user_id, t0() + policy().ttl))));
    fx.users
        .expect_mark_verified()
        .times(1)
        .returning(|_, _| Ok(true));
    fx.tokens
        .expect_sign()
        .returning(|claims| Ok(fake_signature(claims)));
    let created = Arc::new(Mutex::new(None));
    let sink = created.clone();
    fx.session_store
        .expect_create()
        .times(1)
        .returning(move |session: &LoginSession| {
            *sink.lock().unwrap() = Some(session.id);
            Ok(())
        });
    fx.session_users
        .expect_by_id()
        .times(1)
        .returning(move |_| {
            Ok(Some(User {
                id: user_id,
                disabled_at: Some(t0()),
                ..verified_user()
            }))
        });
    let revoked = Arc::new(Mutex::new(None));
    let sink = revoked.clone();
    fx.session_store
        .expect_revoke()
        .with(always(), eq(t0()))
        .times(1)
        .returning(move |id, _| {
            *sink.lock().unwrap() = Some(id);
            Ok(())
        });

    let result = fx.build().verify_email("the-token", &browser()).await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
    let created = created.lock().unwrap().unwrap();
    assert_eq!(*revoked.lock().unwrap(), Some(created));
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

    let result = fx.build().verify_email("the-token", &browser()).await;

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

    let result = fx.build().verify_email("the-token", &browser()).await;

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

    let result = fx.build().verify_email("the-token", &browser()).await;

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

// --------------------------------------------------------- change_password

fn change() -> PasswordChange {
    PasswordChange {
        current: current_password(),
        new: new_password(),
    }
}

#[tokio::test]
async fn change_password_with_a_wrong_current_password_is_refused_and_stores_nothing() {
    let mut fx = Fixture::new();
    let user = verified_user();
    fx.owns(&user);
    fx.password_matches(current_password(), false);
    fx.hasher.expect_hash().never();
    fx.users.expect_set_password_hash().never();
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .change_password(user.id, SessionId::new(), &change())
        .await;

    assert_refused(result, Refusal::WrongPassword);
}

#[tokio::test]
async fn change_password_stores_the_new_hash_and_ends_every_other_session() {
    let mut fx = Fixture::new();
    let user = verified_user();
    let caller = SessionId::new();
    let others = vec![SessionId::new(), SessionId::new()];
    fx.owns(&user);
    fx.password_matches(current_password(), true);
    fx.hasher
        .expect_hash()
        .with(eq(new_password()))
        .times(1)
        .returning(|_| Ok(new_hash()));
    let changed = User {
        password_hash: new_hash(),
        ..user.clone()
    };
    fx.users
        .expect_set_password_hash()
        .with(eq(user.id), eq(new_hash()))
        .times(1)
        .returning(move |_, _| Ok(Some(changed.clone())));
    let ended = others.clone();
    fx.session_store
        .expect_revoke_all()
        .with(eq(user.id), eq(Some(caller)), eq(t0()))
        .times(1)
        .returning(move |_, _, _| Ok(ended.clone()));
    let fanout = fx.fanout.clone();

    fx.build()
        .change_password(user.id, caller, &change())
        .await
        .unwrap();

    assert_eq!(fanout.ended(), others);
    assert!(fanout.published().is_empty());
}

#[tokio::test]
async fn change_password_of_an_unknown_account_is_unauthorized_and_checks_no_password() {
    let mut fx = Fixture::new();
    fx.users.expect_by_id().times(1).returning(|_| Ok(None));
    fx.hasher.expect_verify().never();
    fx.hasher.expect_hash().never();
    fx.users.expect_set_password_hash().never();
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .change_password(UserId::new(), SessionId::new(), &change())
        .await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

#[tokio::test]
async fn change_password_of_an_account_gone_before_the_write_ends_no_session() {
    let mut fx = Fixture::new();
    let user = verified_user();
    fx.owns(&user);
    fx.password_matches(current_password(), true);
    fx.hasher.expect_hash().returning(|_| Ok(new_hash()));
    fx.users
        .expect_set_password_hash()
        .times(1)
        .returning(|_, _| Ok(None));
    fx.session_store.expect_revoke_all().never();

    let result = fx
        .build()
        .change_password(user.id, SessionId::new(), &change())
        .await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

// ------------------------------------------------------------------ delete

#[tokio::test]
async fn delete_with_a_wrong_password_is_refused_and_changes_nothing() {
    let mut fx = Fixture::new();
    let user = verified_user();
    fx.owns(&user);
    fx.password_matches(current_password(), false);
    fx.users.expect_anonymise().never();
    fx.session_store.expect_revoke_all().never();
    let fanout = fx.fanout.clone();

    let result = fx.build().delete(user.id, &current_password()).await;

    assert_refused(result, Refusal::WrongPassword);
    assert!(fanout.ended().is_empty() && fanout.published().is_empty());
}

#[tokio::test]
async fn delete_of_a_room_owner_is_owner_must_hand_over_and_ends_no_session() {
    let mut fx = Fixture::new();
    let user = verified_user();
    fx.owns(&user);
    fx.password_matches(current_password(), true);
    fx.users
        .expect_anonymise()
        .with(eq(user.id), always(), always())
        .times(1)
        .returning(|_, _, _| Ok(Anonymisation::OwnsRooms));
    fx.session_store.expect_revoke_all().never();
    let fanout = fx.fanout.clone();

    let result = fx.build().delete(user.id, &current_password()).await;

    assert!(
        matches!(
            result,
            Err(DomainError::Conflict(ConflictError::OwnerMustHandOver))
        ),
        "{result:?}"
    );
    assert!(fanout.ended().is_empty() && fanout.published().is_empty());
}

#[tokio::test]
async fn delete_anonymises_the_account_ends_all_its_sessions_and_announces_each_room_left() {
    let mut fx = Fixture::new();
    let user = verified_user();
    let rooms = [RoomId::new(), RoomId::new(), RoomId::new()];
    let sessions = vec![SessionId::new(), SessionId::new()];
    fx.clock.advance(TimeDelta::minutes(7));
    let now = t0() + TimeDelta::minutes(7);
    fx.owns(&user);
    fx.password_matches(current_password(), true);
    // The store's `member_left` events, at unrelated positions: the service
    // must publish them exactly as given, in the order given.
    let left: Vec<RoomEvent> = rooms
        .iter()
        .zip([4, 1, 9])
        .map(|(&room_id, pos)| RoomEvent {
            room_id,
            pos: Pos::new(pos).unwrap(),
            at: now,
            change: Change::MemberLeft { user_id: user.id },
        })
        .collect();
    let logged = left.clone();
    let anonymised = User {
        email: Anonymised::of(user.id, now).email,
        ..user.clone()
    };
    fx.users
        .expect_anonymise()
        .with(
            eq(user.id),
            eq(Anonymised::of(user.id, now)),
            eq(PasswordHash::new(PasswordHash::UNUSABLE.to_owned())),
        )
        .times(1)
        .returning(move |_, _, _| Ok(Anonymisation::Done(anonymised.clone(), logged.clone())));
    let ended = sessions.clone();
    fx.session_store
        .expect_revoke_all()
        .with(eq(user.id), eq(None), eq(now))
        .times(1)
        .returning(move |_, _, _| Ok(ended.clone()));
    let fanout = fx.fanout.clone();

    fx.build()
        .delete(user.id, &current_password())
        .await
        .unwrap();

    assert_eq!(fanout.ended(), sessions);
    let announced: Vec<Broadcast> = left.into_iter().map(Broadcast::Event).collect();
    assert_eq!(fanout.published(), announced);
}

#[tokio::test]
async fn delete_of_an_account_gone_before_the_write_is_unauthorized_and_ends_no_session() {
    let mut fx = Fixture::new();
    let user = verified_user();
    fx.owns(&user);
    fx.password_matches(current_password(), true);
    fx.users
        .expect_anonymise()
        .times(1)
        .returning(|_, _, _| Ok(Anonymisation::Missing));
    fx.session_store.expect_revoke_all().never();

    let result = fx.build().delete(user.id, &current_password()).await;

    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}
