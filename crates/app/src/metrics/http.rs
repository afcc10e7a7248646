//! The middleware counting and timing every HTTP request of the API by
//! method, route template and status.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

use super::{HTTP_REQUEST_SECONDS, HTTP_REQUESTS, METHOD, ROUTE, STATUS, UNMATCHED};

/// [`METHOD`] of a method outside the standard ones (any token is a valid
/// method: the label must not take what the client sent).
const OTHER_METHOD: &str = "other";

/// Records [`HTTP_REQUESTS`] and [`HTTP_REQUEST_SECONDS`] for each request,
/// labelled with the route's template (`/rooms/{id}/messages`), never the
/// path itself.
pub async fn record_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let response = next.call(request).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::histogram!(HTTP_REQUEST_SECONDS, METHOD => method, ROUTE => route.clone())
        .record(started.elapsed());
    metrics::counter!(
        HTTP_REQUESTS,
        METHOD => method,
        ROUTE => route,
        STATUS => status.as_u16().to_string()
    )
    .increment(1);
    response
}

/// The [`METHOD`] label of `method`: its name if it is a standard one.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_method_is_not_a_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"X-ANY-TOKEN").unwrap();
        assert_eq!(method_label(&made_up), OTHER_METHOD);
    }
}
