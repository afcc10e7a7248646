//! `/rooms`, `/rooms/{id}/members` and `/dms`: rooms and who is in them.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpResponse, web};
use p_chat_domain::DomainError;
use p_chat_domain::error::ValidationError;
use p_chat_domain::message::PageLimit;
use p_chat_domain::room::{Role, RoomName, RoomSearch, Topic, Visibility};
use p_chat_domain::services::{NewRoom, RoomChanges, UserRef};
use p_chat_domain::user::{Email, UserId};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Authenticated;
use super::body::Json;
use super::envelope::{self, Nothing, Success};
use super::error::ApiError;
use super::paths::{MemberPath, RoomPath};
use super::views::{MemberView, MyRoomView, RoomView, list};
use crate::state::AppState;

/// Body of `POST /rooms`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateBody {
    /// The room's name (trimmed; 1 to 100 characters).
    name: String,
    /// What the room is about; empty or absent for none.
    topic: Option<String>,
    /// `public` or `private` (default `private`).
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<String>,
}

/// Body of `PATCH /rooms/{id}`: absent fields stay as they are; `topic: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateBody {
    /// The new name.
    name: Option<String>,
    /// The new topic; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    topic: Option<Option<String>>,
    /// `public` or `private`.
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Query of `GET /rooms/public`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of the name (default: every public room).
    q: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A user named by id or by email (exactly one).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserRefBody {
    /// The user's id.
    user_id: Option<Uuid>,
    /// The user's address.
    email: Option<String>,
}

impl UserRefBody {
    fn parse(&self) -> Result<UserRef, DomainError> {
        match (&self.user_id, &self.email) {
            (Some(id), None) => Ok(UserRef::Id(UserId::from_uuid(*id))),
            (None, Some(email)) => Ok(UserRef::Email(Email::parse(email)?)),
            _ => Err(ValidationError::UserRef.into()),
        }
    }
}

/// Body of `PATCH /rooms/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RoomRoleBody)]
pub struct RoleBody {
    /// `admin` or `member` (`owner` hands the room over).
    #[schema(pattern = "^(owner|admin|member)$")]
    role: String,
}

/// The methods of `/rooms/{id}/members/{user}` for another user than `me`
/// (only `me` can be `PUT`: joining).
const OTHER_MEMBER_METHODS: &str = "DELETE, PATCH";

/// `{user_id}` or `me` in a member path.
fn member_id(raw: &str, actor: UserId) -> Result<UserId, ApiError> {
    if raw == "me" {
        return Ok(actor);
    }
    raw.parse::<Uuid>()
        .map(UserId::from_uuid)
        .map_err(|_| ApiError::NotFound)
}

fn parse_topic(raw: Option<&str>) -> Result<Option<Topic>, DomainError> {
    Ok(raw.map(Topic::parse).transpose()?.flatten())
}

/// `POST /rooms`: 201 with the new room; the caller owns it.
#[utoipa::path(post, path = "/rooms", tag = "rooms", security(("bearer" = [])),
    responses(
        (status = 201, description = "The new room", body = Success<RoomView>),
        (status = 400, description = "`invalid_name`, `invalid_topic`, `invalid_visibility`"),
    ))]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let new = NewRoom {
        name: RoomName::parse(&body.name).map_err(DomainError::from)?,
        topic: parse_topic(body.topic.as_deref())?,
        visibility: match &body.visibility {
            Some(raw) => Visibility::parse_choosable(raw).map_err(DomainError::from)?,
            None => Visibility::Private,
        },
    };
    let room = state.rooms.create(principal.user_id, new).await?;
    Ok(envelope::with_status(
        StatusCode::CREATED,
        RoomView::from(room),
    ))
}

/// `GET /rooms`: the caller's rooms, each with their read state.
#[utoipa::path(get, path = "/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, description = "The caller's rooms", body = Success<Vec<MyRoomView>>)))]
pub async fn mine(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let rooms = state.rooms.overview(principal.user_id).await?;
    Ok(envelope::ok(list::<_, MyRoomView>(rooms)))
}

/// `GET /rooms/public?q=&limit=`: public rooms by name.
#[utoipa::path(get, path = "/rooms/public", tag = "rooms", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching public rooms", body = Success<Vec<RoomView>>),
        (status = 400, description = "`invalid_limit`"),
    ))]
pub async fn search_public(
    state: web::Data<AppState>,
    _caller: Authenticated,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query
        .limit
        .map(PageLimit::new)
        .transpose()
        .map_err(DomainError::from)?;
    let search =
        RoomSearch::parse(query.q.as_deref().unwrap_or_default()).map_err(DomainError::from)?;
    let rooms = state
        .rooms
        .search_public(&search, limit.unwrap_or_default())
        .await?;
    Ok(envelope::ok(list::<_, RoomView>(rooms)))
}

/// `GET /rooms/{id}`.
#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "The room", body = Success<RoomView>),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
) -> Result<HttpResponse, ApiError> {
    let room = state.rooms.get(principal.user_id, path.room()).await?;
    Ok(envelope::ok(RoomView::from(room)))
}

/// `PATCH /rooms/{id}`.
#[utoipa::path(patch, path = "/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "The changed room", body = Success<RoomView>),
        (status = 400, description = "`invalid_name`, `invalid_topic`, `invalid_visibility`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    body: Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let changes = RoomChanges {
        name: body
            .name
            .as_deref()
            .map(RoomName::parse)
            .transpose()
            .map_err(DomainError::from)?,
        topic: match &body.topic {
            Some(topic) => Some(parse_topic(topic.as_deref())?),
            None => None,
        },
        visibility: body
            .visibility
            .as_deref()
            .map(Visibility::parse_choosable)
            .transpose()
            .map_err(DomainError::from)?,
    };
    let room = state
        .rooms
        .update(principal.user_id, path.room(), changes)
        .await?;
    Ok(envelope::ok(RoomView::from(room)))
}

/// `DELETE /rooms/{id}`: the room and its messages are gone.
#[utoipa::path(delete, path = "/rooms/{id}", tag = "rooms", operation_id = "delete_room", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "Deleted", body = Success<Nothing>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.delete(principal.user_id, path.room()).await?;
    Ok(envelope::ok(Nothing))
}

/// `GET /rooms/{id}/members`.
#[utoipa::path(get, path = "/rooms/{id}/members", tag = "rooms", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "The members", body = Success<Vec<MemberView>>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`"),
    ))]
pub async fn members(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
) -> Result<HttpResponse, ApiError> {
    let members = state.rooms.members(principal.user_id, path.room()).await?;
    Ok(envelope::ok(list::<_, MemberView>(members)))
}

/// `PUT /rooms/{id}/members/me`: join a public room (idempotent).
#[utoipa::path(put, path = "/rooms/{id}/members/{user}", tag = "rooms", security(("bearer" = [])),
    params(MemberPath),
    responses(
        (status = 200, description = "The caller's membership", body = Success<MemberView>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `user_not_found`, `member_not_found`"),
        (status = 405, description = "`method_not_allowed`: the user is not the caller (me)"),
        (status = 409, description = "`direct_room_full`"),
    ))]
pub async fn join(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ApiError> {
    if path.user() != "me" {
        // Nobody can make someone else join; adding is POST /rooms/{id}/members.
        return Err(ApiError::MethodNotAllowed {
            allow: HeaderValue::from_static(OTHER_MEMBER_METHODS),
        });
    }
    let member = state.rooms.join(principal.user_id, path.room()).await?;
    Ok(envelope::ok(MemberView::from(member)))
}

/// `POST /rooms/{id}/members` `{user_id}` or `{email}`: 201 when added, 200
/// when the user already was a member.
#[utoipa::path(post, path = "/rooms/{id}/members", tag = "rooms", security(("bearer" = [])),
    params(RoomPath),
    responses(
        (status = 200, description = "Already a member", body = Success<MemberView>),
        (status = 201, description = "Added", body = Success<MemberView>),
        (status = 400, description = "`invalid_user`, `invalid_email`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `user_not_found`, `member_not_found`"),
        (status = 409, description = "`direct_room_full`"),
    ))]
pub async fn add_member(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<RoomPath>,
    body: Json<UserRefBody>,
) -> Result<HttpResponse, ApiError> {
    let target = body.parse()?;
    let (member, added) = state
        .rooms
        .add_member(principal.user_id, path.room(), target)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(envelope::with_status(status, MemberView::from(member)))
}

/// `DELETE /rooms/{id}/members/{user_id or me}`: leave, or kick.
#[utoipa::path(delete, path = "/rooms/{id}/members/{user}", tag = "rooms", security(("bearer" = [])),
    params(MemberPath),
    responses(
        (status = 200, description = "Left or removed", body = Success<Nothing>),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `member_not_found`"),
        (status = 409, description = "`owner_must_hand_over`"),
    ))]
pub async fn remove_member(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<MemberPath>,
) -> Result<HttpResponse, ApiError> {
    let target = member_id(path.user(), principal.user_id)?;
    state
        .rooms
        .remove_member(principal.user_id, path.room(), target)
        .await?;
    Ok(envelope::ok(Nothing))
}

/// `PATCH /rooms/{id}/members/{user_id}` `{role}`.
#[utoipa::path(patch, path = "/rooms/{id}/members/{user}", tag = "rooms", security(("bearer" = [])),
    params(MemberPath),
    responses(
        (status = 200, description = "The changed membership", body = Success<MemberView>),
        (status = 400, description = "`invalid_role`"),
        (status = 403, description = "`forbidden`"),
        (status = 404, description = "`room_not_found`, `member_not_found`"),
        (status = 409, description = "`owner_must_hand_over`"),
    ))]
pub async fn change_role(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<MemberPath>,
    body: Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let target = member_id(path.user(), principal.user_id)?;
    let role = Role::parse(&body.role).map_err(DomainError::from)?;
    let member = state
        .rooms
        .change_role(principal.user_id, path.room(), target, role)
        .await?;
    Ok(envelope::ok(MemberView::from(member)))
}

/// `POST /dms` `{user_id}` or `{email}`: the pair's direct room, 201 if new.
#[utoipa::path(post, path = "/dms", tag = "rooms", security(("bearer" = [])),
    responses(
        (status = 200, description = "The existing direct room", body = Success<RoomView>),
        (status = 201, description = "A new direct room", body = Success<RoomView>),
        (status = 400, description = "`invalid_user`, `invalid_email`, `direct_with_self`"),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn open_direct(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: Json<UserRefBody>,
) -> Result<HttpResponse, ApiError> {
    let other = body.parse()?;
    let (room, created) = state.rooms.open_direct(principal.user_id, other).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(envelope::with_status(status, RoomView::from(room)))
}
