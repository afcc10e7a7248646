//! The response envelopes of CONTRACT section 1.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// `{"status": "Success", "data": ...}`.
#[derive(Debug, Serialize)]
pub struct Success<T> {
    status: &'static str,
    data: T,
}

/// `{"status": "Error", "error": {"code": ..., "message": ...}}`.
#[derive(Debug, Serialize)]
pub struct Failure {
    status: &'static str,
    error: FailureDetail,
}

#[derive(Debug, Serialize)]
struct FailureDetail {
    code: &'static str,
    message: String,
}

impl Failure {
    /// An error body with a machine-readable `code` and a human `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: "Error",
            error: FailureDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// 200 with `data` in the success envelope.
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    with_status(StatusCode::OK, data)
}

/// `status` with `data` in the success envelope.
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Success {
        status: "Success",
        data,
    })
}
