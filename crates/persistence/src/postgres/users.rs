//! [`UserRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use p_chat_domain::ports::{StoreError, UserRepository};
use p_chat_domain::user::{DisplayName, Email, User, UserId};

use super::models::UserRow;
use super::pool::PgStore;
use super::schema::users;
use super::sql::coalesce;

/// Accounts in the `users` table. Email uniqueness is the table's `UNIQUE`
/// constraint, so racing inserts cannot both succeed.
#[derive(Clone)]
pub struct PgUsers(PgStore);

impl PgUsers {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl UserRepository for PgUsers {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(users::table)
            .values(UserRow::from(user))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    async fn by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = users::table
            .find(id.as_uuid())
            .select(UserRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    async fn by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(UserId::as_uuid).collect();
        let mut connection = self.0.connection().await?;
        let query = users::table
            .filter(users::id.eq_any(ids))
            .select(UserRow::as_select())
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = users::table
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }

    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::email_verified_at.eq(coalesce(users::email_verified_at, at)))
            .execute(&mut connection);
        Ok(self.0.bounded(update).await? == 1)
    }

    async fn set_display_name(
        &self,
        id: UserId,
        name: &DisplayName,
    ) -> Result<Option<User>, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(users::table.find(id.as_uuid()))
            .set(users::display_name.eq(name.as_str()))
            .returning(UserRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { update.await.optional() }).await?;
        row.map(User::try_from).transpose()
    }
}
