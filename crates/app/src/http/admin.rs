//! `/admin/*`: instance administration over the API (accounts and
//! invitations), for enabled instance administrators only (403 `not_admin`
//! for everyone else). The same use cases serve `p-chat admin` on the console.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use p_chat_domain::message::PageLimit;
use p_chat_domain::ports::UserQuery;
use p_chat_domain::registration::{InviteId, InviteLifetime, InviteUses};
use p_chat_domain::services::{Operator, UserRef};
use p_chat_domain::user::{Email, InstanceRole, UserId, UserSearch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Authenticated;
use super::body::Json;
use super::envelope::{self, Nothing, Success};
use super::error::ApiError;
use super::views::{AdminUserView, InviteView, list};
use crate::state::AppState;

/// Query of `GET /admin/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Part of an email or display name.
    q: Option<String>,
    /// The last email of the previous page.
    after: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Body of `PATCH /admin/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = InstanceRoleBody)]
pub struct RoleBody {
    /// `admin` or `member`.
    #[schema(pattern = "^(admin|member)$")]
    role: String,
}

/// Body of `POST /admin/invites`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBody {
    /// Registrations it admits, 1 to 1000 (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    uses: Option<i64>,
    /// Lifetime in seconds, a minute to 90 days (default 7 days).
    #[schema(minimum = 60, maximum = 7_776_000)]
    expires_in: Option<i64>,
}

/// A new invitation with its token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedInviteView {
    #[serde(flatten)]
    invite: InviteView,
    /// The token to register with (`invite`), shown only here.
    token: String,
}

/// Registrations an invitation admits when the request names none.
const DEFAULT_INVITE_USES: i64 = 1;
/// An invitation's lifetime when the request names none: a week.
const DEFAULT_INVITE_SECONDS: i64 = 7 * 24 * 3600;

fn operator(authenticated: &Authenticated) -> Operator {
    Operator::User(authenticated.0.user_id)
}

fn target(path: &web::Path<Uuid>) -> UserRef {
    UserRef::Id(UserId::from_uuid(**path))
}

/// `GET /admin/users?q=&after=&limit=`: accounts by email, paged.
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    params(UsersQuery),
    responses(
        (status = 200, description = "A page of accounts", body = Success<Vec<AdminUserView>>),
        (status = 400, description = "`invalid_limit`, `invalid_email`"),
        (status = 403, description = "`not_admin`"),
    ))]
pub async fn users(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query
        .limit
        .map(PageLimit::new)
        .transpose()?
        .unwrap_or_default();
    let query = UserQuery {
        contains: query
            .q
            .as_deref()
            .map(UserSearch::parse)
            .transpose()?
            .flatten(),
        after: query.after.as_deref().map(Email::parse).transpose()?,
        limit: limit.get(),
    };
    let users = state.admin.users(operator(&caller), &query).await?;
    Ok(envelope::ok(list::<_, AdminUserView>(users)))
}

/// `GET /admin/users/{id}`.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = Success<AdminUserView>),
        (status = 403, description = "`not_admin`"),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn user(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = state.admin.user(operator(&caller), &target(&path)).await?;
    Ok(envelope::ok(AdminUserView::from(user)))
}

/// `PATCH /admin/users/{id}` `{role}`: makes or unmakes an instance administrator.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = Success<AdminUserView>),
        (status = 400, description = "`invalid_role`"),
        (status = 403, description = "`not_admin`, `own_account`, `account_deleted`"),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn set_role(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<Uuid>,
    body: Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let role = InstanceRole::parse(&body.role)?;
    let user = state
        .admin
        .set_role(operator(&caller), &target(&path), role)
        .await?;
    Ok(envelope::ok(AdminUserView::from(user)))
}

/// `POST /admin/users/{id}/disable`: ends the account's sessions, closes its sockets.
#[utoipa::path(post, path = "/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = Success<AdminUserView>),
        (status = 403, description = "`not_admin`, `own_account`, `account_deleted`"),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn disable(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .admin
        .disable(operator(&caller), &target(&path))
        .await?;
    Ok(envelope::ok(AdminUserView::from(user)))
}

/// `POST /admin/users/{id}/enable`.
#[utoipa::path(post, path = "/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = Success<AdminUserView>),
        (status = 403, description = "`not_admin`, `own_account`, `account_deleted`"),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn enable(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .admin
        .enable(operator(&caller), &target(&path))
        .await?;
    Ok(envelope::ok(AdminUserView::from(user)))
}

/// `POST /admin/invites` `{uses?, expires_in?}`: 201 with the token (shown once).
#[utoipa::path(post, path = "/admin/invites", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 201, description = "The invitation and its token", body = Success<IssuedInviteView>),
        (status = 400, description = "`invalid_uses`, `invalid_expires_in`"),
        (status = 403, description = "`not_admin`"),
    ))]
pub async fn create_invite(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: Json<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let uses = InviteUses::new(body.uses.unwrap_or(DEFAULT_INVITE_USES))?;
    let lifetime = InviteLifetime::from_seconds(body.expires_in.unwrap_or(DEFAULT_INVITE_SECONDS))?;
    let issued = state
        .admin
        .create_invite(operator(&caller), uses, lifetime)
        .await?;
    Ok(envelope::with_status(
        StatusCode::CREATED,
        IssuedInviteView {
            token: issued.token.expose().to_owned(),
            invite: InviteView::from(issued.invite),
        },
    ))
}

/// `GET /admin/invites`: the invitations that still admit someone.
#[utoipa::path(get, path = "/admin/invites", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The live invitations", body = Success<Vec<InviteView>>),
        (status = 403, description = "`not_admin`"),
    ))]
pub async fn invites(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let invites = state.admin.invites(operator(&caller)).await?;
    Ok(envelope::ok(list::<_, InviteView>(invites)))
}

/// `DELETE /admin/invites/{id}`.
#[utoipa::path(delete, path = "/admin/invites/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The invitation's id")),
    responses(
        (status = 200, description = "Revoked", body = Success<Nothing>),
        (status = 403, description = "`not_admin`"),
        (status = 404, description = "`invite_not_found`"),
    ))]
pub async fn revoke_invite(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .admin
        .revoke_invite(operator(&caller), InviteId::from_uuid(*path))
        .await?;
    Ok(envelope::ok(Nothing))
}
