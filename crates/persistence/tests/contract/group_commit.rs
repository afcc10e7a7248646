//! Group commit of the PostgreSQL message store: appends to one room that
//! queue up while its lock is held are stored by one transaction (their rows
//! share an `xmin`), with the same answers as one by one: dense seqs, their
//! events at dense positions in seq order, repeats of a client id answered
//! with the first message and no event, within the batch too; replies and
//! mentions stored as by a lone append.
//!
//! The room's lock is held from a connection of the test's own, so that the
//! appends queue up behind it. Skipped (loudly) without a database, failed
//! in CI.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use p_chat_domain::events::{Change, Logged};
use p_chat_domain::message::{ClientMsgId, Mentions, Message, NewMessage, Seq};
use p_chat_domain::ports::StoreError;
use p_chat_domain::room::{RoomId, Visibility};
use p_chat_domain::user::UserId;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use crate::fixtures::{
    added_member, at, body, chat_user, created_room, events_after, new_message,
    new_message_with_client_id, pos, stored_room,
};
use crate::{ChatStores, postgres_chat_stores};

/// Long enough for spawned appends to reach the queue (or the lock).
const SETTLE: Duration = Duration::from_millis(300);

struct Fixture {
    stores: ChatStores,
    room: RoomId,
    ann: UserId,
    bob: UserId,
}

async fn fixture() -> Option<Fixture> {
    let stores = postgres_chat_stores().await?;
    let (ann, room) = created_room(&stores, Visibility::Public).await;
    let bob = chat_user(&stores).await;
    Some(Fixture {
        room: room.id,
        ann: ann.id,
        bob: bob.id,
        stores,
    })
}

impl Fixture {
    /// A message of `author` to the room, with `client_id` if given.
    fn message(&self, author: UserId, client_id: Option<&str>) -> NewMessage {
        match client_id {
            Some(id) => {
                new_message_with_client_id(self.room, author, ClientMsgId::parse(id).unwrap())
            }
            None => new_message(self.room, author),
        }
    }

    /// Starts an append in a task of its own, and lets it reach the queue.
    async fn spawn_append(
        &self,
        message: NewMessage,
    ) -> JoinHandle<Result<Option<Logged<Message>>, StoreError>> {
        let messages = Arc::clone(&self.stores.messages);
        let handle = tokio::spawn(async move { messages.append(&message).await });
        sleep(SETTLE).await;
        handle
    }

    /// A connection of the test's own, holding the room's row lock in an
    /// open transaction.
    async fn lock_room(&self) -> AsyncPgConnection {
        let mut connection = self.connect().await;
        sql_query("BEGIN").execute(&mut connection).await.unwrap();
        sql_query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE")
            .bind::<SqlUuid, _>(self.room.as_uuid())
            .execute(&mut connection)
            .await
            .unwrap();
        connection
    }

    /// A connection of the test's own to the stores' database.
    async fn connect(&self) -> AsyncPgConnection {
        let database = self
            .stores
            ._keep_alive
            .as_ref()
            .expect("the PostgreSQL stores keep their database");
        AsyncPgConnection::establish(&database.config().connection_string())
            .await
            .unwrap()
    }

    /// Each stored message's seq and the id of the transaction that stored it.
    async fn writers(&self) -> Vec<(i64, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            seq: i64,
            #[diesel(sql_type = Text)]
            writer: String,
        }
        let mut connection = self.connect().await;
        let rows: Vec<Row> = sql_query(
            "SELECT seq, xmin::text AS writer FROM messages WHERE room_id = $1 ORDER BY seq",
        )
        .bind::<SqlUuid, _>(self.room.as_uuid())
        .load(&mut connection)
        .await
        .unwrap();
        rows.into_iter().map(|row| (row.seq, row.writer)).collect()
    }

    /// Each logged event's position and the id of the transaction that
    /// stored it.
    async fn event_writers(&self) -> Vec<(i64, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            pos: i64,
            #[diesel(sql_type = Text)]
            writer: String,
        }
        let mut connection = self.connect().await;
        let rows: Vec<Row> = sql_query(
            "SELECT pos, xmin::text AS writer FROM room_events WHERE room_id = $1 ORDER BY pos",
        )
        .bind::<SqlUuid, _>(self.room.as_uuid())
        .load(&mut connection)
        .await
        .unwrap();
        rows.into_iter().map(|row| (row.pos, row.writer)).collect()
    }

    /// Checks the room's log after `appended` (the answers of its appends
    /// since it was created): it holds the room's creation at 1, then one
    /// `message` event per message stored, seq n at position n + 1, each
    /// the event its append returned; `last_pos` is the last of them.
    async fn assert_log(&self, appended: &[&Logged<Message>]) {
        let mut new: Vec<&Logged<Message>> = appended
            .iter()
            .copied()
            .filter(|logged| logged.changed())
            .collect();
        new.sort_by_key(|logged| logged.value.seq);
        for logged in &new {
            let event = logged.event.as_ref().unwrap();
            assert_eq!(event.pos, pos(logged.value.seq.value() + 1));
            assert_eq!(event.change, Change::Message(logged.value.clone()));
        }
        let log = self
            .stores
            .events
            .after(self.room, &events_after(1, 100))
            .await
            .unwrap();
        assert_eq!(
            log.events,
            new.iter()
                .map(|logged| logged.event.clone().unwrap())
                .collect::<Vec<_>>()
        );
        let count = i64::try_from(new.len()).unwrap();
        assert_eq!(
            stored_room(&self.stores, self.room).await.last_pos,
            pos(count + 1)
        );
    }
}

fn stored(outcome: Result<Option<Logged<Message>>, StoreError>) -> Logged<Message> {
    outcome
        .expect("the append succeeded")
        .expect("the room exists")
}

#[tokio::test]
async fn appends_queued_behind_a_transaction_share_the_next_one() {
    let Some(fx) = fixture().await else {
        return;
    };
    let mut holder = fx.lock_room().await;
    // The first append waits for the lock; the rest queue up behind it.
    let first = fx.spawn_append(fx.message(fx.ann, Some("one"))).await;
    let new_two = fx.spawn_append(fx.message(fx.ann, Some("two"))).await;
    let repeat_of_first = fx.spawn_append(fx.message(fx.ann, Some("one"))).await;
    let without_id = fx.spawn_append(fx.message(fx.ann, None)).await;
    let repeat_of_two = fx.spawn_append(fx.message(fx.ann, Some("two"))).await;
    let bobs_one = fx.spawn_append(fx.message(fx.bob, Some("one"))).await;
    sql_query("COMMIT").execute(&mut holder).await.unwrap();

    let first = stored(first.await.unwrap());
    assert!(first.changed());
    assert_eq!(first.value.seq, Seq::new(1).unwrap());
    let new_two = stored(new_two.await.unwrap());
    let repeat_of_first = stored(repeat_of_first.await.unwrap());
    let without_id = stored(without_id.await.unwrap());
    let repeat_of_two = stored(repeat_of_two.await.unwrap());
    let bobs_one = stored(bobs_one.await.unwrap());

    assert_eq!(repeat_of_first.value, first.value);
    assert!(!repeat_of_first.changed());
    assert_eq!(repeat_of_two.value, new_two.value);
    assert!(!repeat_of_two.changed());
    let mut new_seqs: Vec<i64> = [&new_two, &without_id, &bobs_one]
        .iter()
        .map(|appended| {
            assert!(appended.changed());
            appended.value.seq.value()
        })
        .collect();
    new_seqs.sort_unstable();
    assert_eq!(new_seqs, [2, 3, 4]);
    fx.assert_log(&[
        &first,
        &new_two,
        &repeat_of_first,
        &without_id,
        &repeat_of_two,
        &bobs_one,
    ])
    .await;

    let writers = fx.writers().await;
    assert_eq!(
        writers.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_ne!(writers[0].1, writers[1].1, "the first append ran alone");
    assert!(
        writers[1..]
            .iter()
            .all(|(_, writer)| *writer == writers[1].1),
        "the queued appends were stored by one transaction: {writers:?}"
    );
    // The room's creation at 1, then seq n's event at n + 1, stored by the
    // transaction that stored seq n.
    let event_writers = fx.event_writers().await;
    assert_eq!(
        event_writers
            .iter()
            .map(|(at_pos, _)| *at_pos)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let writer_of = |rows: &[(i64, String)]| -> Vec<String> {
        rows.iter().map(|(_, writer)| writer.clone()).collect()
    };
    assert_eq!(
        writer_of(&event_writers[1..]),
        writer_of(&writers),
        "each message's event was stored by its message's transaction"
    );
}

#[tokio::test]
async fn a_batch_refused_by_a_constraint_is_retried_one_by_one() {
    let Some(fx) = fixture().await else {
        return;
    };
    let mut holder = fx.lock_room().await;
    let first = fx.spawn_append(fx.message(fx.ann, None)).await;
    let twice = fx.message(fx.ann, None);
    let one = fx.spawn_append(twice.clone()).await;
    let other = fx.spawn_append(fx.message(fx.bob, Some("fine"))).await;
    let again = fx.spawn_append(twice).await;
    sql_query("COMMIT").execute(&mut holder).await.unwrap();

    let first = stored(first.await.unwrap());
    assert_eq!(first.value.seq.value(), 1);
    let one = stored(one.await.unwrap());
    let other = stored(other.await.unwrap());
    let again = again.await.unwrap();
    assert!(again.is_err(), "a message id stored twice: {again:?}");
    assert_eq!(
        [one.value.seq.value(), other.value.seq.value()],
        [2, 3],
        "the retried appends still get dense seqs"
    );
    // The batch rolled back left no hole: the retried appends' events follow
    // the first one's, and the next change takes the next position.
    fx.assert_log(&[&first, &one, &other]).await;
    let edited = fx
        .stores
        .messages
        .edit(fx.room, first.value.id, &body("edited"), at(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.pos, pos(5));
    let writers = fx.writers().await;
    assert_eq!(
        writers.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[tokio::test]
async fn appends_queued_for_a_room_deleted_meanwhile_find_no_room() {
    let Some(fx) = fixture().await else {
        return;
    };
    let mut holder = fx.lock_room().await;
    let queued = [
        fx.spawn_append(fx.message(fx.ann, None)).await,
        fx.spawn_append(fx.message(fx.ann, Some("x"))).await,
        fx.spawn_append(fx.message(fx.bob, None)).await,
    ];
    sql_query("DELETE FROM rooms WHERE id = $1")
        .bind::<SqlUuid, _>(fx.room.as_uuid())
        .execute(&mut holder)
        .await
        .unwrap();
    sql_query("COMMIT").execute(&mut holder).await.unwrap();
    for handle in queued {
        assert!(matches!(handle.await.unwrap(), Ok(None)));
    }
    assert!(fx.writers().await.is_empty());
    assert!(fx.event_writers().await.is_empty());
}

/// Appends that share a transaction store their replies and mentions as a
/// lone append does: on the message, and as the rows mention counts read
/// (not a mention of oneself).
#[tokio::test]
async fn a_batch_stores_replies_and_mentions() {
    let Some(fx) = fixture().await else {
        return;
    };
    let cat = added_member(&fx.stores, fx.room, at(1)).await.id;
    let parent = stored(fx.stores.messages.append(&fx.message(fx.ann, None)).await).value;
    let reply = |author: UserId, mentions: &[UserId]| NewMessage {
        reply_to: Some(parent.id),
        mentions: Mentions::parse(mentions.iter().copied()).unwrap(),
        ..fx.message(author, None)
    };
    let mut holder = fx.lock_room().await;
    let first = fx.spawn_append(fx.message(fx.ann, None)).await;
    let sent = [
        reply(fx.ann, &[cat]),
        reply(fx.bob, &[cat, fx.ann]),
        reply(cat, &[cat]),
    ];
    let mut queued = Vec::new();
    for message in &sent {
        queued.push(fx.spawn_append(message.clone()).await);
    }
    sql_query("COMMIT").execute(&mut holder).await.unwrap();

    stored(first.await.unwrap());
    for (message, handle) in sent.iter().zip(queued) {
        let appended = stored(handle.await.unwrap()).value;
        assert_eq!(appended.reply_to, Some(parent.id));
        assert_eq!(appended.mentions, message.mentions);
        assert_eq!(
            fx.stores
                .messages
                .by_id(fx.room, appended.id)
                .await
                .unwrap(),
            Some(appended)
        );
    }
    let writers = fx.writers().await;
    assert_eq!(
        writers.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(
        writers[2..]
            .iter()
            .all(|(_, writer)| *writer == writers[2].1),
        "the replies were stored by one transaction: {writers:?}"
    );
    let counts = |user: UserId| {
        let memberships = Arc::clone(&fx.stores.memberships);
        async move {
            let found = memberships.unread(user, Some(fx.room)).await.unwrap();
            (found[0].unread, found[0].mentions)
        }
    };
    assert_eq!(counts(cat).await, (4, 2));
    assert_eq!(counts(fx.ann).await, (2, 1));
}
