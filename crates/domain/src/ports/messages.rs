use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::events::{Logged, RoomEvent};
use crate::message::{HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage};
use crate::room::RoomId;

/// Where messages live, numbered per room. Every change here is logged as
/// a room event (see [`crate::ports::EventLog`]) in the same atomic step,
/// with the room's next position.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores a message with the room's next seq, durably, with its
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

    /// Tombstones a message: its body goes, its seq stays, `deleted_at` is
    /// set, and `message_deleted` is logged. A message already deleted is
    /// returned as it is, with no event. `None` if absent.
    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Logged<Message>>, StoreError>;
}
