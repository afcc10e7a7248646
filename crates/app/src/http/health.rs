//! Liveness.

use actix_web::HttpResponse;
use serde_json::json;

use super::envelope;

/// `GET /health`: 200 while the process serves requests.
pub async fn health() -> HttpResponse {
    envelope::ok(json!({ "status": "ok" }))
}
