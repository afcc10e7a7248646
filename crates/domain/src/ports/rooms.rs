use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::events::RoomEvent;
use crate::room::{DirectPair, Member, Membership, Room, RoomId, RoomName, Topic, Visibility};
use crate::user::{DisplayName, UserId};

/// The details of a room its admins may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomDetails {
    /// The name.
    pub name: RoomName,
    /// The topic, if any.
    pub topic: Option<Topic>,
    /// Public or private (never direct).
    pub visibility: Visibility,
}

/// What [`RoomRepository::open_direct`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedDirect {
    /// The pair's direct room.
    pub room: Room,
    /// Whether this call created it.
    pub created: bool,
    /// The `member_joined` events of the memberships this call stored, by
    /// user id: both on creation, the users re-added to an existing room,
    /// else none.
    pub joined: Vec<RoomEvent>,
}

/// The two people of a direct room, with the names its `member_joined`
/// events show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectPeople {
    /// The pair.
    pub pair: DirectPair,
    /// The display name of `pair.low()`.
    pub low_name: DisplayName,
    /// The display name of `pair.high()`.
    pub high_name: DisplayName,
}

/// Where rooms live. Rooms, memberships, messages and room events are one
/// store: the operations below that span them are atomic, and each change
/// is logged as a room event at the room's next position in the same step
/// (a change that fails logs nothing and consumes no position).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Stores a new room together with its owner's membership, atomically,
    /// logging the owner's `member_joined` at position 1 (returned).
    async fn create(&self, room: &Room, owner: &Member) -> Result<RoomEvent, StoreError>;

    /// The direct room of `people.pair`: if none exists, stores `room`
    /// (which must be `Direct`) with both users as members (role member,
    /// joined at `now`) and returns it as created; otherwise returns the
    /// existing one, first re-adding either user if they had left. Either
    /// way it logs and reports a `member_joined` per membership it stored.
    /// Atomic: concurrent calls for one pair yield one room, and a re-added
    /// user is reported by one call only.
    async fn open_direct(
        &self,
        room: &Room,
        people: &DirectPeople,
        now: DateTime<Utc>,
    ) -> Result<OpenedDirect, StoreError>;

    /// The room with this id, if any.
    async fn by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError>;

    /// The room with this id, if any, with `user`'s membership in it, if
    /// any: what every permission check needs, read together.
    async fn with_membership(
        &self,
        id: RoomId,
        user: UserId,
    ) -> Result<Option<(Room, Option<Membership>)>, StoreError>;

    /// Replaces the room's name, topic and visibility (nothing else),
    /// logging `room_updated`; `None` if the room does not exist.
    async fn update_details(
        &self,
        id: RoomId,
        details: &RoomDetails,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError>;

    /// Deletes the room with its memberships, messages and event log.
    /// Returns its `room_deleted` event (at the position after its last;
    /// stored nowhere, as the log goes with the room), or `None` if there
    /// was no such room.
    async fn delete(&self, id: RoomId, at: DateTime<Utc>) -> Result<Option<RoomEvent>, StoreError>;

    /// The rooms `user` is a member of, oldest first.
    async fn of_member(&self, user: UserId) -> Result<Vec<Room>, StoreError>;

    /// Public rooms whose name contains `query` (case-insensitive; empty
    /// matches all), by name, at most `limit`.
    async fn search_public(&self, query: &str, limit: usize) -> Result<Vec<Room>, StoreError>;
}
