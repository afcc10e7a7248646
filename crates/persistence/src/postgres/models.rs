//! Row structs, converted to and from domain types at this edge. They never
//! leave the crate, and domain types never derive diesel traits.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use p_chat_domain::events::{Change, RoomEvent};
use p_chat_domain::message::{
    ClientMsgId, Mentions, Message, MessageBody, MessageId, NewMessage, Seq,
};
use p_chat_domain::ports::StoreError;
use p_chat_domain::position::Pos;
use p_chat_domain::reaction::{Emoji, Reaction, ReactionChange};
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::registration::{Invite, InviteId};
use p_chat_domain::room::{
    DirectPair, Member, Membership, Role, Room, RoomId, RoomName, Topic, Visibility,
};
use p_chat_domain::session::{LoginSession, SessionId, UserAgent};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{DisplayName, Email, InstanceRole, PasswordHash, User, UserId};
use p_chat_domain::verification::EmailVerification;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::schema::{
    email_verifications, invites, login_sessions, message_reactions, messages, password_resets,
    room_events, room_members, rooms, users,
};

/// A `users` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    email_verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    role: String,
    disabled_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            password_hash: user.password_hash.expose().to_owned(),
            email_verified_at: user.email_verified_at,
            created_at: user.created_at,
            role: user.role.as_str().to_owned(),
            disabled_at: user.disabled_at,
            deleted_at: user.deleted_at,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Failure(format!("user {} has an invalid {what}", row.id));
        Ok(Self {
            id: UserId::from_uuid(row.id),
            email: Email::parse(&row.email).map_err(|_| corrupt("email"))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("display name"))?,
            password_hash: PasswordHash::new(row.password_hash),
            email_verified_at: row.email_verified_at,
            created_at: row.created_at,
            role: InstanceRole::parse(&row.role).map_err(|_| corrupt("role"))?,
            disabled_at: row.disabled_at,
            deleted_at: row.deleted_at,
        })
    }
}

/// A `login_sessions` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_sessions, check_for_backend(diesel::pg::Pg))]
pub(super) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_token_hash: Vec<u8>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: DateTime<Utc>,
    user_agent: Option<String>,
}

impl From<&LoginSession> for SessionRow {
    fn from(session: &LoginSession) -> Self {
        Self {
            id: session.id.as_uuid(),
            user_id: session.user_id.as_uuid(),
            refresh_token_hash: session.refresh_token_hash.as_bytes().to_vec(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
            last_used_at: session.last_used_at,
            user_agent: session
                .user_agent
                .as_ref()
                .map(|agent| agent.as_str().to_owned()),
        }
    }
}

impl TryFrom<SessionRow> for LoginSession {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            refresh_token_hash: token_hash(row.refresh_token_hash)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            user_agent: row.user_agent.as_deref().and_then(UserAgent::from_header),
        })
    }
}

/// An `email_verifications` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_verifications, check_for_backend(diesel::pg::Pg))]
pub(super) struct VerificationRow {
    token_hash: Vec<u8>,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
}

impl From<&EmailVerification> for VerificationRow {
    fn from(verification: &EmailVerification) -> Self {
        Self {
            token_hash: verification.token_hash.as_bytes().to_vec(),
            user_id: verification.user_id.as_uuid(),
            expires_at: verification.expires_at,
        }
    }
}

impl TryFrom<VerificationRow> for EmailVerification {
    type Error = StoreError;

    fn try_from(row: VerificationRow) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: token_hash(row.token_hash)?,
            user_id: UserId::from_uuid(row.user_id),
            expires_at: row.expires_at,
        })
    }
}

/// A `rooms` row. The direct pair is only written (by `open_direct`): the
/// domain's [`Room`] does not carry it.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = rooms, check_for_backend(diesel::pg::Pg))]
pub(super) struct RoomRow {
    id: Uuid,
    name: String,
    topic: Option<String>,
    visibility: String,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    direct_low: Option<Uuid>,
    direct_high: Option<Uuid>,
    last_pos: i64,
}

impl RoomRow {
    /// The row of `room`, with the pair's columns set for a direct room.
    pub(super) fn new(room: &Room, pair: Option<DirectPair>) -> Self {
        Self {
            id: room.id.as_uuid(),
            name: room.name.as_str().to_owned(),
            topic: room.topic.as_ref().map(|topic| topic.as_str().to_owned()),
            visibility: room.visibility.as_str().to_owned(),
            owner_id: room.owner_id.as_uuid(),
            created_at: room.created_at,
            last_seq: room.last_seq.value(),
            direct_low: pair.map(|pair| pair.low().as_uuid()),
            direct_high: pair.map(|pair| pair.high().as_uuid()),
            last_pos: room.last_pos.value(),
        }
    }

    /// The room's id.
    pub(super) fn id(&self) -> RoomId {
        RoomId::from_uuid(self.id)
    }

    /// The position of the room's newest event.
    pub(super) fn last_pos(&self) -> i64 {
        self.last_pos
    }
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;

    fn try_from(row: RoomRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Failure(format!("room {} has an invalid {what}", row.id));
        let topic = match &row.topic {
            Some(raw) => Some(
                Topic::parse(raw)
                    .ok()
                    .flatten()
                    .ok_or_else(|| corrupt("topic"))?,
            ),
            None => None,
        };
        Ok(Self {
            id: RoomId::from_uuid(row.id),
            name: RoomName::parse(&row.name).map_err(|_| corrupt("name"))?,
            topic,
            visibility: Visibility::parse(&row.visibility).map_err(|_| corrupt("visibility"))?,
            owner_id: UserId::from_uuid(row.owner_id),
            created_at: row.created_at,
            last_seq: Seq::new(row.last_seq).map_err(|_| corrupt("last seq"))?,
            last_pos: Pos::new(row.last_pos).map_err(|_| corrupt("last position"))?,
        })
    }
}

/// A `room_members` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_members, check_for_backend(diesel::pg::Pg))]
pub(super) struct MembershipRow {
    room_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: DateTime<Utc>,
}

impl MembershipRow {
    /// The member's id.
    pub(super) fn user_id(&self) -> Uuid {
        self.user_id
    }
}

impl From<&Membership> for MembershipRow {
    fn from(membership: &Membership) -> Self {
        Self {
            room_id: membership.room_id.as_uuid(),
            user_id: membership.user_id.as_uuid(),
            role: membership.role.as_str().to_owned(),
            joined_at: membership.joined_at,
        }
    }
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, StoreError> {
        Ok(Self {
            room_id: RoomId::from_uuid(row.room_id),
            user_id: UserId::from_uuid(row.user_id),
            role: Role::parse(&row.role).map_err(|_| {
                StoreError::Failure(format!(
                    "membership of {} in room {} has an invalid role",
                    row.user_id, row.room_id
                ))
            })?,
            joined_at: row.joined_at,
        })
    }
}

/// A `messages` row (also as a raw query's result: the send path's
/// statement that stores the message with its event).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub(super) struct MessageRow {
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
}

impl MessageRow {
    /// The row of a new message, stored at `seq`.
    pub(super) fn new(message: &NewMessage, seq: i64) -> Self {
        Self {
            id: message.id.as_uuid(),
            room_id: message.room_id.as_uuid(),
            seq,
            author_id: message.author_id.as_uuid(),
            body: Some(message.body.as_str().to_owned()),
            client_msg_id: message
                .client_msg_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            created_at: message.created_at,
            edited_at: None,
            deleted_at: None,
            reply_to: message.reply_to.map(|id| id.as_uuid()),
            mentions: message
                .mentions
                .users()
                .iter()
                .map(|user| user.as_uuid())
                .collect(),
        }
    }

    /// The message's id.
    pub(super) fn id(&self) -> Uuid {
        self.id
    }

    /// The seq.
    pub(super) fn seq(&self) -> i64 {
        self.seq
    }

    /// Whether it is a tombstone.
    pub(super) fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// When it was stored (when its `message` event happened).
    pub(super) fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The idempotency key `(author, client_msg_id)`, if it has a client id.
    pub(super) fn client_key(&self) -> Option<(Uuid, &str)> {
        self.client_msg_id
            .as_deref()
            .map(|client_id| (self.author_id, client_id))
    }
}

/// A message row with the rows of its reactions (in the order
/// [`ReactionRow`] documents): everything a [`Message`] shows, so that no
/// message is read without its reactions.
#[derive(Debug, Clone)]
pub(super) struct Loaded {
    /// The message.
    pub(super) row: MessageRow,
    /// Its reactions, in display order.
    pub(super) reactions: Vec<ReactionRow>,
}

impl Loaded {
    /// A message that has no reactions: new, or a tombstone.
    pub(super) fn bare(row: MessageRow) -> Self {
        Self {
            row,
            reactions: Vec::new(),
        }
    }
}

impl TryFrom<Loaded> for Message {
    type Error = StoreError;

    fn try_from(Loaded { row, reactions }: Loaded) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Failure(format!("message {} has an invalid {what}", row.id));
        if row.body.is_none() != row.deleted_at.is_some() {
            return Err(corrupt("tombstone (body and deletion time disagree)"));
        }
        let mentions = Mentions::parse(row.mentions.iter().copied().map(UserId::from_uuid))
            .map_err(|_| corrupt("mention list"))?;
        Ok(Self {
            id: MessageId::from_uuid(row.id),
            room_id: RoomId::from_uuid(row.room_id),
            seq: Seq::new(row.seq)
                .ok()
                .filter(|seq| *seq > Seq::ZERO)
                .ok_or_else(|| corrupt("seq"))?,
            author_id: UserId::from_uuid(row.author_id),
            body: row
                .body
                .as_deref()
                .map(MessageBody::parse)
                .transpose()
                .map_err(|_| corrupt("body"))?,
            client_msg_id: row
                .client_msg_id
                .as_deref()
                .map(ClientMsgId::parse)
                .transpose()
                .map_err(|_| corrupt("client message id"))?,
            created_at: row.created_at,
            edited_at: row.edited_at,
            deleted_at: row.deleted_at,
            reply_to: row.reply_to.map(MessageId::from_uuid),
            mentions,
            reactions: reactions_of(reactions).map_err(|_| corrupt("reaction"))?,
        })
    }
}

/// A `message_reactions` row. A message's rows are read ordered by
/// `(emoji_ordinal, ordinal)`: emoji in the order each was first added
/// (and has stayed since), then each emoji's users in the order they
/// reacted, which is the order [`Message::reactions`] shows.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_reactions, check_for_backend(diesel::pg::Pg))]
pub(super) struct ReactionRow {
    message_id: Uuid,
    emoji: String,
    user_id: Uuid,
    reacted_at: DateTime<Utc>,
    ordinal: i64,
    emoji_ordinal: i64,
}

impl ReactionRow {
    /// The row of `change`, added at `at` after the message's reactions
    /// `present` (its rows as read, in order, under its lock): the next
    /// ordinal, and the emoji's place if it is there already.
    pub(super) fn added(change: &ReactionChange, at: DateTime<Utc>, present: &[Self]) -> Self {
        let ordinal = present.iter().map(|row| row.ordinal).max().unwrap_or(0) + 1;
        let emoji_ordinal = present
            .iter()
            .find(|row| row.emoji == change.emoji.as_str())
            .map_or(ordinal, |row| row.emoji_ordinal);
        Self {
            message_id: change.message_id.as_uuid(),
            emoji: change.emoji.as_str().to_owned(),
            user_id: change.user_id.as_uuid(),
            reacted_at: at,
            ordinal,
            emoji_ordinal,
        }
    }

    /// The message reacted to.
    pub(super) fn message_id(&self) -> Uuid {
        self.message_id
    }

    /// The emoji, as stored.
    pub(super) fn emoji(&self) -> &str {
        &self.emoji
    }

    /// Who reacted.
    pub(super) fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// Where it sorts among its message's rows (see [`ReactionRow`]).
    pub(super) fn order(&self) -> (i64, i64) {
        (self.emoji_ordinal, self.ordinal)
    }
}

/// One message's reaction rows (in order) as the domain shows them: one
/// [`Reaction`] per distinct emoji.
fn reactions_of(rows: Vec<ReactionRow>) -> Result<Vec<Reaction>, StoreError> {
    let mut reactions: Vec<Reaction> = Vec::new();
    for row in rows {
        let user = UserId::from_uuid(row.user_id);
        match reactions.last_mut() {
            Some(last) if last.emoji.as_str() == row.emoji => last.user_ids.push(user),
            _ => reactions.push(Reaction {
                emoji: Emoji::parse(&row.emoji).map_err(|_| {
                    StoreError::Failure(format!("message {} has an invalid emoji", row.message_id))
                })?,
                user_ids: vec![user],
            }),
        }
    }
    Ok(reactions)
}

/// A stored token hash; the schema's CHECK guarantees 32 bytes.
fn token_hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Failure("a stored token hash is not 32 bytes".into()))?;
    Ok(TokenHash::from_bytes(bytes))
}

/// A `password_resets` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = password_resets, check_for_backend(diesel::pg::Pg))]
pub(super) struct ResetRow {
    token_hash: Vec<u8>,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
}

impl From<&PasswordReset> for ResetRow {
    fn from(reset: &PasswordReset) -> Self {
        Self {
            token_hash: reset.token_hash.as_bytes().to_vec(),
            user_id: reset.user_id.as_uuid(),
            expires_at: reset.expires_at,
        }
    }
}

impl TryFrom<ResetRow> for PasswordReset {
    type Error = StoreError;

    fn try_from(row: ResetRow) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: token_hash(row.token_hash)?,
            user_id: UserId::from_uuid(row.user_id),
            expires_at: row.expires_at,
        })
    }
}

/// An `invites` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = invites, check_for_backend(diesel::pg::Pg))]
pub(super) struct InviteRow {
    id: Uuid,
    token_hash: Vec<u8>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    uses_left: i32,
}

impl From<&Invite> for InviteRow {
    fn from(invite: &Invite) -> Self {
        Self {
            id: invite.id.as_uuid(),
            token_hash: invite.token_hash.as_bytes().to_vec(),
            created_by: invite.created_by.map(|id| id.as_uuid()),
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            uses_left: i32::try_from(invite.uses_left).unwrap_or(i32::MAX),
        }
    }
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;

    fn try_from(row: InviteRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: InviteId::from_uuid(row.id),
            token_hash: token_hash(row.token_hash)?,
            created_by: row.created_by.map(UserId::from_uuid),
            created_at: row.created_at,
            expires_at: row.expires_at,
            uses_left: u32::try_from(row.uses_left)
                .map_err(|_| StoreError::Failure(format!("invite {} has negative uses", row.id)))?,
        })
    }
}

/// The `kind` of a room event row: the event's wire name.
pub(super) mod kind {
    /// A new message.
    pub const MESSAGE: &str = "message";
    /// An edit.
    pub const MESSAGE_UPDATED: &str = "message_updated";
    /// A tombstone.
    pub const MESSAGE_DELETED: &str = "message_deleted";
    /// A join (or a room's creation, its owner joining).
    pub const MEMBER_JOINED: &str = "member_joined";
    /// A leave or a removal.
    pub const MEMBER_LEFT: &str = "member_left";
    /// A role change.
    pub const MEMBER_UPDATED: &str = "member_updated";
    /// New room details (or a new owner).
    pub const ROOM_UPDATED: &str = "room_updated";
    /// A reaction added.
    pub const REACTION_ADDED: &str = "reaction_added";
    /// A reaction taken back.
    pub const REACTION_REMOVED: &str = "reaction_removed";
}

/// A `room_events` row. A message event holds only its message's id (the
/// log is read joined to the message as it is now); membership and room
/// events hold what they show in `payload`, an [`EventPayload`].
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_events, check_for_backend(diesel::pg::Pg))]
pub(super) struct EventRow {
    room_id: Uuid,
    pos: i64,
    kind: String,
    at: DateTime<Utc>,
    message_id: Option<Uuid>,
    user_id: Option<Uuid>,
    payload: Option<serde_json::Value>,
}

/// The `payload` of a membership, room or reaction event: `{"member":
/// ...}` for `member_updated`, `{"member": ..., "room": ...}` for
/// `member_joined`, `{"room": ...}` for `room_updated`, `{"emoji": ...}`
/// for `reaction_added` and `reaction_removed` (which name their message
/// and user in their own columns).
#[derive(Debug, Default, Serialize, Deserialize)]
struct EventPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<MemberView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<RoomView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emoji: Option<String>,
}

/// A member as an event shows it (its room is the event's). Anonymising an
/// account rewrites `display_name` in place (see `PgUsers::anonymise`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MemberView {
    user_id: Uuid,
    display_name: String,
    role: String,
    joined_at: DateTime<Utc>,
}

impl MemberView {
    /// The member of `membership`, shown under `name`.
    pub(super) fn new(membership: &MembershipRow, name: &DisplayName) -> Self {
        Self {
            user_id: membership.user_id,
            display_name: name.as_str().to_owned(),
            role: membership.role.clone(),
            joined_at: membership.joined_at,
        }
    }
}

impl From<&Member> for MemberView {
    fn from(member: &Member) -> Self {
        Self::new(
            &MembershipRow::from(&member.membership),
            &member.display_name,
        )
    }
}

/// A room as an event shows it.
#[derive(Debug, Serialize, Deserialize)]
struct RoomView {
    id: Uuid,
    name: String,
    topic: Option<String>,
    visibility: String,
    owner_id: Uuid,
    created_at: DateTime<Utc>,
    last_seq: i64,
    last_pos: i64,
}

impl RoomView {
    /// `room` as it is at the event at `pos` (its `last_pos`).
    fn at(room: &RoomRow, pos: i64) -> Self {
        Self {
            id: room.id,
            name: room.name.clone(),
            topic: room.topic.clone(),
            visibility: room.visibility.clone(),
            owner_id: room.owner_id,
            created_at: room.created_at,
            last_seq: room.last_seq,
            last_pos: pos,
        }
    }
}

impl TryFrom<RoomView> for Room {
    type Error = StoreError;

    fn try_from(view: RoomView) -> Result<Self, StoreError> {
        Room::try_from(RoomRow {
            id: view.id,
            name: view.name,
            topic: view.topic,
            visibility: view.visibility,
            owner_id: view.owner_id,
            created_at: view.created_at,
            last_seq: view.last_seq,
            direct_low: None,
            direct_high: None,
            last_pos: view.last_pos,
        })
    }
}

/// A payload as stored.
fn payload(payload: &EventPayload) -> QueryResult<Option<serde_json::Value>> {
    serde_json::to_value(payload)
        .map(Some)
        .map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))
}

impl EventRow {
    /// The event of `kind` (one of the message kinds) about `message`, at
    /// `pos`.
    pub(super) fn of_message(
        kind: &str,
        message: &MessageRow,
        pos: i64,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            room_id: message.room_id,
            pos,
            kind: kind.to_owned(),
            at,
            message_id: Some(message.id),
            user_id: None,
            payload: None,
        }
    }

    /// The event of `kind` (`reaction_added` or `reaction_removed`) of
    /// `change` at `pos` in `room`.
    pub(super) fn of_reaction(
        kind: &str,
        room: Uuid,
        change: &ReactionChange,
        pos: i64,
        at: DateTime<Utc>,
    ) -> QueryResult<Self> {
        Ok(Self {
            room_id: room,
            pos,
            kind: kind.to_owned(),
            at,
            message_id: Some(change.message_id.as_uuid()),
            user_id: Some(change.user_id.as_uuid()),
            payload: payload(&EventPayload {
                member: None,
                room: None,
                emoji: Some(change.emoji.as_str().to_owned()),
            })?,
        })
    }

    /// Whether this event shows its message (the message kinds; reaction
    /// events only name theirs).
    pub(super) fn shows_message(&self) -> bool {
        matches!(
            self.kind.as_str(),
            kind::MESSAGE | kind::MESSAGE_UPDATED | kind::MESSAGE_DELETED
        )
    }

    /// `member_joined` of `member` at `pos` in `room` (shown as it is
    /// right after the join: at `pos`).
    pub(super) fn member_joined(
        room: &RoomRow,
        member: MemberView,
        pos: i64,
        at: DateTime<Utc>,
    ) -> QueryResult<Self> {
        Ok(Self {
            room_id: room.id,
            pos,
            kind: kind::MEMBER_JOINED.to_owned(),
            at,
            message_id: None,
            user_id: Some(member.user_id),
            payload: payload(&EventPayload {
                member: Some(member),
                room: Some(RoomView::at(room, pos)),
                emoji: None,
            })?,
        })
    }

    /// `member_left` of `user` at `pos` in `room`.
    pub(super) fn member_left(room: Uuid, user: Uuid, pos: i64, at: DateTime<Utc>) -> Self {
        Self {
            room_id: room,
            pos,
            kind: kind::MEMBER_LEFT.to_owned(),
            at,
            message_id: None,
            user_id: Some(user),
            payload: None,
        }
    }

    /// `member_updated` of `member` at `pos` in `room`.
    pub(super) fn member_updated(
        room: Uuid,
        member: MemberView,
        pos: i64,
        at: DateTime<Utc>,
    ) -> QueryResult<Self> {
        Ok(Self {
            room_id: room,
            pos,
            kind: kind::MEMBER_UPDATED.to_owned(),
            at,
            message_id: None,
            user_id: Some(member.user_id),
            payload: payload(&EventPayload {
                member: Some(member),
                room: None,
                emoji: None,
            })?,
        })
    }

    /// `room_updated` at `room`'s `last_pos`, showing `room`.
    pub(super) fn room_updated(room: &RoomRow, at: DateTime<Utc>) -> QueryResult<Self> {
        Ok(Self {
            room_id: room.id,
            pos: room.last_pos,
            kind: kind::ROOM_UPDATED.to_owned(),
            at,
            message_id: None,
            user_id: None,
            payload: payload(&EventPayload {
                member: None,
                room: Some(RoomView::at(room, room.last_pos)),
                emoji: None,
            })?,
        })
    }

    /// The event this row logs, with its message as `message` shows it
    /// (the message of a message event as it is now, `None` for other
    /// events).
    pub(super) fn into_event(self, message: Option<Message>) -> Result<RoomEvent, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Failure(format!(
                "the event at {} in room {} has an invalid {what}",
                self.pos, self.room_id
            ))
        };
        let room_id = RoomId::from_uuid(self.room_id);
        let payload: EventPayload = match &self.payload {
            Some(value) => EventPayload::deserialize(value).map_err(|_| corrupt("payload"))?,
            None => EventPayload::default(),
        };
        let member = |view: Option<MemberView>| -> Result<Member, StoreError> {
            let view = view.ok_or_else(|| corrupt("payload (no member)"))?;
            Ok(Member {
                display_name: DisplayName::parse(&view.display_name)
                    .map_err(|_| corrupt("member name"))?,
                membership: Membership {
                    room_id,
                    user_id: UserId::from_uuid(view.user_id),
                    role: Role::parse(&view.role).map_err(|_| corrupt("member role"))?,
                    joined_at: view.joined_at,
                },
            })
        };
        let room = |view: Option<RoomView>| -> Result<Room, StoreError> {
            Room::try_from(view.ok_or_else(|| corrupt("payload (no room)"))?)
        };
        let message = || message.ok_or_else(|| corrupt("message (none)"));
        let reaction = || -> Result<ReactionChange, StoreError> {
            let emoji = payload.emoji.as_deref().ok_or_else(|| corrupt("emoji"))?;
            Ok(ReactionChange {
                message_id: MessageId::from_uuid(
                    self.message_id.ok_or_else(|| corrupt("message id"))?,
                ),
                emoji: Emoji::parse(emoji).map_err(|_| corrupt("emoji"))?,
                user_id: UserId::from_uuid(self.user_id.ok_or_else(|| corrupt("user"))?),
            })
        };
        let change = match self.kind.as_str() {
            kind::MESSAGE => Change::Message(message()?),
            kind::MESSAGE_UPDATED => Change::MessageUpdated(message()?),
            kind::MESSAGE_DELETED => Change::MessageDeleted(message()?),
            kind::MEMBER_JOINED => Change::MemberJoined {
                member: member(payload.member)?,
                room: room(payload.room)?,
            },
            kind::MEMBER_LEFT => Change::MemberLeft {
                user_id: UserId::from_uuid(self.user_id.ok_or_else(|| corrupt("user"))?),
            },
            kind::MEMBER_UPDATED => Change::MemberUpdated(member(payload.member)?),
            kind::ROOM_UPDATED => Change::RoomUpdated(room(payload.room)?),
            kind::REACTION_ADDED => Change::ReactionAdded(reaction()?),
            kind::REACTION_REMOVED => Change::ReactionRemoved(reaction()?),
            _ => return Err(corrupt("kind")),
        };
        Ok(RoomEvent {
            room_id,
            pos: Pos::new(self.pos).map_err(|_| corrupt("position"))?,
            at: self.at,
            change,
        })
    }
}
