use async_trait::async_trait;

use super::StoreError;
use crate::room::{Membership, Role, RoomId};
use crate::user::UserId;

/// Who is in which room, with which role.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MembershipRepository: Send + Sync {
    /// `user`'s membership of `room`, if any.
    async fn get(&self, room: RoomId, user: UserId) -> Result<Option<Membership>, StoreError>;

    /// Adds a membership. MUST return [`StoreError::Duplicate`] if the user
    /// is already a member (also when two adds race).
    async fn add(&self, membership: &Membership) -> Result<(), StoreError>;

    /// Removes `user` from `room`; returns whether they were a member.
    async fn remove(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;

    /// Changes a member's role to admin or member (ownership moves only
    /// through [`MembershipRepository::transfer_ownership`]); `None` if not a member.
    async fn set_role(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<Option<Membership>, StoreError>;

    /// Atomically makes member `to` the owner of `room` (also the room's
    /// `owner_id`) and the current owner `from` an admin. Returns false, and
    /// changes nothing, unless `from` is the owner and `to` a member.
    async fn transfer_ownership(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
    ) -> Result<bool, StoreError>;

    /// The room's memberships, in the order members joined.
    async fn list(&self, room: RoomId) -> Result<Vec<Membership>, StoreError>;
}
