//! The one gate every room use case passes: load the room and the caller's
//! membership, and apply [`crate::permissions`].

use std::sync::Arc;

use crate::error::{DomainError, Missing};
use crate::permissions::{Action, can, refusal};
use crate::ports::{MembershipRepository, RoomRepository};
use crate::room::{Membership, Room, RoomId};
use crate::user::UserId;

/// A room as seen by one caller who passed the permission check.
#[derive(Debug, Clone)]
pub struct Access {
    /// The room.
    pub room: Room,
    /// The caller's membership, if they are a member.
    pub membership: Option<Membership>,
}

/// Loads rooms and memberships and decides access.
#[derive(Clone)]
pub struct RoomAccess {
    pub(super) rooms: Arc<dyn RoomRepository>,
    pub(super) members: Arc<dyn MembershipRepository>,
}

impl RoomAccess {
    /// Builds the gate over the room and membership stores.
    pub fn new(rooms: Arc<dyn RoomRepository>, members: Arc<dyn MembershipRepository>) -> Self {
        Self { rooms, members }
    }

    /// The room and the caller's membership if `actor` may do `action`;
    /// otherwise 404 for a room they may not see, 403 for one they may.
    pub async fn check(
        &self,
        actor: UserId,
        room_id: RoomId,
        action: Action,
    ) -> Result<Access, DomainError> {
        let (room, membership) = self
            .rooms
            .with_membership(room_id, actor)
            .await?
            .ok_or(DomainError::NotFound(Missing::Room))?;
        let role = membership.as_ref().map(|membership| membership.role);
        if !can(role, room.visibility, action) {
            return Err(refusal(role, room.visibility));
        }
        Ok(Access { room, membership })
    }
}
