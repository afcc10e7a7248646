//! Unit tests of [`Sessions`] against mocked ports.

use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, TimeZone};
use mockall::predicate::{always, eq};

use super::*;
use crate::error::DomainError;
use crate::ports::{
    HashError, ManualClock, MockLoginThrottle, MockPasswordHasher, MockSessionRepository,
    MockTokenIssuer, MockUserRepository, StoreError, Throttled, TokenError,
};
use crate::services::fakes::RecordingFanOut;
use crate::session::UserAgent;
use crate::user::{DisplayName, InstanceRole, PasswordHash, User};

/// Where every test's clock starts (whole seconds, so token times are exact).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

/// Lifetimes unlike the defaults, so tests see that the policy is used.
fn policy() -> SessionPolicy {
    SessionPolicy {
        access_ttl: TimeDelta::minutes(10),
        refresh_ttl: TimeDelta::hours(2),
    }
}

fn credentials() -> Credentials {
    Credentials {
        email: Email::parse("Ada@Example.com").unwrap(),
        password: PasswordDigest::parse(&"ab".repeat(32)).unwrap(),
    }
}

fn stored_hash() -> PasswordHash {
    PasswordHash::new("$2b$04$stored-hash".into())
}

fn user(verified: bool) -> User {
    let email = Email::parse("ada@example.com").unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_email(&email),
        email,
        password_hash: stored_hash(),
        email_verified_at: verified.then(|| t0() - TimeDelta::hours(1)),
        created_at: t0() - TimeDelta::days(1),
        role: InstanceRole::Member,
        disabled_at: None,
        deleted_at: None,
    }
}

/// A verified account an administrator disabled an hour ago.
fn disabled_user() -> User {
    User {
        disabled_at: Some(t0() - TimeDelta::hours(1)),
        ..user(true)
    }
}

/// A login from a browser that names itself.
fn browser() -> LoginContext {
    LoginContext {
        user_agent: UserAgent::from_header("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
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

/// The refresh token every refresh test presents.
const PRESENTED: &str = "presented-refresh-token";
/// The access token every authenticate test presents.
const ACCESS: &str = "presented-access-token";

/// A live session opened at `t0` whose current refresh token is `current`.
fn live_session(current: &str) -> LoginSession {
    LoginSession {
        id: SessionId::new(),
        user_id: UserId::new(),
        refresh_token_hash: TokenHash::of(current),
        created_at: t0(),
        expires_at: t0() + policy().refresh_ttl,
        revoked_at: None,
        last_used_at: t0(),
        user_agent: None,
    }
}

/// Claims of a token of `kind` minted for `session` at `t0`.
fn claims_for(kind: TokenKind, session: &LoginSession) -> TokenClaims {
    let ttl = match kind {
        TokenKind::Access => policy().access_ttl,
        TokenKind::Refresh => policy().refresh_ttl,
    };
    TokenClaims::mint(kind, session.user_id, session.id, t0(), ttl)
}

/// The mocked ports of one [`Sessions`], configured by each test before `build`.
struct Fixture {
    users: MockUserRepository,
    store: MockSessionRepository,
    hasher: MockPasswordHasher,
    tokens: MockTokenIssuer,
    clock: Arc<ManualClock>,
    fanout: Arc<RecordingFanOut>,
}

impl Fixture {
    fn new() -> Self {
        Self::starting_at(t0())
    }

    fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            users: MockUserRepository::new(),
            store: MockSessionRepository::new(),
            hasher: MockPasswordHasher::new(),
            tokens: MockTokenIssuer::new(),
            clock: Arc::new(ManualClock::new(start)),
            fanout: Arc::new(RecordingFanOut::default()),
        }
    }

    /// The re-read after a session is stored finds `account`, `times` times.
    fn reread(&mut self, account: &User, times: usize) {
        let found = account.clone();
        self.users
            .expect_by_id()
            .with(eq(account.id))
            .times(times)
            .returning(move |_| Ok(Some(found.clone())));
    }

    /// The issuer accepts `token` as a token of `kind` stating `claims`, once.
    fn presents(&mut self, kind: TokenKind, token: &'static str, claims: TokenClaims) {
        self.tokens
            .expect_verify()
            .with(eq(kind), eq(token))
            .times(1)
            .returning(move |_, _| Ok(claims.clone()));
    }

    /// The issuer signs any claims, recording them.
    fn signs(&mut self) -> Arc<Mutex<Vec<TokenClaims>>> {
        let signed = Arc::new(Mutex::new(Vec::new()));
        let sink = signed.clone();
        self.tokens
            .expect_sign()
            .returning(move |claims: &TokenClaims| {
                sink.lock().unwrap().push(claims.clone());
                Ok(fake_signature(claims))
            });
        signed
    }

    /// States that the session store is not touched at all.
    fn expect_store_untouched(&mut self) {
        self.store.expect_create().never();
        self.store.expect_by_id().never();
        self.store.expect_rotate().never();
        self.store.expect_revoke().never();
        self.store.expect_revoke_all().never();
        self.store.expect_active_of().never();
    }

    fn build(self) -> Sessions {
        Sessions::new(
            Arc::new(self.users),
            Arc::new(self.store),
            Arc::new(self.hasher),
            Arc::new(self.tokens),
            self.clock,
            policy(),
        )
        .with_fanout(self.fanout)
    }
}

fn assert_unauthorized<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(result, Err(DomainError::Unauthorized)),
        "{result:?}"
    );
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, DomainError>) {
    assert!(
        matches!(&result, Err(DomainError::Unavailable(detail)) if detail == "connection refused"),
        "{result:?}"
    );
}

// --------------------------------------------------------------- authorize

#[tokio::test]
async fn authorize_with_the_right_password_opens_a_session_holding_the_new_refresh_token_hash() {
    let mut fx = Fixture::new();
    let creds = credentials();
    let account = user(true);
    let found = account.clone();
    fx.users
        .expect_by_email()
        .with(eq(creds.email.clone()))
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    fx.hasher
        .expect_verify()
        .with(eq(creds.password.clone()), eq(stored_hash()))
        .times(1)
        .returning(|_, _| Ok(true));
    fx.hasher.expect_hash().never();
    let signed = fx.signs();
    let created = Arc::new(Mutex::new(None));
    let sink = created.clone();
    fx.store
        .expect_create()
        .times(1)
        .returning(move |session: &LoginSession| {
            *sink.lock().unwrap() = Some(session.clone());
            Ok(())
        });
    fx.reread(&account, 1);
    fx.store.expect_revoke().never();

    let tokens = fx.build().authorize(&creds, &browser()).await.unwrap();

    let session = created.lock().unwrap().clone().unwrap();
    assert_eq!(session.user_id, account.id);
    assert_eq!(
        session.refresh_token_hash,
        TokenHash::of(&tokens.refresh_token)
    );
    assert_eq!(session.created_at, t0());
    assert_eq!(session.last_used_at, t0());
    assert_eq!(session.expires_at, tokens.refresh_token_valid_to);
    assert_eq!(session.revoked_at, None);
    assert_eq!(session.user_agent, browser().user_agent);
    assert!(session.user_agent.is_some());
    assert_eq!(tokens.access_token_valid_to, t0() + policy().access_ttl);
    assert_eq!(tokens.refresh_token_valid_to, t0() + policy().refresh_ttl);
    assert_ne!(tokens.access_token, tokens.refresh_token);

    let signed = signed.lock().unwrap();
    assert_eq!(signed.len(), 2);
    let access = signed.iter().find(|c| c.kind == TokenKind::Access).unwrap();
    let refresh = signed
        .iter()
        .find(|c| c.kind == TokenKind::Refresh)
        .unwrap();
    assert_eq!(tokens.access_token, fake_signature(access));
    assert_eq!(tokens.refresh_token, fake_signature(refresh));
    for claims in [access, refresh] {
        assert_eq!(claims.user_id, account.id);
        assert_eq!(claims.session_id, session.id);
        assert_eq!(claims.issued_at, t0());
    }
}

#[tokio::test]
async fn authorize_with_an_unknown_email_still_hashes_once_and_is_unauthorized() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users.expect_by_email().times(1).returning(|_| Ok(None));
    // Timing equalisation: as much bcrypt work as a wrong password costs.
    fx.hasher
        .expect_hash()
        .with(eq(creds.password.clone()))
        .times(1)
        .returning(|_| Ok(stored_hash()));
    fx.hasher.expect_verify().never();
    fx.tokens.expect_sign().never();
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().authorize(&creds, &browser()).await);
}

#[tokio::test]
async fn authorize_with_a_wrong_password_is_unauthorized_and_opens_no_session() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(true))));
    fx.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(false));
    fx.hasher.expect_hash().never();
    fx.tokens.expect_sign().never();
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().authorize(&credentials(), &browser()).await);
}

#[tokio::test]
async fn authorize_of_an_unverified_or_disabled_account_hashes_like_an_unknown_email_and_is_unauthorized()
 {
    for account in [user(false), disabled_user()] {
        let mut fx = Fixture::new();
        let creds = credentials();
        let found = account.clone();
        fx.users
            .expect_by_email()
            .with(eq(creds.email.clone()))
            .times(1)
            .returning(move |_| Ok(Some(found.clone())));
        // The same bcrypt work as for an unknown email, and the password is
        // never checked: a right one must not tell the account's state.
        fx.hasher
            .expect_hash()
            .with(eq(creds.password.clone()))
            .times(1)
            .returning(|_| Ok(stored_hash()));
        fx.hasher.expect_verify().never();
        fx.users.expect_by_id().never();
        fx.tokens.expect_sign().never();
        fx.expect_store_untouched();

        assert_unauthorized(fx.build().authorize(&creds, &browser()).await);
    }
}

#[tokio::test]
async fn authorize_when_the_user_store_is_unavailable_is_unavailable_and_hashes_nothing() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.hasher.expect_hash().never();
    fx.hasher.expect_verify().never();
    fx.expect_store_untouched();

    assert_unavailable(fx.build().authorize(&credentials(), &browser()).await);
}

#[tokio::test]
async fn authorize_when_the_hasher_fails_is_internal_not_unauthorized() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(true))));
    fx.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Err(HashError("malformed hash".into())));
    fx.expect_store_untouched();

    let result = fx.build().authorize(&credentials(), &browser()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn authorize_when_the_session_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(true))));
    fx.hasher.expect_verify().returning(|_, _| Ok(true));
    fx.signs();
    fx.store
        .expect_create()
        .times(1)
        .returning(|_| Err(unavailable()));

    assert_unavailable(fx.build().authorize(&credentials(), &browser()).await);
}

// ------------------------------------------------------------------- start

#[tokio::test]
async fn start_cuts_token_times_to_whole_seconds_and_applies_the_policy_ttls() {
    let mut fx = Fixture::starting_at(t0() + TimeDelta::milliseconds(750));
    let user_id = UserId::new();
    let signed = fx.signs();
    fx.store
        .expect_create()
        .withf(move |session| {
            session.user_id == user_id
                && session.expires_at == t0() + policy().refresh_ttl
                && session.created_at == t0() + TimeDelta::milliseconds(750)
        })
        .times(1)
        .returning(|_| Ok(()));
    fx.users
        .expect_by_id()
        .with(eq(user_id))
        .times(1)
        .returning(move |_| {
            Ok(Some(User {
                id: user_id,
                ..user(true)
            }))
        });

    let tokens = fx
        .build()
        .start(user_id, &LoginContext::default())
        .await
        .unwrap();

    assert_eq!(tokens.access_token_valid_to, t0() + policy().access_ttl);
    assert_eq!(tokens.refresh_token_valid_to, t0() + policy().refresh_ttl);
    assert!(
        signed
            .lock()
            .unwrap()
            .iter()
            .all(|claims| claims.issued_at == t0())
    );
}

#[tokio::test]
async fn start_opens_a_new_session_each_time() {
    let mut fx = Fixture::new();
    fx.signs();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let sink = ids.clone();
    fx.store
        .expect_create()
        .times(2)
        .returning(move |session: &LoginSession| {
            sink.lock().unwrap().push(session.id);
            Ok(())
        });
    let account = user(true);
    fx.reread(&account, 2);
    fx.store.expect_revoke().never();
    let sessions = fx.build();

    let first = sessions.start(account.id, &browser()).await.unwrap();
    let second = sessions.start(account.id, &browser()).await.unwrap();

    let ids = ids.lock().unwrap();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(first.refresh_token, second.refresh_token);
}

#[tokio::test]
async fn start_when_signing_fails_is_internal_and_stores_no_session() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_sign()
        .returning(|_| Err(TokenError::Signing("key unusable".into())));
    fx.expect_store_untouched();
    fx.users.expect_by_id().never();

    let result = fx
        .build()
        .start(UserId::new(), &LoginContext::default())
        .await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn start_for_an_account_disabled_meanwhile_revokes_the_new_session_and_is_unauthorized() {
    for account in [Some(disabled_user()), None] {
        let mut fx = Fixture::new();
        let user_id = account.as_ref().map_or_else(UserId::new, |user| user.id);
        fx.signs();
        let created = Arc::new(Mutex::new(None));
        let sink = created.clone();
        fx.store
            .expect_create()
            .times(1)
            .returning(move |session: &LoginSession| {
                *sink.lock().unwrap() = Some(session.id);
                Ok(())
            });
        // Read again after the session is stored: disabled (or gone) by now.
        let found = account.clone();
        fx.users
            .expect_by_id()
            .with(eq(user_id))
            .times(1)
            .returning(move |_| Ok(found.clone()));
        let revoked = Arc::new(Mutex::new(None));
        let sink = revoked.clone();
        fx.store
            .expect_revoke()
            .with(always(), eq(t0()))
            .times(1)
            .returning(move |id, _| {
                *sink.lock().unwrap() = Some(id);
                Ok(())
            });

        assert_unauthorized(fx.build().start(user_id, &browser()).await);

        let created = created.lock().unwrap().unwrap();
        assert_eq!(*revoked.lock().unwrap(), Some(created), "{account:?}");
    }
}

#[tokio::test]
async fn authorize_of_an_account_disabled_during_the_login_revokes_the_new_session() {
    // Enabled when looked up by email, disabled when read again after the
    // session was stored: a disable that ran in between.
    let mut fx = Fixture::new();
    let account = user(true);
    let found = account.clone();
    fx.users
        .expect_by_email()
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
    fx.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(true));
    fx.signs();
    fx.store.expect_create().times(1).returning(|_| Ok(()));
    fx.reread(
        &User {
            disabled_at: Some(t0()),
            ..account.clone()
        },
        1,
    );
    fx.store
        .expect_revoke()
        .with(always(), eq(t0()))
        .times(1)
        .returning(|_, _| Ok(()));

    assert_unauthorized(fx.build().authorize(&credentials(), &browser()).await);
}

// ----------------------------------------------------------------- refresh

#[tokio::test]
async fn refresh_with_the_current_token_rotates_to_the_hash_and_expiry_of_the_new_refresh_token() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .with(eq(session.id))
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    let signed = fx.signs();
    let rotation = Arc::new(Mutex::new(None));
    let sink = rotation.clone();
    fx.clock.advance(TimeDelta::minutes(30));
    let now = t0() + TimeDelta::minutes(30);
    fx.store
        .expect_rotate()
        .with(
            eq(session.id),
            eq(TokenHash::of(PRESENTED)),
            always(),
            always(),
            eq(now),
        )
        .times(1)
        .returning(move |_, _, next: &TokenHash, expires_at, _| {
            *sink.lock().unwrap() = Some((next.clone(), expires_at));
            Ok(true)
        });
    fx.store.expect_revoke().never();

    let tokens = fx.build().refresh(PRESENTED).await.unwrap();

    let (next, expires_at) = rotation.lock().unwrap().clone().unwrap();
    assert_eq!(next, TokenHash::of(&tokens.refresh_token));
    assert_ne!(next, TokenHash::of(PRESENTED));
    assert_eq!(expires_at, tokens.refresh_token_valid_to);
    assert_eq!(tokens.refresh_token_valid_to, now + policy().refresh_ttl);
    assert_eq!(tokens.access_token_valid_to, now + policy().access_ttl);
    assert!(
        signed
            .lock()
            .unwrap()
            .iter()
            .all(|claims| claims.session_id == session.id && claims.user_id == session.user_id)
    );
}

#[tokio::test]
async fn refresh_with_a_reused_token_revokes_the_session_exactly_once() {
    let mut fx = Fixture::new();
    // The session has moved on to a newer token than the one presented.
    let session = live_session("newer-refresh-token");
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    fx.store
        .expect_revoke()
        .with(eq(session.id), eq(t0() + TimeDelta::minutes(1)))
        .times(1)
        .returning(|_, _| Ok(()));
    fx.store.expect_rotate().never();
    fx.tokens.expect_sign().never();
    fx.clock.advance(TimeDelta::minutes(1));
    let fanout = fx.fanout.clone();

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
    // Its live connections are told to close too.
    assert_eq!(fanout.ended(), vec![session.id]);
}

#[tokio::test]
async fn refresh_that_loses_the_rotation_race_revokes_the_session_once_and_is_unauthorized() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    fx.signs();
    // Another request rotated the same token between our read and our write.
    fx.store
        .expect_rotate()
        .times(1)
        .returning(|_, _, _, _, _| Ok(false));
    fx.store
        .expect_revoke()
        .with(eq(session.id), eq(t0()))
        .times(1)
        .returning(|_, _| Ok(()));

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_with_an_expired_refresh_token_is_unauthorized_without_touching_the_store() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    fx.tokens.expect_sign().never();
    fx.expect_store_untouched();
    // A token is expired from exactly its `exp` on.
    fx.clock.advance(policy().refresh_ttl);

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_with_a_token_issued_in_the_future_is_unauthorized_without_touching_the_store() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    fx.expect_store_untouched();
    fx.clock.advance(TimeDelta::seconds(-1));

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_with_a_token_the_issuer_rejects_is_unauthorized_without_touching_the_store() {
    let mut fx = Fixture::new();
    // E.g. an access token, a bad signature or garbage: the issuer's call.
    fx.tokens
        .expect_verify()
        .with(eq(TokenKind::Refresh), eq(PRESENTED))
        .times(1)
        .returning(|_, _| Err(TokenError::Rejected("not a refresh token".into())));
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_of_a_revoked_session_is_unauthorized_and_neither_rotates_nor_revokes_again() {
    let mut fx = Fixture::new();
    let session = LoginSession {
        revoked_at: Some(t0()),
        ..live_session(PRESENTED)
    };
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    fx.store.expect_rotate().never();
    fx.store.expect_revoke().never();
    fx.tokens.expect_sign().never();

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_of_an_unknown_session_is_unauthorized() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    fx.store
        .expect_by_id()
        .with(eq(session.id))
        .times(1)
        .returning(|_| Ok(None));
    fx.store.expect_rotate().never();
    fx.store.expect_revoke().never();

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_when_the_session_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    fx.store
        .expect_by_id()
        .times(1)
        .returning(|_| Err(unavailable()));
    fx.store.expect_rotate().never();

    assert_unavailable(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn refresh_reuse_whose_revocation_fails_reports_the_store_failure() {
    let mut fx = Fixture::new();
    let session = live_session("newer-refresh-token");
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .returning(move |_| Ok(Some(stored.clone())));
    fx.store
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    assert_unavailable(fx.build().refresh(PRESENTED).await);
}

// ------------------------------------------------------------ authenticate

#[tokio::test]
async fn authenticate_a_live_session_gives_the_principal_of_the_token() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    let claims = claims_for(TokenKind::Access, &session);
    fx.presents(TokenKind::Access, ACCESS, claims.clone());
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .with(eq(session.id))
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    fx.clock
        .advance(policy().access_ttl - TimeDelta::seconds(1));

    let principal = fx.build().authenticate(ACCESS).await.unwrap();

    assert_eq!(
        principal,
        Principal {
            user_id: session.user_id,
            session_id: session.id,
            expires_at: t0() + policy().access_ttl,
        }
    );
}

#[tokio::test]
async fn authenticate_refuses_a_revoked_session() {
    let mut fx = Fixture::new();
    let session = LoginSession {
        revoked_at: Some(t0()),
        ..live_session("any")
    };
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.store
        .expect_by_id()
        .times(1)
        .returning(move |_| Ok(Some(session.clone())));

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_refuses_a_session_of_another_user() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    let foreign = LoginSession {
        user_id: UserId::new(),
        ..session.clone()
    };
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.store
        .expect_by_id()
        .with(eq(session.id))
        .times(1)
        .returning(move |_| Ok(Some(foreign.clone())));

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_refuses_an_unknown_session() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.store.expect_by_id().times(1).returning(|_| Ok(None));

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_refuses_an_access_token_outliving_its_expired_session() {
    // With an access lifetime longer than the refresh lifetime (a valid
    // configuration), the access token is still unexpired when its session
    // has ended with its refresh token.
    let mut fx = Fixture::new();
    let session = LoginSession {
        expires_at: t0() + TimeDelta::minutes(5),
        ..live_session("any")
    };
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.store
        .expect_by_id()
        .returning(move |_| Ok(Some(session.clone())));
    fx.clock.advance(TimeDelta::minutes(6));

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_with_an_expired_access_token_is_unauthorized_without_touching_the_store() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.expect_store_untouched();
    fx.clock.advance(policy().access_ttl);

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_with_a_token_the_issuer_rejects_is_unauthorized_without_touching_the_store() {
    let mut fx = Fixture::new();
    // E.g. a refresh token presented as an access token.
    fx.tokens
        .expect_verify()
        .with(eq(TokenKind::Access), eq(ACCESS))
        .times(1)
        .returning(|_, _| Err(TokenError::Rejected("not an access token".into())));
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().authenticate(ACCESS).await);
}

#[tokio::test]
async fn authenticate_when_the_session_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    fx.presents(
        TokenKind::Access,
        ACCESS,
        claims_for(TokenKind::Access, &session),
    );
    fx.store
        .expect_by_id()
        .times(1)
        .returning(|_| Err(unavailable()));

    assert_unavailable(fx.build().authenticate(ACCESS).await);
}

// ------------------------------------------------------------- end (logout)

#[tokio::test]
async fn end_revokes_the_session_at_the_current_time() {
    let mut fx = Fixture::new();
    let id = SessionId::new();
    fx.store
        .expect_revoke()
        .with(eq(id), eq(t0() + TimeDelta::seconds(42)))
        .times(1)
        .returning(|_, _| Ok(()));
    fx.clock.advance(TimeDelta::seconds(42));
    let fanout = fx.fanout.clone();

    fx.build().end(id).await.unwrap();

    assert_eq!(fanout.ended(), vec![id]);
}

#[tokio::test]
async fn end_when_the_session_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.store
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let fanout = fx.fanout.clone();

    assert_unavailable(fx.build().end(SessionId::new()).await);
    assert!(fanout.ended().is_empty());
}

#[tokio::test]
async fn end_by_refresh_token_revokes_the_tokens_session_even_after_the_token_expired() {
    let mut fx = Fixture::new();
    let session = live_session(PRESENTED);
    fx.presents(
        TokenKind::Refresh,
        PRESENTED,
        claims_for(TokenKind::Refresh, &session),
    );
    let later = t0() + policy().refresh_ttl + TimeDelta::hours(1);
    fx.store
        .expect_revoke()
        .with(eq(session.id), eq(later))
        .times(1)
        .returning(|_, _| Ok(()));
    fx.store.expect_by_id().never();
    fx.clock.advance(policy().refresh_ttl + TimeDelta::hours(1));
    let fanout = fx.fanout.clone();

    fx.build().end_by_refresh_token(PRESENTED).await.unwrap();

    assert_eq!(fanout.ended(), vec![session.id]);
}

#[tokio::test]
async fn end_by_refresh_token_with_a_rejected_token_is_unauthorized_and_revokes_nothing() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_verify()
        .with(eq(TokenKind::Refresh), eq(ACCESS))
        .times(1)
        .returning(|_, _| Err(TokenError::Rejected("not a refresh token".into())));
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().end_by_refresh_token(ACCESS).await);
}

// ------------------------------------------------------- login throttle

/// A throttle that lets `creds`' attempt through once and expects
/// `failures` failure records for its email.
fn throttle_allowing(creds: &Credentials, failures: usize) -> MockLoginThrottle {
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_attempt()
        .with(eq(creds.email.clone()))
        .times(1)
        .returning(|_| Ok(()));
    throttle
        .expect_failed()
        .with(eq(creds.email.clone()))
        .times(failures)
        .returning(|_| ());
    throttle
}

#[tokio::test]
async fn a_throttled_login_is_rate_limited_before_any_lookup_or_hashing() {
    let mut fx = Fixture::new();
    let creds = credentials();
    let wait = std::time::Duration::from_secs(90);
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_attempt()
        .with(eq(creds.email.clone()))
        .times(1)
        .returning(move |_| Err(Throttled { retry_after: wait }));
    throttle.expect_failed().never();
    fx.users.expect_by_email().never();
    fx.hasher.expect_hash().never();
    fx.hasher.expect_verify().never();
    fx.tokens.expect_sign().never();
    fx.expect_store_untouched();

    let result = fx
        .build()
        .with_throttle(Arc::new(throttle))
        .authorize(&creds, &LoginContext::default())
        .await;

    assert!(
        matches!(result, Err(DomainError::RateLimited { retry_after }) if retry_after == wait),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_recorded_as_a_failure_of_that_email() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(true))));
    fx.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(false));
    fx.expect_store_untouched();

    let sessions = fx
        .build()
        .with_throttle(Arc::new(throttle_allowing(&creds, 1)));

    assert_unauthorized(sessions.authorize(&creds, &LoginContext::default()).await);
}

#[tokio::test]
async fn an_unknown_email_costs_one_hash_and_one_failure_like_a_wrong_password() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users.expect_by_email().times(1).returning(|_| Ok(None));
    fx.hasher
        .expect_hash()
        .with(eq(creds.password.clone()))
        .times(1)
        .returning(|_| Ok(stored_hash()));
    fx.hasher.expect_verify().never();
    fx.expect_store_untouched();

    let sessions = fx
        .build()
        .with_throttle(Arc::new(throttle_allowing(&creds, 1)));

    assert_unauthorized(sessions.authorize(&creds, &LoginContext::default()).await);
}

#[tokio::test]
async fn an_unverified_account_costs_one_hash_and_one_failure_like_a_wrong_password() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(false))));
    fx.hasher
        .expect_hash()
        .times(1)
        .returning(|_| Ok(stored_hash()));
    fx.hasher.expect_verify().never();
    fx.expect_store_untouched();

    let sessions = fx
        .build()
        .with_throttle(Arc::new(throttle_allowing(&creds, 1)));

    assert_unauthorized(sessions.authorize(&creds, &LoginContext::default()).await);
}

#[tokio::test]
async fn a_successful_login_costs_one_attempt_and_no_failure() {
    let mut fx = Fixture::new();
    let creds = credentials();
    let account = user(true);
    let found = account.clone();
    fx.users
        .expect_by_email()
        .returning(move |_| Ok(Some(found.clone())));
    fx.reread(&account, 1);
    fx.hasher.expect_verify().returning(|_, _| Ok(true));
    fx.signs();
    fx.store.expect_create().times(1).returning(|_| Ok(()));

    let sessions = fx
        .build()
        .with_throttle(Arc::new(throttle_allowing(&creds, 0)));

    assert!(
        sessions
            .authorize(&creds, &LoginContext::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unavailable_store_is_not_charged_as_a_failed_login() {
    let mut fx = Fixture::new();
    let creds = credentials();
    fx.users.expect_by_email().returning(|_| Err(unavailable()));

    let sessions = fx
        .build()
        .with_throttle(Arc::new(throttle_allowing(&creds, 0)));

    assert_unavailable(sessions.authorize(&creds, &LoginContext::default()).await);
}

// ------------------------------------------------- the user's own sessions

#[tokio::test]
async fn of_user_lists_the_active_sessions_the_store_has_at_the_current_time() {
    let mut fx = Fixture::new();
    let user_id = UserId::new();
    let listed = vec![
        LoginSession {
            user_id,
            user_agent: browser().user_agent,
            ..live_session("one")
        },
        LoginSession {
            user_id,
            ..live_session("two")
        },
    ];
    let stored = listed.clone();
    fx.clock.advance(TimeDelta::minutes(3));
    fx.store
        .expect_active_of()
        .with(eq(user_id), eq(t0() + TimeDelta::minutes(3)))
        .times(1)
        .returning(move |_, _| Ok(stored.clone()));

    assert_eq!(fx.build().of_user(user_id).await.unwrap(), listed);
}

#[tokio::test]
async fn end_own_ends_the_callers_session_and_tells_the_fan_out() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    let stored = session.clone();
    fx.store
        .expect_by_id()
        .with(eq(session.id))
        .times(1)
        .returning(move |_| Ok(Some(stored.clone())));
    fx.store
        .expect_revoke()
        .with(eq(session.id), eq(t0()))
        .times(1)
        .returning(|_, _| Ok(()));
    let fanout = fx.fanout.clone();

    fx.build()
        .end_own(session.user_id, session.id)
        .await
        .unwrap();

    assert_eq!(fanout.ended(), vec![session.id]);
}

#[tokio::test]
async fn end_own_of_another_users_an_ended_or_an_unknown_session_is_session_not_found() {
    let someone = UserId::new();
    let others = LoginSession {
        user_id: UserId::new(),
        ..live_session("theirs")
    };
    let revoked = LoginSession {
        user_id: someone,
        revoked_at: Some(t0() - TimeDelta::minutes(1)),
        ..live_session("revoked")
    };
    let expired = LoginSession {
        user_id: someone,
        expires_at: t0(),
        ..live_session("expired")
    };
    for (id, found) in [
        (others.id, Some(others)),
        (revoked.id, Some(revoked)),
        (expired.id, Some(expired)),
        (SessionId::new(), None),
    ] {
        let mut fx = Fixture::new();
        let stored = found.clone();
        fx.store
            .expect_by_id()
            .with(eq(id))
            .times(1)
            .returning(move |_| Ok(stored.clone()));
        fx.store.expect_revoke().never();
        let fanout = fx.fanout.clone();

        let result = fx.build().end_own(someone, id).await;

        assert!(
            matches!(result, Err(DomainError::NotFound(Missing::Session))),
            "{found:?}: {result:?}"
        );
        assert!(fanout.ended().is_empty());
    }
}

#[tokio::test]
async fn end_all_ends_exactly_the_sessions_the_store_revoked_and_tells_the_fan_out_of_each() {
    for keep in [None, Some(SessionId::new())] {
        let mut fx = Fixture::new();
        let user_id = UserId::new();
        let revoked = vec![SessionId::new(), SessionId::new(), SessionId::new()];
        let answer = revoked.clone();
        fx.clock.advance(TimeDelta::seconds(9));
        fx.store
            .expect_revoke_all()
            .with(eq(user_id), eq(keep), eq(t0() + TimeDelta::seconds(9)))
            .times(1)
            .returning(move |_, _, _| Ok(answer.clone()));
        fx.store.expect_revoke().never();
        let fanout = fx.fanout.clone();

        fx.build().end_all(user_id, keep).await.unwrap();

        assert_eq!(fanout.ended(), revoked);
    }
}

#[tokio::test]
async fn end_all_when_the_store_is_unavailable_is_unavailable_and_tells_nobody() {
    let mut fx = Fixture::new();
    fx.store
        .expect_revoke_all()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    let fanout = fx.fanout.clone();

    assert_unavailable(fx.build().end_all(UserId::new(), None).await);
    assert!(fanout.ended().is_empty());
}

#[tokio::test]
async fn authenticate_refuses_a_token_not_yet_valid_or_issued_for_too_long() {
    let session = live_session("any");
    let minted = claims_for(TokenKind::Access, &session);
    let not_yet = TokenClaims {
        not_before: t0() + TimeDelta::seconds(30),
        ..minted.clone()
    };
    let too_long = TokenClaims {
        expires_at: t0() + TimeDelta::days(365),
        ..minted
    };
    for claims in [not_yet, too_long] {
        let mut fx = Fixture::new();
        fx.presents(TokenKind::Access, ACCESS, claims);
        // The claims alone are refused.
        fx.expect_store_untouched();
        assert_unauthorized(fx.build().authenticate(ACCESS).await);
    }
}

#[tokio::test]
async fn refresh_refuses_a_token_issued_for_longer_than_the_refresh_ttl() {
    let mut fx = Fixture::new();
    let session = live_session("any");
    let claims = TokenClaims {
        expires_at: t0() + TimeDelta::days(365),
        ..claims_for(TokenKind::Refresh, &session)
    };
    fx.presents(TokenKind::Refresh, PRESENTED, claims);
    fx.expect_store_untouched();
    assert_unauthorized(fx.build().refresh(PRESENTED).await);
}

#[tokio::test]
async fn confirm_accepts_a_live_session_and_refuses_an_ended_or_foreign_one() {
    let live = live_session("live");
    let principal = Principal {
        user_id: live.user_id,
        session_id: live.id,
        expires_at: t0() + TimeDelta::minutes(15),
    };
    let revoked = LoginSession {
        revoked_at: Some(t0()),
        ..live.clone()
    };
    let foreign = LoginSession {
        user_id: UserId::new(),
        ..live.clone()
    };
    for (stored, accepted) in [
        (Some(live), true),
        (Some(revoked), false),
        (Some(foreign), false),
        (None, false),
    ] {
        let mut fx = Fixture::new();
        fx.store
            .expect_by_id()
            .with(eq(principal.session_id))
            .times(1)
            .returning(move |_| Ok(stored.clone()));
        let result = fx.build().confirm(&principal).await;
        assert_eq!(result.is_ok(), accepted, "{result:?}");
    }
}
