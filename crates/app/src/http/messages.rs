//! `/rooms/{id}/messages`: history, sending (with replies and mentions),
//! editing, deleting, reactions; `/rooms/{id}/read` and `/receipts`, the
//! read markers; `/rooms/{id}/events`, the room's event log to resume from
//! a position; `/search/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use p_chat_domain::DomainError;
use p_chat_domain::error::ValidationError;
use p_chat_domain::events::EventQuery;
use p_chat_domain::message::{Draft, HistoryQuery, MessageBody, MessageId, PageLimit, Seq};
use p_chat_domain::position::Pos;
use p_chat_domain::room::RoomId;
use p_chat_domain::search::{SearchLimit, SearchQuery, SearchText};
use p_chat_domain::user::UserId;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Authenticated;
use super::body::Json;
use super::envelope::{self, Success};
use super::error::ApiError;
use super::paths::{MessagePath, ReactionPath, RoomPath};
use super::views::{
    EventsView, HistoryView, MessageView, ReadStateView, ReceiptView, SearchResultsView, list,
};
use crate::state::AppState;

/// Query of `GET /rooms/{id}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only messages after this seq (oldest first).
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// Only messages before this seq (newest page).
    #[param(minimum = 0)]
    before_seq: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// The position to read after (default 0); at most the room's `last_pos`.
    #[param(value_type = Option<i64>, minimum = 0)]
    after_pos: Option<String>,
    /// Page size, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendBody {
    /// The text (1 to 4000 characters, not only whitespace).
    body: String,
    /// The sender's idempotency key: a repeat answers the first message.
    client_msg_id: Option<String>,
    /// The id of a message of the same room this one answers.
    reply_to: Option<Uuid>,
    /// Members of the room this message mentions.
    #[serde(default)]
    mentions: Vec<Uuid>,
}

impl SendBody {
    fn parse(&self) -> Result<Draft, ValidationError> {
        Draft::parse(
            &self.body,
            self.client_msg_id.as_deref(),
            self.reply_to.map(MessageId::from_uuid),
            self.mentions.iter().copied().map(UserId::from_uuid),
        )
    }
}

/// Body of `PUT /rooms/{id}/read`. `seq` is read as any JSON so that
/// anything but a seq is `invalid_seq`, like a negative one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadBody {
    /// The seq of the last message read; at most the room's `last_seq`.
    #[schema(value_type = i64, minimum = 0)]
    seq: Value,
}

impl ReadBody {
    fn parse(&self) -> Result<Seq, ValidationError> {
        self.seq
            .as_i64()
            .ok_or(ValidationError::Seq)
            .and_then(Seq::new)
    }
}

/// Query of `GET /search/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The words to find.
    q: String,
    /// Only in this room.
    room_id: Option<Uuid>,
    /// Page size, 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
    /// Only messages sent before this instant.
    before: Option<DateTime<Utc>>,
}

impl SearchParams {
    fn parse(&self, user: UserId) -> Result<SearchQuery, ValidationError> {
        Ok(SearchQuery {
            user,
            text: SearchText::parse(&self.q)?,
            room: self.room_id.map(RoomId::from_uuid),
            before: self.before,
            limit: self
                .limit
                .map(SearchLimit::new)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// Body of `PATCH /rooms/{id}/messages/{msg_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditBody {
    /// The new text.
    body: String,
}

/// `GET /rooms/{id}/messages?after_seq=&before_seq=&limit=`.
#[utoipa::path(get, path = "/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(RoomPath, HistoryParams),
    responses(
        (status = 200, description = "A page of messages", body = Success<HistoryView>),
        (status = 400, description = "`invalid_seq`, `invalid_limit`"),
        (status = 403, description = "`forbidden`: a public room the caller is not in"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn history(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    params: web::Query<HistoryParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .messaging
        .history(principal.user_id, path.room(), params.parse()?)
        .await?;
    Ok(envelope::ok(HistoryView::from(page)))
}

/// `GET /rooms/{id}/events?after_pos=&limit=`: the room's events after
/// `after_pos` (default 0), as the WebSocket sends them; 410
/// `resync_required` if they were pruned.
#[utoipa::path(get, path = "/rooms/{id}/events", tag = "messages", security(("bearer" = [])),
    params(RoomPath, EventParams),
    responses(
        (status = 200, description = "A page of the room's events", body = Success<EventsView>),
        (status = 400, description = "`invalid_pos`, `invalid_limit`"),
        (status = 403, description = "`forbidden`: a public room the caller is not in"),
        (status = 404, description = "`room_not_found`"),
        (status = 410, description = "`resync_required`: the events were pruned"),
    ))]
pub async fn events(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.parse()?;
    let page = state
        .messaging
        .events(principal.user_id, path.room(), query)
        .await?;
    Ok(envelope::ok(EventsView::new(page, query.after)))
}

/// `POST /rooms/{id}/messages`: 201 once stored; 200 with the first message
/// for a repeated `client_msg_id`. Draws on the user's send budget, which
/// WebSocket sends share.
#[utoipa::path(post, path = "/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "A repeated `client_msg_id`: the first message", body = Success<MessageView>),
        (status = 201, description = "Stored", body = Success<MessageView>),
        (status = 400, description = "`invalid_client_msg_id`, `invalid_reply`, `invalid_mentions`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`"),
        (status = 429, description = "`rate_limited`: the send budget is spent"),
    ))]
pub async fn send(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    body: Json<SendBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.sends.check(&principal.user_id)?;
    let draft = body.parse()?;
    let appended = state
        .messaging
        .send(principal.user_id, path.room(), draft)
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
#[utoipa::path(patch, path = "/rooms/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(MessagePath),
    responses(
        (status = 200, description = "The edited message", body = Success<MessageView>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `message_not_found`"),
        (status = 409, description = "`message_deleted`"),
    ))]
pub async fn edit(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<MessagePath>,
    body: Json<EditBody>,
) -> Result<HttpResponse, ApiError> {
    let text = MessageBody::parse(&body.body)?;
    let message = state
        .messaging
        .edit(principal.user_id, path.room(), path.message(), text)
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}

/// `DELETE /rooms/{id}/messages/{msg_id}`: tombstones the message.
#[utoipa::path(delete, path = "/rooms/{id}/messages/{message_id}", tag = "messages", operation_id = "delete_message", security(("bearer" = [])),
    params(MessagePath),
    responses(
        (status = 200, description = "The tombstone", body = Success<MessageView>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `message_not_found`"),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, ApiError> {
    let message = state
        .messaging
        .delete(principal.user_id, path.room(), path.message())
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}

/// `PUT /rooms/{id}/messages/{msg_id}/reactions/{emoji}`: adds the caller's
/// reaction (idempotent); answers the message. Reaction changes reach every
/// member like messages, so they draw on the same send budget.
#[utoipa::path(put, path = "/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(ReactionPath),
    responses(
        (status = 200, description = "The message with its reactions", body = Success<MessageView>),
        (status = 400, description = "`invalid_emoji`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `message_not_found`"),
        (status = 409, description = "`message_deleted`, `too_many_reactions`"),
        (status = 429, description = "`rate_limited`: the send budget is spent"),
    ))]
pub async fn react(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<ReactionPath>,
) -> Result<HttpResponse, ApiError> {
    state.limits.sends.check(&principal.user_id)?;
    let (room, message, emoji) = path.parse()?;
    let message = state
        .messaging
        .react(principal.user_id, room, message, emoji)
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}

/// `DELETE /rooms/{id}/messages/{msg_id}/reactions/{emoji}`: takes the
/// caller's reaction back (idempotent); answers the message. Draws on the
/// send budget, as adding does.
#[utoipa::path(delete, path = "/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(ReactionPath),
    responses(
        (status = 200, description = "The message with its reactions", body = Success<MessageView>),
        (status = 400, description = "`invalid_emoji`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `message_not_found`"),
        (status = 409, description = "`message_deleted`"),
        (status = 429, description = "`rate_limited`: the send budget is spent"),
    ))]
pub async fn unreact(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<ReactionPath>,
) -> Result<HttpResponse, ApiError> {
    state.limits.sends.check(&principal.user_id)?;
    let (room, message, emoji) = path.parse()?;
    let message = state
        .messaging
        .unreact(principal.user_id, room, message, emoji)
        .await?;
    Ok(envelope::ok(MessageView::from(message)))
}

/// `PUT /rooms/{id}/read` `{seq}`: moves the caller's read marker forward;
/// answers their read state of the room.
#[utoipa::path(put, path = "/rooms/{id}/read", tag = "messages", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "The caller's read state", body = Success<ReadStateView>),
        (status = 400, description = "`invalid_seq`, `seq_ahead`"),
        (status = 403, description = "`forbidden`: a public room the caller is not in"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn mark_read(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    body: Json<ReadBody>,
) -> Result<HttpResponse, ApiError> {
    let counts = state
        .messaging
        .mark_read(principal.user_id, path.room(), body.parse()?)
        .await?;
    Ok(envelope::ok(ReadStateView::from(counts)))
}

/// `GET /rooms/{id}/receipts`: how far each member has read.
#[utoipa::path(get, path = "/rooms/{id}/receipts", tag = "messages", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "Each member's read marker", body = Success<Vec<ReceiptView>>),
        (status = 403, description = "`forbidden`: a public room the caller is not in"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn receipts(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
) -> Result<HttpResponse, ApiError> {
    let receipts = state
        .messaging
        .receipts(principal.user_id, path.room())
        .await?;
    Ok(envelope::ok(list::<_, ReceiptView>(receipts)))
}

/// `GET /search/messages?q=&room_id=&limit=&before=`: the messages the
/// caller can read that match `q`, best first.
#[utoipa::path(get, path = "/search/messages", tag = "messages", security(("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "The matches", body = Success<SearchResultsView>),
        (status = 400, description = "`invalid_limit`"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn search(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.parse(principal.user_id)?;
    let text = query.text.clone();
    let hits = state.messaging.search(query).await?;
    Ok(envelope::ok(SearchResultsView::new(hits, &text)))
}
