//! The one error type of the bench: every failure ends the run with a message.

use std::fmt;

/// Why a benchmark run (its setup, a connection, the reference server) failed.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    /// An error described by `message` (a refused setup call, a bad frame).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<std::io::Error> for BenchError {
    fn from(error: std::io::Error) -> Self {
        Self(format!("i/o: {error}"))
    }
}

impl From<serde_json::Error> for BenchError {
    fn from(error: serde_json::Error) -> Self {
        Self(format!("json: {error}"))
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for BenchError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        Self(format!("websocket: {error}"))
    }
}

impl From<tokio::task::JoinError> for BenchError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self(format!("task: {error}"))
    }
}
