//! [`MessageRepository`] on PostgreSQL.

use std::collections::{HashMap, HashSet};
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
use p_chat_domain::ports::{MessageRepository, Reacted, StoreError};
use p_chat_domain::reaction::{Reaction, ReactionChange};
use p_chat_domain::room::{RoomId, RoomName};
use p_chat_domain::search::{SearchHit, SearchQuery};
use p_chat_domain::user::UserId;
use uuid::Uuid;

use super::events::{advance, log, unless_rolled_back};
use super::group_commit::GroupCommit;
use super::models::{EventRow, Loaded, MessageRow, ReactionRow, kind};
use super::pool::PgStore;
use super::reactions::{into_messages, one_with_reactions, with_reactions};
use super::schema::{message_mentions, message_reactions, messages, rooms};

/// The constraint that makes sends idempotent (see the chat migration).
const CLIENT_MSG_ID_KEY: &str = "messages_client_msg_id_key";

/// One statement storing a new message, its `message` event and its
/// `message_mentions` rows (data-modifying CTEs), so that logging the event
/// and indexing the mentions cost the send path rows, not round trips.
/// Binds: the message's id, room, seq, author, body, client id and time,
/// the event's position and kind, then the message's `reply_to` and
/// mentions.
const INSERT_WITH_EVENT: &str = "\
WITH m AS (
    INSERT INTO messages (id, room_id, seq, author_id, body, client_msg_id, created_at, reply_to, mentions)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $10, $11)
    RETURNING *
), e AS (
    INSERT INTO room_events (room_id, pos, kind, at, message_id)
    SELECT room_id, $8, $9, created_at, id FROM m
), n AS (
    INSERT INTO message_mentions (user_id, room_id, seq, message_id)
    SELECT mentioned, m.room_id, m.seq, m.id FROM m, unnest(m.mentions) AS mentioned
     WHERE mentioned <> m.author_id
)
SELECT * FROM m";

/// The last statement of a batch: its `message` events (one per message,
/// from bound arrays), the `message_mentions` rows of its messages (just
/// inserted, found by primary key), and the room's counters moved past
/// them. Binds: the room, the kind, the events' positions, times and
/// messages, then the new `last_seq` and `last_pos`.
const LOG_BATCH: &str = "\
WITH e AS (
    INSERT INTO room_events (room_id, pos, kind, at, message_id)
    SELECT $1, new.pos, $2, new.at, new.message_id
      FROM unnest($3::bigint[], $4::timestamptz[], $5::uuid[]) AS new (pos, at, message_id)
), n AS (
    INSERT INTO message_mentions (user_id, room_id, seq, message_id)
    SELECT mentioned, m.room_id, m.seq, m.id FROM messages m, unnest(m.mentions) AS mentioned
     WHERE m.id = ANY($5) AND mentioned <> m.author_id
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

/// The stored row (with its reactions) and, if this call stored it, the
/// position of its event; `None` for no room.
type AppendOutcome = Option<(Loaded, Option<i64>)>;

#[async_trait]
impl MessageRepository for PgMessages {
    /// Appends go through [`GroupCommit`]: a lone append is one transaction
    /// of its own ([`append_one`]); appends to one room that arrive while
    /// its previous transaction runs share the next one ([`append_batch`]).
    async fn append(&self, message: &NewMessage) -> Result<Option<Logged<Message>>, StoreError> {
        let appended = self.appends.append(message.clone()).await?;
        if appended
            .as_ref()
            .is_some_and(|logged| logged.event.is_some())
        {
            crate::metrics::message_stored();
        }
        Ok(appended)
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
        let conn: &mut AsyncPgConnection = &mut connection;
        let (loaded, has_more) = self
            .store
            .bounded(async move {
                let mut rows: Vec<MessageRow> = select.load(conn).await?;
                let has_more = rows.len() > limit;
                rows.truncate(limit);
                if !forward {
                    rows.reverse();
                }
                Ok((with_reactions(conn, rows).await?, has_more))
            })
            .await?;
        Ok(HistoryPage {
            messages: into_messages(loaded)?,
            has_more,
        })
    }

    /// The row by primary key, then its reactions.
    async fn by_id(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let mut connection = self.store.connection().await?;
        let loaded = self
            .store
            .bounded(read_loaded(&mut connection, room, id))
            .await?;
        loaded.map(Message::try_from).transpose()
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
            Ok((event, one_with_reactions(conn, edited).await?))
        });
        let outcome = self.store.bounded(unless_rolled_back(transaction)).await?;
        outcome
            .map(|(event, edited)| event.into_event(Some(Message::try_from(edited)?)))
            .transpose()
    }

    /// Like `edit`: the room's next position, then `UPDATE` of the message
    /// unless it is a tombstone already (its body and mentions cleared),
    /// the `DELETE` of its `message_mentions` and `message_reactions` rows,
    /// then its `message_deleted` event. A message already deleted (or
    /// missing) rolls that back and is read as it is.
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
                    messages::mentions.eq(Vec::<Uuid>::new()),
                ))
                .returning(MessageRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(deleted) = deleted else {
                return Err(Error::RollbackTransaction);
            };
            diesel::delete(
                message_mentions::table.filter(message_mentions::message_id.eq(deleted.id())),
            )
            .execute(conn)
            .await?;
            diesel::delete(
                message_reactions::table.filter(message_reactions::message_id.eq(deleted.id())),
            )
            .execute(conn)
            .await?;
            let event =
                EventRow::of_message(kind::MESSAGE_DELETED, &deleted, locked.last_pos(), at);
            log(conn, std::slice::from_ref(&event)).await?;
            Ok((event, deleted))
        });
        if let Some((event, deleted)) = self.store.bounded(unless_rolled_back(transaction)).await? {
            // A tombstone has no reactions: they went with it.
            let tombstone = Message::try_from(Loaded::bare(deleted))?;
            return Ok(Some(Logged {
                event: Some(event.into_event(Some(tombstone.clone()))?),
                value: tombstone,
            }));
        }
        // Read on the same connection: another one, while this one is held,
        // could wait for a pool that racing deletes have drained.
        let earlier = self
            .store
            .bounded(read_loaded(&mut connection, room, id))
            .await?;
        earlier
            .map(|loaded| {
                Ok(Logged {
                    value: Message::try_from(loaded)?,
                    event: None,
                })
            })
            .transpose()
    }

    /// [`change_reaction`]: adding inserts the user's row, unless it is
    /// there (nothing changes) or the emoji is new and the message has
    /// [`Reaction::MAX_PER_MESSAGE`] distinct emoji already (`TooMany`).
    async fn react(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError> {
        change_reaction(&self.store, room, change, at, Toggle::Add).await
    }

    /// [`change_reaction`]: removing deletes the user's row, unless it is
    /// not there (nothing changes).
    async fn unreact(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError> {
        change_reaction(&self.store, room, change, at, Toggle::Remove).await
    }

    /// One query ([`SEARCH`]): the GIN index `messages_body_fts_idx` finds
    /// the bodies matching every word (`plainto_tsquery`, the `simple`
    /// configuration: lower-cased words, no stemming), joined to the
    /// caller's memberships and their rooms' names, ranked by `ts_rank`,
    /// then newest first; then the hits' reactions in one more.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        let limit = i64::try_from(query.limit.get()).unwrap_or(i64::MAX);
        let candidates = i64::try_from(SearchQuery::CANDIDATES).unwrap_or(i64::MAX);
        let mut connection = self.store.connection().await?;
        let conn: &mut AsyncPgConnection = &mut connection;
        let found = self
            .store
            .bounded(async move {
                let hits: Vec<HitRow> = diesel::sql_query(SEARCH)
                    .bind::<SqlUuid, _>(query.user.as_uuid())
                    .bind::<Text, _>(query.text.as_str())
                    .bind::<Nullable<SqlUuid>, _>(query.room.map(|room| room.as_uuid()))
                    .bind::<Nullable<Timestamptz>, _>(query.before)
                    .bind::<BigInt, _>(candidates)
                    .bind::<BigInt, _>(limit)
                    .load(conn)
                    .await?;
                let names: Vec<String> = hits.iter().map(|hit| hit.room_name.clone()).collect();
                let rows = hits.into_iter().map(|hit| hit.message).collect();
                Ok((with_reactions(conn, rows).await?, names))
            })
            .await?;
        let (loaded, names) = found;
        loaded
            .into_iter()
            .zip(names)
            .map(|(loaded, name)| {
                Ok(SearchHit {
                    message: Message::try_from(loaded)?,
                    room_name: RoomName::parse(&name)
                        .map_err(|_| StoreError::Failure("a room has an invalid name".into()))?,
                })
            })
            .collect()
    }
}

/// A search result row: the message and its room's name.
#[derive(QueryableByName)]
struct HitRow {
    #[diesel(embed)]
    message: MessageRow,
    #[diesel(sql_type = Text)]
    room_name: String,
}

/// The search of [`MessageRepository::search`]: the newest
/// [`SearchQuery::CANDIDATES`] matches (by `messages_search_words_idx` for a
/// rare word, by walking `messages_created_at_idx` back for a common one:
/// the planner picks), ranked on their stored words. Binds: the caller, the
/// text, the room (or `NULL`), the `before` time (or `NULL`), the number of
/// candidates and the limit.
const SEARCH: &str = "\
WITH candidates AS MATERIALIZED (
    SELECT m.id, m.created_at, ts_rank(m.search_words, q) AS rank
      FROM messages m
      JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = $1,
           plainto_tsquery('simple', $2) AS q
     WHERE m.search_words @@ q
       AND m.deleted_at IS NULL
       AND ($3::uuid IS NULL OR m.room_id = $3)
       AND ($4::timestamptz IS NULL OR m.created_at < $4)
     ORDER BY m.created_at DESC, m.id DESC
     LIMIT $5)
SELECT m.*, r.name AS room_name
  FROM candidates c
  JOIN messages m ON m.id = c.id
  JOIN rooms r ON r.id = m.room_id
 ORDER BY c.rank DESC, c.created_at DESC, c.id DESC
 LIMIT $6";

/// The message `id` of `room` with its reactions, if any.
async fn read_loaded(
    conn: &mut AsyncPgConnection,
    room: RoomId,
    id: MessageId,
) -> QueryResult<Option<Loaded>> {
    let row: Option<MessageRow> = messages::table
        .find(id.as_uuid())
        .filter(messages::room_id.eq(room.as_uuid()))
        .select(MessageRow::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) => Ok(Some(one_with_reactions(conn, row).await?)),
        None => Ok(None),
    }
}

/// Whether a reaction change adds or removes.
#[derive(Clone, Copy)]
enum Toggle {
    /// `react`.
    Add,
    /// `unreact`.
    Remove,
}

/// Why a reaction change's transaction was rolled back.
enum Undone {
    /// The database failed.
    Failed(Error),
    /// The change is refused: no message, a tombstone, too many emoji.
    Refused(Reacted),
    /// The change would change nothing: the message as it is (read under
    /// its lock).
    Unchanged(Box<Loaded>),
}

impl From<Error> for Undone {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

/// Adds or removes a reaction in one transaction:
///
/// 1. the room's next position ([`advance`]: the room's lock first, as
///    every change of a room takes it; no room: `NoMessage`);
/// 2. `SELECT ... FOR UPDATE` of the message (none in the room:
///    `NoMessage`; a tombstone: `Deleted`), then its reaction rows;
/// 3. the `INSERT` or `DELETE` of the user's row, decided on those rows
///    under both locks, so that the 20-emoji limit and the ordinals are
///    exact however many members react at once;
/// 4. its `reaction_added` or `reaction_removed` event.
///
/// Refused or changing nothing, it is all rolled back: no position is
/// consumed and nothing is logged.
async fn change_reaction(
    store: &PgStore,
    room: RoomId,
    change: &ReactionChange,
    at: DateTime<Utc>,
    toggle: Toggle,
) -> Result<Reacted, StoreError> {
    let mut connection = store.connection().await?;
    let conn: &mut AsyncPgConnection = &mut connection;
    let transaction = async move {
        let outcome = conn
            .transaction::<_, Undone, _>(async |conn| {
                let Some(locked) = advance(conn, room.as_uuid(), 1).await? else {
                    return Err(Undone::Refused(Reacted::NoMessage));
                };
                let message: Option<MessageRow> = messages::table
                    .find(change.message_id.as_uuid())
                    .filter(messages::room_id.eq(room.as_uuid()))
                    .select(MessageRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let Some(message) = message else {
                    return Err(Undone::Refused(Reacted::NoMessage));
                };
                if message.is_deleted() {
                    return Err(Undone::Refused(Reacted::Deleted));
                }
                let Loaded {
                    row: message,
                    reactions: mut rows,
                } = one_with_reactions(conn, message).await?;
                let emoji = change.emoji.as_str();
                let mine = rows.iter().position(|row| {
                    row.emoji() == emoji && row.user_id() == change.user_id.as_uuid()
                });
                let kind = match (toggle, mine) {
                    (Toggle::Add, Some(_)) | (Toggle::Remove, None) => {
                        return Err(Undone::Unchanged(Box::new(Loaded {
                            row: message,
                            reactions: rows,
                        })));
                    }
                    (Toggle::Add, None) => {
                        let distinct: HashSet<&str> = rows.iter().map(ReactionRow::emoji).collect();
                        if !distinct.contains(emoji) && distinct.len() >= Reaction::MAX_PER_MESSAGE
                        {
                            return Err(Undone::Refused(Reacted::TooMany));
                        }
                        let added = ReactionRow::added(change, at, &rows);
                        diesel::insert_into(message_reactions::table)
                            .values(&added)
                            .execute(conn)
                            .await?;
                        rows.push(added);
                        rows.sort_by_key(ReactionRow::order);
                        kind::REACTION_ADDED
                    }
                    (Toggle::Remove, Some(index)) => {
                        let key = (change.message_id.as_uuid(), emoji, change.user_id.as_uuid());
                        diesel::delete(message_reactions::table.find(key))
                            .execute(conn)
                            .await?;
                        rows.remove(index);
                        kind::REACTION_REMOVED
                    }
                };
                let event =
                    EventRow::of_reaction(kind, room.as_uuid(), change, locked.last_pos(), at)?;
                log(conn, std::slice::from_ref(&event)).await?;
                Ok((
                    event,
                    Loaded {
                        row: message,
                        reactions: rows,
                    },
                ))
            })
            .await;
        match outcome {
            Ok((event, loaded)) => Ok(Settled::Changed(event, Box::new(loaded))),
            Err(Undone::Failed(error)) => Err(error),
            Err(Undone::Refused(refused)) => Ok(Settled::Refused(refused)),
            Err(Undone::Unchanged(loaded)) => Ok(Settled::Unchanged(loaded)),
        }
    };
    Ok(match store.bounded(transaction).await? {
        Settled::Changed(event, loaded) => Reacted::Done(Box::new(Logged {
            event: Some(event.into_event(None)?),
            value: Message::try_from(*loaded)?,
        })),
        Settled::Unchanged(loaded) => Reacted::Done(Box::new(Logged {
            value: Message::try_from(*loaded)?,
            event: None,
        })),
        Settled::Refused(refused) => refused,
    })
}

/// How a reaction change's transaction ended, once it has.
enum Settled {
    /// Committed: its event and the message after it.
    Changed(EventRow, Box<Loaded>),
    /// Rolled back, changing nothing: the message as it is.
    Unchanged(Box<Loaded>),
    /// Rolled back, refused.
    Refused(Reacted),
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
                    return Ok(Some((one_with_reactions(conn, earlier).await?, None)));
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
                        .bind::<Nullable<SqlUuid>, _>(message.reply_to.map(|id| id.as_uuid()))
                        .bind::<Array<SqlUuid>, _>(mention_ids(message))
                        .get_result(conn)
                        .await?;
                    Ok(Some((stored, pos)))
                })
                .await;
            let outcome: AppendOutcome = match transaction {
                // A new message has no reactions yet.
                Ok(stored) => stored.map(|(stored, pos)| (Loaded::bare(stored), Some(pos))),
                Err(error) if is_unique_violation(&error) => {
                    let Some(client_id) = &message.client_msg_id else {
                        return Err(error);
                    };
                    match by_client_id(conn, message.room_id, message.author_id, client_id).await? {
                        Some(earlier) => Some((one_with_reactions(conn, earlier).await?, None)),
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

/// The ids of the users `message` mentions, as stored.
fn mention_ids(message: &NewMessage) -> Vec<Uuid> {
    message
        .mentions
        .users()
        .iter()
        .map(|user| user.as_uuid())
        .collect()
}

/// The answer for a stored row, with its `message` event at `pos` if this
/// append stored it.
fn logged((loaded, pos): (Loaded, Option<i64>)) -> Result<Logged<Message>, StoreError> {
    let event_row = pos
        .map(|pos| EventRow::of_message(kind::MESSAGE, &loaded.row, pos, loaded.row.created_at()));
    let value = Message::try_from(loaded)?;
    let event = event_row
        .map(|row| row.into_event(Some(value.clone())))
        .transpose()?;
    Ok(Logged { value, event })
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
        let earlier: Vec<Loaded> = if client_ids.is_empty() {
            Vec::new()
        } else {
            let rows = messages::table
                .filter(messages::room_id.eq(room))
                .filter(messages::client_msg_id.eq_any(&client_ids))
                .select(MessageRow::as_select())
                .load(conn)
                .await?;
            with_reactions(conn, rows).await?
        };
        let mut by_key: HashMap<(Uuid, &str), Source> = earlier
            .iter()
            .enumerate()
            .filter_map(|(index, loaded)| Some((loaded.row.client_key()?, Source::Earlier(index))))
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
        let mut rows: Vec<MessageRow> = diesel::insert_into(messages::table)
            .values(&new_rows)
            .returning(MessageRow::as_returning())
            .get_results(conn)
            .await?;
        rows.sort_by_key(MessageRow::seq);
        let positions: Vec<i64> = (last_pos + 1..).take(rows.len()).collect();
        let times: Vec<DateTime<Utc>> = rows.iter().map(MessageRow::created_at).collect();
        let ids: Vec<Uuid> = rows.iter().map(MessageRow::id).collect();
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
        // New messages have no reactions yet.
        let inserted: Vec<Loaded> = rows.into_iter().map(Loaded::bare).collect();
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
