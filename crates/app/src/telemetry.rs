//! Logging: where log lines go, and the one line written per request.

use std::fmt;
use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where actix-http's HTTP/1 connection handling logs, at ERROR, every
/// malformed request it refuses: one line per bad request from anyone is a
/// log-flooding vector, so these are counted and summarized instead.
const CONNECTION_ERRORS_TARGET: &str = "actix_http::h1";
/// At most one summary line about malformed requests per this interval.
const CONNECTION_ERRORS_INTERVAL: Duration = Duration::from_secs(60);
/// How many refused requests wait for the reporter before more are dropped
/// uncounted (only under a flood, when the count is a lower bound anyway).
const CONNECTION_ERRORS_BACKLOG: usize = 1024;

/// Installs the global subscriber: human-readable lines on stderr, filtered
/// by `RUST_LOG` (default `info`), with actix's per-request connection
/// errors rate-limited to WARN summaries. Safe to call more than once.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter.and(filter_fn(|metadata| !is_connection_error(metadata))));
    let (sender, receiver) = sync_channel(CONNECTION_ERRORS_BACKLOG);
    let counter = ConnectionErrors { sender }.with_filter(filter_fn(is_connection_error));
    // A second call (as in tests) finds a subscriber installed; that is fine.
    if tracing_subscriber::registry()
        .with(lines)
        .with(counter)
        .try_init()
        .is_ok()
    {
        let _ = std::thread::Builder::new()
            .name("log-connection-errors".to_owned())
            .spawn(move || report_connection_errors(&receiver));
    }
}

/// Whether an event is one of actix's per-connection ERROR lines.
fn is_connection_error(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::ERROR && metadata.target().starts_with(CONNECTION_ERRORS_TARGET)
}

/// Hands each of actix's connection errors (its message) to the reporter.
/// Events cannot be logged from inside a layer (tracing drops them), hence
/// the thread.
struct ConnectionErrors {
    sender: SyncSender<String>,
}

impl<S: Subscriber> Layer<S> for ConnectionErrors {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let _ = self.sender.try_send(message.0);
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Logs the first connection error of a quiet period at once, at WARN, and
/// then at most one count per [`CONNECTION_ERRORS_INTERVAL`].
fn report_connection_errors(errors: &Receiver<String>) {
    while let Ok(first) = errors.recv() {
        tracing::warn!(
            "refused a malformed HTTP request ({first}); more are counted and \
             reported once a minute"
        );
        let quiet_until = Instant::now() + CONNECTION_ERRORS_INTERVAL;
        let mut more = 0u64;
        let mut last = first;
        loop {
            match errors.recv_timeout(quiet_until.saturating_duration_since(Instant::now())) {
                Ok(message) => {
                    more += 1;
                    last = message;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if more > 0 {
            tracing::warn!(
                count = more,
                "refused {more} more malformed HTTP requests in the last minute (the last: {last})"
            );
        }
    }
}

/// Middleware logging method, path, status and latency of every request.
///
/// Only the path is logged, never the query string, headers or body: those
/// carry verification tokens, bearer tokens and password digests.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let response = next.call(request).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    tracing::info!(
        %method,
        %path,
        status = status.as_u16(),
        latency = ?started.elapsed(),
        "request"
    );
    response
}
