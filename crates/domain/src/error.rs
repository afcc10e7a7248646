//! The errors a use case can end in, each meaning one thing to a caller.

use crate::ports::StoreError;

/// Why a use case failed. Adapters (HTTP, WebSocket) map each variant to one
/// status code, so a variant must never mean two different things to a client.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input broke a rule of the domain (a bad email, a too-long name, ...).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The caller could not be authenticated: bad credentials, an unverified
    /// account, or an invalid, expired or revoked token. Deliberately carries no
    /// detail, so that callers cannot tell these cases apart.
    #[error("not authenticated")]
    Unauthorized,
    /// The request collides with existing state.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// A dependency (the database) is not answering; retrying later may work.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// A fault on our side that the caller cannot fix (a corrupt row, a hashing
    /// failure). Logged with detail, shown to clients without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Duplicate | StoreError::Failure(_) => Self::Internal(error.to_string()),
        }
    }
}

/// A value that does not satisfy the domain's rules, named so that a client
/// can tell which field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not a syntactically valid email address, or longer than 254 characters.
    #[error("email must be a valid address of at most 254 characters")]
    Email,
    /// Not the SHA-256 of a password as 64 hexadecimal characters.
    #[error("password must be the SHA-256 of the password as 64 hexadecimal characters")]
    PasswordDigest,
    /// A display name that is empty after trimming, too long, or holds control characters.
    #[error("display_name must be 1 to 64 characters without control characters")]
    DisplayName,
}

impl ValidationError {
    /// A stable, machine-readable code for this error (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Email => "invalid_email",
            Self::PasswordDigest => "invalid_password",
            Self::DisplayName => "invalid_display_name",
        }
    }
}

/// A request that would break a uniqueness rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    /// An account with this (normalized) email already exists.
    #[error("an account with this email already exists")]
    EmailTaken,
}

impl ConflictError {
    /// A stable, machine-readable code for this conflict (`snake_case`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmailTaken => "email_taken",
        }
    }
}

impl From<crate::ports::HashError> for DomainError {
    fn from(error: crate::ports::HashError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::token::RandomSourceError> for DomainError {
    fn from(error: crate::token::RandomSourceError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::ports::TokenError> for DomainError {
    fn from(error: crate::ports::TokenError) -> Self {
        match error {
            crate::ports::TokenError::Rejected(reason) => {
                tracing::debug!(%reason, "token rejected");
                Self::Unauthorized
            }
            crate::ports::TokenError::Signing(_) => Self::Internal(error.to_string()),
        }
    }
}
