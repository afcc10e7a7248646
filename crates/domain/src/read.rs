//! Read markers: how far each member has read a room, and what that leaves
//! unread for them.

use crate::message::Seq;
use crate::room::RoomId;
use crate::user::UserId;

/// A member's read state of one room: their marker and what is unread
/// after it. Both counts stop at [`UnreadCounts::CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadCounts {
    /// The room.
    pub room_id: RoomId,
    /// The seq of the last message the member has read (0: none).
    pub last_read_seq: Seq,
    /// Messages after the marker, by others, not deleted.
    pub unread: u32,
    /// Those of them that mention the member.
    pub mentions: u32,
}

impl UnreadCounts {
    /// The highest count reported: a badge shows "999+" long before, and
    /// counting further would make listing rooms cost as much as the
    /// unread backlog. A count of `CAP` means "`CAP` or more".
    pub const CAP: u32 = 1000;

    /// A room with nothing unread up to `last_read_seq`.
    pub fn read_up_to(room_id: RoomId, last_read_seq: Seq) -> Self {
        Self {
            room_id,
            last_read_seq,
            unread: 0,
            mentions: 0,
        }
    }
}

/// Where one member's marker stands: what `GET /rooms/{id}/receipts`
/// lists and the `receipt` event shows to the other members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The member.
    pub user_id: UserId,
    /// The seq of the last message they have read.
    pub last_read_seq: Seq,
}

/// What moving a marker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerMove {
    /// The marker after the call.
    pub last_read_seq: Seq,
    /// Whether the call moved it (it never moves backward).
    pub moved: bool,
}
