//! Message search: the `search` part of the
//! [`MessageRepository`](p_chat_domain::ports::MessageRepository) contract.
//!
//! Stores match words differently (the in-memory store finds substrings,
//! PostgreSQL whole words), so every search here is of whole words, which
//! both find alike, ignoring case.

use chrono::{DateTime, Utc};
use p_chat_domain::message::{Message, NewMessage};
use p_chat_domain::room::{Room, RoomId, Visibility};
use p_chat_domain::search::{SearchHit, SearchLimit, SearchQuery, SearchText};
use p_chat_domain::user::UserId;

use crate::ChatStores;
use crate::fixtures::{add_member, added_member, at, body, created_room, new_message};

/// A search of `user`'s rooms for `text`, at most `limit` results.
fn search_for(user: UserId, text: &str, limit: i64) -> SearchQuery {
    SearchQuery {
        user,
        text: SearchText::parse(text).unwrap(),
        room: None,
        before: None,
        limit: SearchLimit::new(limit).unwrap(),
    }
}

/// Sends `text` from `author` to `room` at `sent`.
async fn say(
    stores: &ChatStores,
    room: RoomId,
    author: UserId,
    text: &str,
    sent: DateTime<Utc>,
) -> Message {
    let message = NewMessage {
        body: body(text),
        created_at: sent,
        ..new_message(room, author)
    };
    stores
        .messages
        .append(&message)
        .await
        .unwrap()
        .unwrap()
        .value
}

/// The hit of `message` in `room`.
fn hit(message: &Message, room: &Room) -> SearchHit {
    SearchHit {
        message: message.clone(),
        room_name: room.name.clone(),
    }
}

/// Runs a search, which must succeed.
async fn search(stores: &ChatStores, query: &SearchQuery) -> Vec<SearchHit> {
    stores.messages.search(query).await.unwrap()
}

/// A search finds the messages holding every word of it, ignoring case, in
/// the rooms the caller is a member of, with the room's name; never in a
/// room they are not in, and never a deleted message.
pub async fn search_finds_every_word_in_the_members_rooms_only(stores: ChatStores) {
    let (ann, first) = created_room(&stores, Visibility::Public).await;
    let (bob, second) = created_room(&stores, Visibility::Private).await;
    let (cat, outside) = created_room(&stores, Visibility::Public).await;
    add_member(&stores, &ann, second.id, at(0)).await;

    let in_first = say(
        &stores,
        first.id,
        ann.id,
        "the Unicorn flies at dawn",
        at(1),
    )
    .await;
    let in_second = say(&stores, second.id, bob.id, "a unicorn and a dragon", at(2)).await;
    say(&stores, outside.id, cat.id, "unicorn everywhere", at(3)).await;
    say(&stores, first.id, ann.id, "nothing to see here", at(4)).await;
    let deleted = say(&stores, first.id, ann.id, "unicorn gone soon", at(5)).await;
    stores
        .messages
        .tombstone(first.id, deleted.id, at(6))
        .await
        .unwrap();

    assert_eq!(
        search(&stores, &search_for(ann.id, "UNICORN", 20)).await,
        [hit(&in_second, &second), hit(&in_first, &first)]
    );
    assert_eq!(
        search(&stores, &search_for(ann.id, "unicorn dragon", 20)).await,
        [hit(&in_second, &second)]
    );
    assert_eq!(
        search(&stores, &search_for(ann.id, "unicorn griffin", 20)).await,
        []
    );
    assert_eq!(search(&stores, &search_for(ann.id, "gone", 20)).await, []);
    // Bob is only in the second room.
    assert_eq!(
        search(&stores, &search_for(bob.id, "unicorn", 20)).await,
        [hit(&in_second, &second)]
    );
    let stranger = crate::fixtures::chat_user(&stores).await;
    assert_eq!(
        search(&stores, &search_for(stranger.id, "unicorn", 20)).await,
        []
    );
}

/// `room` keeps one room's messages (none of a room the caller is not
/// in), `before` those sent strictly before it, and `limit` the best ones.
pub async fn search_filters_by_room_and_time_and_limits(stores: ChatStores) {
    let (ann, first) = created_room(&stores, Visibility::Public).await;
    let (bob, second) = created_room(&stores, Visibility::Public).await;
    let cat = added_member(&stores, first.id, at(0)).await;
    add_member(&stores, &cat, second.id, at(0)).await;
    let early = say(&stores, first.id, ann.id, "walrus one", at(1)).await;
    let middle = say(&stores, second.id, bob.id, "walrus two", at(2)).await;
    let late = say(&stores, first.id, ann.id, "walrus three", at(3)).await;

    let everything = search_for(cat.id, "walrus", 20);
    assert_eq!(
        search(&stores, &everything).await,
        [
            hit(&late, &first),
            hit(&middle, &second),
            hit(&early, &first)
        ]
    );
    let only_first = SearchQuery {
        room: Some(first.id),
        ..everything.clone()
    };
    assert_eq!(
        search(&stores, &only_first).await,
        [hit(&late, &first), hit(&early, &first)]
    );
    let not_a_member = SearchQuery {
        room: Some(second.id),
        ..search_for(ann.id, "walrus", 20)
    };
    assert_eq!(search(&stores, &not_a_member).await, []);
    let before_late = SearchQuery {
        before: Some(at(3)),
        ..everything.clone()
    };
    assert_eq!(
        search(&stores, &before_late).await,
        [hit(&middle, &second), hit(&early, &first)]
    );
    let both = SearchQuery {
        before: Some(at(3)),
        room: Some(first.id),
        ..everything.clone()
    };
    assert_eq!(search(&stores, &both).await, [hit(&early, &first)]);
    assert_eq!(
        search(&stores, &search_for(cat.id, "walrus", 2)).await,
        [hit(&late, &first), hit(&middle, &second)]
    );
}

/// A message where the words occur more often ranks first; equal matches
/// come newest first.
pub async fn better_matches_rank_first_then_newest(stores: ChatStores) {
    let (ann, room) = created_room(&stores, Visibility::Public).await;
    let often = say(&stores, room.id, ann.id, "zebra zebra zebra", at(1)).await;
    let older = say(&stores, room.id, ann.id, "zebra giraffe", at(2)).await;
    let newer = say(&stores, room.id, ann.id, "zebra lion", at(3)).await;

    assert_eq!(
        search(&stores, &search_for(ann.id, "zebra", 20)).await,
        [hit(&often, &room), hit(&newer, &room), hit(&older, &room)]
    );
}

/// Only the newest [`SearchQuery::CANDIDATES`] matches are ranked: a better
/// match older than all of them is not found until `before` reaches back
/// past them.
pub async fn only_the_newest_matches_are_ranked(stores: ChatStores) {
    let (ann, room) = created_room(&stores, Visibility::Public).await;
    let oldest = say(&stores, room.id, ann.id, "otter otter otter", at(0)).await;
    let mut newer = Vec::new();
    for second in 1..=SearchQuery::CANDIDATES {
        let sent = at(i64::try_from(second).unwrap());
        newer.push(say(&stores, room.id, ann.id, "otter", sent).await);
    }

    let found = search(&stores, &search_for(ann.id, "otter", 50)).await;
    let newest_first: Vec<SearchHit> = newer.iter().rev().take(50).map(|m| hit(m, &room)).collect();
    assert_eq!(found, newest_first);

    let back = SearchQuery {
        before: Some(newer[0].created_at),
        ..search_for(ann.id, "otter", 50)
    };
    assert_eq!(search(&stores, &back).await, [hit(&oldest, &room)]);
}
