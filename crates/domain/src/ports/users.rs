use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::user::{DisplayName, Email, User, UserId};

/// Where accounts live.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new account. MUST return [`StoreError::Duplicate`] when an
    /// account with the same email exists, also when two inserts race: of
    /// concurrent inserts of one email exactly one succeeds.
    async fn insert(&self, user: &User) -> Result<(), StoreError>;

    /// The account with this id, if any.
    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The accounts among `ids` that exist, in any order.
    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError>;

    /// The account with this (normalized) email, if any.
    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Records that the account's email is verified, keeping the first time
    /// if it already was. Returns whether the account exists.
    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Renames the account; `None` if it does not exist.
    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError>;
}
