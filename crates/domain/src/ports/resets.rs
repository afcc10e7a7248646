use async_trait::async_trait;

use super::StoreError;
use crate::recovery::PasswordReset;
use crate::token::TokenHash;

/// Where pending password resets live, keyed by token hash. A new password
/// voids them all ([`UserRepository::set_password_hash`](super::UserRepository::set_password_hash)).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PasswordResetStore: Send + Sync {
    /// Stores a pending reset. MUST return [`StoreError::Duplicate`] if one
    /// with the same token hash exists.
    async fn insert(&self, reset: &PasswordReset) -> Result<(), StoreError>;

    /// Removes and returns the reset stored under `token_hash`, expired or
    /// not. Atomic: of concurrent calls with one hash, at most one gets it,
    /// which is what makes a token single-use.
    async fn take(&self, token_hash: &TokenHash) -> Result<Option<PasswordReset>, StoreError>;
}
