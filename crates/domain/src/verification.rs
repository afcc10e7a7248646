//! Email verification: proof that a registrant controls their address.

use chrono::{DateTime, TimeDelta, Utc};

use crate::token::TokenHash;
use crate::user::UserId;

/// A pending verification: the hash of the one-time token sent to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailVerification {
    /// Hash of the token; the token itself is never stored.
    pub token_hash: TokenHash,
    /// The account the token verifies.
    pub user_id: UserId,
    /// After this instant the token is refused.
    pub expires_at: DateTime<Utc>,
}

/// How long a verification token stays usable (`EMAIL_VERIFICATION_TTL_HOURS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationPolicy {
    /// Lifetime of a verification token.
    pub ttl: TimeDelta,
}

impl Default for VerificationPolicy {
    fn default() -> Self {
        Self {
            ttl: TimeDelta::hours(24),
        }
    }
}

impl EmailVerification {
    /// Whether the token may still be used at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}
