//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::config::Config;
use crate::http;
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
}

impl Application {
    /// Builds the services (migrating the database, if any) and binds the
    /// listening socket. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let state = AppState::build(&config).await?;
        let requested = SocketAddr::new(config.bind_address, config.port);
        let bind_error = |source| StartupError::Bind {
            address: requested,
            source,
        };
        let listener = TcpListener::bind(requested).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(http::configure)
                .wrap(from_fn(log_request))
        })
        .listen(listener)
        .map_err(bind_error)?
        .run();
        tracing::info!("p-chat listening on http://{address}");
        Ok(Self { server, address })
    }

    /// The address actually bound (useful when `PORT` is 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM), then
    /// drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
