use async_trait::async_trait;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::events::RoomEvent;
use crate::message::Seq;
use crate::read::{MarkerMove, Receipt, UnreadCounts};
use crate::room::{Member, Membership, Role, RoomId};
use crate::user::UserId;

/// Who is in which room, with which role. Every change is logged as a room
/// event at the room's next position, in the same atomic step (see
/// [`crate::ports::RoomRepository`]).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MembershipRepository: Send + Sync {
    /// `user`'s membership of `room`, if any.
    async fn get(&self, room: RoomId, user: UserId) -> Result<Option<Membership>, StoreError>;

    /// Adds a membership (at its `joined_at`), logging `member_joined` with
    /// the member as given. MUST return [`StoreError::Duplicate`] if the
    /// user is already a member (also when two adds race), and
    /// [`StoreError::Failure`] if the room does not exist.
    async fn add(&self, member: &Member) -> Result<RoomEvent, StoreError>;

    /// Removes `user` from `room`, logging `member_left`; `None` if they
    /// were not a member.
    async fn remove(
        &self,
        room: RoomId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError>;

    /// Changes the role of `member` (as the caller read it: its room, user
    /// and the name the event shows) to admin or member (ownership moves
    /// only through [`MembershipRepository::transfer_ownership`]), logging
    /// `member_updated`; `None` if not a member.
    async fn set_role(
        &self,
        member: &Member,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError>;

    /// Atomically makes member `to` the owner of their room (also the
    /// room's `owner_id`) and the current owner `from` an admin, logging
    /// `member_updated` of `from`, `member_updated` of `to` and
    /// `room_updated`, in that order (returned). Returns no events, and
    /// changes nothing, unless `from` is the owner and `to` a member.
    async fn transfer_ownership(
        &self,
        from: &Member,
        to: &Member,
        at: DateTime<Utc>,
    ) -> Result<Vec<RoomEvent>, StoreError>;

    /// The room's memberships, in the order members joined.
    async fn list(&self, room: RoomId) -> Result<Vec<Membership>, StoreError>;

    /// Those of `users` who are members of `room` (each once).
    async fn which_members(
        &self,
        room: RoomId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError>;

    /// Moves `user`'s read marker in `room` to `seq` if that is ahead of
    /// it, atomically: a marker never moves backward, however many calls
    /// race. `None` if `user` is not a member. The caller has checked that
    /// `seq` is not beyond the room's `last_seq`.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<MarkerMove>, StoreError>;

    /// `user`'s read state of each room they are a member of (or of `room`
    /// only), in one query: the marker, the messages after it by others
    /// and not deleted, and those of them that mention `user`, each count
    /// stopping at [`UnreadCounts::CAP`]. In no particular order.
    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<UnreadCounts>, StoreError>;

    /// Every member's read marker of `room`, in the order members joined.
    async fn receipts(&self, room: RoomId) -> Result<Vec<Receipt>, StoreError>;

    /// Whether `a` and `b` are both members of at least one room (`true`
    /// when they are the same user and in any room).
    async fn share_room(&self, a: UserId, b: UserId) -> Result<bool, StoreError>;
}
