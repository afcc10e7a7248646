//! Events for the unit tests of the hub and the sequencer.

use chrono::Utc;
use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::message::{Message, MessageBody, MessageId, Seq};
use p_chat_domain::position::Pos;
use p_chat_domain::room::RoomId;
use p_chat_domain::user::UserId;

/// The `message` event at position `pos` of `room` (its message has the
/// same number as its seq).
pub(crate) fn message(room: RoomId, pos: i64) -> RoomEvent {
    RoomEvent {
        room_id: room,
        pos: Pos::new(pos).unwrap_or(Pos::ZERO),
        at: Utc::now(),
        change: Change::Message(Message {
            id: MessageId::new(),
            room_id: room,
            seq: Seq::new(pos).unwrap_or(Seq::ZERO),
            author_id: UserId::new(),
            body: MessageBody::parse("hi").ok(),
            client_msg_id: None,
            created_at: Utc::now(),
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            mentions: Default::default(),
            reactions: Vec::new(),
        }),
    }
}
