//! The p-chat server binary: load configuration, start logging, then serve,
//! run an administration command (`p-chat admin ...`) or check a running
//! server's health (`p-chat healthcheck`).

use std::process::ExitCode;

use clap::Parser;
use p_chat::cli::{Cli, Command, run_admin};
use p_chat::config::Config;
use p_chat::healthcheck;
use p_chat::startup::Application;
use p_chat::telemetry::{self, LogFormat};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Configuration first: `.env` may set RUST_LOG for the logger.
    let config = Config::load();
    // A configuration that cannot be loaded is reported in the default format.
    telemetry::init(
        config
            .as_ref()
            .map_or(LogFormat::default(), |config| config.log_format),
    );
    match cli.command {
        Some(Command::Admin(command)) => administer(config, command).await,
        Some(Command::Healthcheck) => check_health(config).await,
        None => serve(config).await,
    }
}

async fn administer(
    config: Result<Config, p_chat::config::ConfigError>,
    command: p_chat::cli::AdminCommand,
) -> ExitCode {
    let done = match config {
        Ok(config) => run_admin(config, command).await,
        Err(error) => Err(error.into()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("p-chat admin: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn check_health(config: Result<Config, p_chat::config::ConfigError>) -> ExitCode {
    let healthy = match config {
        Ok(config) => healthcheck::check(&config)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match healthy {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            tracing::error!("p-chat healthcheck: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Result<Config, p_chat::config::ConfigError>) -> ExitCode {
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
