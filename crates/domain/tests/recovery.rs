//! Account recovery end to end over the real in-memory stores, bcrypt and
//! JWTs, with a manual clock and a mailer that keeps what it is given: the
//! rules of resend-verification, forgot-password and reset-password.

// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, TimeZone, Utc};
use p_chat_auth::{BcryptHasher, JwtIssuer};
use p_chat_domain::DomainError;
use p_chat_domain::mail::{Mail, MailContent};
use p_chat_domain::ports::{Mailer, ManualClock};
use p_chat_domain::recovery::ResetPolicy;
use p_chat_domain::services::{
    Accounts, Admin, Credentials, Operator, Recovery, RecoveryPorts, Registration, Sessions,
    UserRef,
};
use p_chat_domain::session::{LoginContext, SessionPolicy};
use p_chat_domain::user::{Email, PasswordDigest};
use p_chat_domain::verification::VerificationPolicy;
use p_chat_persistence::memory::{MemoryAccounts, MemoryChat, MemorySessions};

const SECRET: &[u8] = b"integration-test secret, 32+ bytes long";

/// A mailer that delivers (or says it does not) and keeps every mail.
#[derive(Default)]
struct KeptMail {
    delivers: bool,
    sent: Mutex<Vec<Mail>>,
}

impl Mailer for KeptMail {
    fn send(&self, mail: Mail) {
        self.sent.lock().unwrap().push(mail);
    }

    fn delivers(&self) -> bool {
        self.delivers
    }
}

impl KeptMail {
    /// The token of the last mail, with its kind.
    fn last(&self) -> Option<(&'static str, String)> {
        self.sent
            .lock()
            .unwrap()
            .last()
            .map(|mail| match &mail.content {
                MailContent::Verification { token, .. } => {
                    ("verification", token.expose().to_owned())
                }
                MailContent::PasswordReset { token, .. } => ("reset", token.expose().to_owned()),
            })
    }

    fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

struct App {
    accounts: Accounts,
    sessions: Sessions,
    recovery: Recovery,
    admin: Admin,
    mail: Arc<KeptMail>,
    clock: Arc<ManualClock>,
}

fn reset_policy() -> ResetPolicy {
    ResetPolicy {
        ttl: TimeDelta::minutes(30),
    }
}

fn app(delivers: bool) -> App {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap(),
    ));
    let store = MemoryAccounts::new(&MemoryChat::default());
    let users = Arc::new(store.users());
    let hasher = Arc::new(BcryptHasher::new(4).unwrap());
    let mail = Arc::new(KeptMail {
        delivers,
        ..KeptMail::default()
    });
    let sessions = Sessions::new(
        users.clone(),
        Arc::new(MemorySessions::default()),
        hasher.clone(),
        Arc::new(JwtIssuer::new(SECRET)),
        clock.clone(),
        SessionPolicy::default(),
    );
    let verifications = Arc::new(store.verifications());
    let accounts = Accounts::new(
        users.clone(),
        verifications.clone(),
        hasher.clone(),
        clock.clone(),
        sessions.clone(),
        VerificationPolicy::default(),
    )
    .with_mailer(mail.clone());
    let recovery = Recovery::new(RecoveryPorts {
        users: users.clone(),
        verifications,
        resets: Arc::new(store.resets()),
        hasher: hasher.clone(),
        clock: clock.clone(),
        mailer: mail.clone(),
        sessions: sessions.clone(),
        verification: VerificationPolicy::default(),
        reset: reset_policy(),
    });
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
        recovery,
        admin,
        mail,
        clock,
    }
}

fn credentials(password: &str) -> Credentials {
    Credentials {
        email: Email::parse("ada@example.com").unwrap(),
        password: PasswordDigest::of_password(password),
    }
}

fn email() -> Email {
    Email::parse("ada@example.com").unwrap()
}

impl App {
    /// Registers Ada and follows the mailed verification link.
    async fn verified_ada(&self) {
        let registration = Registration {
            credentials: credentials("first"),
            invite: None,
        };
        self.accounts.register(&registration).await.unwrap();
        let (_, token) = self.mail.last().unwrap();
        self.accounts
            .verify_email(&token, &LoginContext::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_reset_sets_the_password_once_and_ends_every_session() {
    let app = app(true);
    app.verified_ada().await;
    let login = app
        .sessions
        .authorize(&credentials("first"), &LoginContext::default())
        .await
        .unwrap();

    app.recovery.forgot_password(&email()).await.unwrap();
    let (kind, token) = app.mail.last().unwrap();
    assert_eq!(kind, "reset");
    app.recovery
        .reset_password(&token, &PasswordDigest::of_password("second"))
        .await
        .unwrap();

    assert!(matches!(
        app.sessions.authenticate(&login.access_token).await,
        Err(DomainError::Unauthorized)
    ));
    assert!(
        app.sessions
            .authorize(&credentials("first"), &LoginContext::default())
            .await
            .is_err()
    );
    assert!(
        app.sessions
            .authorize(&credentials("second"), &LoginContext::default())
            .await
            .is_ok()
    );
    let again = app
        .recovery
        .reset_password(&token, &PasswordDigest::of_password("third"))
        .await;
    assert!(
        matches!(again, Err(DomainError::Unauthorized)),
        "single use"
    );
}

#[tokio::test]
async fn a_reset_link_expires_and_a_newer_password_voids_the_older_links() {
    let app = app(true);
    app.verified_ada().await;
    app.recovery.forgot_password(&email()).await.unwrap();
    let (_, first) = app.mail.last().unwrap();
    app.recovery.forgot_password(&email()).await.unwrap();
    let (_, second) = app.mail.last().unwrap();

    app.clock.advance(reset_policy().ttl);
    let expired = app
        .recovery
        .reset_password(&second, &PasswordDigest::of_password("late"))
        .await;
    assert!(matches!(expired, Err(DomainError::Unauthorized)));

    // A fresh link works; the first one, still within its time earlier, is void now.
    app.recovery.forgot_password(&email()).await.unwrap();
    let (_, fresh) = app.mail.last().unwrap();
    app.recovery
        .reset_password(&fresh, &PasswordDigest::of_password("new"))
        .await
        .unwrap();
    let old = app
        .recovery
        .reset_password(&first, &PasswordDigest::of_password("old"))
        .await;
    assert!(matches!(old, Err(DomainError::Unauthorized)));
}

#[tokio::test]
async fn nothing_is_mailed_for_unknown_or_disabled_accounts_or_without_a_mailer() {
    let app = app(true);
    let stranger = Email::parse("stranger@example.com").unwrap();
    app.recovery.forgot_password(&stranger).await.unwrap();
    app.recovery.resend_verification(&stranger).await.unwrap();
    assert_eq!(app.mail.count(), 0);

    app.verified_ada().await;
    let mailed = app.mail.count();
    app.recovery.resend_verification(&email()).await.unwrap();
    assert_eq!(
        app.mail.count(),
        mailed,
        "no verification mail once verified"
    );
    app.admin
        .disable(Operator::Console, &UserRef::Email(email()))
        .await
        .unwrap();
    app.recovery.forgot_password(&email()).await.unwrap();
    assert_eq!(
        app.mail.count(),
        mailed,
        "no reset mail for a disabled account"
    );

    let silent = app_without_mail().await;
    silent.recovery.forgot_password(&email()).await.unwrap();
    silent.recovery.resend_verification(&email()).await.unwrap();
    assert_eq!(
        silent.mail.count(),
        1,
        "only the registration's own (undelivered) mail"
    );
}

/// Ada registered on a server whose mailer does not deliver.
async fn app_without_mail() -> App {
    let app = app(false);
    let registration = Registration {
        credentials: credentials("first"),
        invite: None,
    };
    app.accounts.register(&registration).await.unwrap();
    app
}

#[tokio::test]
async fn a_resent_verification_link_verifies_and_a_reset_of_a_disabled_account_is_refused() {
    let app = app(true);
    let registration = Registration {
        credentials: credentials("first"),
        invite: None,
    };
    app.accounts.register(&registration).await.unwrap();
    app.recovery.resend_verification(&email()).await.unwrap();
    let (kind, token) = app.mail.last().unwrap();
    assert_eq!(kind, "verification");
    app.accounts
        .verify_email(&token, &LoginContext::default())
        .await
        .unwrap();

    app.recovery.forgot_password(&email()).await.unwrap();
    let (_, reset) = app.mail.last().unwrap();
    app.admin
        .disable(Operator::Console, &UserRef::Email(email()))
        .await
        .unwrap();
    let refused = app
        .recovery
        .reset_password(&reset, &PasswordDigest::of_password("x"))
        .await;
    assert!(matches!(refused, Err(DomainError::Unauthorized)));
}
