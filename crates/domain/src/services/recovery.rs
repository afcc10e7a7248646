//! Account recovery: a new verification link, and a forgotten password
//! reset through a mailed single-use link. None of these tells whether an
//! address is registered: the answers are the same either way.

use std::sync::Arc;

use crate::error::DomainError;
use crate::mail::{Mail, MailContent};
use crate::ports::{
    Clock, Mailer, PasswordHasher, PasswordResetStore, UserRepository, VerificationStore,
};
use crate::recovery::{PasswordReset, ResetPolicy};
use crate::services::sessions::Sessions;
use crate::token::{OpaqueToken, TokenHash};
use crate::user::{Email, PasswordDigest};
use crate::verification::{EmailVerification, VerificationPolicy};

/// The recovery use cases.
#[derive(Clone)]
pub struct Recovery {
    users: Arc<dyn UserRepository>,
    verifications: Arc<dyn VerificationStore>,
    resets: Arc<dyn PasswordResetStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    mailer: Arc<dyn Mailer>,
    sessions: Sessions,
    verification: VerificationPolicy,
    reset: ResetPolicy,
}

/// The ports and policies [`Recovery`] is built from.
pub struct RecoveryPorts {
    /// Where accounts live.
    pub users: Arc<dyn UserRepository>,
    /// Where pending verifications live.
    pub verifications: Arc<dyn VerificationStore>,
    /// Where pending resets live.
    pub resets: Arc<dyn PasswordResetStore>,
    /// Hashes the new password.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Tells the time.
    pub clock: Arc<dyn Clock>,
    /// Sends the links.
    pub mailer: Arc<dyn Mailer>,
    /// Ends every session of an account whose password is reset.
    pub sessions: Sessions,
    /// How long a verification link works.
    pub verification: VerificationPolicy,
    /// How long a reset link works.
    pub reset: ResetPolicy,
}

impl Recovery {
    /// Builds the service.
    pub fn new(ports: RecoveryPorts) -> Self {
        Self {
            users: ports.users,
            verifications: ports.verifications,
            resets: ports.resets,
            hasher: ports.hasher,
            clock: ports.clock,
            mailer: ports.mailer,
            sessions: ports.sessions,
            verification: ports.verification,
            reset: ports.reset,
        }
    }

    /// Mails a new verification link to an unverified, enabled account with
    /// this address; does nothing otherwise, or when mail cannot reach the
    /// user (the token is never handed to the caller: that would let anyone
    /// verify any address).
    #[tracing::instrument(skip_all, fields(email_domain = email.domain()))]
    pub async fn resend_verification(&self, email: &Email) -> Result<(), DomainError> {
        if !self.mailer.delivers() {
            return Ok(());
        }
        let Some(user) = self.users.by_email(email).await? else {
            return Ok(());
        };
        if user.is_verified() || user.disabled_at.is_some() {
            return Ok(());
        }
        let token = OpaqueToken::generate()?;
        let now = self.clock.now();
        self.verifications
            .insert(&EmailVerification {
                token_hash: token.hash(),
                user_id: user.id,
                expires_at: now + self.verification.ttl,
            })
            .await?;
        self.mailer.send(Mail::new(
            user.email,
            MailContent::Verification {
                token,
                valid_for: self.verification.ttl,
            },
        ));
        Ok(())
    }

    /// Mails a password-reset link to an enabled account with this address;
    /// does nothing otherwise, or when mail cannot reach the user.
    #[tracing::instrument(skip_all, fields(email_domain = email.domain()))]
    pub async fn forgot_password(&self, email: &Email) -> Result<(), DomainError> {
        if !self.mailer.delivers() {
            return Ok(());
        }
        let Some(user) = self.users.by_email(email).await? else {
            return Ok(());
        };
        if user.disabled_at.is_some() {
            return Ok(());
        }
        let token = OpaqueToken::generate()?;
        let now = self.clock.now();
        self.resets
            .insert(&PasswordReset {
                token_hash: token.hash(),
                user_id: user.id,
                expires_at: now + self.reset.ttl,
            })
            .await?;
        self.mailer.send(Mail::new(
            user.email,
            MailContent::PasswordReset {
                token,
                valid_for: self.reset.ttl,
            },
        ));
        Ok(())
    }

    /// Redeems a reset token: sets the new password, counts the email as
    /// verified (the link reached it), voids the account's other resets and
    /// ends every session. Unknown, used and expired tokens, and tokens of
    /// disabled accounts, are all [`DomainError::Unauthorized`].
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        password: &PasswordDigest,
    ) -> Result<(), DomainError> {
        let reset = self
            .resets
            .take(&TokenHash::of(token))
            .await?
            .ok_or(DomainError::Unauthorized)?;
        let now = self.clock.now();
        if reset.is_expired_at(now) {
            return Err(DomainError::Unauthorized);
        }
        let user = self
            .users
            .by_id(reset.user_id)
            .await?
            .filter(|user| user.disabled_at.is_none())
            .ok_or(DomainError::Unauthorized)?;
        let hash = self.hasher.hash(password).await?;
        self.users
            .set_password_hash(user.id, &hash)
            .await?
            .ok_or(DomainError::Unauthorized)?;
        self.users.mark_verified(user.id, now).await?;
        self.sessions.end_all(user.id, None).await
    }
}
