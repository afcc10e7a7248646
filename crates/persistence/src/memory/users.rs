use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::ports::{StoreError, UserRepository};
use p_chat_domain::user::{DisplayName, Email, User, UserId};

use crate::lock;

/// Accounts in memory, indexed by id and by normalized email.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    state: Mutex<Users>,
}

#[derive(Debug, Default)]
struct Users {
    by_id: HashMap<UserId, User>,
    id_by_email: HashMap<Email, UserId>,
}

#[async_trait]
impl UserRepository for MemoryUsers {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.by_id.contains_key(&user.id) {
            return Err(StoreError::Duplicate);
        }
        match state.id_by_email.entry(user.email.clone()) {
            Entry::Occupied(_) => return Err(StoreError::Duplicate),
            Entry::Vacant(slot) => slot.insert(user.id),
        };
        state.by_id.insert(user.id, user.clone());
        Ok(())
    }

    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.state).by_id.get(&id).cloned())
    }

    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let state = lock(&self.state);
        let unique: std::collections::HashSet<&UserId> = ids.iter().collect();
        Ok(unique
            .into_iter()
            .filter_map(|id| state.by_id.get(id))
            .cloned()
            .collect())
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .id_by_email
            .get(email)
            .and_then(|id| state.by_id.get(id))
            .cloned())
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let Some(user) = state.by_id.get_mut(&id) else {
            return Ok(false);
        };
        user.email_verified_at.get_or_insert(at);
        Ok(true)
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.by_id.get_mut(&id).map(|user| {
            user.display_name = name.clone();
            user.clone()
        }))
    }
}
