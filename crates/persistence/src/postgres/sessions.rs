//! [`SessionRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use p_chat_domain::ports::{SessionRepository, StoreError};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::UserId;

use super::models::SessionRow;
use super::pool::PgStore;
use super::schema::login_sessions;

/// Login sessions in the `login_sessions` table.
#[derive(Clone)]
pub struct PgSessions(PgStore);

impl PgSessions {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl SessionRepository for PgSessions {
    async fn create(&self, session: &LoginSession) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(login_sessions::table)
            .values(SessionRow::from(session))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    async fn by_id(&self, id: SessionId) -> Result<Option<LoginSession>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = login_sessions::table
            .find(id.as_uuid())
            .select(SessionRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(LoginSession::try_from).transpose()
    }

    /// One conditional `UPDATE`: of racing rotations from one hash, the
    /// first to lock the row changes it; the others re-check the condition
    /// against the new hash (READ COMMITTED) and update nothing.
    async fn rotate(
        &self,
        id: SessionId,
        current: &TokenHash,
        next: &TokenHash,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let target = login_sessions::table
            .find(id.as_uuid())
            .filter(login_sessions::refresh_token_hash.eq(current.as_bytes().as_slice()))
            .filter(login_sessions::revoked_at.is_null());
        let update = diesel::update(target)
            .set((
                login_sessions::refresh_token_hash.eq(next.as_bytes().as_slice()),
                login_sessions::expires_at.eq(expires_at),
                login_sessions::last_used_at.eq(at),
            ))
            .execute(&mut connection);
        Ok(self.0.bounded(update).await? == 1)
    }

    /// Served by `login_sessions_user_id_idx`.
    async fn active_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LoginSession>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = login_sessions::table
            .filter(login_sessions::user_id.eq(user.as_uuid()))
            .filter(login_sessions::revoked_at.is_null())
            .filter(login_sessions::expires_at.gt(now))
            .order((
                login_sessions::last_used_at.desc(),
                login_sessions::id.desc(),
            ))
            .select(SessionRow::as_select())
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(LoginSession::try_from).collect()
    }

    async fn revoke_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let keep = keep.map(|id| id.as_uuid()).unwrap_or_default();
        let mut connection = self.0.connection().await?;
        let target = login_sessions::table
            .filter(login_sessions::user_id.eq(user.as_uuid()))
            .filter(login_sessions::revoked_at.is_null())
            .filter(login_sessions::id.ne(keep));
        let update = diesel::update(target)
            .set(login_sessions::revoked_at.eq(at))
            .returning(login_sessions::id)
            .get_results::<uuid::Uuid>(&mut connection);
        let ended = self.0.bounded(update).await?;
        Ok(ended.into_iter().map(SessionId::from_uuid).collect())
    }

    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let target = login_sessions::table
            .find(id.as_uuid())
            .filter(login_sessions::revoked_at.is_null());
        let update = diesel::update(target)
            .set(login_sessions::revoked_at.eq(at))
            .execute(&mut connection);
        self.0.bounded(update).await.map(|_| ())
    }
}
