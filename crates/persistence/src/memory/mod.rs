//! In-memory adapters: one struct per port, each guarding its state with one
//! mutex so every port operation is atomic (the property the contract suites
//! check under concurrency). Nothing survives the process.

mod chat;
mod sessions;
mod users;
mod verifications;

pub use chat::{MemoryChat, MemoryMemberships, MemoryMessages, MemoryRooms};
pub use sessions::MemorySessions;
pub use users::MemoryUsers;
pub use verifications::MemoryVerifications;
