//! What travels on a p-chat channel: one JSON object per publication,
//! versioned, naming the node that published it. Decoding parses every
//! field into its domain type, so garbage someone else publishes on a
//! channel is refused here and never reaches a connection.

use chrono::{DateTime, Utc};
use p_chat_domain::error::ValidationError;
use p_chat_domain::events::{Broadcast, Change, RoomEvent};
use p_chat_domain::message::{ClientMsgId, Mentions, Message, MessageBody, MessageId, Seq};
use p_chat_domain::position::Pos;
use p_chat_domain::presence::{Presence, PresenceChange};
use p_chat_domain::reaction::{Emoji, Reaction, ReactionChange};
use p_chat_domain::read::UnreadCounts;
use p_chat_domain::room::{Member, Membership, Role, Room, RoomId, RoomName, Topic, Visibility};
use p_chat_domain::session::SessionId;
use p_chat_domain::user::{DisplayName, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The format's version: a node drops publications of another version (as
/// during a rolling upgrade that changes it; positions fill the gap).
/// Version 2: replies, mentions, reactions and read markers; presence
/// changes too (kind `presence`, on the presence channel, which nodes
/// that do not know it do not subscribe to).
const VERSION: u8 = 2;

/// Identifies one running node, so it can skip its own publications (it
/// delivered them to its connections already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeId(Uuid);

impl NodeId {
    /// A fresh id, for a node starting.
    pub(crate) fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One publication as a node reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publication {
    /// Who published it.
    pub(crate) node: NodeId,
    /// What it says.
    pub(crate) news: News,
}

/// What a publication says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum News {
    /// A room event or a typing signal.
    Broadcast(Box<Broadcast>),
    /// A login session ended: its connections close on every node.
    SessionEnded(SessionId),
    /// A user came online or went offline: told to the connections of
    /// their rooms on every node.
    Presence(Box<PresenceChange>),
}

/// Why a publication was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not JSON of the expected shape.
    #[error("malformed publication: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Another version of the format.
    #[error("publication of format version {0}, this node reads {VERSION}")]
    Version(u8),
    /// A field that is not a valid value of its type.
    #[error("invalid publication: {0}")]
    Invalid(#[from] ValidationError),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u8,
    node: NodeId,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Body {
    Event(Box<EventWire>),
    Typing {
        room_id: Uuid,
        user_id: Uuid,
    },
    ReadMarker {
        room_id: Uuid,
        user_id: Uuid,
        last_read_seq: i64,
        unread: u32,
        mentions: u32,
    },
    SessionEnded {
        session_id: Uuid,
    },
    Presence {
        user_id: Uuid,
        presence: PresenceWire,
        last_seen_at: Option<DateTime<Utc>>,
        rooms: Vec<Uuid>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PresenceWire {
    Online,
    Offline,
}

#[derive(Serialize, Deserialize)]
struct EventWire {
    room_id: Uuid,
    pos: i64,
    at: DateTime<Utc>,
    change: ChangeWire,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChangeWire {
    Message { message: MessageWire },
    MessageUpdated { message: MessageWire },
    MessageDeleted { message: MessageWire },
    MemberJoined { room: RoomWire, member: MemberWire },
    MemberLeft { user_id: Uuid },
    MemberUpdated { member: MemberWire },
    RoomUpdated { room: RoomWire },
    RoomDeleted,
    ReactionAdded(ReactionChangeWire),
    ReactionRemoved(ReactionChangeWire),
}

#[derive(Serialize, Deserialize)]
struct ReactionChangeWire {
    message_id: Uuid,
    emoji: String,
    user_id: Uuid,
}

#[derive(Serialize, Deserialize)]
struct ReactionWire {
    emoji: String,
    user_ids: Vec<Uuid>,
}

#[derive(Serialize, Deserialize)]
struct MessageWire {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    author_id: Uuid,
    body: Option<String>,
    client_msg_id: Option<String>,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    reply_to: Option<Uuid>,
    mentions: Vec<Uuid>,
    reactions: Vec<ReactionWire>,
}

#[derive(Serialize, Deserialize)]
struct RoomWire {
    id: Uuid,
    name: String,
    topic: Option<String>,
    visibility: String,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_pos: i64,
}

#[derive(Serialize, Deserialize)]
struct MemberWire {
    room_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: DateTime<Utc>,
    display_name: String,
}

/// The bytes to publish for `news` from `node`.
pub(crate) fn encode(node: NodeId, news: &News) -> Vec<u8> {
    let body = match news {
        News::Broadcast(broadcast) => match broadcast.as_ref() {
            Broadcast::Event(event) => Body::Event(Box::new(EventWire::from(event))),
            Broadcast::Typing { room_id, user_id } => Body::Typing {
                room_id: room_id.as_uuid(),
                user_id: user_id.as_uuid(),
            },
            Broadcast::ReadMarker { user_id, counts } => Body::ReadMarker {
                room_id: counts.room_id.as_uuid(),
                user_id: user_id.as_uuid(),
                last_read_seq: counts.last_read_seq.value(),
                unread: counts.unread,
                mentions: counts.mentions,
            },
        },
        News::SessionEnded(session) => Body::SessionEnded {
            session_id: session.as_uuid(),
        },
        News::Presence(change) => Body::Presence {
            user_id: change.user_id.as_uuid(),
            presence: match change.presence {
                Presence::Online => PresenceWire::Online,
                Presence::Offline => PresenceWire::Offline,
            },
            last_seen_at: change.last_seen_at,
            rooms: change.rooms.iter().map(|room| room.as_uuid()).collect(),
        },
    };
    let envelope = Envelope {
        v: VERSION,
        node,
        body,
    };
    // Serializing plain structs of strings, numbers and UUIDs cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Reads a publication.
pub(crate) fn decode(bytes: &[u8]) -> Result<Publication, DecodeError> {
    let envelope: Envelope = serde_json::from_slice(bytes)?;
    if envelope.v != VERSION {
        return Err(DecodeError::Version(envelope.v));
    }
    let news = match envelope.body {
        Body::Event(event) => News::Broadcast(Box::new(Broadcast::Event((*event).try_into()?))),
        Body::Typing { room_id, user_id } => News::Broadcast(Box::new(Broadcast::Typing {
            room_id: RoomId::from_uuid(room_id),
            user_id: UserId::from_uuid(user_id),
        })),
        Body::ReadMarker {
            room_id,
            user_id,
            last_read_seq,
            unread,
            mentions,
        } => News::Broadcast(Box::new(Broadcast::ReadMarker {
            user_id: UserId::from_uuid(user_id),
            counts: UnreadCounts {
                room_id: RoomId::from_uuid(room_id),
                last_read_seq: Seq::new(last_read_seq)?,
                unread,
                mentions,
            },
        })),
        Body::SessionEnded { session_id } => News::SessionEnded(SessionId::from_uuid(session_id)),
        Body::Presence {
            user_id,
            presence,
            last_seen_at,
            rooms,
        } => {
            let presence = match presence {
                PresenceWire::Online => Presence::Online,
                PresenceWire::Offline => Presence::Offline,
            };
            News::Presence(Box::new(PresenceChange {
                user_id: UserId::from_uuid(user_id),
                presence,
                // Online has no last seen time, whatever was sent.
                last_seen_at: last_seen_at.filter(|_| presence == Presence::Offline),
                rooms: rooms.into_iter().map(RoomId::from_uuid).collect(),
            }))
        }
    };
    Ok(Publication {
        node: envelope.node,
        news,
    })
}

impl From<&RoomEvent> for EventWire {
    fn from(event: &RoomEvent) -> Self {
        let change = match &event.change {
            Change::Message(message) => ChangeWire::Message {
                message: message.into(),
            },
            Change::MessageUpdated(message) => ChangeWire::MessageUpdated {
                message: message.into(),
            },
            Change::MessageDeleted(message) => ChangeWire::MessageDeleted {
                message: message.into(),
            },
            Change::MemberJoined { room, member } => ChangeWire::MemberJoined {
                room: room.into(),
                member: member.into(),
            },
            Change::MemberLeft { user_id } => ChangeWire::MemberLeft {
                user_id: user_id.as_uuid(),
            },
            Change::MemberUpdated(member) => ChangeWire::MemberUpdated {
                member: member.into(),
            },
            Change::RoomUpdated(room) => ChangeWire::RoomUpdated { room: room.into() },
            Change::RoomDeleted => ChangeWire::RoomDeleted,
            Change::ReactionAdded(change) => ChangeWire::ReactionAdded(change.into()),
            Change::ReactionRemoved(change) => ChangeWire::ReactionRemoved(change.into()),
        };
        Self {
            room_id: event.room_id.as_uuid(),
            pos: event.pos.value(),
            at: event.at,
            change,
        }
    }
}

impl TryFrom<EventWire> for RoomEvent {
    type Error = ValidationError;

    fn try_from(wire: EventWire) -> Result<Self, ValidationError> {
        let change = match wire.change {
            ChangeWire::Message { message } => Change::Message(message.try_into()?),
            ChangeWire::MessageUpdated { message } => Change::MessageUpdated(message.try_into()?),
            ChangeWire::MessageDeleted { message } => Change::MessageDeleted(message.try_into()?),
            ChangeWire::MemberJoined { room, member } => Change::MemberJoined {
                room: room.try_into()?,
                member: member.try_into()?,
            },
            ChangeWire::MemberLeft { user_id } => Change::MemberLeft {
                user_id: UserId::from_uuid(user_id),
            },
            ChangeWire::MemberUpdated { member } => Change::MemberUpdated(member.try_into()?),
            ChangeWire::RoomUpdated { room } => Change::RoomUpdated(room.try_into()?),
            ChangeWire::RoomDeleted => Change::RoomDeleted,
            ChangeWire::ReactionAdded(change) => Change::ReactionAdded(change.try_into()?),
            ChangeWire::ReactionRemoved(change) => Change::ReactionRemoved(change.try_into()?),
        };
        Ok(Self {
            room_id: RoomId::from_uuid(wire.room_id),
            pos: Pos::new(wire.pos)?,
            at: wire.at,
            change,
        })
    }
}

impl From<&Message> for MessageWire {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.as_uuid(),
            room_id: message.room_id.as_uuid(),
            seq: message.seq.value(),
            author_id: message.author_id.as_uuid(),
            body: message.body.as_ref().map(|body| body.as_str().to_owned()),
            client_msg_id: message
                .client_msg_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            created_at: message.created_at,
            edited_at: message.edited_at,
            deleted_at: message.deleted_at,
            reply_to: message.reply_to.map(|id| id.as_uuid()),
            mentions: message
                .mentions
                .users()
                .iter()
                .map(UserId::as_uuid)
                .collect(),
            reactions: message
                .reactions
                .iter()
                .map(|reaction| ReactionWire {
                    emoji: reaction.emoji.as_str().to_owned(),
                    user_ids: reaction.user_ids.iter().map(UserId::as_uuid).collect(),
                })
                .collect(),
        }
    }
}

impl From<&ReactionChange> for ReactionChangeWire {
    fn from(change: &ReactionChange) -> Self {
        Self {
            message_id: change.message_id.as_uuid(),
            emoji: change.emoji.as_str().to_owned(),
            user_id: change.user_id.as_uuid(),
        }
    }
}

impl TryFrom<ReactionChangeWire> for ReactionChange {
    type Error = ValidationError;

    fn try_from(wire: ReactionChangeWire) -> Result<Self, ValidationError> {
        Ok(Self {
            message_id: MessageId::from_uuid(wire.message_id),
            emoji: Emoji::parse(&wire.emoji)?,
            user_id: UserId::from_uuid(wire.user_id),
        })
    }
}

impl TryFrom<MessageWire> for Message {
    type Error = ValidationError;

    fn try_from(wire: MessageWire) -> Result<Self, ValidationError> {
        Ok(Self {
            id: MessageId::from_uuid(wire.id),
            room_id: RoomId::from_uuid(wire.room_id),
            seq: Seq::new(wire.seq)?,
            author_id: UserId::from_uuid(wire.author_id),
            body: wire.body.as_deref().map(MessageBody::parse).transpose()?,
            client_msg_id: wire
                .client_msg_id
                .as_deref()
                .map(ClientMsgId::parse)
                .transpose()?,
            created_at: wire.created_at,
            edited_at: wire.edited_at,
            deleted_at: wire.deleted_at,
            reply_to: wire.reply_to.map(MessageId::from_uuid),
            mentions: Mentions::parse(wire.mentions.into_iter().map(UserId::from_uuid))?,
            reactions: wire
                .reactions
                .into_iter()
                .map(|reaction| {
                    Ok(Reaction {
                        emoji: Emoji::parse(&reaction.emoji)?,
                        user_ids: reaction
                            .user_ids
                            .into_iter()
                            .map(UserId::from_uuid)
                            .collect(),
                    })
                })
                .collect::<Result<_, ValidationError>>()?,
        })
    }
}

impl From<&Room> for RoomWire {
    fn from(room: &Room) -> Self {
        Self {
            id: room.id.as_uuid(),
            name: room.name.as_str().to_owned(),
            topic: room.topic.as_ref().map(|topic| topic.as_str().to_owned()),
            visibility: room.visibility.as_str().to_owned(),
            owner_id: room.owner_id.as_uuid(),
            created_at: room.created_at,
            last_seq: room.last_seq.value(),
            last_pos: room.last_pos.value(),
        }
    }
}

impl TryFrom<RoomWire> for Room {
    type Error = ValidationError;

    fn try_from(wire: RoomWire) -> Result<Self, ValidationError> {
        Ok(Self {
            id: RoomId::from_uuid(wire.id),
            name: RoomName::parse(&wire.name)?,
            topic: match wire.topic.as_deref() {
                Some(topic) => Topic::parse(topic)?,
                None => None,
            },
            visibility: Visibility::parse(&wire.visibility)?,
            owner_id: UserId::from_uuid(wire.owner_id),
            created_at: wire.created_at,
            last_seq: Seq::new(wire.last_seq)?,
            last_pos: Pos::new(wire.last_pos)?,
        })
    }
}

impl From<&Member> for MemberWire {
    fn from(member: &Member) -> Self {
        let membership = &member.membership;
        Self {
            room_id: membership.room_id.as_uuid(),
            user_id: membership.user_id.as_uuid(),
            role: membership.role.as_str().to_owned(),
            joined_at: membership.joined_at,
            display_name: member.display_name.as_str().to_owned(),
        }
    }
}

impl TryFrom<MemberWire> for Member {
    type Error = ValidationError;

    fn try_from(wire: MemberWire) -> Result<Self, ValidationError> {
        Ok(Self {
            membership: Membership {
                room_id: RoomId::from_uuid(wire.room_id),
                user_id: UserId::from_uuid(wire.user_id),
                role: Role::parse(&wire.role)?,
                joined_at: wire.joined_at,
            },
            display_name: DisplayName::parse(&wire.display_name)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn change(presence: Presence) -> PresenceChange {
        PresenceChange {
            user_id: UserId::new(),
            presence,
            last_seen_at: (presence == Presence::Offline).then(Utc::now),
            rooms: vec![RoomId::new(), RoomId::new()],
        }
    }

    #[test]
    fn presence_changes_round_trip() {
        let node = NodeId::new();
        for presence in [Presence::Online, Presence::Offline] {
            let news = News::Presence(Box::new(change(presence)));
            let read = decode(&encode(node, &news)).expect("decodes");
            assert_eq!(read, Publication { node, news });
        }
    }

    #[test]
    fn garbled_presence_changes_are_refused() {
        let node = NodeId::new();
        let real: Value = serde_json::from_slice(&encode(
            node,
            &News::Presence(Box::new(change(Presence::Offline))),
        ))
        .expect("JSON");
        let garbled = |field: &str, value: Value| {
            let mut garbled = real.clone();
            garbled[field] = value;
            serde_json::to_vec(&garbled).expect("JSON")
        };
        for bad in [
            garbled("presence", json!("away")),
            garbled("user_id", json!("not-a-uuid")),
            garbled("rooms", json!(["not-a-uuid"])),
            garbled("last_seen_at", json!("yesterday")),
            garbled("v", json!(1)),
        ] {
            assert!(decode(&bad).is_err(), "{}", String::from_utf8_lossy(&bad));
        }
    }

    #[test]
    fn an_online_change_carries_no_last_seen_time() {
        let mut online: Value = serde_json::from_slice(&encode(
            NodeId::new(),
            &News::Presence(Box::new(change(Presence::Online))),
        ))
        .expect("JSON");
        online["last_seen_at"] = json!(Utc::now());
        let read = decode(&serde_json::to_vec(&online).expect("JSON")).expect("decodes");
        match read.news {
            News::Presence(change) => assert_eq!(change.last_seen_at, None),
            other => panic!("not presence: {other:?}"),
        }
    }
}
