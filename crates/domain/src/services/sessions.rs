//! Logging in, refreshing, authenticating requests and logging out.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{DomainError, Missing};
use crate::ports::{
    Clock, FanOut, LoginThrottle, NoFanOut, NoLoginThrottle, PasswordHasher, SessionRepository,
    TokenIssuer, UserRepository,
};
use crate::session::{
    LoginContext, LoginSession, RefreshCheck, SessionId, SessionPolicy, TokenClaims, TokenKind,
    TokenSet,
};
use crate::token::TokenHash;
use crate::user::{Email, PasswordDigest, User, UserId};

/// An email and password digest, as presented at registration or login.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The normalized email.
    pub email: Email,
    /// The SHA-256 digest of the password.
    pub password: PasswordDigest,
}

/// Who is making a request, established from a valid access token of a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The authenticated user.
    pub user_id: UserId,
    /// The login session the access token belongs to.
    pub session_id: SessionId,
    /// When the access token expires (a connection must re-authenticate by then).
    pub expires_at: DateTime<Utc>,
}

/// The login-session use cases.
#[derive(Clone)]
pub struct Sessions {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    fanout: Arc<dyn FanOut>,
    throttle: Arc<dyn LoginThrottle>,
}

impl Sessions {
    /// Builds the service from its ports.
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenIssuer>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            clock,
            policy,
            fanout: Arc::new(NoFanOut),
            throttle: Arc::new(NoLoginThrottle),
        }
    }

    /// Tells `fanout` about ended sessions, so their live connections close.
    pub fn with_fanout(mut self, fanout: Arc<dyn FanOut>) -> Self {
        self.fanout = fanout;
        self
    }

    /// Limits login attempts per account with `throttle` (see [`LoginThrottle`]).
    pub fn with_throttle(mut self, throttle: Arc<dyn LoginThrottle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// Logs in with email and password. A wrong password, an unknown email,
    /// an unverified and a disabled account all give
    /// [`DomainError::Unauthorized`], after the same amount of hashing work,
    /// so that none can be told from the others. Each attempt draws on the
    /// email's login budget first: once it is spent,
    /// [`DomainError::RateLimited`] comes before any lookup or hashing (alike
    /// for known and unknown emails); a failed attempt costs extra.
    #[tracing::instrument(skip_all, fields(email_domain = credentials.email.domain()))]
    pub async fn authorize(
        &self,
        credentials: &Credentials,
        context: &LoginContext,
    ) -> Result<TokenSet, DomainError> {
        self.throttle.attempt(&credentials.email).await?;
        let outcome = self.check_password(credentials, context).await;
        if let Err(DomainError::Unauthorized) = outcome {
            self.throttle.failed(&credentials.email).await;
        }
        outcome
    }

    /// Checks the password of a logged-in user confirming a sensitive change
    /// (password change, account deletion) against the same per-account
    /// budget as logins, so a stolen access token cannot be used to guess
    /// the password at bcrypt speed either. A wrong one is
    /// [`Refusal::WrongPassword`](crate::error::Refusal::WrongPassword).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn confirm_password(
        &self,
        user: &User,
        password: &PasswordDigest,
    ) -> Result<(), DomainError> {
        self.throttle.attempt(&user.email).await?;
        if self.hasher.verify(password, &user.password_hash).await? {
            Ok(())
        } else {
            self.throttle.failed(&user.email).await;
            Err(crate::error::Refusal::WrongPassword.into())
        }
    }

    /// [`Sessions::authorize`] past the throttle: the password check and the
    /// session it opens.
    async fn check_password(
        &self,
        credentials: &Credentials,
        context: &LoginContext,
    ) -> Result<TokenSet, DomainError> {
        let user = self.users.by_email(&credentials.email).await?;
        let Some(user) = user.filter(User::may_log_in) else {
            self.hasher.hash(&credentials.password).await?;
            return Err(DomainError::Unauthorized);
        };
        let password_ok = self
            .hasher
            .verify(&credentials.password, &user.password_hash)
            .await?;
        if !password_ok {
            return Err(DomainError::Unauthorized);
        }
        self.start(user.id, context).await
    }

    /// Opens a new login session for `user_id` and hands out its first
    /// tokens. An account disabled meanwhile gets none: its state is read
    /// again after the session is stored, so a disable that ran concurrently
    /// either sees (and revokes) the new session or is seen here.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn start(
        &self,
        user_id: UserId,
        context: &LoginContext,
    ) -> Result<TokenSet, DomainError> {
        let now = self.clock.now();
        let session_id = SessionId::new();
        let tokens = self.mint(user_id, session_id, now)?;
        self.sessions
            .create(&LoginSession {
                id: session_id,
                user_id,
                refresh_token_hash: TokenHash::of(&tokens.refresh_token),
                created_at: now,
                expires_at: tokens.refresh_token_valid_to,
                revoked_at: None,
                last_used_at: now,
                user_agent: context.user_agent.clone(),
            })
            .await?;
        let still_allowed = self
            .users
            .by_id(user_id)
            .await?
            .is_some_and(|user| user.disabled_at.is_none());
        if !still_allowed {
            self.sessions.revoke(session_id, now).await?;
            return Err(DomainError::Unauthorized);
        }
        Ok(tokens)
    }

    /// Trades the session's current refresh token for a new token set. The
    /// presented token stops working; presenting it (or any older one) again
    /// ends the whole session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, DomainError> {
        let now = self.clock.now();
        let claims = self.tokens.verify(TokenKind::Refresh, refresh_token)?;
        if !self.policy.admits(&claims, now) {
            return Err(DomainError::Unauthorized);
        }
        let session = self
            .sessions
            .by_id(claims.session_id)
            .await?
            .ok_or(DomainError::Unauthorized)?;
        let presented = TokenHash::of(refresh_token);
        match session.check_refresh(&presented, now) {
            RefreshCheck::Ended => return Err(DomainError::Unauthorized),
            RefreshCheck::Reused => return Err(self.revoke_for_reuse(&session, now).await),
            RefreshCheck::Current => {}
        }
        let tokens = self.mint(session.user_id, session.id, now)?;
        let rotated = self
            .sessions
            .rotate(
                session.id,
                &presented,
                &TokenHash::of(&tokens.refresh_token),
                tokens.refresh_token_valid_to,
                now,
            )
            .await?;
        if !rotated {
            // Another request rotated this token between our read and our
            // write: the same token was presented twice, which is reuse.
            return Err(self.revoke_for_reuse(&session, now).await);
        }
        Ok(tokens)
    }

    /// Resolves an access token to the principal it speaks for. Refuses
    /// refresh tokens, expired tokens and tokens of ended sessions.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, DomainError> {
        let now = self.clock.now();
        let claims = self.tokens.verify(TokenKind::Access, access_token)?;
        if !self.policy.admits(&claims, now) {
            return Err(DomainError::Unauthorized);
        }
        if !self.is_live(claims.session_id, claims.user_id, now).await? {
            return Err(DomainError::Unauthorized);
        }
        Ok(Principal {
            user_id: claims.user_id,
            session_id: claims.session_id,
            expires_at: claims.expires_at,
        })
    }

    /// Checks again that `principal`'s session is live: for a connection
    /// that subscribed to the fan-out after authenticating, so that a session
    /// ended in between (whose end it did not hear of) is still caught.
    #[tracing::instrument(skip_all, fields(session_id = %principal.session_id))]
    pub async fn confirm(&self, principal: &Principal) -> Result<(), DomainError> {
        let now = self.clock.now();
        if self
            .is_live(principal.session_id, principal.user_id, now)
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::Unauthorized)
        }
    }

    /// Whether `session_id` is a session of `user_id` still honoured at `now`.
    async fn is_live(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let session = self.sessions.by_id(session_id).await?;
        Ok(session.is_some_and(|session| session.user_id == user_id && session.is_active_at(now)))
    }

    /// Ends a login session (logout with an access token).
    #[tracing::instrument(skip(self))]
    pub async fn end(&self, session_id: SessionId) -> Result<(), DomainError> {
        self.sessions.revoke(session_id, self.clock.now()).await?;
        self.fanout.end_session(session_id).await;
        Ok(())
    }

    /// Ends the login session a refresh token belongs to (logout without an
    /// access token). Any validly signed refresh token of the session will do,
    /// even an expired or rotated one: ending a session is always safe.
    #[tracing::instrument(skip_all)]
    pub async fn end_by_refresh_token(&self, refresh_token: &str) -> Result<(), DomainError> {
        let claims = self.tokens.verify(TokenKind::Refresh, refresh_token)?;
        self.end(claims.session_id).await
    }

    /// The caller's live sessions (their devices), most recently used first.
    #[tracing::instrument(skip(self))]
    pub async fn of_user(&self, user_id: UserId) -> Result<Vec<LoginSession>, DomainError> {
        Ok(self.sessions.active_of(user_id, self.clock.now()).await?)
    }

    /// Ends one of the caller's own sessions ("sign out that device"); its
    /// connections close. Someone else's session, or an ended one, is
    /// [`Missing::Session`].
    #[tracing::instrument(skip(self))]
    pub async fn end_own(&self, user_id: UserId, session_id: SessionId) -> Result<(), DomainError> {
        if self.is_live(session_id, user_id, self.clock.now()).await? {
            self.end(session_id).await
        } else {
            Err(DomainError::NotFound(Missing::Session))
        }
    }

    /// Ends every session of `user_id` except `keep` (after a password
    /// change, a reset, a disable or a deletion); their connections close.
    #[tracing::instrument(skip(self))]
    pub async fn end_all(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<(), DomainError> {
        let ended = self
            .sessions
            .revoke_all(user_id, keep, self.clock.now())
            .await?;
        for session in ended {
            self.fanout.end_session(session).await;
        }
        Ok(())
    }

    async fn revoke_for_reuse(&self, session: &LoginSession, now: DateTime<Utc>) -> DomainError {
        tracing::warn!(
            session_id = %session.id,
            user_id = %session.user_id,
            "refresh token reuse detected: login session revoked"
        );
        match self.sessions.revoke(session.id, now).await {
            Ok(()) => {
                self.fanout.end_session(session.id).await;
                DomainError::Unauthorized
            }
            Err(error) => error.into(),
        }
    }

    fn mint(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, DomainError> {
        let access = TokenClaims::mint(
            TokenKind::Access,
            user_id,
            session_id,
            now,
            self.policy.access_ttl,
        );
        let refresh = TokenClaims::mint(
            TokenKind::Refresh,
            user_id,
            session_id,
            now,
            self.policy.refresh_ttl,
        );
        Ok(TokenSet {
            access_token: self.tokens.sign(&access)?,
            refresh_token: self.tokens.sign(&refresh)?,
            access_token_valid_to: access.expires_at,
            refresh_token_valid_to: refresh.expires_at,
        })
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
