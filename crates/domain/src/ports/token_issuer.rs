use crate::session::{TokenClaims, TokenKind};

/// Why a token could not be signed or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, wrong algorithm, wrong kind, wrong issuer or audience,
    /// missing claim, or not a token at all. One variant on purpose: the
    /// reason is logged, never told to the client.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The token could not be signed.
    #[error("token could not be signed: {0}")]
    Signing(String),
}

/// Signs and verifies self-contained tokens (JWTs in production).
///
/// Verification checks the signature, the algorithm, the issuer and audience
/// and that the token is of the `expected` kind, but NOT its expiry: expiry is
/// a domain rule checked against the [`Clock`](crate::ports::Clock).
#[cfg_attr(test, mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// Signs `claims` into a token string.
    fn sign(&self, claims: &TokenClaims) -> Result<String, TokenError>;

    /// Checks a presented token and returns what it states. MUST return
    /// [`TokenError::Rejected`] for a token of the other kind.
    fn verify(&self, expected: TokenKind, token: &str) -> Result<TokenClaims, TokenError>;
}
