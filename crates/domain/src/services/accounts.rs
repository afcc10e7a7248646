//! Registering, verifying an email, and the user's own profile.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError};
use crate::mail::{Mail, MailContent};
use crate::ports::{
    Clock, Mailer, NoMailer, PasswordHasher, StoreError, UserRepository, VerificationStore,
};
use crate::services::sessions::{Credentials, Sessions};
use crate::session::TokenSet;
use crate::token::{OpaqueToken, TokenHash};
use crate::user::{DisplayName, User, UserId};
use crate::verification::{EmailVerification, VerificationPolicy};

/// The account use cases.
#[derive(Clone)]
pub struct Accounts {
    users: Arc<dyn UserRepository>,
    verifications: Arc<dyn VerificationStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
    policy: VerificationPolicy,
    mailer: Arc<dyn Mailer>,
}

impl Accounts {
    /// Builds the service from its ports; `sessions` opens the session that a
    /// successful verification starts.
    pub fn new(
        users: Arc<dyn UserRepository>,
        verifications: Arc<dyn VerificationStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        sessions: Sessions,
        policy: VerificationPolicy,
    ) -> Self {
        Self {
            users,
            verifications,
            hasher,
            clock,
            sessions,
            policy,
            mailer: Arc::new(NoMailer),
        }
    }

    /// Mails verification links through `mailer` (without one, registration
    /// hands the token to its caller).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// Creates an unverified account and mails its one-time verification
    /// link once it is stored. The token is returned only when the mailer
    /// does not deliver ([`Mailer::delivers`]): then the caller must hand it
    /// over itself, and verification proves nothing about the address. An
    /// email already registered, in any case or spacing, is
    /// [`ConflictError::EmailTaken`].
    pub async fn register(
        &self,
        credentials: &Credentials,
    ) -> Result<Option<OpaqueToken>, DomainError> {
        // A cheap early answer for the common duplicate; the insert below is
        // what actually enforces uniqueness, also under races.
        if self.users.by_email(&credentials.email).await?.is_some() {
            return Err(ConflictError::EmailTaken.into());
        }
        let token = OpaqueToken::generate()?;
        let password_hash = self.hasher.hash(&credentials.password).await?;
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            email: credentials.email.clone(),
            display_name: DisplayName::from_email(&credentials.email),
            password_hash,
            email_verified_at: None,
            created_at: now,
        };
        self.users
            .insert(&user)
            .await
            .map_err(|error| match error {
                StoreError::Duplicate => ConflictError::EmailTaken.into(),
                other => DomainError::from(other),
            })?;
        self.verifications
            .insert(&EmailVerification {
                token_hash: token.hash(),
                user_id: user.id,
                expires_at: now + self.policy.ttl,
            })
            .await?;
        self.mailer.send(Mail::new(
            user.email,
            MailContent::Verification {
                token: token.clone(),
                valid_for: self.policy.ttl,
            },
        ));
        Ok((!self.mailer.delivers()).then_some(token))
    }

    /// Redeems a verification token: marks the email verified and logs the
    /// user in. Unknown, used and expired tokens are all
    /// [`DomainError::Unauthorized`]; a token works once.
    pub async fn verify_email(&self, token: &str) -> Result<TokenSet, DomainError> {
        let verification = self
            .verifications
            .take(&TokenHash::of(token))
            .await?
            .ok_or(DomainError::Unauthorized)?;
        let now = self.clock.now();
        if verification.is_expired_at(now)
            || !self.users.mark_verified(verification.user_id, now).await?
        {
            return Err(DomainError::Unauthorized);
        }
        self.sessions.start(verification.user_id).await
    }

    /// The caller's own account.
    pub async fn profile(&self, user_id: UserId) -> Result<User, DomainError> {
        self.users
            .by_id(user_id)
            .await?
            .ok_or(DomainError::Unauthorized)
    }

    /// Changes the caller's display name.
    pub async fn rename(&self, user_id: UserId, name: &DisplayName) -> Result<User, DomainError> {
        self.users
            .set_display_name(user_id, name)
            .await?
            .ok_or(DomainError::Unauthorized)
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
