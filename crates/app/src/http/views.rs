//! The JSON shapes of CONTRACT section 3 (and of the account and
//! administration endpoints), built from domain values. Shared by every
//! adapter that shows them to clients.

use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, EventPage, RoomEvent};
use p_chat_domain::message::{HistoryPage, Message};
use p_chat_domain::position::Pos;
use p_chat_domain::registration::Invite;
use p_chat_domain::room::{Member, Room};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::user::User;
use serde::Serialize;
use uuid::Uuid;

/// `{id, name, topic, visibility, owner_id, created_at, last_seq, last_pos}`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    id: Uuid,
    name: String,
    topic: Option<String>,
    visibility: &'static str,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_pos: i64,
}

impl From<Room> for RoomView {
    fn from(room: Room) -> Self {
        Self {
            id: room.id.as_uuid(),
            name: room.name.as_str().to_owned(),
            topic: room.topic.map(|topic| topic.as_str().to_owned()),
            visibility: room.visibility.as_str(),
            owner_id: room.owner_id.as_uuid(),
            created_at: room.created_at,
            last_seq: room.last_seq.value(),
            last_pos: room.last_pos.value(),
        }
    }
}

/// `{user_id, display_name, role, joined_at}`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    user_id: Uuid,
    display_name: String,
    role: &'static str,
    joined_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        Self {
            user_id: member.membership.user_id.as_uuid(),
            display_name: member.display_name.as_str().to_owned(),
            role: member.membership.role.as_str(),
            joined_at: member.membership.joined_at,
        }
    }
}

/// `{id, room_id, seq, author_id, body, client_msg_id, created_at, edited_at, deleted}`;
/// a deleted message has `body: null` and `deleted: true`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    author_id: Uuid,
    body: Option<String>,
    client_msg_id: Option<String>,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    deleted: bool,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        Self {
            deleted: message.is_deleted(),
            id: message.id.as_uuid(),
            room_id: message.room_id.as_uuid(),
            seq: message.seq.value(),
            author_id: message.author_id.as_uuid(),
            body: message.body.map(|body| body.as_str().to_owned()),
            client_msg_id: message.client_msg_id.map(|id| id.as_str().to_owned()),
            created_at: message.created_at,
            edited_at: message.edited_at,
        }
    }
}

/// `{messages: [...], has_more}`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    messages: Vec<MessageView>,
    has_more: bool,
}

impl From<HistoryPage> for HistoryView {
    fn from(page: HistoryPage) -> Self {
        Self {
            messages: page.messages.into_iter().map(MessageView::from).collect(),
            has_more: page.has_more,
        }
    }
}

/// A room event as clients see it, the same on the WebSocket and in
/// `GET /rooms/{id}/events`: `{type, room_id, pos}` and the kind's fields
/// (docs/protocol.md lists them).
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: Uuid,
    pos: i64,
    #[serde(flatten)]
    fields: EventFields,
}

/// The fields of one kind of event.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum EventFields {
    /// `message`, `message_updated`, `message_deleted`.
    Message { message: MessageView },
    /// `member_joined`.
    Joined { member: MemberView, room: RoomView },
    /// `member_left`.
    Left { user_id: Uuid },
    /// `member_updated`.
    Member { member: MemberView },
    /// `room_updated`.
    Room { room: RoomView },
    /// `room_deleted`.
    Nothing {},
}

impl From<RoomEvent> for EventView {
    fn from(event: RoomEvent) -> Self {
        let kind = event.change.kind();
        let fields = match event.change {
            Change::Message(message)
            | Change::MessageUpdated(message)
            | Change::MessageDeleted(message) => EventFields::Message {
                message: message.into(),
            },
            Change::MemberJoined { room, member } => EventFields::Joined {
                member: member.into(),
                room: room.into(),
            },
            Change::MemberLeft { user_id } => EventFields::Left {
                user_id: user_id.as_uuid(),
            },
            Change::MemberUpdated(member) => EventFields::Member {
                member: member.into(),
            },
            Change::RoomUpdated(room) => EventFields::Room { room: room.into() },
            Change::RoomDeleted => EventFields::Nothing {},
        };
        Self {
            kind,
            room_id: event.room_id.as_uuid(),
            pos: event.pos.value(),
            fields,
        }
    }
}

/// `{events: [...], last_pos, has_more}`: a page of a room's log.
#[derive(Debug, Clone, Serialize)]
pub struct EventsView {
    events: Vec<EventView>,
    last_pos: i64,
    has_more: bool,
}

impl EventsView {
    /// The view of `page`, read after position `after`.
    pub fn new(page: EventPage, after: Pos) -> Self {
        Self {
            last_pos: page.last_pos(after).value(),
            has_more: page.has_more,
            events: list(page.events),
        }
    }
}

/// Converts a list of domain values into their views.
pub fn list<T, V: From<T>>(items: Vec<T>) -> Vec<V> {
    items.into_iter().map(V::from).collect()
}

/// The caller's own account: `{id, email, display_name, created_at, role}`
/// (CONTRACT section 3, plus the instance `role` the client needs to show
/// its administration page).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    id: Uuid,
    email: String,
    display_name: String,
    created_at: DateTime<Utc>,
    role: &'static str,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            created_at: user.created_at,
            role: user.role.as_str(),
        }
    }
}

/// An account as administrators see it: the user object plus its state.
#[derive(Debug, Clone, Serialize)]
pub struct AdminUserView {
    #[serde(flatten)]
    user: UserView,
    email_verified: bool,
    disabled_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<User> for AdminUserView {
    fn from(user: User) -> Self {
        Self {
            email_verified: user.is_verified(),
            disabled_at: user.disabled_at,
            deleted_at: user.deleted_at,
            user: UserView::from(user),
        }
    }
}

/// One login session in the caller's list: `{id, created_at, last_used_at,
/// user_agent, current}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    user_agent: Option<String>,
    current: bool,
}

impl SessionView {
    /// The view of `session`, marked `current` if it is `caller`'s.
    pub fn new(session: LoginSession, caller: SessionId) -> Self {
        Self {
            id: session.id.as_uuid(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            user_agent: session.user_agent.map(|agent| agent.as_str().to_owned()),
            current: session.id == caller,
        }
    }
}

/// An invitation: `{id, created_at, expires_at, uses_left, created_by}`
/// (the token is shown once, when it is created).
#[derive(Debug, Clone, Serialize)]
pub struct InviteView {
    id: Uuid,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    uses_left: u32,
    created_by: Option<Uuid>,
}

impl From<Invite> for InviteView {
    fn from(invite: Invite) -> Self {
        Self {
            id: invite.id.as_uuid(),
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            uses_left: invite.uses_left,
            created_by: invite.created_by.map(|id| id.as_uuid()),
        }
    }
}
