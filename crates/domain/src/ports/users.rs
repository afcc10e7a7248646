use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::registration::Invite;
use crate::token::TokenHash;
use crate::user::{
    Anonymised, DisplayName, Email, InstanceRole, PasswordHash, User, UserId, UserSearch,
};
use crate::verification::EmailVerification;

/// What [`UserRepository::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The account and its verification are stored (and the invitation, if
    /// one was named, has one use less).
    Created,
    /// An account with this email exists (and is not a stale, unverified one).
    EmailTaken,
    /// The named invitation is unknown, used up or expired.
    InviteRefused,
}

/// What [`UserRepository::anonymise`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anonymisation {
    /// The account is anonymised; these are the `member_left` events of
    /// the rooms it left.
    Done(User, Vec<crate::events::RoomEvent>),
    /// The account owns rooms: it must hand them over (or delete them) first.
    OwnsRooms,
    /// No such account.
    Missing,
}

/// One page of the administrators' account list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Only accounts whose email or display name contains this (case-insensitive).
    pub contains: Option<UserSearch>,
    /// Only accounts whose email sorts after this one (keyset paging).
    pub after: Option<Email>,
    /// At most this many accounts.
    pub limit: usize,
}

/// Where accounts live.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new account. MUST return [`StoreError::Duplicate`] when an
    /// account with the same email exists, also when two inserts race: of
    /// concurrent inserts of one email exactly one succeeds.
    async fn insert(&self, user: &User) -> Result<(), StoreError>;

    /// Registers an account and its pending verification in ONE atomic
    /// step: either both are stored or neither (a failure of the second write
    /// leaves nothing behind). With `invite`, the invitation stored under that
    /// hash must admit a registration at `now` and loses one use in the same
    /// step. An existing account with the same email blocks the registration
    /// ([`Registered::EmailTaken`]) unless it is unverified and registered at
    /// or before `stale_before`: such a stale registration is removed
    /// (with its verifications and memberships) and replaced. Of concurrent
    /// registrations of one email exactly one is `Created`.
    async fn register(
        &self,
        user: &User,
        verification: &EmailVerification,
        invite: Option<TokenHash>,
        stale_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError>;

    /// The account with this id, if any.
    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The accounts among `ids` that exist, in any order.
    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError>;

    /// The account with this (normalized) email, if any.
    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Accounts ordered by email, filtered and paged by `query`.
    async fn list(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;

    /// Records that the account's email is verified, keeping the first time
    /// if it already was. Returns whether the account exists.
    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Renames the account; `None` if it does not exist.
    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError>;

    /// Replaces the password hash and, in the same step, removes every
    /// pending password reset of the account (a reset link must not outlive
    /// the password it was sent for); `None` if the account does not exist.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
    ) -> Result<Option<User>, StoreError>;

    /// Sets the instance role; `None` if the account does not exist.
    async fn set_role(&self, id: UserId, role: InstanceRole) -> Result<Option<User>, StoreError>;

    /// Disables the account from `at` (keeping an earlier time if it already
    /// was), or with `None` enables it again. A deleted account stays
    /// disabled whatever is asked. `None` if the account does not exist.
    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError>;

    /// Deletes an account the way its owner asks for it, in one atomic step:
    /// email, name and password replaced by `anonymised`'s (the password by
    /// `unusable`, which no password matches), disabled and marked deleted (a first
    /// deletion time is kept), pending verifications and resets removed and
    /// every membership removed, each logged as `member_left` in its room
    /// (at the deletion time); the name in the account's earlier membership
    /// events in room logs becomes the anonymised one. The row
    /// stays, so the account's messages keep their author and `seq`. Refused
    /// ([`Anonymisation::OwnsRooms`], nothing changed) while the account is
    /// the owner of a room.
    async fn anonymise(
        &self,
        id: UserId,
        anonymised: &Anonymised,
        unusable: &PasswordHash,
    ) -> Result<Anonymisation, StoreError>;

    /// Records `at` as the time the account's last connection closed
    /// (presence's `last_seen_at`), replacing an earlier one. Returns
    /// whether the account exists.
    async fn record_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// The last time recorded by [`UserRepository::record_last_seen`];
    /// `None` if none was, or the account does not exist.
    async fn last_seen(&self, id: UserId) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Where invitations live, keyed by id and by token hash. They are redeemed
/// by [`UserRepository::register`], in the registration's own step.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Stores a new invitation. MUST return [`StoreError::Duplicate`] if one
    /// with the same id or token hash exists.
    async fn insert(&self, invite: &Invite) -> Result<(), StoreError>;

    /// Every invitation still admitting someone at `now`, newest first.
    async fn active(&self, now: DateTime<Utc>) -> Result<Vec<Invite>, StoreError>;

    /// Removes an invitation; returns whether it existed.
    async fn revoke(&self, id: crate::registration::InviteId) -> Result<bool, StoreError>;
}
