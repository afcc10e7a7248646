//! Registering, verifying an email, and the user's own profile.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError};
use crate::ports::{Clock, PasswordHasher, StoreError, UserRepository, VerificationStore};
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
        }
    }

    /// Creates an unverified account and returns its one-time verification
    /// token (to be mailed to the user). An email already registered, in any
    /// case or spacing, is [`ConflictError::EmailTaken`].
    pub async fn register(&self, credentials: &Credentials) -> Result<OpaqueToken, DomainError> {
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
        Ok(token)
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
