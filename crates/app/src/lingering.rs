//! A bounded lingering close for requests whose body the endpoint does not
//! read (`GET /ready` with a large chunked body, say).
//!
//! actix-http (3.20) has two ways to deal with an unread body after the
//! response. If the request's payload is still alive when the response
//! ends, it answers `Connection: close`, reads and discards what the client
//! still sends for at most the server's `client_disconnect_timeout`, then
//! closes: bounded. If the payload was dropped first (as when the handler
//! never extracted it) and the body is chunked, it "drains" the body instead
//! with no timer at all, and when its buffers had filled while the handler
//! was still waiting (on the database, typically) nothing wakes it again:
//! the connection stays open forever. This middleware keeps every request's
//! payload alive until its response body has been sent, so actix always
//! takes the first, bounded way.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage};
use futures_core::Stream;

/// The request's payload, shared by the handler (which may read it) and
/// the response body (which keeps it alive).
type Shared = Rc<RefCell<Payload>>;

/// Middleware: the request's payload lives until its response body ends.
pub async fn hold_payload_until_response_ends(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let shared: Shared = Rc::new(RefCell::new(request.take_payload()));
    let reader: Pin<Box<dyn Stream<Item = _>>> = Box::pin(SharedPayload(shared.clone()));
    request.set_payload(Payload::from(reader));
    // Handlers' errors are responses by now (actix converts them); an
    // `Err` here would come from a middleware, and this app has none that
    // fails.
    let response = next.call(request).await?;
    Ok(response
        .map_into_boxed_body()
        .map_body(|_, body| HoldingBody {
            body,
            _payload: shared,
        }))
}

/// The handler's view of the shared payload.
struct SharedPayload(Shared);

impl Stream for SharedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// A response body that keeps the request's payload alive while it is sent.
struct HoldingBody {
    body: BoxBody,
    _payload: Shared,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
