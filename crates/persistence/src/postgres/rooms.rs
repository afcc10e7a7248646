//! [`RoomRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use p_chat_domain::ports::{OpenedDirect, RoomDetails, RoomRepository, StoreError};
use p_chat_domain::room::{DirectPair, Membership, Role, Room, RoomId};
use p_chat_domain::user::UserId;

use super::models::{MembershipRow, RoomRow};
use super::pool::PgStore;
use super::schema::{room_members, rooms};
use super::sql::contains_pattern;

/// Rooms in the `rooms` table, with their memberships in `room_members`
/// (deleting a room cascades to its memberships and messages).
///
/// One direct room per pair is the `UNIQUE (direct_low, direct_high)`
/// constraint: racing [`RoomRepository::open_direct`] calls insert with
/// `ON CONFLICT DO NOTHING`, so exactly one inserts and the others read its
/// room.
#[derive(Clone)]
pub struct PgRooms(PgStore);

impl PgRooms {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

/// `rooms.visibility = 'public'` as a literal, not a bind parameter, so that
/// the planner can match the partial indexes on public rooms also in a
/// generic plan of the prepared statement.
fn is_public() -> diesel::expression::SqlLiteral<Bool> {
    sql::<Bool>("rooms.visibility = 'public'")
}

/// The sort key of the public directory: the name in byte order (the
/// in-memory store's order), whatever the database's collation. Matches the
/// `rooms_public_name_idx` expression.
fn name_in_byte_order() -> diesel::expression::SqlLiteral<Text> {
    sql::<Text>(r#"rooms.name COLLATE "C""#)
}

#[async_trait]
impl RoomRepository for PgRooms {
    /// One transaction: the room, then its owner's membership.
    async fn create(&self, room: &Room, owner: &Membership) -> Result<(), StoreError> {
        let room = RoomRow::new(room, None);
        let owner = MembershipRow::from(owner);
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::insert_into(rooms::table)
                .values(&room)
                .execute(conn)
                .await?;
            diesel::insert_into(room_members::table)
                .values(&owner)
                .execute(conn)
                .await?;
            Ok(())
        });
        self.0.bounded(transaction).await
    }

    /// One transaction: insert the room unless the pair has one, else read
    /// the pair's room; then insert both memberships `ON CONFLICT DO
    /// NOTHING`, which re-adds a user who left. The room's `ON CONFLICT DO
    /// NOTHING` waits for a racing insert of the same pair to commit or roll
    /// back; it names no constraint, so that racers passing the same room
    /// (same id) also yield to the first rather than fail on the primary key.
    async fn open_direct(
        &self,
        room: &Room,
        pair: DirectPair,
        now: DateTime<Utc>,
    ) -> Result<OpenedDirect, StoreError> {
        let new_room = RoomRow::new(room, Some(pair));
        let (low, high) = (pair.low().as_uuid(), pair.high().as_uuid());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, diesel::result::Error, _>(async |conn| {
            let inserted = diesel::insert_into(rooms::table)
                .values(&new_room)
                .on_conflict_do_nothing()
                .returning(RoomRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let (stored, created) = match inserted {
                Some(stored) => (stored, true),
                None => {
                    let existing = rooms::table
                        .filter(rooms::direct_low.eq(low))
                        .filter(rooms::direct_high.eq(high))
                        .select(RoomRow::as_select())
                        .first(conn)
                        .await
                        .optional()?;
                    // No room of the pair: the conflict was on the id.
                    let Some(existing) = existing else {
                        return Ok(None);
                    };
                    (existing, false)
                }
            };
            let room_id = stored.id();
            let members: Vec<MembershipRow> = [pair.low(), pair.high()]
                .into_iter()
                .map(|user_id| {
                    MembershipRow::from(&Membership {
                        room_id,
                        user_id,
                        role: Role::Member,
                        joined_at: now,
                    })
                })
                .collect();
            let joined: Vec<MembershipRow> = diesel::insert_into(room_members::table)
                .values(&members)
                .on_conflict((room_members::room_id, room_members::user_id))
                .do_nothing()
                .returning(MembershipRow::as_returning())
                .get_results(conn)
                .await?;
            Ok(Some((stored, created, joined)))
        });
        match self.0.bounded(transaction).await? {
            Some((stored, created, joined)) => {
                let mut joined = joined
                    .into_iter()
                    .map(Membership::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                joined.sort_by_key(|membership| membership.user_id);
                Ok(OpenedDirect {
                    room: Room::try_from(stored)?,
                    created,
                    joined,
                })
            }
            None => Err(StoreError::Failure(format!(
                "room id {} is taken by another room",
                room.id
            ))),
        }
    }

    async fn by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = rooms::table
            .find(id.as_uuid())
            .select(RoomRow::as_select())
            .first(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(Room::try_from).transpose()
    }

    /// One query: the room `LEFT JOIN` the user's membership (both by
    /// primary key).
    async fn with_membership(
        &self,
        id: RoomId,
        user: UserId,
    ) -> Result<Option<(Room, Option<Membership>)>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = rooms::table
            .left_join(
                room_members::table.on(room_members::room_id
                    .eq(rooms::id)
                    .and(room_members::user_id.eq(user.as_uuid()))),
            )
            .filter(rooms::id.eq(id.as_uuid()))
            .select((RoomRow::as_select(), Option::<MembershipRow>::as_select()))
            .first::<(RoomRow, Option<MembershipRow>)>(&mut connection);
        let row = self.0.bounded(async { query.await.optional() }).await?;
        row.map(|(room, membership)| {
            Ok((
                Room::try_from(room)?,
                membership.map(Membership::try_from).transpose()?,
            ))
        })
        .transpose()
    }

    async fn update_details(
        &self,
        id: RoomId,
        details: &RoomDetails,
    ) -> Result<Option<Room>, StoreError> {
        let mut connection = self.0.connection().await?;
        let update = diesel::update(rooms::table.find(id.as_uuid()))
            .set((
                rooms::name.eq(details.name.as_str()),
                rooms::topic.eq(details.topic.as_ref().map(|topic| topic.as_str())),
                rooms::visibility.eq(details.visibility.as_str()),
            ))
            .returning(RoomRow::as_returning())
            .get_result(&mut connection);
        let row = self.0.bounded(async { update.await.optional() }).await?;
        row.map(Room::try_from).transpose()
    }

    /// One `DELETE`: memberships and messages go by `ON DELETE CASCADE`.
    async fn delete(&self, id: RoomId) -> Result<bool, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::delete(rooms::table.find(id.as_uuid())).execute(&mut connection);
        Ok(self.0.bounded(delete).await? == 1)
    }

    /// Served by `room_members_user_id_idx`, then the rooms' primary key.
    async fn of_member(&self, user: UserId) -> Result<Vec<Room>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = rooms::table
            .inner_join(room_members::table)
            .filter(room_members::user_id.eq(user.as_uuid()))
            .select(RoomRow::as_select())
            .order_by((rooms::created_at, rooms::id))
            .load(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter().map(Room::try_from).collect()
    }

    /// `ILIKE '%query%'` on public rooms, ordered by name in byte order then
    /// id. The trigram index `rooms_public_name_trgm_idx` serves queries of
    /// three characters or more; `rooms_public_name_idx` serves the empty
    /// query (an ordered scan stopping at the limit). Case-insensitivity is
    /// the database's (its `LC_CTYPE`): with a UTF-8 locale it folds
    /// non-ASCII letters too.
    async fn search_public(&self, query: &str, limit: usize) -> Result<Vec<Room>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut connection = self.0.connection().await?;
        let search = rooms::table
            .filter(is_public())
            .filter(rooms::name.ilike(contains_pattern(query)))
            .select(RoomRow::as_select())
            .order_by(name_in_byte_order())
            .then_order_by(rooms::id)
            .limit(limit)
            .load(&mut connection);
        let rows = self.0.bounded(search).await?;
        rows.into_iter().map(Room::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_like_metacharacters() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("Rust"), "%Rust%");
        assert_eq!(contains_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
