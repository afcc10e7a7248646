//! The response envelopes of CONTRACT section 1.

use std::borrow::Cow;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// `{"status": "Success", "data": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success<T> {
    status: SuccessStatus,
    data: T,
}

/// The `status` of a success: always `Success`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum SuccessStatus {
    /// The request did what it asked.
    Success,
}

/// `{"status": "Error", "error": {"code": ..., "message": ...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    status: ErrorStatus,
    error: FailureDetail,
}

/// The `status` of a failure: always `Error`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum ErrorStatus {
    /// The request failed; `error` says why.
    Error,
}

/// What went wrong: a machine-readable `code` (each response of the API
/// description lists the codes it can carry) and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureDetail {
    code: &'static str,
    message: String,
}

impl Failure {
    /// An error body with a machine-readable `code` and a human `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: ErrorStatus::Error,
            error: FailureDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// `data: null`: what a request answers that has nothing more to say than
/// that it succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Nothing;

impl Serialize for Nothing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

impl PartialSchema for Nothing {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl ToSchema for Nothing {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Nothing")
    }
}

/// `{"message": ...}`: a confirmation for people, as the seed's session
/// endpoints answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notice {
    message: &'static str,
}

impl Notice {
    /// The confirmation `message`.
    pub const fn new(message: &'static str) -> Self {
        Self { message }
    }
}

/// 200 with `data` in the success envelope.
pub fn ok<T: Serialize>(data: T) -> HttpResponse {
    with_status(StatusCode::OK, data)
}

/// `status` with `data` in the success envelope.
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> HttpResponse {
    HttpResponse::build(status).json(Success {
        status: SuccessStatus::Success,
        data,
    })
}

/// `{}`: the seed's body of a failed authentication on `/session/*`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejected {}
