//! Password recovery: the one-time reset tokens mailed on request.

use chrono::{DateTime, TimeDelta, Utc};

use crate::token::TokenHash;
use crate::user::UserId;

/// A pending password reset: the hash of the one-time token mailed to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Hash of the token; the token itself is never stored.
    pub token_hash: TokenHash,
    /// The account whose password the token may reset.
    pub user_id: UserId,
    /// After this instant the token is refused.
    pub expires_at: DateTime<Utc>,
}

impl PasswordReset {
    /// Whether the token may still be used at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// How long a reset token stays usable (`PASSWORD_RESET_TTL_MINUTES`):
/// short, as whoever reads the mail can take over the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    /// Lifetime of a reset token.
    pub ttl: TimeDelta,
}

impl Default for ResetPolicy {
    fn default() -> Self {
        Self {
            ttl: TimeDelta::minutes(30),
        }
    }
}
