use async_trait::async_trait;

use super::StoreError;
use crate::token::TokenHash;
use crate::verification::EmailVerification;

/// Where pending email verifications live, keyed by token hash.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait VerificationStore: Send + Sync {
    /// Stores a pending verification. MUST return [`StoreError::Duplicate`]
    /// if one with the same token hash exists.
    async fn insert(&self, verification: &EmailVerification) -> Result<(), StoreError>;

    /// Removes and returns the verification stored under `token_hash`,
    /// expired or not. Atomic: of concurrent calls with one hash, at most one
    /// gets it, which is what makes a token single-use.
    async fn take(&self, token_hash: &TokenHash) -> Result<Option<EmailVerification>, StoreError>;
}
