//! # p-chat persistence
//!
//! Storage adapters implementing the domain's repository ports.
//!
//! - [`memory`]: in-process stores, correct under concurrency, with no
//!   dependency beyond the domain. The server's zero-configuration default,
//!   and a ready fake for any Rust service's tests.
//! - [`postgres`] (feature `postgres`, on by default): diesel-async on
//!   PostgreSQL, the durable store. Its schema lives in the workspace's
//!   `migrations/` and is embedded in the binary.
//! - [`metrics`]: the names of what the stores count and time.

pub mod memory;
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod postgres;

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the data if a previous holder panicked: every
/// critical section in this crate leaves the data consistent before it can
/// panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
