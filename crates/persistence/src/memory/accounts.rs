//! Accounts, pending verifications, password resets and invitations in
//! memory: one state behind one mutex, seen through four port adapters, so
//! that registration (account, verification and invitation use together) is
//! atomic. Deleting an account also removes its room memberships, so the
//! state is linked to the [`MemoryChat`] holding them.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::ports::{
    Anonymisation, InviteStore, PasswordResetStore, Registered, StoreError, UserQuery,
    UserRepository, VerificationStore,
};
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::registration::{Invite, InviteId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{
    Anonymised, DisplayName, Email, InstanceRole, PasswordHash, User, UserId,
};
use p_chat_domain::verification::EmailVerification;

use super::MemoryChat;
use crate::lock;

/// The shared state of the account adapters. Create one (linked to the
/// chat state whose memberships deleted accounts leave), then hand out its
/// [`MemoryAccounts::users`], [`MemoryAccounts::verifications`],
/// [`MemoryAccounts::resets`] and [`MemoryAccounts::invites`] views.
#[derive(Debug, Clone, Default)]
pub struct MemoryAccounts {
    state: Arc<Mutex<Accounts>>,
    chat: MemoryChat,
}

#[derive(Debug, Default)]
struct Accounts {
    by_id: HashMap<UserId, User>,
    id_by_email: HashMap<Email, UserId>,
    verifications: HashMap<TokenHash, EmailVerification>,
    resets: HashMap<TokenHash, PasswordReset>,
    invites: HashMap<InviteId, Invite>,
    /// When each account's last connection closed (presence).
    last_seen: HashMap<UserId, DateTime<Utc>>,
}

impl MemoryAccounts {
    /// Accounts whose deletion removes their memberships from `chat`.
    pub fn new(chat: &MemoryChat) -> Self {
        Self {
            state: Arc::default(),
            chat: chat.clone(),
        }
    }

    /// The [`UserRepository`] view.
    pub fn users(&self) -> MemoryUsers {
        MemoryUsers(self.clone())
    }

    /// The [`VerificationStore`] view.
    pub fn verifications(&self) -> MemoryVerifications {
        MemoryVerifications(self.clone())
    }

    /// The [`PasswordResetStore`] view.
    pub fn resets(&self) -> MemoryResets {
        MemoryResets(self.clone())
    }

    /// The [`InviteStore`] view.
    pub fn invites(&self) -> MemoryInvites {
        MemoryInvites(self.clone())
    }
}

impl Accounts {
    fn insert(&mut self, user: &User) -> Result<(), StoreError> {
        if self.by_id.contains_key(&user.id) {
            return Err(StoreError::Duplicate);
        }
        match self.id_by_email.entry(user.email.clone()) {
            Entry::Occupied(_) => return Err(StoreError::Duplicate),
            Entry::Vacant(slot) => slot.insert(user.id),
        };
        self.by_id.insert(user.id, user.clone());
        Ok(())
    }

    /// Removes an account and what hangs off it (not its memberships).
    fn remove(&mut self, id: UserId) {
        if let Some(user) = self.by_id.remove(&id) {
            self.id_by_email.remove(&user.email);
        }
        self.verifications
            .retain(|_, pending| pending.user_id != id);
        self.resets.retain(|_, pending| pending.user_id != id);
        self.last_seen.remove(&id);
    }

    fn update(&mut self, id: UserId, change: impl FnOnce(&mut User)) -> Option<User> {
        self.by_id.get_mut(&id).map(|user| {
            change(user);
            user.clone()
        })
    }
}

/// Accounts in memory (a view of a [`MemoryAccounts`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryUsers(MemoryAccounts);

#[async_trait]
impl UserRepository for MemoryUsers {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        lock(&self.0.state).insert(user)
    }

    async fn register(
        &self,
        user: &User,
        verification: &EmailVerification,
        invite: Option<TokenHash>,
        stale_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let mut state = lock(&self.0.state);
        let invite_id = match invite {
            None => None,
            Some(hash) => match state
                .invites
                .values()
                .find(|invite| invite.token_hash == hash && invite.admits_at(now))
            {
                Some(invite) => Some(invite.id),
                None => return Ok(Registered::InviteRefused),
            },
        };
        let existing = state
            .id_by_email
            .get(&user.email)
            .and_then(|id| state.by_id.get(id))
            .cloned();
        let stale = match existing {
            Some(existing) if existing.is_verified() || existing.created_at > stale_before => {
                return Ok(Registered::EmailTaken);
            }
            Some(existing) => Some(existing.id),
            None => None,
        };
        if state.by_id.contains_key(&user.id)
            || state.verifications.contains_key(&verification.token_hash)
        {
            return Err(StoreError::Duplicate);
        }
        if let Some(stale) = stale {
            self.0.chat.remove_user(stale);
            state.remove(stale);
        }
        state.insert(user)?;
        state
            .verifications
            .insert(verification.token_hash.clone(), verification.clone());
        if let Some(invite) = invite_id.and_then(|id| state.invites.get_mut(&id)) {
            invite.uses_left -= 1;
        }
        Ok(Registered::Created)
    }

    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.0.state).by_id.get(&id).cloned())
    }

    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let state = lock(&self.0.state);
        let unique: HashSet<&UserId> = ids.iter().collect();
        Ok(unique
            .into_iter()
            .filter_map(|id| state.by_id.get(id))
            .cloned()
            .collect())
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = lock(&self.0.state);
        Ok(state
            .id_by_email
            .get(email)
            .and_then(|id| state.by_id.get(id))
            .cloned())
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let needle = query
            .contains
            .as_ref()
            .map(|search| search.as_str().to_lowercase());
        let state = lock(&self.0.state);
        let mut users: Vec<User> = state
            .by_id
            .values()
            .filter(|user| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|after| user.email.as_str() > after.as_str())
            })
            .filter(|user| {
                needle.as_deref().is_none_or(|needle| {
                    user.email.as_str().contains(needle)
                        || user.display_name.as_str().to_lowercase().contains(needle)
                })
            })
            .cloned()
            .collect();
        users.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
        users.truncate(query.limit);
        Ok(users)
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(lock(&self.0.state)
            .update(id, |user| {
                user.email_verified_at.get_or_insert(at);
            })
            .is_some())
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.0.state).update(id, |user| user.display_name = name.clone()))
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
    ) -> Result<Option<User>, StoreError> {
        let mut state = lock(&self.0.state);
        let updated = state.update(id, |user| user.password_hash = hash.clone());
        if updated.is_some() {
            state.resets.retain(|_, pending| pending.user_id != id);
        }
        Ok(updated)
    }

    async fn set_role(&self, id: UserId, role: InstanceRole) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.0.state).update(id, |user| user.role = role))
    }

    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.0.state).update(id, |user| match at {
            Some(at) => {
                user.disabled_at.get_or_insert(at);
            }
            None if user.deleted_at.is_none() => user.disabled_at = None,
            None => {}
        }))
    }

    async fn anonymise(
        &self,
        id: UserId,
        anonymised: &Anonymised,
        unusable: &PasswordHash,
    ) -> Result<Anonymisation, StoreError> {
        let mut state = lock(&self.0.state);
        let Some(user) = state.by_id.get(&id).cloned() else {
            return Ok(Anonymisation::Missing);
        };
        let Some(left) = self.0.chat.remove_user_unless_owner(
            id,
            &anonymised.display_name,
            anonymised.deleted_at,
        ) else {
            return Ok(Anonymisation::OwnsRooms);
        };
        state.id_by_email.remove(&user.email);
        state.id_by_email.insert(anonymised.email.clone(), id);
        state
            .verifications
            .retain(|_, pending| pending.user_id != id);
        state.resets.retain(|_, pending| pending.user_id != id);
        let updated = state.update(id, |user| {
            user.email = anonymised.email.clone();
            user.display_name = anonymised.display_name.clone();
            user.password_hash = unusable.clone();
            user.disabled_at.get_or_insert(anonymised.deleted_at);
            user.deleted_at.get_or_insert(anonymised.deleted_at);
        });
        Ok(match updated {
            Some(user) => Anonymisation::Done(user, left),
            None => Anonymisation::Missing,
        })
    }

    async fn record_last_seen(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = lock(&self.0.state);
        if !state.by_id.contains_key(&id) {
            return Ok(false);
        }
        state.last_seen.insert(id, at);
        Ok(true)
    }

    async fn last_seen(&self, id: UserId) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(lock(&self.0.state).last_seen.get(&id).copied())
    }
}

/// Pending email verifications in memory (a view of a [`MemoryAccounts`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryVerifications(MemoryAccounts);

#[async_trait]
impl VerificationStore for MemoryVerifications {
    async fn insert(&self, verification: &EmailVerification) -> Result<(), StoreError> {
        match lock(&self.0.state)
            .verifications
            .entry(verification.token_hash.clone())
        {
            Entry::Occupied(_) => Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(verification.clone());
                Ok(())
            }
        }
    }

    async fn take(&self, token_hash: &TokenHash) -> Result<Option<EmailVerification>, StoreError> {
        Ok(lock(&self.0.state).verifications.remove(token_hash))
    }
}

/// Pending password resets in memory (a view of a [`MemoryAccounts`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryResets(MemoryAccounts);

#[async_trait]
impl PasswordResetStore for MemoryResets {
    async fn insert(&self, reset: &PasswordReset) -> Result<(), StoreError> {
        match lock(&self.0.state).resets.entry(reset.token_hash.clone()) {
            Entry::Occupied(_) => Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(reset.clone());
                Ok(())
            }
        }
    }

    async fn take(&self, token_hash: &TokenHash) -> Result<Option<PasswordReset>, StoreError> {
        Ok(lock(&self.0.state).resets.remove(token_hash))
    }
}

/// Invitations in memory (a view of a [`MemoryAccounts`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryInvites(MemoryAccounts);

#[async_trait]
impl InviteStore for MemoryInvites {
    async fn insert(&self, invite: &Invite) -> Result<(), StoreError> {
        let mut state = lock(&self.0.state);
        if state.invites.contains_key(&invite.id)
            || state
                .invites
                .values()
                .any(|stored| stored.token_hash == invite.token_hash)
        {
            return Err(StoreError::Duplicate);
        }
        state.invites.insert(invite.id, invite.clone());
        Ok(())
    }

    async fn active(&self, now: DateTime<Utc>) -> Result<Vec<Invite>, StoreError> {
        let mut invites: Vec<Invite> = lock(&self.0.state)
            .invites
            .values()
            .filter(|invite| invite.admits_at(now))
            .cloned()
            .collect();
        invites.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(invites)
    }

    async fn revoke(&self, id: InviteId) -> Result<bool, StoreError> {
        Ok(lock(&self.0.state).invites.remove(&id).is_some())
    }
}
