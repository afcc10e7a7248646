//! The [`MessageRepository`](p_chat_domain::ports::MessageRepository) contract.
//!
//! Every message is appended to a stored room by a user inserted first
//! through the users port (authors need not be members: the port does not
//! check it).

use std::sync::Arc;

use p_chat_domain::events::{Change, Logged, RoomEvent};
use p_chat_domain::message::{
    HistoryPage, HistoryQuery, Mentions, Message, MessageId, NewMessage, PageLimit,
};
use p_chat_domain::room::{Room, RoomId, Visibility};

use crate::ChatStores;
use crate::fixtures::{
    append_messages, assert_logged, assert_unlogged, at, body, chat_user, created_room,
    events_after, new_message, new_message_with_client_id, pos, race, seq, stored_room,
    unique_client_msg_id,
};

/// What a call returns that logged `change` at `pos` in `room`, at `at`.
fn logged(
    value: Message,
    at_pos: i64,
    at: chrono::DateTime<chrono::Utc>,
    change: Change,
) -> Logged<Message> {
    Logged {
        event: Some(RoomEvent {
            room_id: value.room_id,
            pos: pos(at_pos),
            at,
            change,
        }),
        value,
    }
}

/// What a call returns that changed nothing.
fn unchanged(value: Message) -> Logged<Message> {
    Logged { value, event: None }
}

/// A history query, spelled out.
fn query(after: Option<i64>, before: Option<i64>, limit: i64) -> HistoryQuery {
    HistoryQuery {
        after: after.map(seq),
        before: before.map(seq),
        limit: PageLimit::new(limit).unwrap(),
    }
}

/// The page holding the messages of `all` (a room's messages in seq order,
/// from seq 1) with the given seqs.
fn page_of(all: &[Message], seqs: impl IntoIterator<Item = i64>, has_more: bool) -> HistoryPage {
    HistoryPage {
        messages: seqs
            .into_iter()
            .map(|seq| all[usize::try_from(seq - 1).unwrap()].clone())
            .collect(),
        has_more,
    }
}

/// The empty page.
fn empty_page() -> HistoryPage {
    HistoryPage {
        messages: Vec::new(),
        has_more: false,
    }
}

/// Appending to a room that does not exist is `Ok(None)` and stores nothing
/// (with or without a client id); it consumes no seq of any other room.
pub async fn append_to_a_missing_room_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let missing = RoomId::new();

    for message in [
        new_message(missing, owner.id),
        new_message_with_client_id(missing, owner.id, unique_client_msg_id()),
    ] {
        assert_eq!(stores.messages.append(&message).await.unwrap(), None);
        assert_eq!(
            stores.messages.by_id(missing, message.id).await.unwrap(),
            None
        );
    }
    assert_eq!(stores.rooms.by_id(missing).await.unwrap(), None);
    assert_eq!(stored_room(&stores, room.id).await, room);
    assert_unlogged(&stores, &room).await;
    let first = append_messages(&stores, room.id, owner.id, 1).await;
    assert_eq!(first[0].seq, seq(1));
}

/// The first message of a room gets seq 1 and the room's `last_seq` becomes
/// 1; the stored message reads back equal, every field included (non-ASCII
/// body, client id, creation time to the microsecond, never edited nor
/// deleted); its `message` event is logged at the room's next position, at
/// the message's time. The next one, without client id, gets seq 2.
pub async fn first_append_gets_seq_1_and_round_trips(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let sent = NewMessage {
        body: body("Grüße 👋 — first line\nsecond line"),
        created_at: at(42),
        ..new_message_with_client_id(room.id, owner.id, unique_client_msg_id())
    };
    let stored = Message {
        id: sent.id,
        room_id: room.id,
        seq: seq(1),
        author_id: owner.id,
        body: Some(sent.body.clone()),
        client_msg_id: sent.client_msg_id.clone(),
        created_at: at(42),
        edited_at: None,
        deleted_at: None,
        reply_to: None,
        mentions: Mentions::default(),
        reactions: Vec::new(),
    };

    let appended = stores.messages.append(&sent).await.unwrap().unwrap();
    assert_eq!(
        appended,
        logged(stored.clone(), 2, at(42), Change::Message(stored.clone()))
    );
    assert_logged(&stores, &room, &[appended.event.unwrap()], &["message"]).await;
    assert_eq!(
        stores.messages.by_id(room.id, sent.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        stored_room(&stores, room.id).await,
        Room {
            last_seq: seq(1),
            last_pos: pos(2),
            ..room.clone()
        }
    );

    let plain = NewMessage {
        created_at: at(43),
        ..new_message(room.id, owner.id)
    };
    let second = Message {
        id: plain.id,
        seq: seq(2),
        body: Some(plain.body.clone()),
        client_msg_id: None,
        created_at: at(43),
        ..stored.clone()
    };
    assert_eq!(
        stores.messages.append(&plain).await.unwrap(),
        Some(logged(
            second.clone(),
            3,
            at(43),
            Change::Message(second.clone())
        ))
    );
    assert_eq!(
        stores.messages.by_id(room.id, plain.id).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(2));
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: vec![stored, second],
            has_more: false,
        }
    );
}

/// Seqs run 1, 2, 3, ... in each room on its own: appends interleaved
/// between two rooms number each room's messages consecutively, and each
/// room's `last_seq` and history hold its own messages only.
pub async fn seqs_are_consecutive_per_room_and_independent_between_rooms(stores: ChatStores) {
    let (owner, first_room) = created_room(&stores, Visibility::Public).await;
    let (_, second_room) = created_room(&stores, Visibility::Private).await;
    let mut first = Vec::new();
    let mut second = Vec::new();
    for room_id in [
        first_room.id,
        first_room.id,
        second_room.id,
        first_room.id,
        second_room.id,
        second_room.id,
        second_room.id,
    ] {
        let appended = stores
            .messages
            .append(&new_message(room_id, owner.id))
            .await
            .unwrap()
            .unwrap();
        // Each room's log: created at 1, then one event per message.
        let event = appended.event.expect("a new message is logged");
        assert_eq!(event.room_id, room_id);
        assert_eq!(event.pos, pos(appended.value.seq.value() + 1));
        if room_id == first_room.id {
            first.push(appended.value);
        } else {
            second.push(appended.value);
        }
    }

    for (room, messages, count) in [(&first_room, &first, 3), (&second_room, &second, 4)] {
        let seqs: Vec<i64> = messages.iter().map(|message| message.seq.value()).collect();
        assert_eq!(seqs, (1..=count).collect::<Vec<i64>>());
        assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(count));
        assert_eq!(stored_room(&stores, room.id).await.last_pos, pos(count + 1));
        assert_eq!(
            stores
                .messages
                .page(room.id, &HistoryQuery::default())
                .await
                .unwrap(),
            HistoryPage {
                messages: messages.clone(),
                has_more: false,
            }
        );
    }
}

/// 9 senders appending 10 messages each, all at once, get the seqs 1 to 90
/// exactly: no gap, no seq twice, each sender's own messages in the order
/// sent; `last_seq` is 90 and the history holds the 90 messages in seq
/// order. Their events take the positions 2 to 91 in the same order (seq n
/// at position n + 1), and `last_pos` is 91.
pub async fn concurrent_senders_get_gap_free_seqs(stores: ChatStores) {
    const SENDERS: usize = 9;
    const EACH: usize = 10;
    let (_, room) = created_room(&stores, Visibility::Public).await;
    let mut authors = Vec::new();
    for _ in 0..SENDERS {
        authors.push(chat_user(&stores).await);
    }

    let sent = race(SENDERS, |sender| {
        let messages = Arc::clone(&stores.messages);
        let author = authors[sender].id;
        async move {
            let mut stored = Vec::with_capacity(EACH);
            for index in 0..EACH {
                let message = NewMessage {
                    body: body(&format!("sender {sender}, message {index}")),
                    ..new_message(room.id, author)
                };
                let appended = messages.append(&message).await.unwrap().unwrap();
                assert_eq!(appended.value.id, message.id);
                let event = appended.event.expect("a new message is logged");
                assert_eq!(event.pos, pos(appended.value.seq.value() + 1));
                assert_eq!(event.change, Change::Message(appended.value.clone()));
                stored.push(appended.value);
            }
            stored
        }
    })
    .await;

    for own in &sent {
        assert!(
            own.windows(2).all(|pair| pair[0].seq < pair[1].seq),
            "a sender's messages must be numbered in the order sent"
        );
    }
    let mut all: Vec<Message> = sent.into_iter().flatten().collect();
    all.sort_by_key(|message| message.seq);
    let total = i64::try_from(SENDERS * EACH).unwrap();
    assert_eq!(
        all.iter()
            .map(|message| message.seq.value())
            .collect::<Vec<i64>>(),
        (1..=total).collect::<Vec<i64>>()
    );
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(total));
    assert_eq!(stored_room(&stores, room.id).await.last_pos, pos(total + 1));
    let log = stores
        .events
        .after(room.id, &events_after(1, 100))
        .await
        .unwrap();
    assert!(!log.has_more);
    assert_eq!(
        log.events
            .iter()
            .map(|event| event.change.clone())
            .collect::<Vec<_>>(),
        all.iter().cloned().map(Change::Message).collect::<Vec<_>>()
    );
    assert_eq!(
        stores
            .messages
            .page(room.id, &query(Some(0), None, 100))
            .await
            .unwrap(),
        HistoryPage {
            messages: all,
            has_more: false,
        }
    );
}

/// Appending again with a `(room, author, client_msg_id)` already used stores
/// nothing (whatever the new id, body and time) and returns the first
/// message, unchanged, with no event; neither `last_seq` nor `last_pos`
/// moves.
pub async fn repeated_client_msg_id_returns_the_first_message(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let first = NewMessage {
        body: body("first attempt"),
        created_at: at(1),
        ..new_message_with_client_id(room.id, owner.id, unique_client_msg_id())
    };
    let original = stores.messages.append(&first).await.unwrap().unwrap().value;
    let later = append_messages(&stores, room.id, owner.id, 1).await;
    let before = stored_room(&stores, room.id).await;

    let repeat = NewMessage {
        id: MessageId::new(),
        body: body("second attempt"),
        created_at: at(5),
        ..first.clone()
    };
    assert_eq!(
        stores.messages.append(&repeat).await.unwrap(),
        Some(unchanged(original.clone()))
    );
    assert_unlogged(&stores, &before).await;
    assert_eq!(original.seq, seq(1));
    assert_eq!(
        stores.messages.by_id(room.id, repeat.id).await.unwrap(),
        None
    );
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(2));
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: vec![original, later[0].clone()],
            has_more: false,
        }
    );
}

/// Of 8 concurrent appends with one `(room, author, client_msg_id)`, exactly
/// one stores its message, and logs its event; all 8 return that message;
/// `last_seq` and `last_pos` advance by exactly one and the other
/// candidates leave no trace.
pub async fn concurrent_repeats_of_one_client_msg_id_store_one_message(stores: ChatStores) {
    const RACERS: usize = 8;
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let before = append_messages(&stores, room.id, owner.id, 1).await;
    let room_before = stored_room(&stores, room.id).await;
    let client_msg_id = unique_client_msg_id();

    let outcomes = race(RACERS, |racer| {
        let messages = Arc::clone(&stores.messages);
        let offset = i64::try_from(racer).unwrap();
        let candidate = NewMessage {
            body: body(&format!("attempt {racer}")),
            created_at: at(10 + offset),
            ..new_message_with_client_id(room.id, owner.id, client_msg_id.clone())
        };
        async move {
            let appended = messages.append(&candidate).await.unwrap().unwrap();
            (candidate, appended)
        }
    })
    .await;

    let winners: Vec<&(NewMessage, Logged<Message>)> = outcomes
        .iter()
        .filter(|(_, appended)| appended.changed())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one append must store");
    let (candidate, won) = winners[0];
    let expected = Message {
        id: candidate.id,
        room_id: room.id,
        seq: seq(2),
        author_id: owner.id,
        body: Some(candidate.body.clone()),
        client_msg_id: Some(client_msg_id.clone()),
        created_at: candidate.created_at,
        edited_at: None,
        deleted_at: None,
        reply_to: None,
        mentions: Mentions::default(),
        reactions: Vec::new(),
    };
    assert_eq!(won.value, expected);
    assert_logged(
        &stores,
        &room_before,
        &[won.event.clone().unwrap()],
        &["message"],
    )
    .await;
    for (other, appended) in &outcomes {
        assert_eq!(appended.value, expected);
        if other.id != candidate.id {
            assert_eq!(
                stores.messages.by_id(room.id, other.id).await.unwrap(),
                None
            );
        }
    }
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(2));
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: vec![before[0].clone(), expected],
            has_more: false,
        }
    );
}

/// A client id is scoped to its author and room: the same one from another
/// author, or in another room, is a new message with its own seq; a repeat
/// in each scope returns that scope's message.
pub async fn client_msg_id_is_scoped_to_author_and_room(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let other_author = chat_user(&stores).await;
    let (_, other_room) = created_room(&stores, Visibility::Public).await;
    let client_msg_id = unique_client_msg_id();
    let scopes = [
        (room.id, owner.id, 1),
        (room.id, other_author.id, 2),
        (other_room.id, owner.id, 1),
    ];

    let mut stored = Vec::new();
    for (room_id, author_id, expected_seq) in scopes {
        let message = new_message_with_client_id(room_id, author_id, client_msg_id.clone());
        let appended = stores.messages.append(&message).await.unwrap().unwrap();
        assert!(appended.changed(), "a new scope stores a new message");
        assert_eq!(appended.value.id, message.id);
        assert_eq!(appended.value.seq, seq(expected_seq));
        stored.push(appended.value);
    }

    for ((room_id, author_id, _), first) in scopes.into_iter().zip(&stored) {
        let repeat = new_message_with_client_id(room_id, author_id, client_msg_id.clone());
        assert_eq!(
            stores.messages.append(&repeat).await.unwrap(),
            Some(unchanged(first.clone()))
        );
        assert_eq!(
            stores
                .messages
                .by_id(room_id, first.id)
                .await
                .unwrap()
                .as_ref(),
            Some(first)
        );
    }
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(2));
    assert_eq!(stored_room(&stores, other_room.id).await.last_seq, seq(1));
    assert_eq!(stored_room(&stores, room.id).await.last_pos, pos(3));
    assert_eq!(stored_room(&stores, other_room.id).await.last_pos, pos(2));
}

/// Without a client id, nothing is deduplicated: the same author sending
/// the same body twice stores two messages.
pub async fn messages_without_client_msg_id_are_never_deduplicated(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let original = new_message(room.id, owner.id);
    let twin = NewMessage {
        id: MessageId::new(),
        ..original.clone()
    };

    for (message, expected_seq) in [(&original, 1), (&twin, 2)] {
        let appended = stores.messages.append(message).await.unwrap().unwrap();
        assert!(appended.changed());
        assert_eq!(appended.value.id, message.id);
        assert_eq!(appended.value.seq, seq(expected_seq));
    }
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(2));
}

/// Without a cursor, a page holds the newest `limit` messages in ascending
/// order, `has_more` telling whether older ones exist; other rooms'
/// messages never show.
pub async fn page_without_cursor_holds_the_newest_messages(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 10).await;
    let (other_owner, other_room) = created_room(&stores, Visibility::Public).await;
    append_messages(&stores, other_room.id, other_owner.id, 3).await;

    for (limit, expected) in [
        (1, page_of(&all, 10..=10, true)),
        (3, page_of(&all, 8..=10, true)),
        (9, page_of(&all, 2..=10, true)),
        (10, page_of(&all, 1..=10, false)),
        (100, page_of(&all, 1..=10, false)),
    ] {
        assert_eq!(
            stores
                .messages
                .page(room.id, &query(None, None, limit))
                .await
                .unwrap(),
            expected,
            "limit {limit}"
        );
    }
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        page_of(&all, 1..=10, false)
    );
}

/// With `after: k`, a page holds the messages from k + 1 on, ascending, at
/// most `limit`, `has_more` telling whether more follow the page.
pub async fn page_after_a_seq_reads_forward(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 10).await;

    for (after, limit, expected) in [
        (0, 3, page_of(&all, 1..=3, true)),
        (4, 3, page_of(&all, 5..=7, true)),
        (7, 3, page_of(&all, 8..=10, false)),
        (6, 4, page_of(&all, 7..=10, false)),
        (9, 5, page_of(&all, 10..=10, false)),
        (0, 100, page_of(&all, 1..=10, false)),
        (10, 3, empty_page()),
        (12, 3, empty_page()),
    ] {
        assert_eq!(
            stores
                .messages
                .page(room.id, &query(Some(after), None, limit))
                .await
                .unwrap(),
            expected,
            "after {after}, limit {limit}"
        );
    }
}

/// With `before: k` alone, a page holds the newest messages below k,
/// ascending, at most `limit`, `has_more` telling whether older ones exist
/// below the page.
pub async fn page_before_a_seq_reads_backward(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 10).await;

    for (before, limit, expected) in [
        (5, 3, page_of(&all, 2..=4, true)),
        (4, 3, page_of(&all, 1..=3, false)),
        (2, 3, page_of(&all, 1..=1, false)),
        (11, 3, page_of(&all, 8..=10, true)),
        (10, 9, page_of(&all, 1..=9, false)),
        (50, 20, page_of(&all, 1..=10, false)),
        (1, 3, empty_page()),
        (0, 3, empty_page()),
    ] {
        assert_eq!(
            stores
                .messages
                .page(room.id, &query(None, Some(before), limit))
                .await
                .unwrap(),
            expected,
            "before {before}, limit {limit}"
        );
    }
}

/// With both cursors, only messages strictly between them match; the page
/// starts right after `after` (reading forward), `has_more` telling whether
/// more matching messages follow the page.
pub async fn page_after_and_before_bounds_the_window(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 10).await;

    for (after, before, limit, expected) in [
        (2, 9, 3, page_of(&all, 3..=5, true)),
        (2, 6, 3, page_of(&all, 3..=5, false)),
        (2, 9, 10, page_of(&all, 3..=8, false)),
        (5, 7, 3, page_of(&all, 6..=6, false)),
        (0, 11, 100, page_of(&all, 1..=10, false)),
        (0, 50, 4, page_of(&all, 1..=4, true)),
        (5, 6, 3, empty_page()),
        (7, 3, 3, empty_page()),
    ] {
        assert_eq!(
            stores
                .messages
                .page(room.id, &query(Some(after), Some(before), limit))
                .await
                .unwrap(),
            expected,
            "after {after}, before {before}, limit {limit}"
        );
    }
}

/// A room without messages, or an unknown room, has only empty pages,
/// whatever the cursors.
pub async fn page_of_an_empty_room_is_empty(stores: ChatStores) {
    let (_, room) = created_room(&stores, Visibility::Public).await;
    let (other_owner, other_room) = created_room(&stores, Visibility::Public).await;
    append_messages(&stores, other_room.id, other_owner.id, 2).await;

    for room_id in [room.id, RoomId::new()] {
        for history in [
            HistoryQuery::default(),
            query(Some(0), None, 10),
            query(None, Some(5), 10),
            query(Some(1), Some(3), 10),
        ] {
            assert_eq!(
                stores.messages.page(room_id, &history).await.unwrap(),
                empty_page(),
                "{history:?}"
            );
        }
    }
}

/// `edit` replaces the body and sets `edited_at` (each time), logging
/// `message_updated` with the whole message at the room's next position;
/// seq, author, client id and creation time are kept, and neither
/// `last_seq` nor other messages change.
pub async fn edit_replaces_the_body_and_sets_edited_at(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 3).await;
    let target = &all[1];

    let mut current = target.clone();
    for (text, edited_at) in [("edited once", at(50)), ("edited twice ✍️", at(60))] {
        current = Message {
            body: Some(body(text)),
            edited_at: Some(edited_at),
            ..target.clone()
        };
        let before = stored_room(&stores, room.id).await;
        let edited = stores
            .messages
            .edit(room.id, target.id, &body(text), edited_at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            edited,
            RoomEvent {
                room_id: room.id,
                pos: before.last_pos.next(),
                at: edited_at,
                change: Change::MessageUpdated(current.clone()),
            }
        );
        assert_logged(&stores, &before, &[edited], &["message_updated"]).await;
        assert_eq!(
            stores.messages.by_id(room.id, target.id).await.unwrap(),
            Some(current.clone())
        );
    }

    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(3));
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: vec![all[0].clone(), current, all[2].clone()],
            has_more: false,
        }
    );
}

/// `edit` of a deleted message, of an unknown id, or of a message named with
/// the wrong room is `None`, and changes and logs nothing.
pub async fn edit_of_a_deleted_or_missing_message_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 2).await;
    let (_, other_room) = created_room(&stores, Visibility::Public).await;
    let deleted = Message {
        body: None,
        deleted_at: Some(at(10)),
        ..all[0].clone()
    };
    assert_eq!(
        stores
            .messages
            .tombstone(room.id, all[0].id, at(10))
            .await
            .unwrap(),
        Some(logged(
            deleted.clone(),
            4,
            at(10),
            Change::MessageDeleted(deleted.clone())
        ))
    );
    let before = stored_room(&stores, room.id).await;
    let other_before = stored_room(&stores, other_room.id).await;

    let text = body("too late");
    for (room_id, id, why) in [
        (room.id, all[0].id, "a deleted message"),
        (room.id, MessageId::new(), "an unknown message"),
        (other_room.id, all[1].id, "another room's message"),
        (RoomId::new(), all[1].id, "an unknown room"),
    ] {
        assert_eq!(
            stores
                .messages
                .edit(room_id, id, &text, at(20))
                .await
                .unwrap(),
            None,
            "{why}"
        );
    }
    assert_unlogged(&stores, &before).await;
    assert_unlogged(&stores, &other_before).await;
    assert_eq!(
        stores.messages.by_id(room.id, all[0].id).await.unwrap(),
        Some(deleted)
    );
    assert_eq!(
        stores.messages.by_id(room.id, all[1].id).await.unwrap(),
        Some(all[1].clone())
    );
    assert_eq!(
        stores
            .messages
            .by_id(other_room.id, all[1].id)
            .await
            .unwrap(),
        None
    );
}

/// `tombstone` clears the body and sets `deleted_at`, keeping the seq and
/// every other field (an earlier edit time included), and logs
/// `message_deleted` at the room's next position; a second tombstone
/// returns the message with the first `deleted_at` and logs nothing. The
/// tombstone stays in the history, and its seq is never reused.
pub async fn tombstone_clears_the_body_and_keeps_the_seq(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 3).await;
    let target = &all[1];
    let edited = stores
        .messages
        .edit(room.id, target.id, &body("edited"), at(5))
        .await
        .unwrap()
        .unwrap()
        .change
        .message()
        .cloned()
        .unwrap();
    let tombstone = Message {
        body: None,
        deleted_at: Some(at(10)),
        ..edited
    };

    let before = stored_room(&stores, room.id).await;
    let deleted = stores
        .messages
        .tombstone(room.id, target.id, at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deleted,
        logged(
            tombstone.clone(),
            before.last_pos.value() + 1,
            at(10),
            Change::MessageDeleted(tombstone.clone())
        )
    );
    assert_logged(
        &stores,
        &before,
        &[deleted.event.unwrap()],
        &["message_deleted"],
    )
    .await;
    let before = stored_room(&stores, room.id).await;
    for deleted_at in [at(10), at(20)] {
        assert_eq!(
            stores
                .messages
                .tombstone(room.id, target.id, deleted_at)
                .await
                .unwrap(),
            Some(unchanged(tombstone.clone()))
        );
        assert_unlogged(&stores, &before).await;
        assert_eq!(
            stores.messages.by_id(room.id, target.id).await.unwrap(),
            Some(tombstone.clone())
        );
    }
    assert_eq!(tombstone.seq, seq(2));
    assert_eq!(
        stores
            .messages
            .page(room.id, &HistoryQuery::default())
            .await
            .unwrap(),
        HistoryPage {
            messages: vec![all[0].clone(), tombstone, all[2].clone()],
            has_more: false,
        }
    );
    assert_eq!(stored_room(&stores, room.id).await.last_seq, seq(3));
    let next = append_messages(&stores, room.id, owner.id, 1).await;
    assert_eq!(next[0].seq, seq(4));
}

/// `tombstone` of an unknown id, or of a message named with the wrong room,
/// is `None`, and deletes and logs nothing.
pub async fn tombstone_of_a_missing_message_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 1).await;
    let (_, other_room) = created_room(&stores, Visibility::Public).await;
    let before = stored_room(&stores, room.id).await;

    for (room_id, id, why) in [
        (room.id, MessageId::new(), "an unknown message"),
        (other_room.id, all[0].id, "another room's message"),
        (RoomId::new(), all[0].id, "an unknown room"),
    ] {
        assert_eq!(
            stores
                .messages
                .tombstone(room_id, id, at(10))
                .await
                .unwrap(),
            None,
            "{why}"
        );
    }
    assert_unlogged(&stores, &before).await;
    assert_unlogged(&stores, &other_room).await;
    assert_eq!(
        stores.messages.by_id(room.id, all[0].id).await.unwrap(),
        Some(all[0].clone())
    );
}

/// `by_id` finds a message only in its own room: with another (or an
/// unknown) room it is `None`, as is an unknown id in the right room.
pub async fn by_id_in_the_wrong_room_is_none(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let all = append_messages(&stores, room.id, owner.id, 1).await;
    let (other_owner, other_room) = created_room(&stores, Visibility::Public).await;
    append_messages(&stores, other_room.id, other_owner.id, 1).await;

    assert_eq!(
        stores.messages.by_id(room.id, all[0].id).await.unwrap(),
        Some(all[0].clone())
    );
    assert_eq!(
        stores
            .messages
            .by_id(other_room.id, all[0].id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .messages
            .by_id(RoomId::new(), all[0].id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .messages
            .by_id(room.id, MessageId::new())
            .await
            .unwrap(),
        None
    );
}

/// A reply and its mentions are stored as sent and read back by every
/// read: the append's answer and event, `by_id`, history pages and the
/// room's log. A message without them reads back without them.
pub async fn reply_to_and_mentions_round_trip(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = chat_user(&stores).await;
    let cat = chat_user(&stores).await;
    let first = append_messages(&stores, room.id, owner.id, 1)
        .await
        .remove(0);
    assert_eq!(
        (first.reply_to, first.mentions.clone()),
        (None, Mentions::default())
    );
    let sent = NewMessage {
        reply_to: Some(first.id),
        mentions: Mentions::parse([cat.id, bob.id]).unwrap(),
        created_at: at(7),
        ..new_message(room.id, bob.id)
    };

    let appended = stores.messages.append(&sent).await.unwrap().unwrap();
    let reply = appended.value.clone();
    assert_eq!(reply.reply_to, Some(first.id));
    assert_eq!(
        reply.mentions.users(),
        [cat.id, bob.id],
        "in the order sent"
    );
    assert_eq!(reply.body, Some(sent.body.clone()));
    assert_eq!(
        appended.event.as_ref().unwrap().change,
        Change::Message(reply.clone())
    );
    assert_eq!(
        stores.messages.by_id(room.id, reply.id).await.unwrap(),
        Some(reply.clone())
    );
    assert_eq!(
        stores
            .messages
            .page(room.id, &query(None, None, 10))
            .await
            .unwrap()
            .messages,
        [first.clone(), reply.clone()]
    );
    let log = stores
        .events
        .after(room.id, &events_after(0, 100))
        .await
        .unwrap();
    let shown: Vec<&Message> = log
        .events
        .iter()
        .filter_map(|event| event.change.message())
        .collect();
    assert_eq!(shown, [&first, &reply]);
}

/// A tombstone loses its mentions and reactions (and its body) but keeps
/// `reply_to`; a reply to a deleted message keeps pointing at it.
pub async fn tombstone_clears_mentions_and_reactions_and_keeps_reply_to(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = chat_user(&stores).await;
    let first = append_messages(&stores, room.id, owner.id, 1)
        .await
        .remove(0);
    let reply = stores
        .messages
        .append(&NewMessage {
            reply_to: Some(first.id),
            mentions: Mentions::parse([bob.id]).unwrap(),
            ..new_message(room.id, owner.id)
        })
        .await
        .unwrap()
        .unwrap()
        .value;
    let reaction = p_chat_domain::reaction::ReactionChange {
        message_id: reply.id,
        emoji: p_chat_domain::reaction::Emoji::parse("👍").unwrap(),
        user_id: bob.id,
    };
    stores
        .messages
        .react(room.id, &reaction, at(1))
        .await
        .unwrap();
    assert_eq!(
        stores
            .messages
            .by_id(room.id, reply.id)
            .await
            .unwrap()
            .unwrap()
            .reactions
            .len(),
        1
    );

    let deleted = stores
        .messages
        .tombstone(room.id, reply.id, at(2))
        .await
        .unwrap()
        .unwrap()
        .value;
    let tombstone = Message {
        body: None,
        deleted_at: Some(at(2)),
        mentions: Mentions::default(),
        reactions: Vec::new(),
        ..reply.clone()
    };
    assert_eq!(deleted, tombstone);
    assert_eq!(tombstone.reply_to, Some(first.id));
    assert_eq!(
        stores.messages.by_id(room.id, reply.id).await.unwrap(),
        Some(tombstone.clone())
    );
    stores
        .messages
        .tombstone(room.id, first.id, at(3))
        .await
        .unwrap();
    assert_eq!(
        stores
            .messages
            .by_id(room.id, reply.id)
            .await
            .unwrap()
            .unwrap()
            .reply_to,
        Some(first.id)
    );
}

/// Deleting a room takes its replies, mentions and reactions along (on
/// PostgreSQL, through the cascades of their foreign keys): the room, its
/// messages and its members' read state are gone, and another room keeps
/// its own.
pub async fn deleting_a_room_takes_replies_mentions_and_reactions_along(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let (_, kept) = created_room(&stores, Visibility::Public).await;
    let bob = crate::fixtures::added_member(&stores, room.id, at(1)).await;
    let first = append_messages(&stores, room.id, owner.id, 1)
        .await
        .remove(0);
    let reply = stores
        .messages
        .append(&NewMessage {
            reply_to: Some(first.id),
            mentions: Mentions::parse([bob.id]).unwrap(),
            ..new_message(room.id, owner.id)
        })
        .await
        .unwrap()
        .unwrap()
        .value;
    stores
        .messages
        .react(
            room.id,
            &p_chat_domain::reaction::ReactionChange {
                message_id: reply.id,
                emoji: p_chat_domain::reaction::Emoji::parse("🎉").unwrap(),
                user_id: bob.id,
            },
            at(2),
        )
        .await
        .unwrap();
    let kept_message = append_messages(&stores, kept.id, owner.id, 1)
        .await
        .remove(0);

    assert!(stores.rooms.delete(room.id, at(3)).await.unwrap().is_some());
    assert_eq!(
        stores.messages.by_id(room.id, reply.id).await.unwrap(),
        None
    );
    assert_eq!(
        stores.messages.by_id(room.id, first.id).await.unwrap(),
        None
    );
    assert_eq!(stores.memberships.unread(bob.id, None).await.unwrap(), []);
    assert_eq!(stores.memberships.receipts(room.id).await.unwrap(), []);
    assert_eq!(
        stores
            .messages
            .by_id(kept.id, kept_message.id)
            .await
            .unwrap(),
        Some(kept_message)
    );
}
