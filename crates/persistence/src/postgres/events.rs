//! Room event logs on PostgreSQL: the `room_events` table. The chat
//! adapters write it in the transaction of each change: [`advance`] takes
//! the room's lock and its next positions, [`log`] stores the events there;
//! [`PgEvents`] reads it back and prunes it.

use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use p_chat_domain::events::{EventPage, EventQuery, RoomEvent};
use p_chat_domain::message::Message;
use p_chat_domain::ports::{EventLog, StoreError};
use p_chat_domain::room::RoomId;
use uuid::Uuid;

use super::models::{EventRow, Loaded, MessageRow, RoomRow};
use super::pool::PgStore;
use super::reactions::of_messages;
use super::schema::{messages, room_events, rooms};

/// Takes `count` positions of `room`, with `UPDATE rooms SET last_pos =
/// last_pos + count ... RETURNING *`, which locks the room's row until the
/// transaction ends (every change of a room takes this lock first, before
/// any membership or message row, so one room's writers queue here and its
/// positions are allocated in commit order). Returns the room as it is
/// after: the positions taken run up to its `last_pos` (from `last_pos -
/// count + 1`); `None` if there is no such room. A transaction that then
/// changes nothing must roll back, so that no position is lost.
pub(super) async fn advance(
    conn: &mut AsyncPgConnection,
    room: Uuid,
    count: i64,
) -> QueryResult<Option<RoomRow>> {
    diesel::update(rooms::table.find(room))
        .set(rooms::last_pos.eq(rooms::last_pos + count))
        .returning(RoomRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Stores `events` (at positions [`advance`] took) in one `INSERT`.
pub(super) async fn log(conn: &mut AsyncPgConnection, events: &[EventRow]) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    diesel::insert_into(room_events::table)
        .values(events)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Runs `transaction`, reading its rollback (the `Error::RollbackTransaction`
/// a change returns when it finds it would change nothing, undoing
/// [`advance`]) as `None`.
pub(super) async fn unless_rolled_back<T>(
    transaction: impl Future<Output = QueryResult<T>>,
) -> QueryResult<Option<T>> {
    match transaction.await {
        Ok(value) => Ok(Some(value)),
        Err(Error::RollbackTransaction) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The events of `rows`, none of them a message event, as the domain sees
/// them.
pub(super) fn events(rows: Vec<EventRow>) -> Result<Vec<RoomEvent>, StoreError> {
    rows.into_iter().map(|row| row.into_event(None)).collect()
}

/// The event logs in the `room_events` table.
#[derive(Clone)]
pub struct PgEvents(PgStore);

impl PgEvents {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self(store)
    }
}

#[async_trait]
impl EventLog for PgEvents {
    /// A range scan of the primary key `(room_id, pos)`, one row more than
    /// the page to learn `has_more`, each message event joined to its
    /// message (by the messages' primary key) as it is now:
    ///
    /// ```sql
    /// SELECT e.*, m.* FROM room_events e LEFT JOIN messages m ON m.id = e.message_id
    ///  WHERE e.room_id = $1 AND e.pos > $2 ORDER BY e.pos LIMIT $3
    /// ```
    ///
    /// then the reactions of those messages, in one more query.
    async fn after(&self, room: RoomId, query: &EventQuery) -> Result<EventPage, StoreError> {
        let limit = query.limit.get();
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut connection = self.0.connection().await?;
        let conn: &mut AsyncPgConnection = &mut connection;
        let (rows, reactions, has_more) = self
            .0
            .bounded(async move {
                let mut rows = room_events::table
                    .left_join(messages::table)
                    .filter(room_events::room_id.eq(room.as_uuid()))
                    .filter(room_events::pos.gt(query.after.value()))
                    .order_by(room_events::pos)
                    .limit(fetch)
                    .select((EventRow::as_select(), Option::<MessageRow>::as_select()))
                    .load::<(EventRow, Option<MessageRow>)>(conn)
                    .await?;
                let has_more = rows.len() > limit;
                rows.truncate(limit);
                // Reaction events only name their message: they show none.
                for (event, message) in &mut rows {
                    if !event.shows_message() {
                        *message = None;
                    }
                }
                let ids: Vec<Uuid> = rows
                    .iter()
                    .filter_map(|(_, message)| message.as_ref().map(MessageRow::id))
                    .collect();
                let reactions = of_messages(conn, &ids).await?;
                Ok((rows, reactions, has_more))
            })
            .await?;
        Ok(EventPage {
            events: rows
                .into_iter()
                .map(|(event, message)| {
                    let message = message
                        .map(|row| {
                            let own = reactions.get(&row.id()).cloned().unwrap_or_default();
                            Message::try_from(Loaded {
                                row,
                                reactions: own,
                            })
                        })
                        .transpose()?;
                    event.into_event(message)
                })
                .collect::<Result<_, _>>()?,
            has_more,
        })
    }

    /// One `DELETE` of each room's events up to its newest one before
    /// `before` (found through the BRIN index on `at`), so that what is
    /// left of a log is always a suffix of it, also where an event has an
    /// earlier `at` than the one before it:
    ///
    /// ```sql
    /// DELETE FROM room_events e
    ///  USING (SELECT room_id, max(pos) AS upto FROM room_events WHERE at < $1 GROUP BY room_id) old
    ///  WHERE e.room_id = old.room_id AND e.pos <= old.upto
    /// ```
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut connection = self.0.connection().await?;
        let delete = diesel::sql_query(
            "DELETE FROM room_events e \
             USING (SELECT room_id, max(pos) AS upto FROM room_events WHERE at < $1 GROUP BY room_id) old \
             WHERE e.room_id = old.room_id AND e.pos <= old.upto",
        )
        .bind::<Timestamptz, _>(before)
        .execute(&mut connection);
        let pruned = self.0.bounded(delete).await?;
        Ok(u64::try_from(pruned).unwrap_or(u64::MAX))
    }
}
