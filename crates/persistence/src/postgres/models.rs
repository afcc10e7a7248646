//! Row structs, converted to and from domain types at this edge. They never
//! leave the crate, and domain types never derive diesel traits.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use p_chat_domain::message::{ClientMsgId, Message, MessageBody, MessageId, NewMessage, Seq};
use p_chat_domain::ports::StoreError;
use p_chat_domain::recovery::PasswordReset;
use p_chat_domain::registration::{Invite, InviteId};
use p_chat_domain::room::{
    DirectPair, Membership, Role, Room, RoomId, RoomName, Topic, Visibility,
};
use p_chat_domain::session::{LoginSession, SessionId, UserAgent};
use p_chat_domain::token::TokenHash;
use p_chat_domain::user::{DisplayName, Email, InstanceRole, PasswordHash, User, UserId};
use p_chat_domain::verification::EmailVerification;
use uuid::Uuid;

use super::schema::{
    email_verifications, invites, login_sessions, messages, password_resets, room_members, rooms,
    users,
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
        }
    }

    /// The room's id.
    pub(super) fn id(&self) -> RoomId {
        RoomId::from_uuid(self.id)
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

/// A `messages` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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
        }
    }

    /// The seq.
    pub(super) fn seq(&self) -> i64 {
        self.seq
    }

    /// The idempotency key `(author, client_msg_id)`, if it has a client id.
    pub(super) fn client_key(&self) -> Option<(Uuid, &str)> {
        self.client_msg_id
            .as_deref()
            .map(|client_id| (self.author_id, client_id))
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Failure(format!("message {} has an invalid {what}", row.id));
        if row.body.is_none() != row.deleted_at.is_some() {
            return Err(corrupt("tombstone (body and deletion time disagree)"));
        }
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
        })
    }
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
