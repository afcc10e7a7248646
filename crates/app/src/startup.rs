//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{Config, MetricsSettings};
use crate::http;
use crate::lingering::hold_payload_until_response_ends;
use crate::mail::Outbox;
use crate::metrics::endpoint::{self, Scrape};
use crate::metrics::http::record_request;
use crate::metrics::recorder::{self, RecorderError};
use crate::state::{AppState, Readiness, StateError};
use crate::telemetry::log_request;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The services could not be built.
    #[error(transparent)]
    State(#[from] StateError),
    /// The address could not be bound (in use, not permitted, ...).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from `BIND_ADDRESS` and `PORT`.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The metrics listener could not be bound.
    #[error("cannot listen on METRICS_ADDRESS {address}: {source}")]
    MetricsBind {
        /// The address from `METRICS_ADDRESS`.
        address: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Another metrics recorder holds the process's place.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// A bound, ready-to-run server.
pub struct Application {
    server: Server,
    address: SocketAddr,
    /// The `METRICS_ADDRESS` listener and the address it bound, if any.
    metrics: Option<(Server, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    state: AppState,
    outbox: Outbox,
}

/// How long shutdown waits for open connections and requests to finish.
const DRAIN_TIMEOUT_SECONDS: u64 = 10;
/// How long a new connection may take to send its first request head
/// before it is answered 408 and closed (a slowloris bound).
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open between requests.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// After a response whose request body was not read (or after a WebSocket
/// closes), how long the server keeps reading and discarding what the
/// client still sends before it closes the connection. Together with
/// [`hold_payload_until_response_ends`] this bounds every connection's
/// life after its last response.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long shutdown then waits for queued mail to go out.
const MAIL_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Application {
    /// Builds the services (migrating the database, if any) and binds the
    /// listening socket. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let (shutdown, stopping) = watch::channel(false);
        // Before the services, so that what they record from the start
        // (the fan-out's gauges) is kept.
        let recorder = match config.metrics {
            Some(_) => Some(recorder::install()?),
            None => None,
        };
        let state = AppState::build(&config, stopping.clone()).await?;
        let requested = SocketAddr::new(config.bind_address, config.port);
        let bind_error = |source| StartupError::Bind {
            address: requested,
            source,
        };
        let listener = TcpListener::bind(requested).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let outbox = state.outbox.clone();
        let data = web::Data::new(state.clone());
        // Without METRICS_ADDRESS no request pays for a route lookup and labels.
        let count_requests = recorder.is_some();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(http::configure)
                .wrap(Condition::new(count_requests, from_fn(record_request)))
                .wrap(from_fn(log_request))
                .wrap(from_fn(hold_payload_until_response_ends))
        })
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(LINGER_TIMEOUT)
        // A chat server writes many small frames (a `sync` replays up to a
        // hundred at once): with Nagle's algorithm each one after the first
        // waits for the client's delayed ACK, some 40 ms.
        .tcp_nodelay(true)
        // Signals are handled in `run_until_stopped`, which first tells
        // WebSocket connections to close with 1001.
        .disable_signals()
        .shutdown_timeout(DRAIN_TIMEOUT_SECONDS)
        .listen(listener)
        .map_err(bind_error)?
        .run();
        tracing::info!("p-chat listening on http://{address}");
        let metrics = match (config.metrics, recorder) {
            (Some(settings), Some(handle)) => {
                Some(serve_metrics(settings, handle, &state, stopping)?)
            }
            _ => None,
        };
        Ok(Self {
            server,
            address,
            metrics,
            shutdown,
            state,
            outbox,
        })
    }

    /// The services the server runs on, for embedding and tests (acting on
    /// the store directly, as `p-chat admin` does).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address actually bound (useful when `PORT` is 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address the metrics listener bound, if `METRICS_ADDRESS` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM). Then it
    /// stops accepting connections, lets in-flight requests and WebSocket
    /// sends finish (their acks go out), closes every WebSocket with 1001,
    /// gives queued mail a few seconds to go out, and returns within a
    /// bounded time. The metrics listener stops with it, once the
    /// requests have drained.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = actix_web::rt::spawn(self.server);
        let metrics = self
            .metrics
            .map(|(metrics, _)| (metrics.handle(), actix_web::rt::spawn(metrics)));
        stop_signal().await?;
        tracing::info!("shutting down: draining requests and closing connections");
        let _ = self.shutdown.send(true);
        handle.stop(true).await;
        if let Some((handle, metrics)) = metrics {
            handle.stop(true).await;
            metrics.await.map_err(std::io::Error::other)??;
        }
        self.outbox.drain(MAIL_DRAIN_TIMEOUT).await;
        server.await.map_err(std::io::Error::other)?
    }
}

/// Binds `METRICS_ADDRESS` and builds its server, and starts the
/// recorder's upkeep until shutdown.
fn serve_metrics(
    settings: MetricsSettings,
    handle: PrometheusHandle,
    state: &AppState,
    stopping: watch::Receiver<bool>,
) -> Result<(Server, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::MetricsBind {
        address: settings.address,
        source,
    };
    let listener = TcpListener::bind(settings.address).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let store = match &state.readiness {
        Readiness::Postgres(store) => Some(store.clone()),
        Readiness::InMemory => None,
    };
    recorder::spawn_upkeep(handle.clone(), stopping);
    let server = endpoint::serve(listener, Scrape { handle, store }).map_err(bind_error)?;
    tracing::info!("metrics on http://{address}{}", endpoint::PATH);
    Ok((server, address))
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => Ok(()),
        interrupted = tokio::signal::ctrl_c() => interrupted,
    }
}
