//! Row structs, converted to and from domain types at this edge. They never
//! leave the crate, and domain types never derive diesel traits.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use p_chat_domain::ports::StoreError;
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{DisplayName, Email, PasswordHash, User, UserId};
use p_chat_domain::verification::EmailVerification;
use uuid::Uuid;

use super::schema::{email_verifications, login_sessions, users};

/// A `users` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    email_verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            password_hash: user.password_hash.expose().to_owned(),
            email_verified_at: user.email_verified_at,
            created_at: user.created_at,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Failure(format!("user {} has an invalid {what}", row.id));
        Ok(Self {
            id: UserId::from_uuid(row.id),
            email: Email::parse(&row.email).map_err(|_| corrupt("email"))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("display name"))?,
            password_hash: PasswordHash::new(row.password_hash),
            email_verified_at: row.email_verified_at,
            created_at: row.created_at,
        })
    }
}

/// A `login_sessions` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_sessions, check_for_backend(diesel::pg::Pg))]
pub(super) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_token_hash: Vec<u8>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<&LoginSession> for SessionRow {
    fn from(session: &LoginSession) -> Self {
        Self {
            id: session.id.as_uuid(),
            user_id: session.user_id.as_uuid(),
            refresh_token_hash: session.refresh_token_hash.as_bytes().to_vec(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
        }
    }
}

impl TryFrom<SessionRow> for LoginSession {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            refresh_token_hash: token_hash(row.refresh_token_hash)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// An `email_verifications` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_verifications, check_for_backend(diesel::pg::Pg))]
pub(super) struct VerificationRow {
    token_hash: Vec<u8>,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
}

impl From<&EmailVerification> for VerificationRow {
    fn from(verification: &EmailVerification) -> Self {
        Self {
            token_hash: verification.token_hash.as_bytes().to_vec(),
            user_id: verification.user_id.as_uuid(),
            expires_at: verification.expires_at,
        }
    }
}

impl TryFrom<VerificationRow> for EmailVerification {
    type Error = StoreError;

    fn try_from(row: VerificationRow) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: token_hash(row.token_hash)?,
            user_id: UserId::from_uuid(row.user_id),
            expires_at: row.expires_at,
        })
    }
}

/// A stored token hash; the schema's CHECK guarantees 32 bytes.
fn token_hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Failure("a stored token hash is not 32 bytes".into()))?;
    Ok(TokenHash::from_bytes(bytes))
}
