//! The governor adapter of the domain's [`LoginThrottle`] port: one budget
//! per email (`RATE_LOGIN_ACCOUNT`), an attempt costing one unit and a failed
//! attempt one more, so that with the default `10/15m` the sixth failure in
//! a row is refused while a correct password still gets through a few times.

use std::num::NonZeroU32;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use p_chat_domain::ports::{LoginThrottle, Throttled};
use p_chat_domain::user::Email;

use super::rate::RateLimit;

/// What an attempt costs.
const ATTEMPT_COST: NonZeroU32 = NonZeroU32::MIN;
/// What a failed attempt costs on top of [`ATTEMPT_COST`].
const FAILURE_EXTRA_COST: NonZeroU32 = NonZeroU32::MIN;

/// Per-email login budgets in process memory (one node: a multi-node
/// deployment would put them in Redis behind the same port).
pub struct GovernorLoginThrottle<C: Clock = DefaultClock> {
    budgets: RateLimit<Email, C>,
}

impl<C: Clock> GovernorLoginThrottle<C> {
    /// A throttle over per-email `budgets`.
    pub fn new(budgets: RateLimit<Email, C>) -> Self {
        Self { budgets }
    }

    /// Forgets emails whose budget is full again.
    pub fn forget_idle(&self) {
        self.budgets.forget_idle();
    }
}

#[async_trait]
impl<C: Clock + Send + Sync> LoginThrottle for GovernorLoginThrottle<C>
where
    C::Instant: Send + Sync,
{
    async fn attempt(&self, email: &Email) -> Result<(), Throttled> {
        self.budgets
            .take(email, ATTEMPT_COST)
            .map_err(|retry_after| Throttled { retry_after })
    }

    async fn failed(&self, email: &Email) {
        // An already empty budget stays empty: the next attempt is refused.
        let _ = self.budgets.take(email, FAILURE_EXTRA_COST);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn throttle() -> (GovernorLoginThrottle<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let budgets = RateLimit::with_clock("10/15m".parse().unwrap(), clock.clone());
        (GovernorLoginThrottle::new(budgets), clock)
    }

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    async fn fail(throttle: &GovernorLoginThrottle<FakeRelativeClock>, email: &Email) {
        throttle.attempt(email).await.unwrap();
        throttle.failed(email).await;
    }

    #[actix_web::test]
    async fn the_sixth_failure_in_the_window_is_refused_until_the_budget_refills() {
        let (throttle, clock) = throttle();
        let ada = email("ada@example.com");
        for _ in 0..5 {
            fail(&throttle, &ada).await;
        }
        let refused = throttle.attempt(&ada).await.unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(90));
        assert!(throttle.attempt(&email("bob@example.com")).await.is_ok());
        clock.advance(Duration::from_secs(90));
        assert!(throttle.attempt(&ada).await.is_ok());
    }

    #[actix_web::test]
    async fn after_four_failures_a_correct_password_still_gets_through_twice() {
        let (throttle, _clock) = throttle();
        let ada = email("ada@example.com");
        for _ in 0..4 {
            fail(&throttle, &ada).await;
        }
        assert!(throttle.attempt(&ada).await.is_ok());
        assert!(throttle.attempt(&ada).await.is_ok());
        assert!(throttle.attempt(&ada).await.is_err());
    }
}
