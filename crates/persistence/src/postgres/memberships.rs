//! [`MembershipRepository`] on PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::{AsyncConnection, RunQueryDsl};
use p_chat_domain::ports::{MembershipRepository, StoreError};
use p_chat_domain::room::{Membership, Role, RoomId};
use p_chat_domain::user::UserId;
use uuid::Uuid;

use super::models::MembershipRow;
use super::pool::PgStore;
use super::schema::{room_members, rooms};

/// Memberships in the `room_members` table. One membership per user and
/// room is its primary key; one owner per room is the partial unique index
/// `room_members_one_owner_idx`.
#[derive(Clone)]
pub struct PgMemberships(PgStore);

impl PgMemberships {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl MembershipRepository for PgMemberships {
    async fn get(&self, room: RoomId, user: UserId) -> Result<Option<Membership>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = room_members::table
            .find((room.as_uuid(), user.as_uuid()))
            .select(MembershipRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(Membership::try_from).transpose()
    }

    /// A plain `INSERT`: the primary key turns a second (or racing) add into
    /// `Duplicate`; a missing room or user is a foreign-key `Failure`.
    async fn add(&self, membership: &Membership) -> Result<(), StoreError> {
        let mut connection = self.0.connection().await?;
        let insert = diesel::insert_into(room_members::table)
            .values(MembershipRow::from(membership))
            .execute(&mut connection);
        self.0.bounded(insert).await.map(|_| ())
    }

    async fn remove(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::delete(room_members::table.find((room.as_uuid(), user.as_uuid())))
            .execute(&mut connection);
        Ok(self.0.bounded(delete).await? == 1)
    }

    async fn set_role(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<Option<Membership>, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(room_members::table.find((room.as_uuid(), user.as_uuid())))
            .set(room_members::role.eq(role.as_str()))
            .returning(MembershipRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { update.await.optional() }).await?;
        row.map(Membership::try_from).transpose()
    }

    /// One transaction: lock the room row (`FOR NO KEY UPDATE`: racing
    /// transfers of one room queue here, and the lock is taken before any
    /// membership row, in the order a cascading room delete takes them, so
    /// the two cannot deadlock), demote `from` if it is the owner, promote
    /// `to` if it is a member, then move the room's `owner_id`. Demoting
    /// before promoting keeps the one-owner index satisfied at every
    /// statement. As soon as a step finds no row, all is rolled back: of
    /// racing transfers from one owner, only the first finds an owner to
    /// demote.
    async fn transfer_ownership(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
    ) -> Result<bool, StoreError> {
        if from == to {
            return Ok(false);
        }
        let (room, from, to) = (room.as_uuid(), from.as_uuid(), to.as_uuid());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let locked = rooms::table
                .find(room)
                .select(rooms::id)
                .for_no_key_update()
                .first::<Uuid>(conn)
                .await
                .optional()?;
            if locked.is_none() {
                return Err(Error::RollbackTransaction);
            }
            let demoted = diesel::update(room_members::table.find((room, from)))
                .filter(room_members::role.eq(Role::Owner.as_str()))
                .set(room_members::role.eq(Role::Admin.as_str()))
                .execute(conn)
                .await?;
            if demoted != 1 {
                return Err(Error::RollbackTransaction);
            }
            let promoted = diesel::update(room_members::table.find((room, to)))
                .set(room_members::role.eq(Role::Owner.as_str()))
                .execute(conn)
                .await?;
            if promoted != 1 {
                return Err(Error::RollbackTransaction);
            }
            diesel::update(rooms::table.find(room))
                .set(rooms::owner_id.eq(to))
                .execute(conn)
                .await?;
            Ok(())
        });
        self.0
            .bounded(async {
                match transaction.await {
                    Ok(()) => Ok(true),
                    Err(Error::RollbackTransaction) => Ok(false),
                    Err(error) => Err(error),
                }
            })
            .await
    }

    /// Served by the primary key's `room_id` prefix; a room's members are
    /// few, so they are sorted after the scan.
    async fn list(&self, room: RoomId) -> Result<Vec<Membership>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = room_members::table
            .filter(room_members::room_id.eq(room.as_uuid()))
            .select(MembershipRow::as_select())
            .order_by((room_members::joined_at, room_members::user_id))
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(Membership::try_from).collect()
    }
}
