//! The WebSocket gateway (`GET /ws`, docs/protocol.md): the upgrade with its
//! origin check here, one task per connection in [`connection`], the frames
//! in [`protocol`]. Events reach connections through the domain's `FanOut`
//! port, whose adapters live in the `p-chat-fanout` crate.

pub mod admission;
mod close;
mod connection;
mod guard;
mod protocol;
mod rate;

use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_core::Stream;
use p_chat_domain::DomainError;
use tracing::Instrument;

use self::admission::Admission;
use crate::config::WsSettings;
use crate::http::auth::bearer_token;
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::state::AppState;

/// The largest frame, or message assembled from continuations (64 KiB).
/// A header declaring more closes the connection 1009 before its payload
/// is read ([`guard::FrameGuard`]).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// `GET /ws`: checks the origin and the limits, upgrades, and hands the
/// socket to its task.
pub async fn upgrade(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&request, &state.ws) {
        return Err(ApiError::from(DomainError::Forbidden).into());
    }
    let ip = ClientIp::from_http(&request, &state.trusted_proxies)?;
    let mut admission = Admission::upgrade(state.limits.clone(), ip)?;
    let token = bearer_token(&request).ok().flatten();
    let header_user = match &token {
        Some(token) => state.sessions.authenticate(token).await.ok(),
        None => None,
    };
    match header_user {
        // A valid token on the upgrade: over the user's cap is refused here.
        Some(principal) => admission
            .admit(principal.user_id)
            .map_err(|_| ApiError::TooManyConnections)?,
        // Authenticates later (or is refused 4001 by its task).
        None => admission.hold_unauthenticated(ip)?,
    }
    let mut guarded =
        Payload::from(Box::pin(guard::FrameGuard::new(body, MAX_FRAME_BYTES))
            as Pin<Box<dyn Stream<Item = _>>>);
    let body = web::Payload::from_request(&request, &mut guarded).await?;
    let (response, session, stream) = actix_ws::handle(&request, body)?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    // Inside the upgrade's request span: the connection's lines carry its
    // request id.
    let span = tracing::info_span!("ws_connection");
    actix_web::rt::spawn(
        connection::run(state.into_inner(), session, stream, token, admission).instrument(span),
    );
    Ok(response)
}

/// Browsers send `Origin`; it must be configured, or be the server's own.
/// Clients that send none (not browsers) are not subject to the check.
fn origin_allowed(request: &HttpRequest, settings: &WsSettings) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if let Some(allowed) = &settings.allowed_origins {
        return allowed.iter().any(|allowed| allowed == origin);
    }
    let host = request.connection_info().host().to_owned();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}
