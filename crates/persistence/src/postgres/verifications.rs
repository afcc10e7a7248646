//! [`VerificationStore`] on PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use p_chat_domain::ports::{StoreError, VerificationStore};
use p_chat_domain::token::TokenHash;
use p_chat_domain::verification::EmailVerification;

use super::models::VerificationRow;
use super::pool::PgStore;
use super::schema::email_verifications;

/// Pending verifications in the `email_verifications` table.
#[derive(Clone)]
pub struct PgVerifications(PgStore);

impl PgVerifications {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl VerificationStore for PgVerifications {
    async fn insert(&self, verification: &EmailVerification) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(email_verifications::table)
            .values(VerificationRow::from(verification))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    /// `DELETE ... RETURNING`: the row goes to exactly one of racing callers.
    async fn take(&self, token_hash: &TokenHash) -> Result<Option<EmailVerification>, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete =
            diesel::delete(email_verifications::table.find(token_hash.as_bytes().as_slice()))
                .returning(VerificationRow::as_returning())
                .get_result(&mut connection);
        let row = self.0.bounded(async { delete.await.optional() }).await?;
        row.map(EmailVerification::try_from).transpose()
    }
}
