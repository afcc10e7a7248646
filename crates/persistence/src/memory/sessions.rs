use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::ports::{SessionRepository, StoreError};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;

use crate::lock;

/// Login sessions in memory.
#[derive(Debug, Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<SessionId, LoginSession>>,
}

#[async_trait]
impl SessionRepository for MemorySessions {
    async fn create(&self, session: &LoginSession) -> Result<(), StoreError> {
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&session.id) {
            return Err(StoreError::Duplicate);
        }
        sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn by_id(&self, id: SessionId) -> Result<Option<LoginSession>, StoreError> {
        Ok(lock(&self.sessions).get(&id).cloned())
    }

    async fn rotate(
        &self,
        id: SessionId,
        current: &TokenHash,
        next: &TokenHash,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(&id) {
            Some(session)
                if session.revoked_at.is_none() && session.refresh_token_hash == *current =>
            {
                session.refresh_token_hash = next.clone();
                session.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(session) = lock(&self.sessions).get_mut(&id) {
            session.revoked_at.get_or_insert(at);
        }
        Ok(())
    }
}
