use std::time::Duration;

use async_trait::async_trait;

use crate::user::Email;

/// A login refused because the account's budget of attempts is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many login attempts for this account; retry in {retry_after:?}")]
pub struct Throttled {
    /// How long until the next attempt may be let through.
    pub retry_after: Duration,
}

/// The per-account login budget (issue #10: failed attempts weigh more, so
/// that a password cannot be guessed at bcrypt speed).
///
/// Keyed by the normalized email whether or not an account has it, so that
/// the throttle answers alike for registered and unknown emails (it must not
/// become a way to enumerate accounts). Every attempt is checked with
/// [`LoginThrottle::attempt`] before any password work; a failed one is then
/// recorded with [`LoginThrottle::failed`], which costs extra. Implementations
/// are shared by every request and must be safe to call concurrently; they
/// may forget keys whose budget is full again.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Takes the cost of one attempt for `email`, or refuses it (taking
    /// nothing) when the budget is spent.
    async fn attempt(&self, email: &Email) -> Result<(), Throttled>;

    /// Charges the extra cost of a failed attempt for `email` (never refuses:
    /// an empty budget simply stays empty).
    async fn failed(&self, email: &Email);
}

/// No throttle: every attempt is let through (the default of
/// [`crate::services::Sessions`] until one is configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLoginThrottle;

#[async_trait]
impl LoginThrottle for NoLoginThrottle {
    async fn attempt(&self, _email: &Email) -> Result<(), Throttled> {
        Ok(())
    }

    async fn failed(&self, _email: &Email) {}
}
