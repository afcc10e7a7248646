use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::session::{LoginSession, SessionId};
use crate::token::TokenHash;
use crate::user::UserId;

/// Where login sessions (refresh-token families) live.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session.
    async fn create(&self, session: &LoginSession) -> Result<(), StoreError>;

    /// The session with this id, if any. Called on every authenticated
    /// request, so it must be a cheap point lookup.
    async fn by_id(&self, id: SessionId) -> Result<Option<LoginSession>, StoreError>;

    /// The user's sessions that are neither revoked nor expired at `now`,
    /// most recently used first.
    async fn active_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoginSession>, StoreError>;

    /// Replaces the session's refresh-token hash with `next`, its expiry with
    /// `expires_at` and its last use with `at`, only if the stored hash still
    /// equals `current` and the session is not revoked. Returns whether it
    /// did. This is a compare-and-swap: of concurrent rotations from one
    /// `current`, at most one returns `true`.
    async fn rotate(
        &self,
        id: SessionId,
        current: &TokenHash,
        next: &TokenHash,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Ends the session at `at`; a session already revoked keeps its first
    /// revocation time. Revoking an unknown session is not an error.
    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Ends every session of `user` not yet revoked, except `keep`, at `at`,
    /// and returns the ids it ended (so their connections can be closed).
    async fn revoke_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError>;
}
