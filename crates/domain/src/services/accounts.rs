//! Registering, verifying an email, and the user's own account: profile,
//! password change and deletion.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Refusal};
use crate::events::Broadcast;
use crate::mail::{Mail, MailContent};
use crate::ports::{
    Anonymisation, Clock, FanOut, Mailer, NoFanOut, NoMailer, PasswordHasher, Registered,
    UserRepository, VerificationStore,
};
use crate::registration::RegistrationMode;
use crate::services::sessions::{Credentials, Sessions};
use crate::session::{LoginContext, SessionId, TokenSet};
use crate::token::{OpaqueToken, TokenHash};
use crate::user::{Anonymised, DisplayName, PasswordDigest, PasswordHash, User, UserId};
use crate::verification::{EmailVerification, VerificationPolicy};

/// What a registration asks for: credentials and, on an invite-only
/// instance, the invitation's token.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The new account's email and password digest.
    pub credentials: Credentials,
    /// The invitation token, if the registrant has one (it is hashed, never stored).
    pub invite: Option<String>,
}

/// A confirmed password change: the current password and the new one.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The password in use, as proof that the caller is the owner.
    pub current: PasswordDigest,
    /// The password to use from now on.
    pub new: PasswordDigest,
}

/// The account use cases.
#[derive(Clone)]
pub struct Accounts {
    users: Arc<dyn UserRepository>,
    verifications: Arc<dyn VerificationStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
    policy: VerificationPolicy,
    mode: RegistrationMode,
    fanout: Arc<dyn FanOut>,
    mailer: Arc<dyn Mailer>,
}

impl Accounts {
    /// Builds the service from its ports; `sessions` opens the session that a
    /// successful verification starts. Registration is open until
    /// [`Accounts::with_registration`] says otherwise.
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
            mode: RegistrationMode::Open,
            fanout: Arc::new(NoFanOut),
            mailer: Arc::new(NoMailer),
        }
    }

    /// Mails verification links through `mailer` (without one, registration
    /// hands the token to its caller).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// Sets who may register (`REGISTRATION`).
    pub fn with_registration(mut self, mode: RegistrationMode) -> Self {
        self.mode = mode;
        self
    }

    /// Tells `fanout` about the rooms a deleted account leaves.
    pub fn with_fanout(mut self, fanout: Arc<dyn FanOut>) -> Self {
        self.fanout = fanout;
        self
    }

    /// Creates an unverified account and its one-time verification token in
    /// one atomic store operation, then mails the verification link. The
    /// token is returned only when the mailer does not deliver
    /// ([`Mailer::delivers`]): then the caller must hand it over itself, and
    /// verification proves nothing about the address. An email
    /// already registered, in any case or spacing, is
    /// [`ConflictError::EmailTaken`], unless that registration was never
    /// verified and its verification time is over: then it is replaced. On a
    /// closed instance, or an invite-only one without a valid invitation,
    /// registration is refused.
    #[tracing::instrument(skip_all, fields(email_domain = registration.credentials.email.domain()))]
    pub async fn register(
        &self,
        registration: &Registration,
    ) -> Result<Option<OpaqueToken>, DomainError> {
        let invite = match (self.mode, &registration.invite) {
            (RegistrationMode::Closed, _) => return Err(Refusal::RegistrationClosed.into()),
            (RegistrationMode::Invite, None) => return Err(Refusal::InviteInvalid.into()),
            (RegistrationMode::Invite, Some(token)) => Some(TokenHash::of(token)),
            (RegistrationMode::Open, _) => None,
        };
        let credentials = &registration.credentials;
        // A cheap early answer for the common duplicate (before bcrypt); the
        // store's atomic registration is what enforces uniqueness.
        let now = self.clock.now();
        let stale_before = now - self.policy.ttl;
        if let Some(existing) = self.users.by_email(&credentials.email).await?
            && (existing.is_verified() || existing.created_at > stale_before)
        {
            return Err(ConflictError::EmailTaken.into());
        }
        let token = OpaqueToken::generate()?;
        let password_hash = self.hasher.hash(&credentials.password).await?;
        let user = User::new(credentials.email.clone(), password_hash, now);
        let verification = EmailVerification {
            token_hash: token.hash(),
            user_id: user.id,
            expires_at: now + self.policy.ttl,
        };
        match self
            .users
            .register(&user, &verification, invite, stale_before, now)
            .await?
        {
            Registered::Created => {}
            Registered::EmailTaken => return Err(ConflictError::EmailTaken.into()),
            Registered::InviteRefused => return Err(Refusal::InviteInvalid.into()),
        }
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
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: &str,
        context: &LoginContext,
    ) -> Result<TokenSet, DomainError> {
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
        self.sessions.start(verification.user_id, context).await
    }

    /// The caller's own account.
    #[tracing::instrument(skip(self))]
    pub async fn profile(&self, user_id: UserId) -> Result<User, DomainError> {
        self.users
            .by_id(user_id)
            .await?
            .ok_or(DomainError::Unauthorized)
    }

    /// Changes the caller's display name.
    #[tracing::instrument(skip(self, name))]
    pub async fn rename(&self, user_id: UserId, name: &DisplayName) -> Result<User, DomainError> {
        self.users
            .set_display_name(user_id, name)
            .await?
            .ok_or(DomainError::Unauthorized)
    }

    /// Changes the caller's password after checking the current one, and
    /// ends every other session of theirs (the one making the change stays).
    #[tracing::instrument(skip(self, change))]
    pub async fn change_password(
        &self,
        user_id: UserId,
        session_id: SessionId,
        change: &PasswordChange,
    ) -> Result<(), DomainError> {
        self.confirm_password(user_id, &change.current).await?;
        let hash = self.hasher.hash(&change.new).await?;
        self.users
            .set_password_hash(user_id, &hash)
            .await?
            .ok_or(DomainError::Unauthorized)?;
        self.sessions.end_all(user_id, Some(session_id)).await
    }

    /// Deletes the caller's account after checking their password: it is
    /// disabled and anonymised (its email freed, its name shown as "Deleted
    /// user"), it leaves every room, every session ends and its sockets
    /// close. Its messages stay, with their `seq`. An owner must hand their
    /// rooms over first ([`ConflictError::OwnerMustHandOver`]).
    #[tracing::instrument(skip(self, password))]
    pub async fn delete(
        &self,
        user_id: UserId,
        password: &PasswordDigest,
    ) -> Result<(), DomainError> {
        self.confirm_password(user_id, password).await?;
        let now = self.clock.now();
        let unusable = PasswordHash::new(PasswordHash::UNUSABLE.to_owned());
        let left = match self
            .users
            .anonymise(user_id, &Anonymised::of(user_id, now), &unusable)
            .await?
        {
            Anonymisation::Done(_, left) => left,
            Anonymisation::OwnsRooms => return Err(ConflictError::OwnerMustHandOver.into()),
            Anonymisation::Missing => return Err(DomainError::Unauthorized),
        };
        self.sessions.end_all(user_id, None).await?;
        for event in left {
            self.fanout.publish(Broadcast::Event(event)).await;
        }
        Ok(())
    }

    /// Checks that `password` is the account's current one
    /// ([`Refusal::WrongPassword`] if not), within the account's login budget.
    async fn confirm_password(
        &self,
        user_id: UserId,
        password: &PasswordDigest,
    ) -> Result<User, DomainError> {
        let user = self.profile(user_id).await?;
        self.sessions.confirm_password(&user, password).await?;
        Ok(user)
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
