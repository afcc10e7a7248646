//! `/rooms/{id}/messages`: history, sending, editing, deleting; and
//! `/rooms/{id}/events`, the room's event log to resume from a position.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use p_chat_domain::DomainError;
use p_chat_domain::events::EventQuery;
use p_chat_domain::message::{ClientMsgId, HistoryQuery, MessageBody, MessageId, PageLimit, Seq};
use p_chat_domain::position::Pos;
use p_chat_domain::room::RoomId;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Authenticated;
use super::envelope;
use super::error::ApiError;
use super::views::{EventsView, HistoryView, MessageView};
use crate::state::AppState;

/// Query of `GET /rooms/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct HistoryParams {
    after_seq: Option<i64>,
    before_seq: Option<i64>,
    limit: Option<i64>,
}

impl HistoryParams {
    fn parse(&self) -> Result<HistoryQuery, DomainError> {
        Ok(HistoryQuery {
            after: self.after_seq.map(Seq::new).transpose()?,
            before: self.before_seq.map(Seq::new).transpose()?,
            limit: self
                .limit
                .map(PageLimit::new)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// Query of `GET /rooms/{id}/events`. `after_pos` is read as text so that
/// anything but a position is `invalid_pos`, like a negative one.
#[derive(Debug, Deserialize)]
pub struct EventParams {
    after_pos: Option<String>,
    limit: Option<i64>,
}

impl EventParams {
    fn parse(&self) -> Result<EventQuery, DomainError> {
        Ok(EventQuery {
            after: self
                .after_pos
                .as_deref()
                .map(str::parse::<Pos>)
                .transpose()?
                .unwrap_or_default(),
            limit: self
                .limit
                .map(PageLimit::new)
                .transpose()?
                .unwrap_or(PageLimit::MAX_PAGE),
        })
    }
}

/// Body of `POST /rooms/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct SendBody {
    body: String,
    client_msg_id: Option<String>,
}

/// Body of `PATCH /rooms/{id}/messages/{msg_id}`.
#[derive(Debug, Deserialize)]
pub struct EditBody {
    body: String,
}

/// `GET /rooms/{id}/messages?after_seq=&before_seq=&limit=`.
pub async fn history(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<Uuid>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .messaging
        .history(principal.user_id, RoomId::from_uuid(*path), params.parse()?)
        .await?;
    Ok(envelope::ok(HistoryView::from(page)))
}

/// `GET /rooms/{id}/events?after_pos=&limit=`: the room's events after
/// `after_pos` (default 0), as the WebSocket sends them; 410
/// `resync_required` if they were pruned.
pub async fn events(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<Uuid>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.parse()?;
    let page = state
        .messaging
        .events(principal.user_id, RoomId::from_uuid(*path), query)
        .await?;
    Ok(envelope::ok(EventsView::new(page, query.after)))
}

/// `POST /rooms/{id}/messages`: 201 once stored; 200 with the first message
/// for a repeated `client_msg_id`. Draws on the user's send budget, which
/// WebSocket sends share.
pub async fn send(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<Uuid>,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.sends.check(&principal.user_id)?;
    let text = MessageBody::parse(&body.body).map_err(DomainError::from)?;
    let client_msg_id = body
        .client_msg_id
        .as_deref()
        .map(ClientMsgId::parse)
        .transpose()
        .map_err(DomainError::from)?;
    let appended = state
        .messaging
        .send(
            principal.user_id,
            RoomId::from_uuid(*path),
            text,
            client_msg_id,
        )
        .await?;
    let status = if appended.changed() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(envelope::with_status(
        status,
        MessageView::from(appended.value),
    ))
}

/// `PATCH /rooms/{id}/messages/{msg_id}` `{body}`: the author edits.
pub async fn edit(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<EditBody>,
) -> Result<HttpResponse, ApiError> {
    let (room_id, message_id) = path.into_inner();
    let text = MessageBody::parse(&body.body).map_err(DomainError::from)?;
    let message = state
        .messaging
        .edit(
            principal.user_id,
            RoomId::from_uuid(room_id),
            MessageId::from_uuid(message_id),
            text,
        )
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}

/// `DELETE /rooms/{id}/messages/{msg_id}`: tombstones the message.
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (room_id, message_id) = path.into_inner();
    let message = state
        .messaging
        .delete(
            principal.user_id,
            RoomId::from_uuid(room_id),
            MessageId::from_uuid(message_id),
        )
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}
