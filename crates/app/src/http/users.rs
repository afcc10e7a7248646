//! `/users/me`: the caller's own account, password, sessions and deletion;
//! `/users/{id}`: another user, with their presence.

use actix_web::{HttpResponse, web};
use p_chat_domain::services::PasswordChange;
use p_chat_domain::session::SessionId;
use p_chat_domain::user::{DisplayName, PasswordDigest, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Authenticated;
use super::body::Json;
use super::envelope::{self, Nothing, Notice, Success};
use super::error::ApiError;
use super::views::{PersonView, SessionView, UserView};
use crate::state::AppState;

/// Body of `PATCH /users/me`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RenameBody {
    /// The new name (trimmed; 1 to 64 characters).
    display_name: String,
}

/// Body of `POST /users/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChangeBody {
    /// The SHA-256 of the current password, in hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    current_password: String,
    /// The SHA-256 of the new password, in hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    new_password: String,
}

/// Body of `DELETE /users/me`: the password, as confirmation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteBody {
    /// The SHA-256 of the password, in hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    password: String,
}

/// `GET /users/me`.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's account", body = Success<UserView>)))]
pub async fn me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.profile(principal.user_id).await?;
    Ok(envelope::ok(UserView::from(user)))
}

/// `GET /users/{id}`: a user who shares a room with the caller (or the
/// caller), with their presence; 404 `user_not_found` for anyone else.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user and their presence", body = Success<PersonView>),
        (status = 404, description = "`user_not_found`"),
    ))]
pub async fn person(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let person = state
        .people
        .person(principal.user_id, UserId::from_uuid(*path))
        .await?;
    Ok(envelope::ok(PersonView::from(person)))
}

/// `PATCH /users/me` `{display_name}`.
#[utoipa::path(patch, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The renamed account", body = Success<UserView>),
        (status = 400, description = "`invalid_display_name`"),
    ))]
pub async fn rename(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: Json<RenameBody>,
) -> Result<HttpResponse, ApiError> {
    let name = DisplayName::parse(&body.display_name)?;
    let user = state.accounts.rename(principal.user_id, &name).await?;
    Ok(envelope::ok(UserView::from(user)))
}

/// `POST /users/me/password` `{current_password, new_password}`: every other
/// session of the caller ends.
#[utoipa::path(post, path = "/users/me/password", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = Success<Notice>),
        (status = 400, description = "`invalid_password`"),
        (status = 403, description = "`wrong_password`"),
    ))]
pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: Json<PasswordChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let change = PasswordChange {
        current: PasswordDigest::parse(&body.current_password)?,
        new: PasswordDigest::parse(&body.new_password)?,
    };
    state
        .accounts
        .change_password(principal.user_id, principal.session_id, &change)
        .await?;
    Ok(envelope::ok(Notice::new("Password changed")))
}

/// `DELETE /users/me` `{password}`: the account is disabled and anonymised.
#[utoipa::path(delete, path = "/users/me", tag = "users", operation_id = "delete_account", security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = Success<Notice>),
        (status = 400, description = "`invalid_password`"),
        (status = 403, description = "`wrong_password`"),
        (status = 409, description = "`owner_must_hand_over`"),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: Json<DeleteBody>,
) -> Result<HttpResponse, ApiError> {
    let password = PasswordDigest::parse(&body.password)?;
    state.accounts.delete(principal.user_id, &password).await?;
    Ok(envelope::ok(Notice::new("Account deleted")))
}

/// `GET /users/me/sessions`: the caller's live sessions, the current one marked.
#[utoipa::path(get, path = "/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's sessions", body = Success<Vec<SessionView>>)))]
pub async fn sessions(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let sessions = state.sessions.of_user(principal.user_id).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|session| SessionView::new(session, principal.session_id))
        .collect();
    Ok(envelope::ok(views))
}

/// `DELETE /users/me/sessions/{id}`: signs that device out (its sockets close 4001).
#[utoipa::path(delete, path = "/users/me/sessions/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Ended", body = Success<Nothing>),
        (status = 404, description = "`session_not_found`"),
    ))]
pub async fn end_session(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .sessions
        .end_own(principal.user_id, SessionId::from_uuid(*path))
        .await?;
    Ok(envelope::ok(Nothing))
}
