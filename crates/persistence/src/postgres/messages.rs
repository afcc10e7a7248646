//! [`MessageRepository`] on PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use p_chat_domain::events::{Logged, RoomEvent};
use p_chat_domain::message::{
    ClientMsgId, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage,
};
use p_chat_domain::ports::{MessageRepository, StoreError};
use p_chat_domain::room::RoomId;
use p_chat_domain::user::UserId;
use uuid::Uuid;

use super::events::{advance, log, unless_rolled_back};
use super::group_commit::GroupCommit;
use super::models::{EventRow, MessageRow, kind};
use super::pool::PgStore;
use super::schema::{messages, rooms};

/// The constraint that makes sends idempotent (see the chat migration).
const CLIENT_MSG_ID_KEY: &str = "messages_client_msg_id_key";

/// One statement storing a new message and its `message` event (a
/// data-modifying CTE), so that logging the event costs the send path one
/// row, not a round trip. Binds: the message's id, room, seq, author, body,
/// client id and time, then the event's position and kind.
const INSERT_WITH_EVENT: &str = "\
WITH m AS (
    INSERT INTO messages (id, room_id, seq, author_id, body, client_msg_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING *
), e AS (
    INSERT INTO room_events (room_id, pos, kind, at, message_id)
    SELECT room_id, $8, $9, created_at, id FROM m
)
SELECT * FROM m";

/// The last statement of a batch: its `message` events (one per message,
/// from bound arrays), and the room's counters moved past them. Binds: the
/// room, the kind, the events' positions, times and messages, then the new
/// `last_seq` and `last_pos`.
const LOG_BATCH: &str = "\
WITH e AS (
    INSERT INTO room_events (room_id, pos, kind, at, message_id)
    SELECT $1, new.pos, $2, new.at, new.message_id
      FROM unnest($3::bigint[], $4::timestamptz[], $5::uuid[]) AS new (pos, at, message_id)
)
UPDATE rooms SET last_seq = $6, last_pos = $7 WHERE id = $1";

/// Messages in the `messages` table, numbered per room by the room's
/// `last_seq` (see [`MessageRepository::append`] below).
#[derive(Clone)]
pub struct PgMessages {
    store: PgStore,
    /// Where appends wait to share their room's next transaction.
    appends: Arc<GroupCommit>,
}

impl PgMessages {
    /// The adapter over `store`.
    pub fn new(store: PgStore) -> Self {
        Self {
            appends: Arc::new(GroupCommit::new(store.clone())),
            store,
        }
    }
}

/// The message `author` sent in `room` with `client_id`, if any: served by
/// the `messages_client_msg_id_key` unique index.
async fn by_client_id(
    conn: &mut AsyncPgConnection,
    room: RoomId,
    author: UserId,
    client_id: &ClientMsgId,
) -> QueryResult<Option<MessageRow>> {
    messages::table
        .filter(messages::room_id.eq(room.as_uuid()))
        .filter(messages::author_id.eq(author.as_uuid()))
        .filter(messages::client_msg_id.eq(client_id.as_str()))
        .select(MessageRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether `error` is a unique constraint refusing a write.
fn is_unique_violation(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Whether `error` is the idempotency key refusing a repeated send.
fn is_repeat(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(CLIENT_MSG_ID_KEY)
    )
}

/// The stored row and, if this call stored it, the position of its event;
/// `None` for no room.
type AppendOutcome = Option<(MessageRow, Option<i64>)>;

#[async_trait]
impl MessageRepository for PgMessages {
    /// Appends go through [`GroupCommit`]: a lone append is one transaction
    /// of its own ([`append_one`]); appends to one room that arrive while
    /// its previous transaction runs share the next one ([`append_batch`]).
    async fn append(&self, message: &NewMessage) -> Result<Option<Logged<Message>>, StoreError> {
        self.appends.append(message.clone()).await
    }

    /// A keyset query on `(room_id, seq)`, served by the
    /// `messages_room_id_seq_key` unique index in either direction, reading
    /// one row more than the page to learn `has_more`:
    ///
    /// - newest page: `ORDER BY seq DESC LIMIT n + 1`, then reversed;
    /// - `after = k`: `seq > k ORDER BY seq ASC LIMIT n + 1`;
    /// - `before = k`: `seq < k ORDER BY seq DESC LIMIT n + 1`, then reversed;
    /// - both bounds: `seq > after AND seq < before`, read forward.
    ///
    /// `EXPLAIN` of a `before` page on a scratch database of 200,000
    /// messages in 200 rooms (PostgreSQL 15):
    ///
    /// ```text
    /// EXPLAIN SELECT * FROM messages WHERE room_id = '00000000-0000-7000-8000-000000000007'
    ///   AND seq < 500 ORDER BY seq DESC LIMIT 51;
    ///
    ///  Limit  (cost=0.42..85.39 rows=51 width=123)
    ///    ->  Index Scan Backward using messages_room_id_seq_key on messages  (cost=0.42..831.84 rows=499 width=123)
    ///          Index Cond: ((room_id = '00000000-0000-7000-8000-000000000007'::uuid) AND (seq < 500))
    /// ```
    ///
    /// `docs/storage.md` has the plans of the other shapes.
    async fn page(&self, room: RoomId, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let limit = query.limit.get();
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut select = messages::table
            .filter(messages::room_id.eq(room.as_uuid()))
            .select(MessageRow::as_select())
            .limit(fetch)
            .into_boxed();
        if let Some(after) = query.after {
            select = select.filter(messages::seq.gt(after.value()));
        }
        if let Some(before) = query.before {
            select = select.filter(messages::seq.lt(before.value()));
        }
        let forward = query.reads_forward();
        select = if forward {
            select.order_by(messages::seq.asc())
        } else {
            select.order_by(messages::seq.desc())
        };
        let mut connection = self.store.connection().await?;
        let mut rows = self.store.bounded(select.load(&mut connection)).await?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        if !forward {
            rows.reverse();
        }
        Ok(HistoryPage {
            messages: rows
                .into_iter()
                .map(Message::try_from)
                .collect::<Result<_, _>>()?,
            has_more,
        })
    }

    async fn by_id(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let mut connection = self.store.connection().await?;
        let query = messages::table
            .find(id.as_uuid())
            .filter(messages::room_id.eq(room.as_uuid()))
            .select(MessageRow::as_select())
            .first(&mut connection);
        let row = self.store.bounded(async { query.await.optional() }).await?;
        row.map(Message::try_from).transpose()
    }

    /// One transaction: take the room's next position ([`advance`], the
    /// room's lock first, as every change does), then one conditional
    /// `UPDATE` of the message, then its `message_updated` event. A
    /// tombstone is never edited, also when the two race (they queue on the
    /// room's lock); no message to edit rolls it all back.
    async fn edit(
        &self,
        room: RoomId,
        id: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let mut connection = self.store.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(locked) = advance(conn, room.as_uuid(), 1).await? else {
                return Err(Error::RollbackTransaction);
            };
            let target = messages::table
                .find(id.as_uuid())
                .filter(messages::room_id.eq(room.as_uuid()))
                .filter(messages::deleted_at.is_null());
            let edited = diesel::update(target)
                .set((messages::body.eq(body.as_str()), messages::edited_at.eq(at)))
                .returning(MessageRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(edited) = edited else {
                return Err(Error::RollbackTransaction);
            };
            let event = EventRow::of_message(kind::MESSAGE_UPDATED, &edited, locked.last_pos(), at);
            log(conn, std::slice::from_ref(&event)).await?;
            Ok((event, edited))
        });
        let outcome = self.store.bounded(unless_rolled_back(transaction)).await?;
        outcome
            .map(|(event, edited)| event.into_event(Some(edited)))
            .transpose()
    }

    /// Like `edit`: the room's next position, then `UPDATE` of the message
    /// unless it is a tombstone already, then its `message_deleted` event.
    /// A message already deleted (or missing) rolls that back and is read
    /// as it is.
    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Logged<Message>>, StoreError> {
        let mut connection = self.store.connection().await?;
        let transaction = connection.transaction::<_, Error, _>(async |conn| {
            let Some(locked) = advance(conn, room.as_uuid(), 1).await? else {
                return Err(Error::RollbackTransaction);
            };
            let target = messages::table
                .find(id.as_uuid())
                .filter(messages::room_id.eq(room.as_uuid()))
                .filter(messages::deleted_at.is_null());
            let deleted = diesel::update(target)
                .set((
                    messages::body.eq(None::<String>),
                    messages::deleted_at.eq(at),
                ))
                .returning(MessageRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(deleted) = deleted else {
                return Err(Error::RollbackTransaction);
            };
            let event =
                EventRow::of_message(kind::MESSAGE_DELETED, &deleted, locked.last_pos(), at);
            log(conn, std::slice::from_ref(&event)).await?;
            Ok((event, deleted))
        });
        if let Some((event, deleted)) = self.store.bounded(unless_rolled_back(transaction)).await? {
            return Ok(Some(Logged {
                event: Some(event.into_event(Some(deleted.clone()))?),
                value: Message::try_from(deleted)?,
            }));
        }
        // Read on the same connection: another one, while this one is held,
        // could wait for a pool that racing deletes have drained.
        let query = messages::table
            .find(id.as_uuid())
            .filter(messages::room_id.eq(room.as_uuid()))
            .select(MessageRow::as_select())
            .first(&mut connection);
        let earlier = self.store.bounded(async { query.await.optional() }).await?;
        earlier
            .map(|row| {
                Ok(Logged {
                    value: Message::try_from(row)?,
                    event: None,
                })
            })
            .transpose()
    }

    // issue 13 stubs, replaced by the PostgreSQL adapter's work.
    async fn react(
        &self,
        _room: RoomId,
        _change: &p_chat_domain::reaction::ReactionChange,
        _at: DateTime<Utc>,
    ) -> Result<p_chat_domain::ports::Reacted, StoreError> {
        Err(StoreError::Failure("not yet on PostgreSQL".into()))
    }

    async fn unreact(
        &self,
        _room: RoomId,
        _change: &p_chat_domain::reaction::ReactionChange,
        _at: DateTime<Utc>,
    ) -> Result<p_chat_domain::ports::Reacted, StoreError> {
        Err(StoreError::Failure("not yet on PostgreSQL".into()))
    }

    async fn search(
        &self,
        _query: &p_chat_domain::search::SearchQuery,
    ) -> Result<Vec<p_chat_domain::search::SearchHit>, StoreError> {
        Err(StoreError::Failure("not yet on PostgreSQL".into()))
    }
}

/// One append in a transaction of its own:
///
/// 1. With a client id, look for an earlier send (the common repeat costs
///    one indexed read and no lock).
/// 2. One transaction: `UPDATE rooms SET last_seq = last_seq + 1, last_pos
///    = last_pos + 1 ... RETURNING last_seq, last_pos` (no row: no room),
///    then [`INSERT_WITH_EVENT`]: the message with that seq and its event
///    at that position, in one statement. The room row's lock serializes
///    one room's writers until commit, so seqs and positions are dense and
///    never reused; any failure rolls the increments back with the insert,
///    so it consumes neither.
/// 3. If the insert hit a unique constraint, the transaction is rolled
///    back. A repeat that raced past step 1 hits
///    `messages_client_msg_id_key` (the earlier send committed first, as
///    it held the room lock), or the primary key first when the repeat
///    reuses the message id: either way, the earlier message with this
///    client id is read and returned. The constraint, not step 1, is what
///    guarantees idempotency.
pub(super) async fn append_one(
    store: &PgStore,
    message: &NewMessage,
) -> Result<Option<Logged<Message>>, StoreError> {
    let mut connection = store.connection().await?;
    let conn: &mut AsyncPgConnection = &mut connection;
    let outcome = store
        .bounded(async move {
            if let Some(client_id) = &message.client_msg_id {
                let earlier =
                    by_client_id(conn, message.room_id, message.author_id, client_id).await?;
                if let Some(earlier) = earlier {
                    return Ok(Some((earlier, None)));
                }
            }
            let transaction = conn
                .transaction::<_, Error, _>(async |conn| {
                    let taken: Option<(i64, i64)> =
                        diesel::update(rooms::table.find(message.room_id.as_uuid()))
                            .set((
                                rooms::last_seq.eq(rooms::last_seq + 1),
                                rooms::last_pos.eq(rooms::last_pos + 1),
                            ))
                            .returning((rooms::last_seq, rooms::last_pos))
                            .get_result(conn)
                            .await
                            .optional()?;
                    let Some((seq, pos)) = taken else {
                        return Ok(None);
                    };
                    let stored: MessageRow = diesel::sql_query(INSERT_WITH_EVENT)
                        .bind::<SqlUuid, _>(message.id.as_uuid())
                        .bind::<SqlUuid, _>(message.room_id.as_uuid())
                        .bind::<BigInt, _>(seq)
                        .bind::<SqlUuid, _>(message.author_id.as_uuid())
                        .bind::<Text, _>(message.body.as_str())
                        .bind::<Nullable<Text>, _>(
                            message.client_msg_id.as_ref().map(ClientMsgId::as_str),
                        )
                        .bind::<Timestamptz, _>(message.created_at)
                        .bind::<BigInt, _>(pos)
                        .bind::<Text, _>(kind::MESSAGE)
                        .get_result(conn)
                        .await?;
                    Ok(Some((stored, pos)))
                })
                .await;
            let outcome: AppendOutcome = match transaction {
                Ok(stored) => stored.map(|(stored, pos)| (stored, Some(pos))),
                Err(error) if is_unique_violation(&error) => {
                    let Some(client_id) = &message.client_msg_id else {
                        return Err(error);
                    };
                    match by_client_id(conn, message.room_id, message.author_id, client_id).await? {
                        Some(earlier) => Some((earlier, None)),
                        // Gone only if the room was deleted meanwhile.
                        None if is_repeat(&error) => None,
                        // Another key (the message id) refused it.
                        None => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            };
            Ok(outcome)
        })
        .await?;
    outcome.map(logged).transpose()
}

/// The answer for a stored row, with its `message` event at `pos` if this
/// append stored it.
fn logged((row, pos): (MessageRow, Option<i64>)) -> Result<Logged<Message>, StoreError> {
    let event = pos
        .map(|pos| {
            EventRow::of_message(kind::MESSAGE, &row, pos, row.created_at())
                .into_event(Some(row.clone()))
        })
        .transpose()?;
    Ok(Logged {
        value: Message::try_from(row)?,
        event,
    })
}

/// Where the answer of one append of a batch comes from.
#[derive(Clone, Copy)]
enum Source {
    /// The n-th message stored before the batch (a repeated client id).
    Earlier(usize),
    /// The n-th message the batch inserts; `false` for a repeat, within the
    /// batch, of an append that inserts it.
    Inserted(usize, bool),
}

/// Several appends to one room in one transaction, answered in order:
///
/// 1. `SELECT last_seq, last_pos FROM rooms ... FOR UPDATE` takes the
///    room's lock (every change of the room takes it before writing; no
///    row: no room, every answer `None`).
/// 2. Under the lock, the messages stored earlier with the batch's client
///    ids are read: a repeat gets its earlier message. A client id used
///    twice within the batch is inserted once.
/// 3. One `INSERT` stores the new messages with the next seqs; one more
///    statement ([`LOG_BATCH`]) stores their `message` events at the next
///    positions, consecutive in seq order, and moves `last_seq` and
///    `last_pos` past them.
///
/// Any error rolls it all back; the caller then retries each append alone
/// ([`append_one`]), which tells whose append the error was.
pub(super) async fn append_batch(
    store: &PgStore,
    batch: &[&NewMessage],
) -> Result<Vec<Option<Logged<Message>>>, StoreError> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let room = first.room_id.as_uuid();
    if batch
        .iter()
        .any(|message| message.room_id.as_uuid() != room)
    {
        return Err(StoreError::Failure(
            "a batch of appends spans several rooms".into(),
        ));
    }
    let mut connection = store.connection().await?;
    let transaction = connection.transaction::<_, Error, _>(async |conn| {
        let counters: Option<(i64, i64)> = rooms::table
            .find(room)
            .select((rooms::last_seq, rooms::last_pos))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some((mut last_seq, last_pos)) = counters else {
            return Ok(None);
        };
        let client_ids: Vec<&str> = batch
            .iter()
            .filter_map(|message| message.client_msg_id.as_ref().map(ClientMsgId::as_str))
            .collect();
        let earlier: Vec<MessageRow> = if client_ids.is_empty() {
            Vec::new()
        } else {
            messages::table
                .filter(messages::room_id.eq(room))
                .filter(messages::client_msg_id.eq_any(&client_ids))
                .select(MessageRow::as_select())
                .load(conn)
                .await?
        };
        let mut by_key: HashMap<(Uuid, &str), Source> = earlier
            .iter()
            .enumerate()
            .filter_map(|(index, row)| Some((row.client_key()?, Source::Earlier(index))))
            .collect();
        let mut new_rows = Vec::new();
        let mut sources = Vec::with_capacity(batch.len());
        for message in batch {
            let key = message
                .client_msg_id
                .as_ref()
                .map(|client_id| (message.author_id.as_uuid(), client_id.as_str()));
            if let Some(source) = key.and_then(|key| by_key.get(&key)) {
                sources.push(match *source {
                    Source::Inserted(index, _) => Source::Inserted(index, false),
                    earlier => earlier,
                });
                continue;
            }
            last_seq += 1;
            let source = Source::Inserted(new_rows.len(), true);
            new_rows.push(MessageRow::new(message, last_seq));
            if let Some(key) = key {
                by_key.insert(key, source);
            }
            sources.push(source);
        }
        if new_rows.is_empty() {
            return Ok(Some((earlier, Vec::new(), sources, last_pos)));
        }
        let mut inserted: Vec<MessageRow> = diesel::insert_into(messages::table)
            .values(&new_rows)
            .returning(MessageRow::as_returning())
            .get_results(conn)
            .await?;
        inserted.sort_by_key(MessageRow::seq);
        let positions: Vec<i64> = (last_pos + 1..).take(inserted.len()).collect();
        let times: Vec<DateTime<Utc>> = inserted.iter().map(MessageRow::created_at).collect();
        let ids: Vec<Uuid> = inserted.iter().map(MessageRow::id).collect();
        let new_last_pos = positions.last().copied().unwrap_or(last_pos);
        diesel::sql_query(LOG_BATCH)
            .bind::<SqlUuid, _>(room)
            .bind::<Text, _>(kind::MESSAGE)
            .bind::<Array<BigInt>, _>(positions)
            .bind::<Array<Timestamptz>, _>(times)
            .bind::<Array<SqlUuid>, _>(ids)
            .bind::<BigInt, _>(last_seq)
            .bind::<BigInt, _>(new_last_pos)
            .execute(conn)
            .await?;
        Ok(Some((earlier, inserted, sources, last_pos)))
    });
    let Some((earlier, inserted, sources, last_pos)) = store.bounded(transaction).await? else {
        return Ok(vec![None; batch.len()]);
    };
    sources
        .into_iter()
        .map(|source| {
            let (rows, index, created) = match source {
                Source::Earlier(index) => (&earlier, index, false),
                Source::Inserted(index, created) => (&inserted, index, created),
            };
            let row = rows.get(index).cloned().ok_or_else(|| {
                StoreError::Failure("a batch insert returned fewer rows than it stored".into())
            })?;
            // The n-th message inserted has the n-th position after the batch's start.
            let pos = i64::try_from(index)
                .ok()
                .and_then(|offset| last_pos.checked_add(offset + 1))
                .ok_or_else(|| StoreError::Failure("a batch outgrew its positions".into()))?;
            logged((row, created.then_some(pos))).map(Some)
        })
        .collect()
}
