use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::message::{
    Appended, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage,
};
use crate::room::RoomId;

/// Where messages live, numbered per room.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores a message with the room's next seq, durably, and advances the
    /// room's `last_seq`, atomically: seqs are 1, 2, 3, ... with no gap or
    /// reuse however many senders race, and a failed append consumes none.
    /// If the author already sent `client_msg_id` in this room, stores
    /// nothing and returns that message (`created: false`), also when the
    /// repeats race. `None` if the room does not exist.
    async fn append(&self, message: &NewMessage) -> Result<Option<Appended>, StoreError>;

    /// One page of the room's history, ascending by seq (see [`HistoryQuery`]).
    async fn page(&self, room: RoomId, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// The room's message with this id, if any.
    async fn by_id(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// Replaces the body of a message that is not deleted and sets its
    /// `edited_at`; `None` if there is no such message or it is deleted.
    async fn edit(
        &self,
        room: RoomId,
        id: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError>;

    /// Tombstones a message: its body goes, its seq stays, `deleted_at` is
    /// set (kept if it already was). Returns the message, or `None` if absent.
    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError>;
}
