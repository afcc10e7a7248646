//! bcrypt password hashing.

use std::time::Instant;

use async_trait::async_trait;
use p_chat_domain::ports::{HashError, PasswordHasher};
use p_chat_domain::user::{PasswordDigest, PasswordHash};

/// Histogram (docs/operations.md#metrics): how long one bcrypt hash or
/// verification took on the blocking pool, labelled by [`OPERATION`].
pub const BCRYPT_SECONDS: &str = "p_chat_bcrypt_seconds";
/// The label of [`BCRYPT_SECONDS`]: `hash` (registration, password
/// changes and resets) or `verify` (logins).
pub const OPERATION: &str = "operation";
/// [`OPERATION`] of a hash.
const HASH: &str = "hash";
/// [`OPERATION`] of a verification.
const VERIFY: &str = "verify";

/// A bcrypt cost outside what this server accepts.
#[derive(Debug, thiserror::Error)]
#[error("bcrypt cost must be between {min} and {max}, got {0}", min = BcryptHasher::MIN_COST, max = BcryptHasher::MAX_COST)]
pub struct InvalidCost(pub u32);

/// Hashes password digests with bcrypt. What is hashed is the lower-case
/// SHA-256 hex the client sent (64 bytes, under bcrypt's 72-byte limit).
#[derive(Debug, Clone, Copy)]
pub struct BcryptHasher {
    cost: u32,
}

impl BcryptHasher {
    /// The lowest cost accepted; only fit for tests.
    pub const MIN_COST: u32 = 4;
    /// The highest cost bcrypt defines.
    pub const MAX_COST: u32 = 31;

    /// A hasher working at `cost` (each step doubles the work; 12 takes about
    /// a quarter of a second).
    pub fn new(cost: u32) -> Result<Self, InvalidCost> {
        if (Self::MIN_COST..=Self::MAX_COST).contains(&cost) {
            Ok(Self { cost })
        } else {
            Err(InvalidCost(cost))
        }
    }

    /// Runs `work` on the blocking pool, recording its duration under
    /// `operation` in [`BCRYPT_SECONDS`].
    async fn off_the_executor<T, F>(operation: &'static str, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let done = work();
            metrics::histogram!(BCRYPT_SECONDS, OPERATION => operation).record(started.elapsed());
            done
        })
        .await
        .map_err(|error| HashError(error.to_string()))?
        .map_err(|error| HashError(error.to_string()))
    }
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &PasswordDigest) -> Result<PasswordHash, HashError> {
        let (password, cost) = (password.clone(), self.cost);
        let hash =
            Self::off_the_executor(HASH, move || bcrypt::hash(password.expose(), cost)).await?;
        Ok(PasswordHash::new(hash))
    }

    async fn verify(
        &self,
        password: &PasswordDigest,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        if hash.expose() == PasswordHash::UNUSABLE {
            return Ok(false);
        }
        let (password, hash) = (password.clone(), hash.clone());
        Self::off_the_executor(VERIFY, move || {
            bcrypt::verify(password.expose(), hash.expose())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> PasswordDigest {
        PasswordDigest::parse(&c.to_string().repeat(64)).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_own_digest_only() {
        let hasher = BcryptHasher::new(4).unwrap();
        let hash = hasher.hash(&digest('a')).await.unwrap();
        assert!(hash.expose().starts_with("$2b$04$"));
        assert!(hasher.verify(&digest('a'), &hash).await.unwrap());
        assert!(!hasher.verify(&digest('b'), &hash).await.unwrap());
    }

    #[tokio::test]
    async fn upper_and_lower_case_hex_are_the_same_password() {
        let hasher = BcryptHasher::new(4).unwrap();
        let hash = hasher.hash(&digest('A')).await.unwrap();
        assert!(hasher.verify(&digest('a'), &hash).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_salted() {
        let hasher = BcryptHasher::new(4).unwrap();
        let first = hasher.hash(&digest('a')).await.unwrap();
        let second = hasher.hash(&digest('a')).await.unwrap();
        assert_ne!(first, second);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let hasher = BcryptHasher::new(4).unwrap();
        let broken = PasswordHash::new("not a bcrypt hash".into());
        assert!(hasher.verify(&digest('a'), &broken).await.is_err());
    }

    #[test]
    fn cost_is_bounded() {
        assert!(BcryptHasher::new(3).is_err());
        assert!(BcryptHasher::new(4).is_ok());
        assert!(BcryptHasher::new(31).is_ok());
        assert!(BcryptHasher::new(32).is_err());
    }
}
