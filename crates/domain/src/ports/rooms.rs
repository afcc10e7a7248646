use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::room::{DirectPair, Membership, Room, RoomId, RoomName, Topic, Visibility};
use crate::user::UserId;

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
    /// The memberships this call stored, by user id: both on creation, the
    /// users re-added to an existing room, else none. They are what the
    /// fan-out must announce (`member_joined`).
    pub joined: Vec<Membership>,
}

/// Where rooms live. Rooms, memberships and messages are one store: the
/// operations below that span them are atomic.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Stores a new room together with its owner's membership, atomically.
    async fn create(&self, room: &Room, owner: &Membership) -> Result<(), StoreError>;

    /// The direct room of `pair`: if none exists, stores `room` (which must
    /// be `Direct`) with both users as members (role member, joined at
    /// `now`) and returns it as created; otherwise returns the existing one,
    /// first re-adding either user if they had left. Either way it reports
    /// the memberships it stored. Atomic: concurrent calls for one pair yield
    /// one room, and a re-added user is reported by one call only.
    async fn open_direct(
        &self,
        room: &Room,
        pair: DirectPair,
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

    /// Replaces the room's name, topic and visibility (nothing else); `None`
    /// if the room does not exist.
    async fn update_details(
        &self,
        id: RoomId,
        details: &RoomDetails,
    ) -> Result<Option<Room>, StoreError>;

    /// Deletes the room with its memberships and messages. Returns whether
    /// it existed.
    async fn delete(&self, id: RoomId) -> Result<bool, StoreError>;

    /// The rooms `user` is a member of, oldest first.
    async fn of_member(&self, user: UserId) -> Result<Vec<Room>, StoreError>;

    /// Public rooms whose name contains `query` (case-insensitive; empty
    /// matches all), by name, at most `limit`.
    async fn search_public(&self, query: &str, limit: usize) -> Result<Vec<Room>, StoreError>;
}
