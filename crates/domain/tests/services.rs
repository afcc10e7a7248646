//! The services end to end over the real in-memory stores, bcrypt and JWTs,
//! with a manual clock so that expiry is tested without sleeping.

// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use p_chat_auth::{BcryptHasher, JwtIssuer};
use p_chat_domain::DomainError;
use p_chat_domain::error::{ConflictError, Refusal};
use p_chat_domain::ports::ManualClock;
use p_chat_domain::registration::{InviteLifetime, InviteUses, RegistrationMode};
use p_chat_domain::services::{
    Accounts, Admin, Credentials, Operator, Registration, Sessions, UserRef,
};
use p_chat_domain::session::{LoginContext, SessionPolicy, TokenSet, UserAgent};
use p_chat_domain::user::{DisplayName, Email, PasswordDigest};
use p_chat_domain::verification::VerificationPolicy;
use p_chat_persistence::memory::{MemoryAccounts, MemoryChat, MemorySessions};

const SECRET: &[u8] = b"integration-test secret, 32+ bytes long";

/// SHA-256 of "password".
const PASSWORD: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
/// SHA-256 of "wrong".
const WRONG_PASSWORD: &str = "8810ad581e59f2bc3928b261707a71308f7e139eb04820366dc4d5c18d980225";

/// Why a registration here returns its token: no mailer is configured.
const NO_MAILER: &str = "without a mailer the token is returned";

fn session_policy() -> SessionPolicy {
    SessionPolicy {
        access_ttl: TimeDelta::minutes(15),
        refresh_ttl: TimeDelta::hours(1),
    }
}

fn verification_policy() -> VerificationPolicy {
    VerificationPolicy {
        ttl: TimeDelta::hours(24),
    }
}

/// The services wired to one set of in-memory stores and one clock.
struct App {
    accounts: Accounts,
    sessions: Sessions,
    admin: Admin,
    clock: Arc<ManualClock>,
}

fn app() -> App {
    app_with(RegistrationMode::Open)
}

fn app_with(mode: RegistrationMode) -> App {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap(),
    ));
    let store = MemoryAccounts::new(&MemoryChat::default());
    let users = Arc::new(store.users());
    let hasher = Arc::new(BcryptHasher::new(4).unwrap());
    let sessions = Sessions::new(
        users.clone(),
        Arc::new(MemorySessions::default()),
        hasher.clone(),
        Arc::new(JwtIssuer::new(SECRET)),
        clock.clone(),
        session_policy(),
    );
    let accounts = Accounts::new(
        users.clone(),
        Arc::new(store.verifications()),
        hasher.clone(),
        clock.clone(),
        sessions.clone(),
        verification_policy(),
    )
    .with_registration(mode);
    let admin = Admin::new(
        users,
        Arc::new(store.invites()),
        hasher,
        clock.clone(),
        sessions.clone(),
    );
    App {
        accounts,
        sessions,
        admin,
        clock,
    }
}

fn credentials(email: &str, password: &str) -> Credentials {
    Credentials {
        email: Email::parse(email).unwrap(),
        password: PasswordDigest::parse(password).unwrap(),
    }
}

fn ada() -> Credentials {
    credentials("Ada@Example.com", PASSWORD)
}

/// An open registration of `credentials`.
fn open(credentials: &Credentials) -> Registration {
    Registration {
        credentials: credentials.clone(),
        invite: None,
    }
}

/// A login from a browser that names itself.
fn browser() -> LoginContext {
    LoginContext {
        user_agent: UserAgent::from_header("Mozilla/5.0 Firefox/140.0"),
    }
}

fn is_unauthorized<T>(result: &Result<T, DomainError>) -> bool {
    matches!(result, Err(DomainError::Unauthorized))
}

fn is_email_taken<T>(result: &Result<T, DomainError>) -> bool {
    matches!(
        result,
        Err(DomainError::Conflict(ConflictError::EmailTaken))
    )
}

impl App {
    /// Registers and verifies `credentials`, returning the verification's tokens.
    async fn verified(&self, credentials: &Credentials) -> TokenSet {
        let token = self
            .accounts
            .register(&open(credentials))
            .await
            .unwrap()
            .expect(NO_MAILER);
        self.accounts
            .verify_email(token.expose(), &browser())
            .await
            .unwrap()
    }

    async fn access_works(&self, tokens: &TokenSet) -> bool {
        self.sessions
            .authenticate(&tokens.access_token)
            .await
            .is_ok()
    }
}

#[tokio::test]
async fn full_flow_register_verify_login_rotate_detect_reuse_and_log_out() {
    let app = app();

    // Register: the account exists but cannot log in yet.
    let verification = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);
    assert!(is_unauthorized(
        &app.sessions.authorize(&ada(), &browser()).await
    ));

    // Verify: logs in (session A) and unlocks password login.
    let session_a = app
        .accounts
        .verify_email(verification.expose(), &browser())
        .await
        .unwrap();
    let principal_a = app
        .sessions
        .authenticate(&session_a.access_token)
        .await
        .unwrap();
    let profile = app.accounts.profile(principal_a.user_id).await.unwrap();
    assert_eq!(profile.email.as_str(), "ada@example.com");
    assert!(profile.is_verified());

    // Log in with the password (session B), in another spelling of the email.
    let b1 = app
        .sessions
        .authorize(&credentials("  ADA@example.COM", PASSWORD), &browser())
        .await
        .unwrap();
    let principal_b = app.sessions.authenticate(&b1.access_token).await.unwrap();
    assert_eq!(principal_b.user_id, principal_a.user_id);
    assert_ne!(principal_b.session_id, principal_a.session_id);

    // Rotate B: new tokens of the same session.
    app.clock.advance(TimeDelta::minutes(5));
    let b2 = app.sessions.refresh(&b1.refresh_token).await.unwrap();
    assert_ne!(b2.refresh_token, b1.refresh_token);
    assert_eq!(
        b2.refresh_token_valid_to,
        b1.refresh_token_valid_to + TimeDelta::minutes(5)
    );
    let rotated = app.sessions.authenticate(&b2.access_token).await.unwrap();
    assert_eq!(rotated.session_id, principal_b.session_id);

    // Presenting the rotated-away token again is reuse: the family dies.
    assert!(is_unauthorized(
        &app.sessions.refresh(&b1.refresh_token).await
    ));
    assert!(is_unauthorized(
        &app.sessions.refresh(&b2.refresh_token).await
    ));
    assert!(!app.access_works(&b2).await);
    assert!(!app.access_works(&b1).await);

    // Session A is another family and lives on.
    assert!(app.access_works(&session_a).await);

    // Logout of A ends its access and refresh tokens.
    app.sessions.end(principal_a.session_id).await.unwrap();
    assert!(!app.access_works(&session_a).await);
    assert!(is_unauthorized(
        &app.sessions.refresh(&session_a.refresh_token).await
    ));

    // The account itself is fine: a new login works.
    let c = app.sessions.authorize(&ada(), &browser()).await.unwrap();
    assert!(app.access_works(&c).await);
}

#[tokio::test]
async fn login_with_a_wrong_password_or_an_unknown_email_is_unauthorized() {
    let app = app();
    app.verified(&ada()).await;

    let wrong_password = app
        .sessions
        .authorize(&credentials("ada@example.com", WRONG_PASSWORD), &browser())
        .await;
    let unknown_email = app
        .sessions
        .authorize(&credentials("bob@example.com", PASSWORD), &browser())
        .await;

    assert!(is_unauthorized(&wrong_password));
    assert!(is_unauthorized(&unknown_email));
}

#[tokio::test]
async fn logout_by_refresh_token_ends_the_session_of_that_token_only() {
    let app = app();
    let first = app.verified(&ada()).await;
    let second = app.sessions.authorize(&ada(), &browser()).await.unwrap();

    app.sessions
        .end_by_refresh_token(&second.refresh_token)
        .await
        .unwrap();

    assert!(!app.access_works(&second).await);
    assert!(is_unauthorized(
        &app.sessions.refresh(&second.refresh_token).await
    ));
    assert!(app.access_works(&first).await);
}

#[tokio::test]
async fn each_token_kind_is_refused_where_the_other_is_expected() {
    let app = app();
    let tokens = app.verified(&ada()).await;

    assert!(is_unauthorized(
        &app.sessions.authenticate(&tokens.refresh_token).await
    ));
    assert!(is_unauthorized(
        &app.sessions.refresh(&tokens.access_token).await
    ));
    assert!(is_unauthorized(
        &app.sessions
            .end_by_refresh_token(&tokens.access_token)
            .await
    ));
    // Refusing the wrong kind is not reuse: the session is untouched.
    assert!(app.access_works(&tokens).await);
    assert!(app.sessions.refresh(&tokens.refresh_token).await.is_ok());
}

#[tokio::test]
async fn access_tokens_expire_after_the_access_ttl_and_a_refresh_renews_them() {
    let app = app();
    let tokens = app.verified(&ada()).await;

    app.clock
        .advance(session_policy().access_ttl - TimeDelta::seconds(1));
    assert!(app.access_works(&tokens).await);
    app.clock.advance(TimeDelta::seconds(1));
    assert!(!app.access_works(&tokens).await);

    let renewed = app.sessions.refresh(&tokens.refresh_token).await.unwrap();
    assert!(app.access_works(&renewed).await);
}

#[tokio::test]
async fn refresh_tokens_expire_after_the_refresh_ttl() {
    let app = app();
    let tokens = app.verified(&ada()).await;

    app.clock.advance(session_policy().refresh_ttl);

    assert!(is_unauthorized(
        &app.sessions.refresh(&tokens.refresh_token).await
    ));
}

#[tokio::test]
async fn a_verification_token_works_only_once() {
    let app = app();
    let token = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);

    let first = app.accounts.verify_email(token.expose(), &browser()).await;
    let second = app.accounts.verify_email(token.expose(), &browser()).await;

    assert!(first.is_ok());
    assert!(is_unauthorized(&second));
}

#[tokio::test]
async fn an_unknown_verification_token_is_unauthorized() {
    let app = app();
    app.accounts.register(&open(&ada())).await.unwrap();

    assert!(is_unauthorized(
        &app.accounts.verify_email(&"0".repeat(64), &browser()).await
    ));
}

#[tokio::test]
async fn a_verification_token_expires_after_the_policy_ttl() {
    let app = app();
    let token = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);

    app.clock.advance(verification_policy().ttl);

    assert!(is_unauthorized(
        &app.accounts.verify_email(token.expose(), &browser()).await
    ));
    // The account stays unverified, so it cannot log in.
    assert!(is_unauthorized(
        &app.sessions.authorize(&ada(), &browser()).await
    ));
}

#[tokio::test]
async fn a_verification_token_still_works_just_before_the_policy_ttl() {
    let app = app();
    let token = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);

    app.clock
        .advance(verification_policy().ttl - TimeDelta::seconds(1));

    assert!(
        app.accounts
            .verify_email(token.expose(), &browser())
            .await
            .is_ok()
    );
    assert!(app.sessions.authorize(&ada(), &browser()).await.is_ok());
}

#[tokio::test]
async fn registering_an_email_again_in_another_case_or_spacing_is_email_taken() {
    let app = app();
    app.accounts.register(&open(&ada())).await.unwrap();

    for spelling in [
        "ada@example.com",
        "  ADA@EXAMPLE.COM  ",
        "\tAda@example.Com\n",
    ] {
        let again = app
            .accounts
            .register(&open(&credentials(spelling, WRONG_PASSWORD)))
            .await;
        assert!(is_email_taken(&again), "{spelling:?}: {again:?}");
    }
}

#[tokio::test]
async fn rename_changes_the_profile_name() {
    let app = app();
    let tokens = app.verified(&ada()).await;
    let me = app
        .sessions
        .authenticate(&tokens.access_token)
        .await
        .unwrap();
    assert_eq!(
        app.accounts.profile(me.user_id).await.unwrap().display_name,
        DisplayName::parse("ada").unwrap()
    );

    let name = DisplayName::parse("Countess of Lovelace").unwrap();
    app.accounts.rename(me.user_id, &name).await.unwrap();

    assert_eq!(
        app.accounts.profile(me.user_id).await.unwrap().display_name,
        name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_email_give_exactly_one_ok() {
    let app = app();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let accounts = app.accounts.clone();
            // Vary the spelling: they all normalize to one email.
            let email = if i % 2 == 0 {
                "ada@example.com"
            } else {
                " ADA@Example.com"
            };
            let credentials = credentials(email, PASSWORD);
            tokio::spawn(async move { accounts.register(&open(&credentials)).await })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }

    let winners: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|token| token.as_ref().expect(NO_MAILER))
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results.iter().filter(|r| r.is_err()).all(is_email_taken),
        "{results:?}"
    );
    // The one account is usable through the winner's token.
    app.accounts
        .verify_email(winners[0].expose(), &browser())
        .await
        .unwrap();
    assert!(app.sessions.authorize(&ada(), &browser()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_refreshes_of_one_token_give_one_ok_and_end_the_session() {
    let app = app();
    let tokens = app.verified(&ada()).await;

    let handles: Vec<_> = (0..8)
        .map(|_| {
            let sessions = app.sessions.clone();
            let token = tokens.refresh_token.clone();
            tokio::spawn(async move { sessions.refresh(&token).await })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }

    // At most one may win the compare-and-swap. With this store exactly one
    // does: the first rotation always finds the session untouched, since a
    // revocation only ever follows someone else's rotation.
    let oks = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "{results:?}");
    assert!(
        results.iter().filter(|r| r.is_err()).all(is_unauthorized),
        "{results:?}"
    );
    // The token was presented more than once, which is reuse: whoever
    // won, the session is over, for old and new tokens alike.
    assert!(!app.access_works(&tokens).await);
    for won in results.iter().filter_map(|r| r.as_ref().ok()) {
        assert!(!app.access_works(won).await);
        assert!(is_unauthorized(
            &app.sessions.refresh(&won.refresh_token).await
        ));
    }
}

#[tokio::test]
async fn invite_only_registration_through_a_console_invitation_then_a_disable_ends_the_session() {
    let app = app_with(RegistrationMode::Invite);
    let bob = credentials("bob@example.com", PASSWORD);

    // Without an invitation, or with a made-up one, nobody registers.
    for invite in [None, Some("0".repeat(64))] {
        let refused = app
            .accounts
            .register(&Registration {
                credentials: ada(),
                invite,
            })
            .await;
        assert!(
            matches!(refused, Err(DomainError::Refused(Refusal::InviteInvalid))),
            "{refused:?}"
        );
    }

    // The server's console hands out a one-use invitation.
    let issued = app
        .admin
        .create_invite(
            Operator::Console,
            InviteUses::new(1).unwrap(),
            InviteLifetime::from_seconds(3600).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(issued.invite.created_by, None);
    let listed = app.admin.invites(Operator::Console).await.unwrap();
    assert_eq!(listed, vec![issued.invite.clone()]);

    // Ada registers with it, verifies and is logged in.
    let verification = app
        .accounts
        .register(&Registration {
            credentials: ada(),
            invite: Some(issued.token.expose().to_owned()),
        })
        .await
        .unwrap()
        .expect(NO_MAILER);
    let tokens = app
        .accounts
        .verify_email(verification.expose(), &browser())
        .await
        .unwrap();
    let me = app
        .sessions
        .authenticate(&tokens.access_token)
        .await
        .unwrap();
    let devices = app.sessions.of_user(me.user_id).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id, me.session_id);
    assert_eq!(devices[0].user_agent, browser().user_agent);

    // The invitation is used up: Bob cannot register with it too.
    let used_up = app
        .accounts
        .register(&Registration {
            credentials: bob.clone(),
            invite: Some(issued.token.expose().to_owned()),
        })
        .await;
    assert!(
        matches!(used_up, Err(DomainError::Refused(Refusal::InviteInvalid))),
        "{used_up:?}"
    );
    assert!(
        app.admin
            .invites(Operator::Console)
            .await
            .unwrap()
            .is_empty()
    );

    // The console disables Ada: her session ends, and she cannot log in.
    let disabled = app
        .admin
        .disable(Operator::Console, &UserRef::Email(ada().email))
        .await
        .unwrap();
    assert!(disabled.disabled_at.is_some());
    assert!(is_unauthorized(
        &app.sessions.authenticate(&tokens.access_token).await
    ));
    assert!(is_unauthorized(
        &app.sessions.refresh(&tokens.refresh_token).await
    ));
    assert!(is_unauthorized(
        &app.sessions.authorize(&ada(), &browser()).await
    ));
    assert!(app.sessions.of_user(me.user_id).await.unwrap().is_empty());

    // Enabled again, she logs in anew; the ended session stays ended.
    app.admin
        .enable(Operator::Console, &UserRef::Id(me.user_id))
        .await
        .unwrap();
    let again = app.sessions.authorize(&ada(), &browser()).await.unwrap();
    assert!(app.access_works(&again).await);
    assert!(!app.access_works(&tokens).await);
}

#[tokio::test]
async fn a_stale_unverified_registration_no_longer_blocks_its_email() {
    let app = app();
    let abandoned = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);

    // Still fresh: the email is taken.
    app.clock
        .advance(verification_policy().ttl - TimeDelta::seconds(1));
    assert!(is_email_taken(&app.accounts.register(&open(&ada())).await));

    // Its verification time is over: a new registration replaces it.
    app.clock.advance(TimeDelta::seconds(1));
    let fresh = app
        .accounts
        .register(&open(&ada()))
        .await
        .unwrap()
        .expect(NO_MAILER);
    assert!(is_unauthorized(
        &app.accounts
            .verify_email(abandoned.expose(), &browser())
            .await
    ));
    let tokens = app
        .accounts
        .verify_email(fresh.expose(), &browser())
        .await
        .unwrap();
    assert!(app.access_works(&tokens).await);

    // Once verified, it blocks the email for good.
    app.clock.advance(verification_policy().ttl * 10);
    assert!(is_email_taken(&app.accounts.register(&open(&ada())).await));
}
