//! [`PasswordResetStore`] on PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use p_chat_domain::ports::{PasswordResetStore, StoreError};
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::token::TokenHash;

use super::models::ResetRow;
use super::pool::PgStore;
use super::schema::password_resets;

/// Pending resets in the `password_resets` table.
#[derive(Clone)]
pub struct PgResets(PgStore);

impl PgResets {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl PasswordResetStore for PgResets {
    async fn insert(&self, reset: &PasswordReset) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(password_resets::table)
            .values(ResetRow::from(reset))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    /// `DELETE ... RETURNING`: the row goes to exactly one of racing callers.
    async fn take(&self, token_hash: &TokenHash) -> Result<Option<PasswordReset>, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::delete(password_resets::table.find(token_hash.as_bytes().as_slice()))
            .returning(ResetRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { delete.await.optional() }).await?;
        row.map(PasswordReset::try_from).transpose()
    }
}
