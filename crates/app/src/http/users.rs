//! `/users/me`: the caller's own profile.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use p_chat_domain::DomainError;
use p_chat_domain::user::{DisplayName, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Authenticated;
use super::envelope;
use super::error::ApiError;
use crate::state::AppState;

/// The user object of CONTRACT section 3.
#[derive(Debug, Serialize)]
struct UserBody {
    id: Uuid,
    email: String,
    display_name: String,
    created_at: DateTime<Utc>,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            created_at: user.created_at,
        }
    }
}

/// Body of `PATCH /users/me`.
#[derive(Debug, Deserialize)]
pub struct RenameBody {
    display_name: String,
}

/// `GET /users/me`.
pub async fn me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.profile(principal.user_id).await?;
    Ok(envelope::ok(UserBody::from(user)))
}

/// `PATCH /users/me` `{display_name}`.
pub async fn rename(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: web::Json<RenameBody>,
) -> Result<HttpResponse, ApiError> {
    let name = DisplayName::parse(&body.display_name).map_err(DomainError::from)?;
    let user = state.accounts.rename(principal.user_id, &name).await?;
    Ok(envelope::ok(UserBody::from(user)))
}
