use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::ports::{SessionRepository, StoreError};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::UserId;

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
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(&id) {
            Some(session)
                if session.revoked_at.is_none() && session.refresh_token_hash == *current =>
            {
                session.refresh_token_hash = next.clone();
                session.expires_at = expires_at;
                session.last_used_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn active_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoginSession>, StoreError> {
        let mut active: Vec<LoginSession> = lock(&self.sessions)
            .values()
            .filter(|session| session.user_id == user && session.is_active_at(now))
            .cloned()
            .collect();
        active.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then(b.id.cmp(&a.id)));
        Ok(active)
    }

    async fn revoke_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut ended = Vec::new();
        for session in lock(&self.sessions).values_mut() {
            if session.user_id == user && session.revoked_at.is_none() && Some(session.id) != keep {
                session.revoked_at = Some(at);
                ended.push(session.id);
            }
        }
        Ok(ended)
    }

    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(session) = lock(&self.sessions).get_mut(&id) {
            session.revoked_at.get_or_insert(at);
        }
        Ok(())
    }
}
