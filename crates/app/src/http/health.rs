//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use p_chat_domain::DomainError;
use serde_json::json;

use super::envelope;
use super::error::ApiError;
use crate::state::AppState;

/// How long `/ready` waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: 200 while the process serves requests.
pub async fn health() -> HttpResponse {
    envelope::ok(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 while the store answers, else 503 in the error
/// envelope. The body says whether events reach the other nodes
/// (`fanout`: `local`, `cluster` or `degraded`): a node cut off from Redis
/// still serves its own connections, so it stays in rotation.
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.readiness.check()).await {
        Ok(Ok(())) => Ok(envelope::ok(json!({
            "status": "ready",
            "fanout": state.fanout.status().as_str(),
        }))),
        Ok(Err(error)) => Err(DomainError::from(error).into()),
        Err(_) => {
            Err(DomainError::Unavailable(format!("no answer within {READY_TIMEOUT:?}")).into())
        }
    }
}
