//! Events for the unit tests of the hub and the sequencer.

use chrono::Utc;
use p_chat_domain::events::RoomEvent;
use p_chat_domain::message::{Message, MessageBody, MessageId, Seq};
use p_chat_domain::room::RoomId;
use p_chat_domain::user::UserId;

/// The `message` event of a message of `room` with `seq`.
pub(super) fn message(room: RoomId, seq: i64) -> RoomEvent {
    RoomEvent::Message(Message {
        id: MessageId::new(),
        room_id: room,
        seq: Seq::new(seq).unwrap_or(Seq::ZERO),
        author_id: UserId::new(),
        body: MessageBody::parse("hi").ok(),
        client_msg_id: None,
        created_at: Utc::now(),
        edited_at: None,
        deleted_at: None,
    })
}
