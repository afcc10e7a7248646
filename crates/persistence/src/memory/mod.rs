//! In-memory adapters: one struct per port, each guarding its state with one
//! mutex so every port operation is atomic (the property the contract suites
//! check under concurrency). Nothing survives the process.

mod chat;
mod sessions;
mod users;
mod verifications;

use std::sync::{Mutex, MutexGuard};

pub use chat::{MemoryChat, MemoryMemberships, MemoryMessages, MemoryRooms};
pub use sessions::MemorySessions;
pub use users::MemoryUsers;
pub use verifications::MemoryVerifications;

/// Locks `mutex`, recovering the data if a previous holder panicked: every
/// critical section here leaves the data consistent before it can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
