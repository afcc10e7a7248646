//! [`MembershipRepository`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use p_chat_domain::events::RoomEvent;
use p_chat_domain::message::Seq;
use p_chat_domain::ports::{MembershipRepository, StoreError};
use p_chat_domain::read::{MarkerMove, Receipt, UnreadCounts};
use p_chat_domain::room::{Member, Membership, Role, RoomId};
use p_chat_domain::user::UserId;
use uuid::Uuid;

use super::events::{advance, events, log, unless_rolled_back};
use super::models::{EventRow, MemberView, MembershipRow, RoomRow};
use super::pool::PgStore;
use super::schema::{room_members, rooms};

/// Memberships in the `room_members` table. One membership per user and
/// room is its primary key; one owner per room is the partial unique index
/// `room_members_one_owner_idx`.
///
/// Every change takes the room's next positions first ([`advance`]: the
/// room's row lock, before any membership row, in the order a cascading
/// room delete takes them, so the two cannot deadlock), then changes the
/// membership and logs its events; a change that finds nothing to do rolls
/// back, so it consumes no position.
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

    /// One transaction: the room's next position (no room: `Failure`), a
    /// plain `INSERT`, whose primary key turns a second (or racing) add
    /// into `Duplicate` (a missing user is a foreign-key `Failure`), rolling
    /// the position back, then `member_joined`.
    async fn add(&self, member: &Member) -> Result<RoomEvent, StoreError> {
        let room = member.membership.room_id;
        let membership = MembershipRow::from(&member.membership);
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(advanced) = advance(conn, room.as_uuid(), 1).await? else {
                return Ok(None);
            };
            diesel::insert_into(room_members::table)
                .values(&membership)
                .execute(conn)
                .await?;
            let joined = EventRow::member_joined(
                &advanced,
                MemberView::from(member),
                advanced.last_pos(),
                member.membership.joined_at,
            )?;
            log(conn, std::slice::from_ref(&joined)).await?;
            Ok(Some(joined))
        });
        match self.0.bounded(transaction).await? {
            Some(joined) => joined.into_event(None),
            None => Err(StoreError::Failure(format!("no room {room} to join"))),
        }
    }

    /// One transaction: the room's next position, the `DELETE`, then
    /// `member_left`; no membership rolls it back.
    async fn remove(
        &self,
        room: RoomId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let (room, user) = (room.as_uuid(), user.as_uuid());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(advanced) = advance(conn, room, 1).await? else {
                return Err(Error::RollbackTransaction);
            };
            let removed = diesel::delete(room_members::table.find((room, user)))
                .execute(conn)
                .await?;
            if removed != 1 {
                return Err(Error::RollbackTransaction);
            }
            let left = EventRow::member_left(room, user, advanced.last_pos(), at);
            log(conn, std::slice::from_ref(&left)).await?;
            Ok(left)
        });
        let left = self.0.bounded(unless_rolled_back(transaction)).await?;
        left.map(|left| left.into_event(None)).transpose()
    }

    /// One transaction: the room's next position, the `UPDATE` of the
    /// role, then `member_updated` (under the name the caller read); no
    /// membership rolls it back.
    async fn set_role(
        &self,
        member: &Member,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let (room, user) = (
            member.membership.room_id.as_uuid(),
            member.membership.user_id.as_uuid(),
        );
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(advanced) = advance(conn, room, 1).await? else {
                return Err(Error::RollbackTransaction);
            };
            let updated = diesel::update(room_members::table.find((room, user)))
                .set(room_members::role.eq(role.as_str()))
                .returning(MembershipRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(updated) = updated else {
                return Err(Error::RollbackTransaction);
            };
            let event = EventRow::member_updated(
                room,
                MemberView::new(&updated, &member.display_name),
                advanced.last_pos(),
                at,
            )?;
            log(conn, std::slice::from_ref(&event)).await?;
            Ok(event)
        });
        let event = self.0.bounded(unless_rolled_back(transaction)).await?;
        event.map(|event| event.into_event(None)).transpose()
    }

    /// One transaction: take the room's next three positions (its row lock:
    /// racing transfers of one room queue here), demote `from` if it is the
    /// owner, promote `to` if it is a member, then move the room's
    /// `owner_id`, and log `member_updated` of each and `room_updated`.
    /// Demoting before promoting keeps the one-owner index satisfied at
    /// every statement. As soon as a step finds no row, all is rolled back
    /// (the positions too): of racing transfers from one owner, only the
    /// first finds an owner to demote.
    async fn transfer_ownership(
        &self,
        from: &Member,
        to: &Member,
        at: DateTime<Utc>,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        /// Two role changes and the room's new owner.
        const EVENTS: i64 = 3;
        let room = from.membership.room_id;
        let (from_id, to_id) = (from.membership.user_id, to.membership.user_id);
        if from_id == to_id || to.membership.room_id != room {
            return Ok(Vec::new());
        }
        let (room, from_id, to_id) = (room.as_uuid(), from_id.as_uuid(), to_id.as_uuid());
        let mut connection = self.0.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(advanced) = advance(conn, room, EVENTS).await? else {
                return Err(Error::RollbackTransaction);
            };
            let demoted = diesel::update(room_members::table.find((room, from_id)))
                .filter(room_members::role.eq(Role::Owner.as_str()))
                .set(room_members::role.eq(Role::Admin.as_str()))
                .returning(MembershipRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(demoted) = demoted else {
                return Err(Error::RollbackTransaction);
            };
            let promoted = diesel::update(room_members::table.find((room, to_id)))
                .set(room_members::role.eq(Role::Owner.as_str()))
                .returning(MembershipRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(promoted) = promoted else {
                return Err(Error::RollbackTransaction);
            };
            let handed_over = diesel::update(rooms::table.find(room))
                .set(rooms::owner_id.eq(to_id))
                .returning(RoomRow::as_returning())
                .get_result(conn)
                .await?;
            let first = advanced.last_pos() - EVENTS + 1;
            let logged = vec![
                EventRow::member_updated(
                    room,
                    MemberView::new(&demoted, &from.display_name),
                    first,
                    at,
                )?,
                EventRow::member_updated(
                    room,
                    MemberView::new(&promoted, &to.display_name),
                    first + 1,
                    at,
                )?,
                EventRow::room_updated(&handed_over, at)?,
            ];
            log(conn, &logged).await?;
            Ok(logged)
        });
        let logged = self.0.bounded(unless_rolled_back(transaction)).await?;
        events(logged.unwrap_or_default())
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

    /// One `SELECT ... WHERE room_id = $1 AND user_id = ANY($2)`: probes
    /// of the primary key, in id order.
    async fn which_members(
        &self,
        room: RoomId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = users.iter().map(|user| user.as_uuid()).collect();
        let mut connection = self.0.connection().await?;
        let query = room_members::table
            .filter(room_members::room_id.eq(room.as_uuid()))
            .filter(room_members::user_id.eq_any(&ids))
            .select(room_members::user_id)
            .order_by(room_members::user_id)
            .load::<Uuid>(&mut connection);
        let members = self.0.bounded(query).await?;
        Ok(members.into_iter().map(UserId::from_uuid).collect())
    }

    /// One conditional `UPDATE ... SET last_read_seq = $seq WHERE ... AND
    /// last_read_seq < $seq`: the row lock and the re-checked condition
    /// keep the marker from moving backward however many calls race. When
    /// it moves nothing, a second statement (a fresh snapshot, so it sees
    /// whichever call moved it meanwhile) reads where it stands, or finds
    /// no membership.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<MarkerMove>, StoreError> {
        let key = (room.as_uuid(), user.as_uuid());
        let mut connection = self.0.connection().await?;
        let conn: &mut AsyncPgConnection = &mut connection;
        let found = self
            .0
            .bounded(async move {
                let moved: Option<i64> = diesel::update(room_members::table.find(key))
                    .filter(room_members::last_read_seq.lt(seq.value()))
                    .set(room_members::last_read_seq.eq(seq.value()))
                    .returning(room_members::last_read_seq)
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(marker) = moved {
                    return Ok(Some((marker, true)));
                }
                let marker: Option<i64> = room_members::table
                    .find(key)
                    .select(room_members::last_read_seq)
                    .first(conn)
                    .await
                    .optional()?;
                Ok(marker.map(|marker| (marker, false)))
            })
            .await?;
        found
            .map(|(marker, moved)| {
                Ok(MarkerMove {
                    last_read_seq: marker_seq(marker)?,
                    moved,
                })
            })
            .transpose()
    }

    /// One query ([`UNREAD`]) over the user's memberships (the
    /// `room_members_user_id_idx`), each count a `LIMIT`ed subquery, so
    /// that a room costs at most [`UnreadCounts::CAP`] index entries per
    /// count however far behind its marker is.
    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<UnreadCounts>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = diesel::sql_query(UNREAD)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<Nullable<SqlUuid>, _>(room.map(|room| room.as_uuid()))
            .bind::<BigInt, _>(i64::from(UnreadCounts::CAP))
            .load::<UnreadRow>(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter()
            .map(|row| {
                let count = |value: i64| {
                    u32::try_from(value)
                        .map_err(|_| StoreError::Failure("an unread count out of range".into()))
                };
                Ok(UnreadCounts {
                    room_id: RoomId::from_uuid(row.room_id),
                    last_read_seq: marker_seq(row.last_read_seq)?,
                    unread: count(row.unread)?,
                    mentions: count(row.mentions)?,
                })
            })
            .collect()
    }

    /// The markers of the room's memberships (the primary key's `room_id`
    /// prefix), in the order members joined, as [`Self::list`].
    async fn receipts(&self, room: RoomId) -> Result<Vec<Receipt>, StoreError> {
        let mut connection = self.0.connection().await?;
        let query = room_members::table
            .filter(room_members::room_id.eq(room.as_uuid()))
            .select((room_members::user_id, room_members::last_read_seq))
            .order_by((room_members::joined_at, room_members::user_id))
            .load::<(Uuid, i64)>(&mut connection);
        let rows = self.0.bounded(query).await?;
        rows.into_iter()
            .map(|(user, marker)| {
                Ok(Receipt {
                    user_id: UserId::from_uuid(user),
                    last_read_seq: marker_seq(marker)?,
                })
            })
            .collect()
    }

    /// One `EXISTS` over the primary key: `a`'s rooms (its `user_id`
    /// index), each probed for `b`.
    async fn share_room(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        let theirs = diesel::alias!(room_members as theirs);
        let shared = room_members::table
            .inner_join(
                theirs.on(theirs
                    .field(room_members::room_id)
                    .eq(room_members::room_id)),
            )
            .filter(room_members::user_id.eq(a.as_uuid()))
            .filter(theirs.field(room_members::user_id).eq(b.as_uuid()));
        let mut connection = self.0.connection().await?;
        let query = diesel::select(diesel::dsl::exists(shared)).get_result(&mut connection);
        self.0.bounded(query).await
    }
}

/// A stored read marker as a seq (the schema's CHECK keeps it from being
/// negative).
fn marker_seq(marker: i64) -> Result<Seq, StoreError> {
    Seq::new(marker).map_err(|_| StoreError::Failure("a read marker is negative".into()))
}

/// The read state of each of a user's rooms (or of one), in one query.
/// Per membership, two `LIMIT`ed subqueries count at most the cap:
///
/// - unread: `messages` after the marker (a range of
///   `messages_room_id_seq_key`), not by the user, not deleted;
/// - mentions: `message_mentions` of the user in the room after the marker
///   (a range of its primary key; tombstones have no rows, nor do one's own
///   messages).
///
/// Binds: the user, the room (or `NULL`), the cap.
const UNREAD: &str = "\
SELECT rm.room_id, rm.last_read_seq,
       (SELECT count(*) FROM (
            SELECT 1 FROM messages m
             WHERE m.room_id = rm.room_id AND m.seq > rm.last_read_seq
               AND m.author_id <> rm.user_id AND m.deleted_at IS NULL
             LIMIT $3) AS capped) AS unread,
       (SELECT count(*) FROM (
            SELECT 1 FROM message_mentions mm
             WHERE mm.user_id = rm.user_id AND mm.room_id = rm.room_id
               AND mm.seq > rm.last_read_seq
             LIMIT $3) AS capped) AS mentions
  FROM room_members rm
 WHERE rm.user_id = $1 AND ($2::uuid IS NULL OR rm.room_id = $2)";

/// A row of [`UNREAD`].
#[derive(QueryableByName)]
struct UnreadRow {
    #[diesel(sql_type = SqlUuid)]
    room_id: Uuid,
    #[diesel(sql_type = BigInt)]
    last_read_seq: i64,
    #[diesel(sql_type = BigInt)]
    unread: i64,
    #[diesel(sql_type = BigInt)]
    mentions: i64,
}
