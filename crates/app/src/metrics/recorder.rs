//! The process's one Prometheus recorder: installed the first time a server
//! with `METRICS_ADDRESS` starts, and shared by every later one in the same
//! process (tests start several), so each scrape shows the whole process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use p_chat_auth::BCRYPT_SECONDS;
use p_chat_fanout::metrics as fanout;
use p_chat_persistence::metrics::{
    self as store, DB_POOL_WAIT_SECONDS, DB_QUERY_SECONDS, GROUP_COMMIT_BATCH,
};
use tokio::sync::watch;

use super::{
    HTTP_REQUEST_SECONDS, HTTP_REQUESTS, WS_CLOSES, WS_CONNECTIONS, WS_DELIVERIES,
    WS_FRAMES_RECEIVED, WS_FRAMES_SENT,
};

/// Bucket bounds of request latencies, in seconds: a millisecond to ten
/// seconds (a bcrypt login sits near a quarter second).
const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of database waits and operations, in seconds: half a
/// millisecond up to `PSQL_TIMEOUT_SECONDS`' default of five.
const DATABASE_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bucket bounds of bcrypt runs, in seconds: cost 4 (tests) takes about a
/// millisecond, cost 12 a quarter second, each step doubling.
const BCRYPT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0,
];
/// Bucket bounds of group-commit batch sizes, in messages, up to the
/// largest batch (128).
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a scrape does it too): this bounds the memory they take.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct RecorderError(String);

/// The recorder, once installed (or why it could not be).
static RECORDER: OnceLock<Result<PrometheusHandle, RecorderError>> = OnceLock::new();

/// Installs the Prometheus recorder if this process has none yet, and
/// returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, RecorderError> {
    RECORDER
        .get_or_init(|| {
            let handle = builder()
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|error| RecorderError(error.to_string()))?;
            describe();
            Ok(handle)
        })
        .clone()
}

/// The `# HELP` line of every metric (docs/operations.md#metrics says more).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        "Time to answer HTTP requests, by method and route template"
    );
    describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections");
    describe_counter!(
        WS_FRAMES_RECEIVED,
        "WebSocket frames received from clients, by type"
    );
    describe_counter!(WS_FRAMES_SENT, "WebSocket frames sent to clients, by type");
    describe_counter!(
        WS_DELIVERIES,
        "Room events delivered to connections as they happened"
    );
    describe_counter!(
        WS_CLOSES,
        "WebSocket connections ended, by close code and cause"
    );
    describe_counter!(store::MESSAGES_STORED, "Messages stored");
    describe_gauge!(
        store::DB_POOL_CONNECTIONS,
        "Connections the PostgreSQL pool holds open"
    );
    describe_gauge!(
        store::DB_POOL_MAX_CONNECTIONS,
        "Most connections the PostgreSQL pool may open"
    );
    describe_gauge!(
        store::DB_POOL_IDLE_CONNECTIONS,
        "Open PostgreSQL connections idle in the pool"
    );
    describe_gauge!(
        store::DB_POOL_WAITING,
        "Store operations waiting for a PostgreSQL connection"
    );
    describe_histogram!(
        store::DB_POOL_WAIT_SECONDS,
        "Time store operations waited for a pooled connection"
    );
    describe_histogram!(
        store::DB_QUERY_SECONDS,
        "Time of one store operation on its connection, by outcome"
    );
    describe_histogram!(
        store::GROUP_COMMIT_BATCH,
        "Messages stored by one group-commit transaction"
    );
    describe_histogram!(
        BCRYPT_SECONDS,
        "Time of one bcrypt hash or verification, by operation"
    );
    describe_gauge!(
        fanout::QUEUED_DELIVERIES,
        "Deliveries waiting in connections' queues"
    );
    describe_gauge!(
        fanout::REDIS_UP,
        "1 while subscribed to Redis, 0 while cut off"
    );
    describe_counter!(
        fanout::REDIS_CONNECTS,
        "Times this node (re)connected to Redis"
    );
    describe_counter!(fanout::REDIS_PUBLISH_FAILURES, "Publications Redis refused");
}

/// The exporter with the buckets of every histogram (the others would be
/// rendered as summaries).
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_SECONDS.into()), &REQUEST_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(DB_POOL_WAIT_SECONDS.into()),
            &DATABASE_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Full(DB_QUERY_SECONDS.into()), &DATABASE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(BCRYPT_SECONDS.into()), &BCRYPT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_BATCH.into()), &BATCH_BUCKETS)
}

/// Folds histogram samples into their buckets every [`UPKEEP_INTERVAL`]
/// until shutdown.
pub fn spawn_upkeep(handle: PrometheusHandle, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => return,
                _ = tick.tick() => handle.run_upkeep(),
            }
        }
    });
}
