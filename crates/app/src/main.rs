//! The p-chat server binary: load configuration, start logging, serve.

use std::process::ExitCode;

use p_chat::config::Config;
use p_chat::startup::Application;
use p_chat::telemetry;

#[actix_web::main]
async fn main() -> ExitCode {
    // Configuration first: `.env` may set RUST_LOG for the logger.
    let config = Config::load();
    telemetry::init();
    let started = match config {
        Ok(config) => Application::build(config)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let application = match started {
        Ok(application) => application,
        Err(reason) => {
            tracing::error!("p-chat cannot start: {reason}");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("p-chat stopped with an error: {error}");
            ExitCode::FAILURE
        }
    }
}
