//! Embedded schema migrations, run before the server accepts requests.

use diesel::Connection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::PgConfig;

/// The workspace's `migrations/` folder, compiled into the binary.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database could not be reached.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A migration failed; the schema is left as its transaction found it.
    #[error("a migration failed: {0}")]
    Migrate(String),
    /// The blocking task running the migrations died.
    #[error("the migration task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Applies every pending migration, returning how many ran.
///
/// diesel's migration harness is synchronous: it runs on the blocking thread
/// pool through diesel-async's `AsyncConnectionWrapper` (which needs a tokio
/// runtime handle, present there, and no libpq).
pub async fn run_migrations(config: &PgConfig) -> Result<usize, MigrationError> {
    let target = config.connection_string();
    tokio::task::spawn_blocking(move || {
        let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&target)?;
        connection
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| applied.len())
            .map_err(|error| MigrationError::Migrate(error.to_string()))
    })
    .await?
}
