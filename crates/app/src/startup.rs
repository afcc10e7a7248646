//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::Config;
use crate::http;
use crate::lingering::hold_payload_until_response_ends;
use crate::mail::Outbox;
use crate::state::{AppState, StateError};
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
}

/// A bound, ready-to-run server.
pub struct Application {
    server: Server,
    address: SocketAddr,
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
        let state = AppState::build(&config, stopping).await?;
        let requested = SocketAddr::new(config.bind_address, config.port);
        let bind_error = |source| StartupError::Bind {
            address: requested,
            source,
        };
        let listener = TcpListener::bind(requested).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let outbox = state.outbox.clone();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(http::configure)
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
        Ok(Self {
            server,
            address,
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

    /// Serves until the process is told to stop (SIGINT or SIGTERM). Then it
    /// stops accepting connections, lets in-flight requests and WebSocket
    /// sends finish (their acks go out), closes every WebSocket with 1001,
    /// gives queued mail a few seconds to go out, and returns within a
    /// bounded time.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = actix_web::rt::spawn(self.server);
        stop_signal().await?;
        tracing::info!("shutting down: draining requests and closing connections");
        let _ = self.shutdown.send(true);
        handle.stop(true).await;
        self.outbox.drain(MAIL_DRAIN_TIMEOUT).await;
        server.await.map_err(std::io::Error::other)?
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => Ok(()),
        interrupted = tokio::signal::ctrl_c() => interrupted,
    }
}
