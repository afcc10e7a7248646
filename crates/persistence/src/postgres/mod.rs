//! PostgreSQL adapters: diesel-async over a deadpool pool, one struct per
//! port. Schema in the workspace's `migrations/`, embedded and run at start-up
//! ([`run_migrations`]). Every operation is a single statement, or one
//! transaction where a port operation spans tables (creating a room with its
//! owner, appending a message, and every other change of a room, which logs
//! its room event in the same transaction at a position taken from the
//! room's row: see `events.rs`), whose atomicity and constraints give the
//! port's concurrency guarantees; it is bounded in time, so that a database
//! outage becomes [`StoreError::Unavailable`](p_chat_domain::ports::StoreError)
//! within seconds rather than a hang. `docs/storage.md` maps tables,
//! constraints and indexes to the port methods they serve.

mod error;
mod events;
mod group_commit;
mod invites;
mod memberships;
mod messages;
mod migrate;
mod models;
mod pool;
mod reactions;
mod resets;
mod rooms;
mod schema;
mod sessions;
mod sql;
#[cfg(feature = "test-support")]
pub mod testing;
mod tls;
mod users;
mod verifications;

pub use events::PgEvents;
pub use invites::PgInvites;
pub use memberships::PgMemberships;
pub use messages::PgMessages;
pub use migrate::{MigrationError, run_migrations};
pub use pool::{PgConfig, PgStore, PoolSetupError};
pub use resets::PgResets;
pub use rooms::PgRooms;
pub use sessions::PgSessions;
pub use tls::{PgRoots, PgTls, RootCertError};
pub use users::PgUsers;
pub use verifications::PgVerifications;
