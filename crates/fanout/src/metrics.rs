//! The fan-out's metrics (docs/operations.md#metrics), recorded through the
//! `metrics` facade: nothing is kept unless the server installed a recorder
//! (`METRICS_ADDRESS`). Each name is written here once.

/// Gauge: deliveries waiting in connections' queues on this node (each
/// connection's queue holds up to `WS_QUEUE_CAPACITY`; a full one closes
/// its connection with 4008).
pub const QUEUED_DELIVERIES: &str = "p_chat_fanout_queued_deliveries";
/// Gauge: 1 while this node is subscribed to Redis and answering, 0 while
/// it is cut off (degraded fan-out); absent without `REDIS_URL`.
pub const REDIS_UP: &str = "p_chat_redis_up";
/// Counter: times this node (re)connected to Redis and subscribed.
pub const REDIS_CONNECTS: &str = "p_chat_redis_connects_total";
/// Counter: publications Redis refused (each is retried, but typing).
pub const REDIS_PUBLISH_FAILURES: &str = "p_chat_redis_publish_failures_total";

/// `count` more deliveries wait in connections' queues.
pub(crate) fn queued(count: usize) {
    metrics::gauge!(QUEUED_DELIVERIES).increment(count as f64);
}

/// `count` deliveries left connections' queues (read, or dropped with
/// their connection).
pub(crate) fn dequeued(count: usize) {
    metrics::gauge!(QUEUED_DELIVERIES).decrement(count as f64);
}

/// Whether the node's link to Redis is up.
pub(crate) fn redis_up(up: bool) {
    metrics::gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
}

/// The node subscribed to Redis (again).
pub(crate) fn redis_connected() {
    metrics::counter!(REDIS_CONNECTS).increment(1);
    redis_up(true);
}

/// Redis refused a publication.
pub(crate) fn redis_publish_failed() {
    metrics::counter!(REDIS_PUBLISH_FAILURES).increment(1);
}
