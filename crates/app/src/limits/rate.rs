//! [`RateLimit`]: one governor (GCRA) keyed limiter with the error our
//! handlers return.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use p_chat_domain::DomainError;

use crate::config::RateSpec;

/// A rate limit with one budget per key (an IP, an email, a user).
pub struct RateLimit<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    /// How long an empty budget takes to refill.
    refill: Duration,
}

/// The governor quota of `spec`: `count` at once, one back every `per / count`.
fn quota(spec: RateSpec) -> Quota {
    // `per` is at least a second and `count` at most a million (config.rs),
    // so the period is never zero; the fallback only keeps this total.
    Quota::with_period(spec.per / spec.count.get())
        .unwrap_or_else(|| Quota::per_second(spec.count))
        .allow_burst(spec.count)
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    /// A limit of `spec` per key, on the real clock.
    pub fn new(spec: RateSpec) -> Self {
        Self::with_clock(spec, DefaultClock::default())
    }

    /// `burst` at once per key, refilled at `per_second`.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::from_quota(
            Quota::per_second(per_second).allow_burst(burst),
            DefaultClock::default(),
        )
    }
}

impl<K: Hash + Eq + Clone, C: Clock> RateLimit<K, C> {
    /// A limit of `spec` per key, on `clock` (tests use a fake one).
    pub fn with_clock(spec: RateSpec, clock: C) -> Self {
        Self::from_quota(quota(spec), clock)
    }

    fn from_quota(quota: Quota, clock: C) -> Self {
        Self {
            limiter: RateLimiter::hashmap_with_clock(quota, clock),
            refill: quota.burst_size_replenished_in(),
        }
    }

    /// Takes one request from `key`'s budget, or says how long until it may.
    pub fn check(&self, key: &K) -> Result<(), DomainError> {
        self.take(key, NonZeroU32::MIN)
            .map_err(|retry_after| DomainError::RateLimited { retry_after })
    }

    /// Takes `cost` from `key`'s budget, all or nothing; `Err` holds how
    /// long until it could (a cost over the burst never can: it is told to
    /// wait a whole refill).
    pub fn take(&self, key: &K, cost: NonZeroU32) -> Result<(), Duration> {
        match self.limiter.check_key_n(key, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.limiter.clock().now())),
            Err(_insufficient_capacity) => Err(self.refill),
        }
    }

    /// Forgets the keys whose budget is full again (they are no different
    /// from keys never seen), so the map holds only recent clients.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys are remembered.
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(
        spec: &str,
    ) -> (
        RateLimit<&'static str, FakeRelativeClock>,
        FakeRelativeClock,
    ) {
        let clock = FakeRelativeClock::default();
        (
            RateLimit::with_clock(spec.parse().unwrap(), clock.clone()),
            clock,
        )
    }

    #[test]
    fn a_burst_passes_then_one_more_per_refill_step() {
        let (limit, clock) = limit("3/30s");
        assert!((0..3).all(|_| limit.check(&"a").is_ok()));
        let refused = limit.check(&"a");
        assert!(
            matches!(refused, Err(DomainError::RateLimited { retry_after }) if retry_after == Duration::from_secs(10)),
            "{refused:?}"
        );
        assert!(limit.check(&"b").is_ok(), "keys have their own budgets");
        clock.advance(Duration::from_secs(10));
        assert!(limit.check(&"a").is_ok());
        assert!(limit.check(&"a").is_err());
    }

    #[test]
    fn a_cost_is_taken_whole_or_not_at_all() {
        let (limit, _clock) = limit("3/30s");
        let two = NonZeroU32::new(2).unwrap();
        assert!(limit.take(&"a", two).is_ok());
        assert!(limit.take(&"a", two).is_err());
        assert!(
            limit.take(&"a", NonZeroU32::MIN).is_ok(),
            "the refused cost took nothing"
        );
        assert_eq!(
            limit.take(&"b", NonZeroU32::new(4).unwrap()),
            Err(Duration::from_secs(30))
        );
    }

    #[test]
    fn idle_keys_are_forgotten_once_their_budget_is_full() {
        let (limit, clock) = limit("2/20s");
        limit.check(&"a").unwrap();
        limit.check(&"b").unwrap();
        limit.check(&"b").unwrap();
        limit.forget_idle();
        assert_eq!(limit.keys(), 2, "both are in use");
        // governor keeps a key one refill step past its refill.
        clock.advance(Duration::from_secs(20));
        limit.forget_idle();
        assert_eq!(limit.keys(), 1, "a is idle, b has only just refilled");
        clock.advance(Duration::from_secs(10));
        limit.forget_idle();
        assert_eq!(limit.keys(), 0);
    }
}
