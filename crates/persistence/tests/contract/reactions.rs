//! Reactions on messages: the `react` and `unreact` part of the
//! [`MessageRepository`](p_chat_domain::ports::MessageRepository) contract.
//!
//! Reactors are users inserted through the users port (the port does not
//! check membership: the messaging service does).

use std::sync::Arc;

use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::message::{Message, MessageId, NewMessage};
use p_chat_domain::ports::Reacted;
use p_chat_domain::reaction::{Emoji, Reaction, ReactionChange};
use p_chat_domain::room::{RoomId, Visibility};
use p_chat_domain::user::UserId;

use crate::ChatStores;
use crate::fixtures::{
    append_messages, assert_logged, assert_unlogged, at, chat_user, created_room,
    new_message_with_client_id, race, stored_room, unique_client_msg_id,
};

/// Thirty distinct emoji, each valid on its own.
const EMOJI: [&str; 30] = [
    "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗",
    "😙", "😚", "🙂", "🤗", "🤩", "🤔", "🤨", "😐", "😑", "😶", "🙄", "😏", "😣", "😥",
];

/// An emoji, parsed.
fn emoji(raw: &str) -> Emoji {
    Emoji::parse(raw).unwrap()
}

/// `user`'s reaction `raw` to `message`.
fn change(message: MessageId, user: UserId, raw: &str) -> ReactionChange {
    ReactionChange {
        message_id: message,
        emoji: emoji(raw),
        user_id: user,
    }
}

/// A reaction, spelled out.
fn reaction(raw: &str, users: &[UserId]) -> Reaction {
    Reaction {
        emoji: emoji(raw),
        user_ids: users.to_vec(),
    }
}

/// The message and event of a `Done`, which it must be.
fn done(reacted: Reacted) -> (Message, Option<RoomEvent>) {
    match reacted {
        Reacted::Done(logged) => (logged.value, logged.event),
        other => panic!("expected Done, got {other:?}"),
    }
}

/// A stored room with one message of its owner: the room as stored now,
/// and the message.
async fn room_with_a_message(stores: &ChatStores) -> (RoomId, Message) {
    let (owner, room) = created_room(stores, Visibility::Public).await;
    let message = append_messages(stores, room.id, owner.id, 1)
        .await
        .remove(0);
    (room.id, message)
}

/// The message as stored now.
async fn stored(stores: &ChatStores, room: RoomId, id: MessageId) -> Message {
    stores.messages.by_id(room, id).await.unwrap().unwrap()
}

/// Adding logs `reaction_added` at the room's next position and shows the
/// message after it; removing logs `reaction_removed`. A message shows one
/// reaction per distinct emoji, in the order each was first added (an
/// emoji keeps its place while anyone still has it, and goes to the end
/// when added again after everyone took it back), with its users in the
/// order they reacted. Every read shows them: `by_id`, history pages, and
/// the message's event in the log.
pub async fn reactions_show_in_order_of_first_add_and_of_reacting(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let [ann, bob, cat] = [
        chat_user(&stores).await.id,
        chat_user(&stores).await.id,
        chat_user(&stores).await.id,
    ];
    let steps: [(bool, UserId, &str, Vec<Reaction>); 6] = [
        (true, ann, "👍", vec![reaction("👍", &[ann])]),
        (
            true,
            bob,
            "🎉",
            vec![reaction("👍", &[ann]), reaction("🎉", &[bob])],
        ),
        (
            true,
            cat,
            "👍",
            vec![reaction("👍", &[ann, cat]), reaction("🎉", &[bob])],
        ),
        (
            false,
            ann,
            "👍",
            vec![reaction("👍", &[cat]), reaction("🎉", &[bob])],
        ),
        (false, cat, "👍", vec![reaction("🎉", &[bob])]),
        (
            true,
            ann,
            "👍",
            vec![reaction("🎉", &[bob]), reaction("👍", &[ann])],
        ),
    ];
    for (offset, (adding, user, raw, expected)) in (1..).zip(steps) {
        let before = stored_room(&stores, room).await;
        let the_change = change(message.id, user, raw);
        let reacted = if adding {
            stores.messages.react(room, &the_change, at(offset)).await
        } else {
            stores.messages.unreact(room, &the_change, at(offset)).await
        };
        let (after, event) = done(reacted.unwrap());
        let shown = Message {
            reactions: expected,
            ..message.clone()
        };
        assert_eq!(after, shown, "step {offset}");
        let event = event.expect("a change is logged");
        assert_eq!(
            event.change,
            if adding {
                Change::ReactionAdded(the_change)
            } else {
                Change::ReactionRemoved(the_change)
            }
        );
        assert_eq!(event.at, at(offset));
        let kind = if adding {
            "reaction_added"
        } else {
            "reaction_removed"
        };
        assert_logged(&stores, &before, &[event], &[kind]).await;
        assert_eq!(stored(&stores, room, message.id).await, shown);
    }
    let now = stored(&stores, room, message.id).await;
    let page = stores
        .messages
        .page(room, &p_chat_domain::message::HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(page.messages, std::slice::from_ref(&now));
    let log = stores
        .events
        .after(room, &crate::fixtures::events_after(0, 100))
        .await
        .unwrap();
    let shown: Vec<&Message> = log
        .events
        .iter()
        .filter_map(|event| event.change.message())
        .collect();
    assert_eq!(shown, [&now], "the message's event shows it as it is now");
}

/// Adding a reaction the user already has, or removing one they do not
/// have (also on a message without reactions, or of an emoji someone else
/// has), changes nothing: `Done` with the message as it is and no event,
/// and no position consumed.
pub async fn repeated_adds_and_missing_removes_change_nothing(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let [ann, bob] = [chat_user(&stores).await.id, chat_user(&stores).await.id];

    let before = stored_room(&stores, room).await;
    let (after, event) = done(
        stores
            .messages
            .unreact(room, &change(message.id, ann, "👍"), at(1))
            .await
            .unwrap(),
    );
    assert_eq!((after, event), (message.clone(), None));
    assert_unlogged(&stores, &before).await;

    done(
        stores
            .messages
            .react(room, &change(message.id, ann, "👍"), at(2))
            .await
            .unwrap(),
    );
    let with_ann = Message {
        reactions: vec![reaction("👍", &[ann])],
        ..message.clone()
    };
    let before = stored_room(&stores, room).await;
    for reacted in [
        stores
            .messages
            .react(room, &change(message.id, ann, "👍"), at(3))
            .await,
        stores
            .messages
            .unreact(room, &change(message.id, bob, "👍"), at(4))
            .await,
        stores
            .messages
            .unreact(room, &change(message.id, ann, "🎉"), at(5))
            .await,
    ] {
        assert_eq!(done(reacted.unwrap()), (with_ann.clone(), None));
        assert_unlogged(&stores, &before).await;
    }
    assert_eq!(stored(&stores, room, message.id).await, with_ann);
}

/// A message that is not in the room (missing, of another room, or of a
/// room that does not exist) is `NoMessage`; a tombstone is `Deleted`, for
/// adding and removing alike. None of them changes or logs anything.
pub async fn reactions_to_missing_or_deleted_messages_are_refused(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let (other_room, other_message) = room_with_a_message(&stores).await;
    let ann = chat_user(&stores).await.id;
    let deleted = append_messages(&stores, room, ann, 1).await.remove(0);
    stores
        .messages
        .tombstone(room, deleted.id, at(5))
        .await
        .unwrap();
    let before = stored_room(&stores, room).await;
    let before_other = stored_room(&stores, other_room).await;

    for (in_room, id, refused) in [
        (room, MessageId::new(), Reacted::NoMessage),
        (room, other_message.id, Reacted::NoMessage),
        (RoomId::new(), message.id, Reacted::NoMessage),
        (room, deleted.id, Reacted::Deleted),
    ] {
        let the_change = change(id, ann, "👍");
        assert_eq!(
            stores
                .messages
                .react(in_room, &the_change, at(6))
                .await
                .unwrap(),
            refused
        );
        assert_eq!(
            stores
                .messages
                .unreact(in_room, &the_change, at(6))
                .await
                .unwrap(),
            refused
        );
    }
    assert_unlogged(&stores, &before).await;
    assert_unlogged(&stores, &before_other).await;
    assert_eq!(stored(&stores, room, deleted.id).await.reactions, []);
    assert_eq!(
        stored(&stores, other_room, other_message.id)
            .await
            .reactions,
        []
    );
}

/// A message takes at most `Reaction::MAX_PER_MESSAGE` distinct emoji: the
/// next new one is `TooMany` and changes nothing, while adding oneself to
/// an emoji already there still works, and removing one makes room again.
pub async fn a_message_takes_at_most_twenty_distinct_emoji(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let [ann, bob] = [chat_user(&stores).await.id, chat_user(&stores).await.id];
    for raw in &EMOJI[..Reaction::MAX_PER_MESSAGE] {
        done(
            stores
                .messages
                .react(room, &change(message.id, ann, raw), at(1))
                .await
                .unwrap(),
        );
    }
    let full = stored(&stores, room, message.id).await;
    assert_eq!(full.reactions.len(), Reaction::MAX_PER_MESSAGE);

    let before = stored_room(&stores, room).await;
    let twenty_first = change(message.id, bob, EMOJI[Reaction::MAX_PER_MESSAGE]);
    assert_eq!(
        stores
            .messages
            .react(room, &twenty_first, at(2))
            .await
            .unwrap(),
        Reacted::TooMany
    );
    assert_unlogged(&stores, &before).await;
    assert_eq!(stored(&stores, room, message.id).await, full);

    let (after, event) = done(
        stores
            .messages
            .react(room, &change(message.id, bob, EMOJI[0]), at(3))
            .await
            .unwrap(),
    );
    assert!(event.is_some());
    assert_eq!(after.reactions[0], reaction(EMOJI[0], &[ann, bob]));

    done(
        stores
            .messages
            .unreact(room, &change(message.id, ann, EMOJI[1]), at(4))
            .await
            .unwrap(),
    );
    let (after, event) = done(
        stores
            .messages
            .react(room, &twenty_first, at(5))
            .await
            .unwrap(),
    );
    assert!(event.is_some());
    assert_eq!(after.reactions.len(), Reaction::MAX_PER_MESSAGE);
    assert_eq!(
        after.reactions.last(),
        Some(&reaction(EMOJI[Reaction::MAX_PER_MESSAGE], &[bob]))
    );
}

/// Racers of one test.
const RACERS: usize = 20;

/// Twenty users adding the same emoji at once each get their own event (at
/// distinct, gap-free positions) and the count is exactly twenty; then all
/// removing it at once leaves none.
pub async fn concurrent_togglers_of_one_emoji_count_exactly(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let mut users = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        users.push(chat_user(&stores).await.id);
    }
    let users = Arc::new(users);

    for adding in [true, false] {
        let before = stored_room(&stores, room).await;
        let outcomes = race(RACERS, |racer| {
            let messages = Arc::clone(&stores.messages);
            let the_change = change(message.id, users[racer], "👍");
            async move {
                if adding {
                    messages.react(room, &the_change, at(1)).await
                } else {
                    messages.unreact(room, &the_change, at(1)).await
                }
            }
        })
        .await;
        let mut positions: Vec<i64> = outcomes
            .into_iter()
            .map(|outcome| {
                done(outcome.unwrap())
                    .1
                    .expect("each change logged")
                    .pos
                    .value()
            })
            .collect();
        positions.sort_unstable();
        let first = before.last_pos.value() + 1;
        let expected: Vec<i64> = (first..).take(RACERS).collect();
        assert_eq!(positions, expected);
        let now = stored(&stores, room, message.id).await;
        if adding {
            assert_eq!(now.reactions.len(), 1);
            let mut reactors = now.reactions[0].user_ids.clone();
            reactors.sort();
            let mut all = users.to_vec();
            all.sort();
            assert_eq!(reactors, all);
        } else {
            assert_eq!(now.reactions, []);
        }
        assert_eq!(
            stored_room(&stores, room).await.last_pos.value(),
            before.last_pos.value() + i64::try_from(RACERS).unwrap()
        );
    }
}

/// Thirty distinct emoji added at once: exactly twenty are taken, the
/// other ten are `TooMany`, and the message shows exactly the twenty.
pub async fn the_emoji_limit_is_exact_under_a_race(stores: ChatStores) {
    let (room, message) = room_with_a_message(&stores).await;
    let ann = chat_user(&stores).await.id;
    let outcomes = race(EMOJI.len(), |racer| {
        let messages = Arc::clone(&stores.messages);
        let the_change = change(message.id, ann, EMOJI[racer]);
        async move { messages.react(room, &the_change, at(1)).await }
    })
    .await;
    let mut taken = Vec::new();
    let mut refused = 0;
    for outcome in outcomes {
        match outcome.unwrap() {
            Reacted::Done(logged) => taken.push(logged.event.expect("a new emoji is logged")),
            Reacted::TooMany => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(taken.len(), Reaction::MAX_PER_MESSAGE);
    assert_eq!(refused, EMOJI.len() - Reaction::MAX_PER_MESSAGE);
    let now = stored(&stores, room, message.id).await;
    assert_eq!(now.reactions.len(), Reaction::MAX_PER_MESSAGE);
    taken.sort_by_key(|event| event.pos);
    let in_order: Vec<Emoji> = taken
        .iter()
        .map(|event| event.change.reaction().unwrap().emoji.clone())
        .collect();
    let shown: Vec<Emoji> = now.reactions.iter().map(|r| r.emoji.clone()).collect();
    assert_eq!(shown, in_order, "emoji show in the order they were added");
}

/// A repeated send (same client id) answers the stored message as it is,
/// reactions included.
pub async fn a_repeated_send_shows_the_reactions(stores: ChatStores) {
    let (owner, room) = created_room(&stores, Visibility::Public).await;
    let bob = chat_user(&stores).await.id;
    let sent: NewMessage = new_message_with_client_id(room.id, owner.id, unique_client_msg_id());
    let first = stores.messages.append(&sent).await.unwrap().unwrap().value;
    let (reacted, _) = done(
        stores
            .messages
            .react(room.id, &change(first.id, bob, "👍"), at(1))
            .await
            .unwrap(),
    );
    let again = stores
        .messages
        .append(&NewMessage {
            id: MessageId::new(),
            ..sent
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.event, None);
    assert_eq!(again.value, reacted);
    assert_eq!(again.value.reactions, [reaction("👍", &[bob])]);
}
