//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use p_chat_domain::DomainError;
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::{self, Success};
use super::error::ApiError;
use crate::state::AppState;

/// How long `/ready` waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `{status: "ok"}`: the process serves requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// `{status: "ready", fanout}`: the store answers; `fanout` is `local`,
/// `cluster` or `degraded`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// Always `ready`.
    #[schema(pattern = "^ready$")]
    status: &'static str,
    /// Whether events reach the other nodes: `local`, `cluster` or `degraded`.
    #[schema(pattern = "^(local|cluster|degraded)$")]
    fanout: &'static str,
}

/// `GET /health`: 200 while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Alive", body = Success<HealthView>)))]
pub async fn health() -> HttpResponse {
    envelope::ok(HealthView { status: "ok" })
}

/// `GET /ready`: 200 while the store answers, else 503 in the error
/// envelope. The body says whether events reach the other nodes
/// (`fanout`: `local`, `cluster` or `degraded`): a node cut off from Redis
/// still serves its own connections, so it stays in rotation.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Success<ReadyView>),
        (status = 503, description = "`service_unavailable`: the store does not answer"),
    ))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.readiness.check()).await {
        Ok(Ok(())) => Ok(envelope::ok(ReadyView {
            status: "ready",
            fanout: state.fanout.status().as_str(),
        })),
        Ok(Err(error)) => Err(DomainError::from(error).into()),
        Err(_) => {
            Err(DomainError::Unavailable(format!("no answer within {READY_TIMEOUT:?}")).into())
        }
    }
}
