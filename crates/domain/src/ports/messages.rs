use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::events::{Logged, RoomEvent};
use crate::message::{HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage};
use crate::reaction::ReactionChange;
use crate::room::RoomId;
use crate::search::{SearchHit, SearchQuery};

/// What adding or removing a reaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reacted {
    /// The message after the call, with the event it logged (`None` when
    /// the reaction was already there, or already gone).
    Done(Box<Logged<Message>>),
    /// The room has no such message.
    NoMessage,
    /// The message is a tombstone: it takes no reaction change.
    Deleted,
    /// Adding would give the message more than
    /// [`Reaction::MAX_PER_MESSAGE`](crate::reaction::Reaction::MAX_PER_MESSAGE)
    /// distinct emoji.
    TooMany,
}

/// Where messages live, numbered per room. Every change here is logged as
/// a room event (see [`crate::ports::EventLog`]) in the same atomic step,
/// with the room's next position.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores a message (with its `reply_to` and `mentions`, which the
    /// caller has checked) with the room's next seq, durably, with its
    /// `message` event at the room's next position, and advances the room's
    /// `last_seq` and `last_pos`, atomically: seqs (and positions) are 1, 2,
    /// 3, ... with no gap or reuse however many senders race, and a failed
    /// append consumes neither. If the author already sent `client_msg_id`
    /// in this room, stores nothing and returns that message with no event,
    /// also when the repeats race. `None` if the room does not exist.
    async fn append(&self, message: &NewMessage) -> Result<Option<Logged<Message>>, StoreError>;

    /// One page of the room's history, ascending by seq (see [`HistoryQuery`]).
    async fn page(&self, room: RoomId, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// The room's message with this id, if any.
    async fn by_id(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// Replaces the body of a message that is not deleted and sets its
    /// `edited_at`, logging `message_updated`; `None` (and nothing logged)
    /// if there is no such message or it is deleted.
    async fn edit(
        &self,
        room: RoomId,
        id: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError>;

    /// Tombstones a message: its body, mentions and reactions go, its seq
    /// and `reply_to` stay, `deleted_at` is set, and `message_deleted` is
    /// logged. A message already deleted is
    /// returned as it is, with no event. `None` if absent.
    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Logged<Message>>, StoreError>;

    /// Adds `change.user_id`'s reaction `change.emoji` to the message,
    /// logging `reaction_added`, atomically with the checks: the message
    /// exists in `room` and is not deleted, and it keeps at most 20
    /// distinct emoji however many members react at once. A reaction
    /// already there changes nothing (no event). Reads the message as it
    /// is after the call.
    async fn react(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError>;

    /// Removes that reaction, logging `reaction_removed`; one that is not
    /// there changes nothing (no event). Refused on a tombstone, as adding.
    async fn unreact(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError>;

    /// The messages `query.user` can read now that match `query.text`
    /// (see [`SearchQuery`]): of rooms they are a member of, never
    /// deleted, best matches first, then newest first, at most
    /// `query.limit`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError>;
}
