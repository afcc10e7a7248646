//! Instance administration: accounts (list, disable, enable, instance role,
//! password reset, creation) and invitations. Every use case names its
//! [`Operator`]: an instance administrator over the API, or the server's
//! console (`p-chat admin ...`), which is trusted as whoever can run it can
//! read the database anyway.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Missing, Refusal};
use crate::ports::{Clock, InviteStore, PasswordHasher, StoreError, UserQuery, UserRepository};
use crate::registration::{Invite, InviteId, InviteLifetime, InviteUses};
use crate::services::rooms::UserRef;
use crate::services::sessions::{Credentials, Sessions};
use crate::token::OpaqueToken;
use crate::user::{InstanceRole, PasswordDigest, User, UserId};

/// Who asks for an administrative operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The server's console (`p-chat admin`): always allowed.
    Console,
    /// A logged-in user, allowed only while an enabled instance administrator.
    User(UserId),
}

/// A new invitation and its token, shown to the administrator once.
#[derive(Debug, Clone)]
pub struct IssuedInvite {
    /// What is stored (and listed).
    pub invite: Invite,
    /// The token to hand to the invitee.
    pub token: OpaqueToken,
}

/// The administration use cases.
#[derive(Clone)]
pub struct Admin {
    users: Arc<dyn UserRepository>,
    invites: Arc<dyn InviteStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
}

impl Admin {
    /// Builds the service from its ports; `sessions` ends the sessions of
    /// accounts that are disabled or whose password is reset.
    pub fn new(
        users: Arc<dyn UserRepository>,
        invites: Arc<dyn InviteStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        sessions: Sessions,
    ) -> Self {
        Self {
            users,
            invites,
            hasher,
            clock,
            sessions,
        }
    }

    /// Accounts ordered by email, filtered and paged.
    #[tracing::instrument(skip(self))]
    pub async fn users(
        &self,
        operator: Operator,
        query: &UserQuery,
    ) -> Result<Vec<User>, DomainError> {
        self.allow(operator).await?;
        Ok(self.users.list(query).await?)
    }

    /// One account.
    #[tracing::instrument(skip(self))]
    pub async fn user(&self, operator: Operator, target: &UserRef) -> Result<User, DomainError> {
        self.allow(operator).await?;
        self.resolve(target).await
    }

    /// Creates an account whose email counts as verified (for the first
    /// administrator, or on a closed instance).
    #[tracing::instrument(skip(self, credentials), fields(email_domain = credentials.email.domain()))]
    pub async fn create_user(
        &self,
        operator: Operator,
        credentials: &Credentials,
        role: InstanceRole,
    ) -> Result<User, DomainError> {
        self.allow(operator).await?;
        let now = self.clock.now();
        let hash = self.hasher.hash(&credentials.password).await?;
        let user = User {
            email_verified_at: Some(now),
            role,
            ..User::new(credentials.email.clone(), hash, now)
        };
        self.users
            .insert(&user)
            .await
            .map_err(|error| match error {
                StoreError::Duplicate => ConflictError::EmailTaken.into(),
                other => DomainError::from(other),
            })?;
        Ok(user)
    }

    /// Disables an account: it can no longer log in or refresh, every
    /// session ends and its sockets close (4001). An administrator cannot
    /// disable themselves over the API.
    #[tracing::instrument(skip(self))]
    pub async fn disable(&self, operator: Operator, target: &UserRef) -> Result<User, DomainError> {
        let user = self.target(operator, target).await?;
        let disabled = self
            .users
            .set_disabled(user.id, Some(self.clock.now()))
            .await?
            .ok_or(DomainError::NotFound(Missing::User))?;
        self.sessions.end_all(user.id, None).await?;
        Ok(disabled)
    }

    /// Enables a disabled account again (not a deleted one).
    #[tracing::instrument(skip(self))]
    pub async fn enable(&self, operator: Operator, target: &UserRef) -> Result<User, DomainError> {
        let user = self.target(operator, target).await?;
        self.users
            .set_disabled(user.id, None)
            .await?
            .ok_or(DomainError::NotFound(Missing::User))
    }

    /// Makes an account an instance administrator, or an ordinary member again.
    #[tracing::instrument(skip(self))]
    pub async fn set_role(
        &self,
        operator: Operator,
        target: &UserRef,
        role: InstanceRole,
    ) -> Result<User, DomainError> {
        let user = self.target(operator, target).await?;
        self.users
            .set_role(user.id, role)
            .await?
            .ok_or(DomainError::NotFound(Missing::User))
    }

    /// Sets a new password for an account and ends all its sessions.
    #[tracing::instrument(skip(self, password))]
    pub async fn reset_password(
        &self,
        operator: Operator,
        target: &UserRef,
        password: &PasswordDigest,
    ) -> Result<User, DomainError> {
        let user = self.target(operator, target).await?;
        let hash = self.hasher.hash(password).await?;
        let changed = self
            .users
            .set_password_hash(user.id, &hash)
            .await?
            .ok_or(DomainError::NotFound(Missing::User))?;
        self.sessions.end_all(user.id, None).await?;
        Ok(changed)
    }

    /// Creates an invitation admitting `uses` registrations for `lifetime`.
    #[tracing::instrument(skip(self))]
    pub async fn create_invite(
        &self,
        operator: Operator,
        uses: InviteUses,
        lifetime: InviteLifetime,
    ) -> Result<IssuedInvite, DomainError> {
        let created_by = self.allow(operator).await?;
        let token = OpaqueToken::generate()?;
        let now = self.clock.now();
        let invite = Invite {
            id: InviteId::new(),
            token_hash: token.hash(),
            created_by,
            created_at: now,
            expires_at: now + lifetime.get(),
            uses_left: uses.get(),
        };
        self.invites.insert(&invite).await?;
        Ok(IssuedInvite { invite, token })
    }

    /// The invitations that still admit someone.
    #[tracing::instrument(skip(self))]
    pub async fn invites(&self, operator: Operator) -> Result<Vec<Invite>, DomainError> {
        self.allow(operator).await?;
        Ok(self.invites.active(self.clock.now()).await?)
    }

    /// Withdraws an invitation.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_invite(&self, operator: Operator, id: InviteId) -> Result<(), DomainError> {
        self.allow(operator).await?;
        if self.invites.revoke(id).await? {
            Ok(())
        } else {
            Err(DomainError::NotFound(Missing::Invite))
        }
    }

    /// Checks the operator, and returns the administrator acting (`None`:
    /// the console).
    async fn allow(&self, operator: Operator) -> Result<Option<UserId>, DomainError> {
        match operator {
            Operator::Console => Ok(None),
            Operator::User(id) => match self.users.by_id(id).await? {
                Some(user) if user.is_admin() => Ok(Some(id)),
                _ => Err(Refusal::NotAdmin.into()),
            },
        }
    }

    /// The account an operation changes: not a deleted one, and not the
    /// calling administrator's own (they would lock themselves out).
    async fn target(&self, operator: Operator, target: &UserRef) -> Result<User, DomainError> {
        let actor = self.allow(operator).await?;
        let user = self.resolve(target).await?;
        if user.deleted_at.is_some() {
            return Err(Refusal::AccountDeleted.into());
        }
        if actor == Some(user.id) {
            return Err(Refusal::OwnAccount.into());
        }
        Ok(user)
    }

    async fn resolve(&self, target: &UserRef) -> Result<User, DomainError> {
        let user = match target {
            UserRef::Id(id) => self.users.by_id(*id).await?,
            UserRef::Email(email) => self.users.by_email(email).await?,
        };
        user.ok_or(DomainError::NotFound(Missing::User))
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
