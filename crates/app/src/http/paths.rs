//! The path parameters of the room resources: each read once into the
//! domain's ids by its extractor (a segment that is no UUID is a 404, as
//! for every path id) and described once for the OpenAPI document.

use p_chat_domain::message::MessageId;
use p_chat_domain::reaction::Emoji;
use p_chat_domain::room::RoomId;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;

/// `/rooms/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RoomPath {
    /// The room's id.
    id: Uuid,
}

impl RoomPath {
    /// The room.
    pub fn room(&self) -> RoomId {
        RoomId::from_uuid(self.id)
    }
}

/// `/rooms/{id}/messages/{message_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The room's id.
    id: Uuid,
    /// The message's id.
    message_id: Uuid,
}

impl MessagePath {
    /// The room.
    pub fn room(&self) -> RoomId {
        RoomId::from_uuid(self.id)
    }

    /// The message.
    pub fn message(&self) -> MessageId {
        MessageId::from_uuid(self.message_id)
    }
}

/// `/rooms/{id}/messages/{message_id}/reactions/{emoji}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReactionPath {
    /// The room's id.
    id: Uuid,
    /// The message's id.
    message_id: Uuid,
    /// One emoji (a grapheme cluster), percent-encoded.
    emoji: String,
}

impl ReactionPath {
    /// The room, the message and the emoji (400 `invalid_emoji` unless it
    /// is one).
    pub fn parse(&self) -> Result<(RoomId, MessageId, Emoji), ApiError> {
        Ok((
            RoomId::from_uuid(self.id),
            MessageId::from_uuid(self.message_id),
            Emoji::parse(&self.emoji)?,
        ))
    }
}

/// `/rooms/{id}/members/{user}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// The room's id.
    id: Uuid,
    /// A user id, or `me`.
    user: String,
}

impl MemberPath {
    /// The room.
    pub fn room(&self) -> RoomId {
        RoomId::from_uuid(self.id)
    }

    /// The member as written in the path: a user id or `me`.
    pub fn user(&self) -> &str {
        &self.user
    }
}
