//! The storage metrics (docs/operations.md#metrics), recorded through the
//! `metrics` facade: nothing is kept unless the server installed a recorder
//! (`METRICS_ADDRESS`). Each name is written here once; the server reads
//! the histogram names to give them buckets.

/// Counter: messages stored (a repeated `client_msg_id`, which stores
/// nothing, is not counted).
pub const MESSAGES_STORED: &str = "p_chat_messages_stored_total";
/// Gauge: connections the PostgreSQL pool holds open.
pub const DB_POOL_CONNECTIONS: &str = "p_chat_db_pool_connections";
/// Gauge: the most connections the pool may open (`PSQL_POOL_SIZE`).
pub const DB_POOL_MAX_CONNECTIONS: &str = "p_chat_db_pool_max_connections";
/// Gauge: open connections idle in the pool.
pub const DB_POOL_IDLE_CONNECTIONS: &str = "p_chat_db_pool_idle_connections";
/// Gauge: operations waiting for a connection.
pub const DB_POOL_WAITING: &str = "p_chat_db_pool_waiting_tasks";
/// Histogram: how long an operation waited for a pooled connection.
pub const DB_POOL_WAIT_SECONDS: &str = "p_chat_db_pool_wait_seconds";
/// Histogram: how long one store operation (a statement, or a transaction
/// of several) took on its connection, labelled by `outcome`.
pub const DB_QUERY_SECONDS: &str = "p_chat_db_query_seconds";
/// Histogram: how many appends one group-commit transaction stored.
pub const GROUP_COMMIT_BATCH: &str = "p_chat_group_commit_batch_messages";

/// The label of [`DB_QUERY_SECONDS`] telling how the operation ended.
pub const OUTCOME: &str = "outcome";

/// How a store operation ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It returned its result.
    Ok,
    /// The database refused it or the connection failed.
    Error,
    /// It did not finish within `PSQL_TIMEOUT_SECONDS`.
    Timeout,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

/// Counts one stored message.
pub(crate) fn message_stored() {
    metrics::counter!(MESSAGES_STORED).increment(1);
}

/// Records the duration of one store operation.
#[cfg(feature = "postgres")]
pub(crate) fn query(outcome: Outcome, took: std::time::Duration) {
    metrics::histogram!(DB_QUERY_SECONDS, OUTCOME => outcome.as_str()).record(took);
}

/// Records how long an operation waited for its connection.
#[cfg(feature = "postgres")]
pub(crate) fn pool_wait(took: std::time::Duration) {
    metrics::histogram!(DB_POOL_WAIT_SECONDS).record(took);
}

/// Records the size of one group-commit transaction.
#[cfg(feature = "postgres")]
pub(crate) fn batch(size: usize) {
    metrics::histogram!(GROUP_COMMIT_BATCH).record(size as f64);
}

/// The pool's state at one moment, for its gauges.
#[cfg(feature = "postgres")]
pub(crate) struct PoolState {
    /// Connections open.
    pub(crate) open: usize,
    /// The most it may open.
    pub(crate) max: usize,
    /// Open and idle.
    pub(crate) idle: usize,
    /// Operations waiting for one.
    pub(crate) waiting: usize,
}

/// Sets the pool gauges to `state`.
#[cfg(feature = "postgres")]
pub(crate) fn pool_state(state: &PoolState) {
    metrics::gauge!(DB_POOL_CONNECTIONS).set(state.open as f64);
    metrics::gauge!(DB_POOL_MAX_CONNECTIONS).set(state.max as f64);
    metrics::gauge!(DB_POOL_IDLE_CONNECTIONS).set(state.idle as f64);
    metrics::gauge!(DB_POOL_WAITING).set(state.waiting as f64);
}
