//! In-memory adapters: one struct per port, each guarding its state with one
//! mutex so every port operation is atomic (the property the contract suites
//! check under concurrency). Nothing survives the process.

mod accounts;
mod chat;
mod sessions;

pub use accounts::{MemoryAccounts, MemoryInvites, MemoryResets, MemoryUsers, MemoryVerifications};
pub use chat::{MemoryChat, MemoryEvents, MemoryMemberships, MemoryMessages, MemoryRooms};
pub use sessions::MemorySessions;
