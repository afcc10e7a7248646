//! The JSON shapes of CONTRACT section 3 (and of the account and
//! administration endpoints), built from domain values. Shared by every
//! adapter that shows them to clients.

use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, EventPage, RoomEvent};
use p_chat_domain::message::{HistoryPage, Message};
use p_chat_domain::position::Pos;
use p_chat_domain::presence::Person;
use p_chat_domain::reaction::{Reaction, ReactionChange};
use p_chat_domain::read::{Receipt, UnreadCounts};
use p_chat_domain::registration::Invite;
use p_chat_domain::room::{Member, Room};
use p_chat_domain::search::{SearchHit, SearchText, Snippet};
use p_chat_domain::session::{LoginSession, SessionId};
use p_chat_domain::user::User;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// `{id, name, topic, visibility, owner_id, created_at, last_seq, last_pos}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomView {
    id: Uuid,
    name: String,
    topic: Option<String>,
    #[schema(pattern = "^(public|private|direct)$")]
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

/// A room in the caller's list (`GET /rooms`): the room object plus the
/// caller's read state, `{..., last_read_seq, unread_count, mention_count}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyRoomView {
    #[serde(flatten)]
    room: RoomView,
    #[serde(flatten)]
    read: ReadCountsView,
}

impl From<(Room, UnreadCounts)> for MyRoomView {
    fn from((room, counts): (Room, UnreadCounts)) -> Self {
        Self {
            room: room.into(),
            read: counts.into(),
        }
    }
}

/// `{last_read_seq, unread_count, mention_count}`: the counts stop at
/// [`UnreadCounts::CAP`].
#[derive(Debug, Clone, Serialize, ToSchema)]
struct ReadCountsView {
    last_read_seq: i64,
    unread_count: u32,
    mention_count: u32,
}

impl From<UnreadCounts> for ReadCountsView {
    fn from(counts: UnreadCounts) -> Self {
        Self {
            last_read_seq: counts.last_read_seq.value(),
            unread_count: counts.unread,
            mention_count: counts.mentions,
        }
    }
}

/// `{room_id, last_read_seq, unread_count, mention_count}`: the caller's
/// read state of one room (`PUT /rooms/{id}/read`, the `read_marker`
/// frame).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadStateView {
    room_id: Uuid,
    #[serde(flatten)]
    counts: ReadCountsView,
}

impl From<UnreadCounts> for ReadStateView {
    fn from(counts: UnreadCounts) -> Self {
        Self {
            room_id: counts.room_id.as_uuid(),
            counts: counts.into(),
        }
    }
}

/// `{user_id, last_read_seq}`: how far one member has read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptView {
    user_id: Uuid,
    last_read_seq: i64,
}

impl From<Receipt> for ReceiptView {
    fn from(receipt: Receipt) -> Self {
        Self {
            user_id: receipt.user_id.as_uuid(),
            last_read_seq: receipt.last_read_seq.value(),
        }
    }
}

/// `{user_id, display_name, role, joined_at}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    user_id: Uuid,
    display_name: String,
    #[schema(pattern = "^(owner|admin|member)$")]
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

/// `{id, room_id, seq, author_id, body, client_msg_id, created_at, edited_at,
/// deleted, reply_to, mentions, reactions}`; a deleted message has `body:
/// null`, `deleted: true`, no mentions and no reactions.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    reply_to: Option<Uuid>,
    mentions: Vec<Uuid>,
    reactions: Vec<ReactionView>,
}

/// `{emoji, count, user_ids}`: one distinct emoji on a message.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct ReactionView {
    emoji: String,
    count: usize,
    user_ids: Vec<Uuid>,
}

impl From<Reaction> for ReactionView {
    fn from(reaction: Reaction) -> Self {
        Self {
            emoji: reaction.emoji.as_str().to_owned(),
            count: reaction.user_ids.len(),
            user_ids: reaction.user_ids.iter().map(|id| id.as_uuid()).collect(),
        }
    }
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
            reply_to: message.reply_to.map(|id| id.as_uuid()),
            mentions: message
                .mentions
                .users()
                .iter()
                .map(|id| id.as_uuid())
                .collect(),
            reactions: list(message.reactions),
        }
    }
}

/// `{messages: [...], has_more}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: Uuid,
    pos: i64,
    /// The kind's fields (docs/protocol.md lists them).
    #[serde(flatten)]
    #[schema(value_type = Object)]
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
    /// `reaction_added`, `reaction_removed`.
    Reaction {
        message_id: Uuid,
        emoji: String,
        user_id: Uuid,
    },
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
            Change::ReactionAdded(change) | Change::ReactionRemoved(change) => {
                reaction_fields(change)
            }
        };
        Self {
            kind,
            room_id: event.room_id.as_uuid(),
            pos: event.pos.value(),
            fields,
        }
    }
}

/// The fields of a reaction event.
fn reaction_fields(change: ReactionChange) -> EventFields {
    EventFields::Reaction {
        message_id: change.message_id.as_uuid(),
        emoji: change.emoji.as_str().to_owned(),
        user_id: change.user_id.as_uuid(),
    }
}

/// One search result: `{message, room: {id, name}, snippet: [{text,
/// match}]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResultView {
    message: MessageView,
    room: RoomRefView,
    snippet: Vec<SegmentView>,
}

/// `{id, name}`: the room a search result is in.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct RoomRefView {
    id: Uuid,
    name: String,
}

/// `{text, match}`: a piece of a snippet.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct SegmentView {
    text: String,
    #[serde(rename = "match")]
    matched: bool,
}

impl SearchResultView {
    /// The view of `hit`, its snippet marking the words of `text`.
    pub fn new(hit: SearchHit, text: &SearchText) -> Self {
        let snippet = hit
            .message
            .body
            .as_ref()
            .map(|body| Snippet::of(body.as_str(), text))
            .map(|snippet| {
                snippet
                    .segments()
                    .iter()
                    .map(|segment| SegmentView {
                        text: segment.text.clone(),
                        matched: segment.matched,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            room: RoomRefView {
                id: hit.message.room_id.as_uuid(),
                name: hit.room_name.as_str().to_owned(),
            },
            message: hit.message.into(),
            snippet,
        }
    }
}

/// `{results: [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResultsView {
    results: Vec<SearchResultView>,
}

impl SearchResultsView {
    /// The view of `hits` found for `text`.
    pub fn new(hits: Vec<SearchHit>, text: &SearchText) -> Self {
        Self {
            results: hits
                .into_iter()
                .map(|hit| SearchResultView::new(hit, text))
                .collect(),
        }
    }
}

/// `{events: [...], last_pos, has_more}`: a page of a room's log.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    email: String,
    display_name: String,
    created_at: DateTime<Utc>,
    #[schema(pattern = "^(admin|member)$")]
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

/// Another user as the caller sees them (`GET /users/{id}`): who they are
/// and whether they are connected.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonView {
    id: Uuid,
    display_name: String,
    #[schema(pattern = "^(online|offline)$")]
    presence: &'static str,
    last_seen_at: Option<DateTime<Utc>>,
}

impl From<Person> for PersonView {
    fn from(person: Person) -> Self {
        Self {
            id: person.id.as_uuid(),
            display_name: person.display_name.as_str().to_owned(),
            presence: person.presence.as_str(),
            last_seen_at: person.last_seen_at,
        }
    }
}

/// An account as administrators see it: the user object plus its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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
