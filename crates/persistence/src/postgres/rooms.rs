//! [`RoomRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::ports::{DirectPeople, OpenedDirect, RoomDetails, RoomRepository, StoreError};
use p_chat_domain::position::Pos;
use p_chat_domain::room::{Member, Membership, Role, Room, RoomId};
use p_chat_domain::user::UserId;

use super::events::{advance, events, log};
use super::models::{EventRow, MemberView, MembershipRow, RoomRow};
use super::pool::PgStore;
use super::schema::{room_members, rooms};
use super::sql::contains_pattern;

/// Rooms in the `rooms` table, with their memberships in `room_members`
/// (deleting a room cascades to its memberships, messages and events).
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
    /// One transaction: the room (its `last_pos` already 1), its owner's
    /// membership, then the owner's `member_joined` at position 1. No other
    /// transaction sees the room before it commits, so it needs no lock.
    async fn create(&self, room: &Room, owner: &Member) -> Result<RoomEvent, StoreError> {
        let first = Pos::ZERO.next();
        let row = RoomRow::new(
            &Room {
                last_pos: first,
                ..room.clone()
            },
            None,
        );
        let membership = MembershipRow::from(&owner.membership);
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            diesel::insert_into(rooms::table)
                .values(&row)
                .execute(conn)
                .await?;
            diesel::insert_into(room_members::table)
                .values(&membership)
                .execute(conn)
                .await?;
            let joined = EventRow::member_joined(
                &row,
                MemberView::from(owner),
                first.value(),
                owner.membership.joined_at,
            )?;
            log(conn, std::slice::from_ref(&joined)).await?;
            Ok(joined)
        });
        self.0.bounded(transaction).await?.into_event(None)
    }

    /// One transaction: insert the room unless the pair has one, else read
    /// and lock the pair's room (`FOR NO KEY UPDATE`, as every change of a
    /// room locks it first); then insert both memberships `ON CONFLICT DO
    /// NOTHING`, which re-adds a user who left, and log a `member_joined`
    /// for each membership inserted, at the positions taken for them
    /// ([`advance`]), by user id. The room's `ON CONFLICT DO NOTHING` waits
    /// for a racing insert of the same pair to commit or roll back; it
    /// names no constraint, so that racers passing the same room (same id)
    /// also yield to the first rather than fail on the primary key.
    async fn open_direct(
        &self,
        room: &Room,
        people: &DirectPeople,
        now: DateTime<Utc>,
    ) -> Result<OpenedDirect, StoreError> {
        let pair = people.pair;
        let new_room = RoomRow::new(room, Some(pair));
        let (low, high) = (pair.low().as_uuid(), pair.high().as_uuid());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
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
                        .for_no_key_update()
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
            let mut joined: Vec<MembershipRow> = diesel::insert_into(room_members::table)
                .values(&members)
                .on_conflict((room_members::room_id, room_members::user_id))
                .do_nothing()
                .returning(MembershipRow::as_returning())
                .get_results(conn)
                .await?;
            if joined.is_empty() {
                return Ok(Some((stored, created, Vec::new())));
            }
            joined.sort_by_key(MembershipRow::user_id);
            let count = i64::try_from(joined.len()).unwrap_or(i64::MAX);
            // The room was inserted or locked above: it is there.
            let Some(advanced) = advance(conn, room_id.as_uuid(), count).await? else {
                return Err(Error::NotFound);
            };
            let first = advanced.last_pos() - count + 1;
            let logged = joined
                .iter()
                .zip(first..)
                .map(|(membership, pos)| {
                    let name = if membership.user_id() == low {
                        &people.low_name
                    } else {
                        &people.high_name
                    };
                    EventRow::member_joined(&advanced, MemberView::new(membership, name), pos, now)
                })
                .collect::<Result<Vec<_>, _>>()?;
            log(conn, &logged).await?;
            Ok(Some((advanced, created, logged)))
        });
        match self.0.bounded(transaction).await? {
            Some((stored, created, joined)) => Ok(OpenedDirect {
                room: Room::try_from(stored)?,
                created,
                joined: events(joined)?,
            }),
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

    /// One transaction: the new details with the room's next position, in
    /// one `UPDATE` (which takes the room's lock, as every change does),
    /// then its `room_updated` event.
    async fn update_details(
        &self,
        id: RoomId,
        details: &RoomDetails,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let updated = diesel::update(rooms::table.find(id.as_uuid()))
                .set((
                    rooms::name.eq(details.name.as_str()),
                    rooms::topic.eq(details.topic.as_ref().map(|topic| topic.as_str())),
                    rooms::visibility.eq(details.visibility.as_str()),
                    rooms::last_pos.eq(rooms::last_pos + 1),
                ))
                .returning(RoomRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(updated) = updated else {
                return Ok(None);
            };
            let event = EventRow::room_updated(&updated, at)?;
            log(conn, std::slice::from_ref(&event)).await?;
            Ok(Some(event))
        });
        let event = self.0.bounded(transaction).await?;
        event.map(|event| event.into_event(None)).transpose()
    }

    /// One `DELETE ... RETURNING last_pos`: memberships, messages and the
    /// event log go by `ON DELETE CASCADE`; the `room_deleted` event takes
    /// the position after the last, and is stored nowhere.
    async fn delete(&self, id: RoomId, at: DateTime<Utc>) -> Result<Option<RoomEvent>, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::delete(rooms::table.find(id.as_uuid()))
            .returning(rooms::last_pos)
            .get_result::<i64>(&mut connection);
        let last_pos = self.0.bounded(async { delete.await.optional() }).await?;
        last_pos
            .map(|last_pos| {
                let last_pos = Pos::new(last_pos).map_err(|_| {
                    StoreError::Failure(format!("room {id} had a negative last position"))
                })?;
                Ok(RoomEvent {
                    room_id: id,
                    pos: last_pos.next(),
                    at,
                    change: Change::RoomDeleted,
                })
            })
            .transpose()
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
