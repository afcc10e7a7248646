//! Embedded schema migrations, run before the server accepts requests.

use diesel::RunQueryDsl;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::PgConfig;

/// The workspace's `migrations/` folder, compiled into the binary.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The advisory lock every p-chat process takes while it migrates, so that
/// two starting at once (two nodes, or `p-chat admin` beside a first start)
/// apply each migration once instead of racing into a failure ("pchat" in
/// ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x7063_6861_7400_0001;

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

/// Applies every pending migration, returning how many ran. Processes
/// migrating one database at once take turns ([`MIGRATION_LOCK`]): the
/// later ones find nothing left to do.
///
/// The connection is opened like the pool's (TLS as configured). diesel's
/// migration harness is synchronous: it runs on the blocking thread pool
/// through diesel-async's `AsyncConnectionWrapper` (which needs a tokio
/// runtime handle, present there, and no libpq).
pub async fn run_migrations(config: &PgConfig) -> Result<usize, MigrationError> {
    let connector = config.connector().map_err(|error| {
        diesel::ConnectionError::BadConnection(format!("PostgreSQL TLS: {error}"))
    })?;
    let connection = connector.connect().await?;
    tokio::task::spawn_blocking(move || {
        let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::from(connection);
        let lock = |function: &str, connection: &mut AsyncConnectionWrapper<_>| {
            diesel::sql_query(format!("SELECT {function}({MIGRATION_LOCK})"))
                .execute(connection)
                .map_err(|error| MigrationError::Migrate(error.to_string()))
        };
        lock("pg_advisory_lock", &mut connection)?;
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| applied.len())
            .map_err(|error| MigrationError::Migrate(error.to_string()));
        // Released at once, not when the connection closes: its driver task
        // may not run again soon (a caller's runtime busy or blocked).
        lock("pg_advisory_unlock", &mut connection)?;
        applied
    })
    .await?
}
