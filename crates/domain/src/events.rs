//! What happens in rooms: every observable change is a [`RoomEvent`] with a
//! per-room position ([`Pos`]), stored in the room's event log in the same
//! step as the change and delivered through the
//! [`FanOut`](crate::ports::FanOut) port. Ephemeral signals (typing) have no
//! position and are never stored ([`Broadcast::Typing`]).

use chrono::{DateTime, Utc};

use crate::message::{Message, PageLimit};
use crate::position::Pos;
use crate::reaction::ReactionChange;
use crate::read::UnreadCounts;
use crate::room::{Member, Room, RoomId};
use crate::user::UserId;

/// What changed in a room: one kind of [`RoomEvent`], carrying what a client
/// needs to apply it without another request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new message.
    Message(Message),
    /// A message's body changed.
    MessageUpdated(Message),
    /// A message was tombstoned.
    MessageDeleted(Message),
    /// A user became a member (a room's creation is its owner joining).
    MemberJoined {
        /// The room as it was right after the join (its `last_pos` is this
        /// event's position).
        room: Room,
        /// The new member.
        member: Member,
    },
    /// A member left or was removed.
    MemberLeft {
        /// Who is gone.
        user_id: UserId,
    },
    /// A member's role changed (a role change or an ownership handover).
    MemberUpdated(Member),
    /// The room's details (name, topic, visibility, owner) changed.
    RoomUpdated(Room),
    /// The room is gone, with its log: this event is delivered live only.
    RoomDeleted,
    /// A member reacted to a message with an emoji.
    ReactionAdded(ReactionChange),
    /// A member took their reaction back.
    ReactionRemoved(ReactionChange),
}

impl Change {
    /// The event's wire name (`message`, `member_joined`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::MessageUpdated(_) => "message_updated",
            Self::MessageDeleted(_) => "message_deleted",
            Self::MemberJoined { .. } => "member_joined",
            Self::MemberLeft { .. } => "member_left",
            Self::MemberUpdated(_) => "member_updated",
            Self::RoomUpdated(_) => "room_updated",
            Self::RoomDeleted => "room_deleted",
            Self::ReactionAdded(_) => "reaction_added",
            Self::ReactionRemoved(_) => "reaction_removed",
        }
    }

    /// The reaction a reaction event adds or removes.
    pub fn reaction(&self) -> Option<&ReactionChange> {
        match self {
            Self::ReactionAdded(change) | Self::ReactionRemoved(change) => Some(change),
            _ => None,
        }
    }

    /// The message of a message event.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Self::Message(message)
            | Self::MessageUpdated(message)
            | Self::MessageDeleted(message) => Some(message),
            _ => None,
        }
    }

    /// The room a `member_joined` or `room_updated` event shows.
    pub fn room(&self) -> Option<&Room> {
        match self {
            Self::MemberJoined { room, .. } | Self::RoomUpdated(room) => Some(room),
            _ => None,
        }
    }

    /// The member a `member_joined` or `member_updated` event shows.
    pub fn member(&self) -> Option<&Member> {
        match self {
            Self::MemberJoined { member, .. } | Self::MemberUpdated(member) => Some(member),
            _ => None,
        }
    }

    /// The user a membership event is about.
    pub fn member_id(&self) -> Option<UserId> {
        match self {
            Self::MemberLeft { user_id } => Some(*user_id),
            other => other.member().map(|member| member.membership.user_id),
        }
    }
}

/// One committed change of a room, at its position in the room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEvent {
    /// The room.
    pub room_id: RoomId,
    /// Its position in the room's log.
    pub pos: Pos,
    /// When it happened (what retention prunes by).
    pub at: DateTime<Utc>,
    /// What changed.
    pub change: Change,
}

/// The value a store call that may change a room returns, with the event
/// it logged; `event` is `None` when the call changed nothing (a repeated
/// send, a second delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged<T> {
    /// What the call returns.
    pub value: T,
    /// The event this call logged, if it changed the room.
    pub event: Option<RoomEvent>,
}

impl<T> Logged<T> {
    /// Whether the call changed the room.
    pub fn changed(&self) -> bool {
        self.event.is_some()
    }
}

/// What the fan-out carries: room events, and ephemeral signals that are
/// neither stored nor positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "delivered behind one Arc shared by every receiver; boxing the event would cost each publication an allocation for nothing"
)]
pub enum Broadcast {
    /// A committed room event.
    Event(RoomEvent),
    /// A member is typing (not stored, never replayed).
    Typing {
        /// The room.
        room_id: RoomId,
        /// Who is typing.
        user_id: UserId,
    },
    /// A member's read marker moved (not stored, never replayed): their own
    /// connections update their badges from `counts`, the other members'
    /// see a receipt.
    ReadMarker {
        /// Whose marker.
        user_id: UserId,
        /// Where it is now and what that leaves unread for them.
        counts: UnreadCounts,
    },
}

impl Broadcast {
    /// The room it belongs to.
    pub fn room_id(&self) -> RoomId {
        match self {
            Self::Event(event) => event.room_id,
            Self::Typing { room_id, .. } => *room_id,
            Self::ReadMarker { counts, .. } => counts.room_id,
        }
    }

    /// Its position, for a room event.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            Self::Event(event) => Some(event.pos),
            Self::Typing { .. } | Self::ReadMarker { .. } => None,
        }
    }
}

impl From<RoomEvent> for Broadcast {
    fn from(event: RoomEvent) -> Self {
        Self::Event(event)
    }
}

/// Which events of a room's log to read: those after `after`, at most
/// `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with a position above this one.
    pub after: Pos,
    /// At most this many (1 to 100).
    pub limit: PageLimit,
}

/// Events of one room in ascending position, without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// The events: `query.after + 1`, `+ 2`, ... Message events show the
    /// message as it is now (an edit or delete since is already applied).
    pub events: Vec<RoomEvent>,
    /// Whether the room has events beyond the page.
    pub has_more: bool,
}

impl EventPage {
    /// Where a reader of this page, asked for events after `after`, reads
    /// on: the last event's position, or `after` if the page is empty.
    pub fn last_pos(&self, after: Pos) -> Pos {
        self.events.last().map_or(after, |event| event.pos)
    }
}
