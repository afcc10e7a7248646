//! What happens in rooms, as told to connected clients through the
//! [`FanOut`](crate::ports::FanOut) port.

use crate::message::Message;
use crate::room::{Member, Room, RoomId};
use crate::user::UserId;

/// Something that happened in a room, published after it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A new message.
    Message(Message),
    /// A message's body changed.
    MessageUpdated(Message),
    /// A message was tombstoned.
    MessageDeleted(Message),
    /// A user became a member; `room` is the room as they joined it.
    MemberJoined {
        /// The room, with its `last_seq` at the time of joining.
        room: Room,
        /// The new member.
        member: Member,
    },
    /// A user left or was removed.
    MemberLeft {
        /// The room.
        room_id: RoomId,
        /// Who is gone.
        user_id: UserId,
    },
    /// The room's details changed.
    RoomUpdated(Room),
    /// The room is gone.
    RoomDeleted(RoomId),
    /// A member is typing (not stored).
    Typing {
        /// The room.
        room_id: RoomId,
        /// Who is typing.
        user_id: UserId,
    },
}

impl RoomEvent {
    /// The room the event belongs to.
    pub fn room_id(&self) -> RoomId {
        match self {
            Self::Message(message)
            | Self::MessageUpdated(message)
            | Self::MessageDeleted(message) => message.room_id,
            Self::MemberJoined { room, .. } | Self::RoomUpdated(room) => room.id,
            Self::MemberLeft { room_id, .. } | Self::Typing { room_id, .. } => *room_id,
            Self::RoomDeleted(room_id) => *room_id,
        }
    }
}
