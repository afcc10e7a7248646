//! Unit tests of [`Sessions`] against mocked ports.

use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, TimeZone};
use mockall::predicate::{always, eq};

use super::*;
use crate::error::DomainError;
use crate::ports::{
    HashError, ManualClock, MockPasswordHasher, MockSessionRepository, MockTokenIssuer,
    MockUserRepository, StoreError, TokenError,
};
use crate::user::{DisplayName, PasswordHash, User};

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
        }
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

    let tokens = fx.build().authorize(&creds).await.unwrap();

    let session = created.lock().unwrap().clone().unwrap();
    assert_eq!(session.user_id, account.id);
    assert_eq!(
        session.refresh_token_hash,
        TokenHash::of(&tokens.refresh_token)
    );
    assert_eq!(session.created_at, t0());
    assert_eq!(session.expires_at, tokens.refresh_token_valid_to);
    assert_eq!(session.revoked_at, None);
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

    assert_unauthorized(fx.build().authorize(&creds).await);
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

    assert_unauthorized(fx.build().authorize(&credentials()).await);
}

#[tokio::test]
async fn authorize_of_an_unverified_user_is_unauthorized_even_with_the_right_password() {
    let mut fx = Fixture::new();
    fx.users
        .expect_by_email()
        .returning(|_| Ok(Some(user(false))));
    // The password is still checked, so that the answer takes as long as for
    // a wrong password.
    fx.hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Ok(true));
    fx.hasher.expect_hash().never();
    fx.tokens.expect_sign().never();
    fx.expect_store_untouched();

    assert_unauthorized(fx.build().authorize(&credentials()).await);
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

    assert_unavailable(fx.build().authorize(&credentials()).await);
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

    let result = fx.build().authorize(&credentials()).await;

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

    assert_unavailable(fx.build().authorize(&credentials()).await);
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

    let tokens = fx.build().start(user_id).await.unwrap();

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
    let sessions = fx.build();
    let user_id = UserId::new();

    let first = sessions.start(user_id).await.unwrap();
    let second = sessions.start(user_id).await.unwrap();

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

    let result = fx.build().start(UserId::new()).await;

    assert!(
        matches!(result, Err(DomainError::Internal(_))),
        "{result:?}"
    );
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
    fx.store
        .expect_rotate()
        .with(
            eq(session.id),
            eq(TokenHash::of(PRESENTED)),
            always(),
            always(),
        )
        .times(1)
        .returning(move |_, _, next: &TokenHash, expires_at| {
            *sink.lock().unwrap() = Some((next.clone(), expires_at));
            Ok(true)
        });
    fx.store.expect_revoke().never();
    fx.clock.advance(TimeDelta::minutes(30));
    let now = t0() + TimeDelta::minutes(30);

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

    assert_unauthorized(fx.build().refresh(PRESENTED).await);
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
        .returning(|_, _, _, _| Ok(false));
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

    fx.build().end(id).await.unwrap();
}

#[tokio::test]
async fn end_when_the_session_store_is_unavailable_is_unavailable() {
    let mut fx = Fixture::new();
    fx.store
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(unavailable()));

    assert_unavailable(fx.build().end(SessionId::new()).await);
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

    fx.build().end_by_refresh_token(PRESENTED).await.unwrap();
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
