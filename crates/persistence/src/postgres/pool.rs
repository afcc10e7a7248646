//! Connection settings and the pool every adapter shares.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use p_chat_domain::ports::StoreError;

use super::error::store_error;
use super::tls::{Connector, PgTls};
use crate::metrics::{self, Outcome, PoolState};

/// How to reach PostgreSQL, from `PSQL_*`.
#[derive(Clone)]
pub struct PgConfig {
    /// `PSQL_HOST`.
    pub host: String,
    /// `PSQL_PORT`.
    pub port: u16,
    /// `PSQL_USER`.
    pub user: String,
    /// `PSQL_PASSWORD`, if any.
    pub password: Option<String>,
    /// `PSQL_DB`.
    pub database: String,
    /// `PSQL_POOL_SIZE`: the most connections held open at once.
    pub pool_size: usize,
    /// `PSQL_TIMEOUT_SECONDS`: the longest wait for a connection, and for any
    /// one statement, before the store reports itself unavailable.
    pub timeout: Duration,
    /// `PSQL_SSLMODE` and `PSQL_SSLROOTCERT`: TLS on every connection.
    pub tls: PgTls,
}

impl PgConfig {
    /// The libpq-style `key=value` connection string tokio-postgres takes,
    /// with every value quoted (passwords may hold any character). JIT
    /// compilation is off: it pays off for long analytical queries, and
    /// costs short ones like the unread counts of many rooms tens of
    /// milliseconds each time.
    pub fn connection_string(&self) -> String {
        let quote = |value: &str| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
        let seconds = self.timeout.as_secs().max(1);
        let mut target = format!(
            "host={} port={} user={} dbname={} connect_timeout={seconds} \
             options='-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms} -c jit=off' \
             application_name=p-chat sslmode={}",
            quote(&self.host),
            self.port,
            quote(&self.user),
            quote(&self.database),
            self.tls.sslmode(),
            ms = self.timeout.as_millis(),
        );
        if let Some(password) = &self.password {
            target.push_str(&format!(" password={}", quote(password)));
        }
        target
    }

    /// What opens this database's connections, with TLS as configured.
    pub(super) fn connector(&self) -> Result<Connector, rustls::Error> {
        Connector::new(self.connection_string(), &self.tls)
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The pool could not be built (a configuration error, not an outage:
/// connections are opened lazily).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the PostgreSQL pool: {0}")]
pub struct PoolSetupError(String);

/// The shared handle every PostgreSQL adapter holds: a pool of connections
/// and the time limit applied to each operation. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    timeout: Duration,
}

impl PgStore {
    /// A pool for `config`. No connection is opened until one is needed, so
    /// this succeeds while the database is down; operations then fail as
    /// unavailable and recover by themselves once it is back. Every
    /// connection is opened by the config's [`Connector`] (TLS as set).
    pub fn new(config: &PgConfig) -> Result<Self, PoolSetupError> {
        let connector = config
            .connector()
            .map_err(|error| PoolSetupError(format!("PostgreSQL TLS: {error}")))?;
        let mut setup = ManagerConfig::default();
        setup.custom_setup = Box::new(move |_target| connector.connecting());
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            config.connection_string(),
            setup,
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .build()
            .map_err(|error| PoolSetupError(error.to_string()))?;
        Ok(Self {
            pool,
            timeout: config.timeout,
        })
    }

    /// Whether the database answers a trivial query within the time limit.
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel_async::RunQueryDsl;
        let mut connection = self.connection().await?;
        self.bounded(diesel::sql_query("SELECT 1").execute(&mut connection))
            .await
            .map(|_| ())
    }

    /// Sets the pool gauges (open, most, idle, waiting) to the pool's state
    /// now: read when metrics are scraped, so that keeping them costs
    /// nothing in between.
    pub fn record_pool_state(&self) {
        let status = self.pool.status();
        metrics::pool_state(&PoolState {
            open: status.size,
            max: status.max_size,
            idle: status.available,
            waiting: status.waiting,
        });
    }

    /// A pooled connection, or `Unavailable` if none comes within the limit.
    pub(super) async fn connection(&self) -> Result<Object<AsyncPgConnection>, StoreError> {
        let started = Instant::now();
        let got = tokio::time::timeout(self.timeout, self.pool.get()).await;
        metrics::pool_wait(started.elapsed());
        match got {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(StoreError::Unavailable(error.to_string())),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no database connection within {:?}",
                self.timeout
            ))),
        }
    }

    /// Runs one query under the time limit, mapping its errors.
    pub(super) async fn bounded<T>(
        &self,
        query: impl Future<Output = QueryResult<T>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let answered = tokio::time::timeout(self.timeout, query).await;
        let outcome = match &answered {
            Ok(Ok(_)) => Outcome::Ok,
            Ok(Err(_)) => Outcome::Error,
            Err(_) => Outcome::Timeout,
        };
        metrics::query(outcome, started.elapsed());
        match answered {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the database did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(password: Option<&str>) -> PgConfig {
        PgConfig {
            host: "db.internal".into(),
            port: 5433,
            user: "chat".into(),
            password: password.map(str::to_owned),
            database: "p_chat".into(),
            pool_size: 4,
            timeout: Duration::from_secs(3),
            tls: PgTls::Disable,
        }
    }

    #[test]
    fn the_connection_string_quotes_every_value_and_sets_timeouts() {
        let target = config(Some(r"it's a \ secret")).connection_string();
        assert!(target.contains("host='db.internal' port=5433 user='chat' dbname='p_chat'"));
        assert!(target.contains("connect_timeout=3"));
        assert!(target.contains("statement_timeout=3000"));
        assert!(target.contains("-c jit=off"));
        assert!(target.contains("sslmode=disable"));
        assert!(
            target.ends_with(r"password='it\'s a \\ secret'"),
            "{target}"
        );
    }

    #[test]
    fn configured_tls_is_required_of_the_driver() {
        let target = PgConfig {
            tls: PgTls::Require,
            ..config(None)
        }
        .connection_string();
        assert!(target.contains("sslmode=require"), "{target}");
    }

    #[test]
    fn no_password_means_no_password_key() {
        assert!(!config(None).connection_string().contains("password"));
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert!(!format!("{:?}", config(Some("hunter2"))).contains("hunter2"));
    }
}
