//! Throwaway PostgreSQL databases for tests (feature `test-support`).
//!
//! [`TestDatabase::create`] makes a uniquely named, fully migrated database
//! on the server named by [`DATABASE_URL_VAR`] and drops it when the value is
//! dropped. Without the variable, or when the server does not answer, it
//! says loudly that the test is skipped and returns `None`, unless `CI=true`,
//! where a missing database is a failure.

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use p_chat_domain::ports::StoreError;

use super::{PgConfig, PgStore, PgTls, run_migrations};

/// The variable naming the PostgreSQL server tests may use, as a URL:
/// `postgres://user[:password]@host[:port]`. The user must be allowed to
/// create databases.
pub const DATABASE_URL_VAR: &str = "P_CHAT_TEST_DATABASE_URL";

/// A migrated database that exists for as long as this value.
pub struct TestDatabase {
    config: PgConfig,
    admin: PgConfig,
}

impl TestDatabase {
    /// Creates and migrates a fresh database, or explains why it cannot and
    /// returns `None` (panicking instead under `CI=true`).
    pub async fn create() -> Option<Self> {
        let database = Self::create_empty().await?;
        if let Err(error) = run_migrations(&database.config).await {
            panic!("migrations failed on a fresh database: {error}");
        }
        Some(database)
    }

    /// Like [`TestDatabase::create`], without running the migrations: for
    /// tests of what a server does with an empty database.
    pub async fn create_empty() -> Option<Self> {
        let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
            return skip(&format!("{DATABASE_URL_VAR} is not set"));
        };
        let admin = match admin_config(&url) {
            Ok(admin) => admin,
            Err(reason) => panic!("{DATABASE_URL_VAR} is not a usable PostgreSQL URL: {reason}"),
        };
        let name = format!("p_chat_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(reason) = admin_command(&admin, &format!(r#"CREATE DATABASE "{name}""#)).await {
            return skip(&format!(
                "cannot create a database on {DATABASE_URL_VAR}: {reason}"
            ));
        }
        Some(Self {
            config: PgConfig {
                database: name,
                ..admin.clone()
            },
            admin,
        })
    }

    /// How to reach this database (e.g. to hand `PSQL_*` to a server process).
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// A store over this database.
    pub fn store(&self) -> PgStore {
        match PgStore::new(&self.config) {
            Ok(store) => store,
            Err(error) => panic!("{error}"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.config.database
        );
        // Drop cannot await, and may run inside a runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(admin_command(&admin, &statement))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {dropped:?}",
                self.config.database
            );
        }
    }
}

/// Whether a connection of `store`'s pool is encrypted, as the server sees
/// it (`pg_stat_ssl`), and its `jit` setting: for the tests of
/// `PSQL_SSLMODE`, which must keep the connection string's options.
pub async fn session_tls_and_jit(store: &PgStore) -> Result<(bool, String), StoreError> {
    use diesel::sql_types::{Bool, Text};
    let mut connection = store.connection().await?;
    let query = diesel::select((
        diesel::dsl::sql::<Bool>("(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"),
        diesel::dsl::sql::<Text>("current_setting('jit')"),
    ));
    store.bounded(query.get_result(&mut connection)).await
}

/// The maintenance database (`postgres`) of the server at `url`.
fn admin_config(url: &str) -> Result<PgConfig, String> {
    let parsed = tokio_postgres::Config::from_str(url).map_err(|error| error.to_string())?;
    let host = match parsed.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    Ok(PgConfig {
        host,
        port: parsed.get_ports().first().copied().unwrap_or(5432),
        user: parsed.get_user().unwrap_or("postgres").to_owned(),
        password: parsed
            .get_password()
            .map(|password| String::from_utf8_lossy(password).into_owned()),
        database: "postgres".to_owned(),
        pool_size: 8,
        timeout: Duration::from_secs(10),
        tls: PgTls::Disable,
    })
}

async fn admin_command(admin: &PgConfig, statement: &str) -> Result<(), String> {
    let mut connection = AsyncPgConnection::establish(&admin.connection_string())
        .await
        .map_err(|error| error.to_string())?;
    diesel::sql_query(statement)
        .execute(&mut connection)
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Reports a skipped test (see [`p_chat_testkit::skip`]), or fails under CI.
fn skip<T>(reason: &str) -> Option<T> {
    p_chat_testkit::skip(
        "PostgreSQL",
        &format!("{reason}; set {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432 to run it"),
    );
    None
}
