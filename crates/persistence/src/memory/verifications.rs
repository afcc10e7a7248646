use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use async_trait::async_trait;
use p_chat_domain::ports::{StoreError, VerificationStore};
use p_chat_domain::token::TokenHash;
use p_chat_domain::verification::EmailVerification;

use crate::lock;

/// Pending email verifications in memory, keyed by token hash.
#[derive(Debug, Default)]
pub struct MemoryVerifications {
    pending: Mutex<HashMap<TokenHash, EmailVerification>>,
}

#[async_trait]
impl VerificationStore for MemoryVerifications {
    async fn insert(&self, verification: &EmailVerification) -> Result<(), StoreError> {
        match lock(&self.pending).entry(verification.token_hash.clone()) {
            Entry::Occupied(_) => Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(verification.clone());
                Ok(())
            }
        }
    }

    async fn take(&self, token_hash: &TokenHash) -> Result<Option<EmailVerification>, StoreError> {
        Ok(lock(&self.pending).remove(token_hash))
    }
}
