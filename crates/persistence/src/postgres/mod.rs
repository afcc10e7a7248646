//! PostgreSQL adapters: diesel-async over a deadpool pool, one struct per
//! port. Schema in the workspace's `migrations/`, embedded and run at start-up
//! ([`run_migrations`]). Every operation is a single statement whose
//! atomicity and constraints give the port's concurrency guarantees, and is
//! bounded in time, so that a database outage becomes
//! [`StoreError::Unavailable`](p_chat_domain::ports::StoreError) within
//! seconds rather than a hang.

mod error;
mod migrate;
mod models;
mod pool;
mod schema;
mod sessions;
#[cfg(feature = "test-support")]
pub mod testing;
mod users;
mod verifications;

pub use migrate::{MigrationError, run_migrations};
pub use pool::{PgConfig, PgStore, PoolSetupError};
pub use sessions::PgSessions;
pub use users::PgUsers;
pub use verifications::PgVerifications;
