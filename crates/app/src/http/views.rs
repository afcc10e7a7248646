//! The JSON shapes of CONTRACT section 3, built from domain values. Shared by
//! every adapter that shows rooms, members and messages to clients.

use chrono::{DateTime, Utc};
use p_chat_domain::message::{HistoryPage, Message};
use p_chat_domain::room::{Member, Room};
use serde::Serialize;
use uuid::Uuid;

/// `{id, name, topic, visibility, owner_id, created_at, last_seq}`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    id: Uuid,
    name: String,
    topic: Option<String>,
    visibility: &'static str,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
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

/// Converts a list of domain values into their views.
pub fn list<T, V: From<T>>(items: Vec<T>) -> Vec<V> {
    items.into_iter().map(V::from).collect()
}
