//! Logging: where log lines go and in which format, and the request id and
//! one line written per HTTP request.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{Error, web};
use tracing::field::{Field, Visit};
use tracing::{Event, Instrument, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::http::request_id::{REQUEST_ID, RequestId};
use crate::state::AppState;

/// Where actix-http's HTTP/1 connection handling logs, at ERROR, every
/// malformed request it refuses: one line per bad request from anyone is a
/// log-flooding vector, so these are counted and summarized instead.
const CONNECTION_ERRORS_TARGET: &str = "actix_http::h1";
/// At most one summary line about malformed requests per this interval.
const CONNECTION_ERRORS_INTERVAL: Duration = Duration::from_secs(60);
/// How many refused requests wait for the reporter before more are dropped
/// uncounted (only under a flood, when the count is a lower bound anyway).
const CONNECTION_ERRORS_BACKLOG: usize = 1024;

/// `LOG_FORMAT`: how log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default), coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors: the event's fields at
    /// the top level and its spans (with the request id) under `spans`.
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(()),
        }
    }
}

/// A formatting layer of either [`LogFormat`].
type Lines = Box<dyn Layer<Registry> + Send + Sync>;

/// The layer writing every event to stderr in `format`.
fn lines(format: LogFormat) -> Lines {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => Box::new(layer.with_ansi(std::io::stderr().is_terminal())),
        LogFormat::Json => Box::new(
            layer
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true),
        ),
    }
}

/// Installs the global subscriber: lines on stderr in `format`, filtered
/// by `RUST_LOG` (default `info`), with actix's per-request connection
/// errors rate-limited to WARN summaries. Safe to call more than once.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines =
        lines(format).with_filter(filter.and(filter_fn(|metadata| !is_connection_error(metadata))));
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
        if format == LogFormat::Json {
            std::panic::set_hook(Box::new(log_panic));
        }
    }
}

/// Logs a panic as an ERROR event, so that with `LOG_FORMAT=json` even a
/// panic is one JSON line (with a backtrace where `RUST_BACKTRACE` asks for
/// one) rather than loose text among the objects.
fn log_panic(panic: &std::panic::PanicHookInfo<'_>) {
    let backtrace = std::backtrace::Backtrace::capture();
    tracing::error!(
        thread = std::thread::current().name().unwrap_or("unnamed"),
        backtrace = %backtrace,
        "panic: {panic}"
    );
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

/// Middleware giving every request its id and span, and logging its
/// method, route, status and latency when it is answered.
///
/// The id comes from the request's `X-Request-Id` when a trusted proxy sent
/// it, else it is made here; either way the response echoes it, and every
/// event logged while the request is served carries it (in the `request`
/// span), down through the domain services' spans.
///
/// Only the path is logged, never the query string, headers or body: those
/// carry verification tokens, bearer tokens and password digests.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.trusted_proxies.trusts_peer(request.request()));
    let id = trusted
        .then(|| RequestId::from_proxy(request.headers()))
        .flatten()
        .unwrap_or_else(RequestId::generate);
    let method = request.method().clone();
    let path = request.path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, %method);
    let mut response = next.call(request).instrument(span.clone()).await;
    // Handlers and extractors answer their errors themselves; an `Err`
    // here comes from a middleware and is answered by actix, unmarked.
    let status = match &mut response {
        Ok(response) => {
            if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(REQUEST_ID.clone(), value);
            }
            response.status()
        }
        Err(error) => error.as_response_error().status_code(),
    };
    span.in_scope(|| {
        tracing::info!(
            %path,
            status = status.as_u16(),
            latency = ?started.elapsed(),
            "request"
        );
    });
    response
}
