//! The composition root: concrete adapters chosen from the configuration and
//! wired into the domain services that every handler shares.

use std::sync::Arc;

use p_chat_auth::{BcryptHasher, InvalidCost, JwtIssuer};
use p_chat_domain::ports::{Clock, PasswordHasher, SystemClock, UserRepository};
use p_chat_domain::services::{Accounts, Sessions};
use p_chat_persistence::memory::{MemorySessions, MemoryUsers, MemoryVerifications};

use crate::config::{Config, JwtSecret};

/// The services handlers call, cheap to clone (all `Arc`s inside).
#[derive(Clone)]
pub struct AppState {
    /// Registration, verification and profile use cases.
    pub accounts: Accounts,
    /// Login, refresh, logout and request authentication.
    pub sessions: Sessions,
}

/// Why the services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `BCRYPT_COST` out of range.
    #[error("invalid BCRYPT_COST: {0}")]
    BcryptCost(#[from] InvalidCost),
}

impl AppState {
    /// Builds the services on the in-memory store: nothing is persisted.
    pub fn in_memory(config: &Config) -> Result<Self, StateError> {
        tracing::warn!(
            "PSQL_HOST is not set: running on the IN-MEMORY store. NOTHING IS PERSISTED: \
             every account, session and message is lost when the server stops."
        );
        match &config.jwt_secret {
            JwtSecret::Generated(_) => tracing::warn!(
                "JWT_SECRET is not set: using a random secret for this process; \
                 tokens stop working when it restarts"
            ),
            secret if secret.is_weak() => tracing::warn!(
                "JWT_SECRET is the placeholder or shorter than 32 bytes: anyone who guesses it \
                 can forge tokens; set a long random value"
            ),
            JwtSecret::Configured(_) => {}
        }
        let users: Arc<dyn UserRepository> = Arc::new(MemoryUsers::default());
        let hasher: Arc<dyn PasswordHasher> = Arc::new(BcryptHasher::new(config.bcrypt_cost)?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sessions = Sessions::new(
            users.clone(),
            Arc::new(MemorySessions::default()),
            hasher.clone(),
            Arc::new(JwtIssuer::new(config.jwt_secret.bytes())),
            clock.clone(),
            config.session,
        );
        let accounts = Accounts::new(
            users,
            Arc::new(MemoryVerifications::default()),
            hasher,
            clock,
            sessions.clone(),
            config.verification,
        );
        Ok(Self { accounts, sessions })
    }
}
