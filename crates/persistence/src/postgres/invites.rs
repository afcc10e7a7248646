//! [`InviteStore`] on PostgreSQL. Invitations are redeemed inside
//! [`PgUsers`](super::PgUsers)'s registration transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use p_chat_domain::ports::{InviteStore, StoreError};
use p_chat_domain::registration::{Invite, InviteId};

use super::models::InviteRow;
use super::pool::PgStore;
use super::schema::invites;

/// Invitations in the `invites` table.
#[derive(Clone)]
pub struct PgInvites(PgStore);

impl PgInvites {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl InviteStore for PgInvites {
    async fn insert(&self, invite: &Invite) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(invites::table)
            .values(InviteRow::from(invite))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    /// A scan: invitations are few (an administrator's handful).
    async fn active(&self, now: DateTime<Utc>) -> Result<Vec<Invite>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = invites::table
            .filter(invites::uses_left.gt(0))
            .filter(invites::expires_at.gt(now))
            .order((invites::created_at.desc(), invites::id.desc()))
            .select(InviteRow::as_select())
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(Invite::try_from).collect()
    }

    async fn revoke(&self, id: InviteId) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::delete(invites::table.find(id.as_uuid())).execute(&mut connection);
        Ok(self.0.bounded(delete).await? == 1)
    }
}
