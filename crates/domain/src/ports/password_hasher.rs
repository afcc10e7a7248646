use async_trait::async_trait;

use crate::user::{PasswordDigest, PasswordHash};

/// A failure of the hashing machinery itself (not a wrong password).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Slow, salted hashing of password digests. Implementations must do the
/// CPU-heavy work off the async executor's threads.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a digest with a fresh salt.
    async fn hash(&self, password: &PasswordDigest) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. A malformed hash is an error, a
    /// mismatch is `Ok(false)`.
    async fn verify(
        &self,
        password: &PasswordDigest,
        hash: &PasswordHash,
    ) -> Result<bool, HashError>;
}
