//! Rooms and their members: creating, finding, managing, joining, leaving,
//! and direct conversations.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Missing};
use crate::events::{Broadcast, RoomEvent};
use crate::message::{PageLimit, Seq};
use crate::permissions::{Action, can_kick};
use crate::ports::{Clock, DirectPeople, FanOut, RoomDetails, StoreError, UserRepository};
use crate::position::Pos;
use crate::read::UnreadCounts;
use crate::room::{
    DirectPair, Member, Membership, Role, Room, RoomId, RoomName, RoomSearch, Topic, Visibility,
};
use crate::services::access::RoomAccess;
use crate::user::{Email, User, UserId};

/// A room to create.
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// Its name.
    pub name: RoomName,
    /// Its topic, if any.
    pub topic: Option<Topic>,
    /// Public or private.
    pub visibility: Visibility,
}

/// Changes to a room's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RoomChanges {
    /// A new name.
    pub name: Option<RoomName>,
    /// A new topic (`Some(None)` clears it).
    pub topic: Option<Option<Topic>>,
    /// A new visibility (public or private).
    pub visibility: Option<Visibility>,
}

/// A user named by a client: by id or by email.
#[derive(Debug, Clone)]
pub enum UserRef {
    /// By id.
    Id(UserId),
    /// By (normalized) email.
    Email(Email),
}

/// The room use cases.
#[derive(Clone)]
pub struct Rooms {
    access: RoomAccess,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    fanout: Arc<dyn FanOut>,
}

impl Rooms {
    /// Builds the service.
    pub fn new(
        access: RoomAccess,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
        fanout: Arc<dyn FanOut>,
    ) -> Self {
        Self {
            access,
            users,
            clock,
            fanout,
        }
    }

    /// Hands committed events to the fan-out, in the order they were logged.
    async fn announce(&self, events: impl IntoIterator<Item = RoomEvent>) {
        for event in events {
            self.fanout.publish(Broadcast::Event(event)).await;
        }
    }

    /// Creates a room with `actor` as its owner. Its log starts with the
    /// owner's `member_joined` (which also subscribes the owner's open
    /// connections to it).
    #[tracing::instrument(skip(self, new))]
    pub async fn create(&self, actor: UserId, new: NewRoom) -> Result<Room, DomainError> {
        let now = self.clock.now();
        let room = Room {
            id: RoomId::new(),
            name: new.name,
            topic: new.topic,
            visibility: new.visibility,
            owner_id: actor,
            created_at: now,
            last_seq: Seq::ZERO,
            last_pos: Pos::ZERO,
        };
        let owner = self
            .with_name(Membership {
                room_id: room.id,
                user_id: actor,
                role: Role::Owner,
                joined_at: now,
            })
            .await?;
        let joined = self.access.rooms.create(&room, &owner).await?;
        let created = joined
            .change
            .room()
            .cloned()
            .ok_or_else(|| DomainError::Internal("a new room logged no join".into()))?;
        self.announce([joined]).await;
        Ok(created)
    }

    /// The rooms `actor` is a member of.
    #[tracing::instrument(skip(self))]
    pub async fn mine(&self, actor: UserId) -> Result<Vec<Room>, DomainError> {
        Ok(self.access.rooms.of_member(actor).await?)
    }

    /// The rooms `actor` is a member of, each with their read state (the
    /// counts of all rooms come from one store query).
    #[tracing::instrument(skip(self))]
    pub async fn overview(&self, actor: UserId) -> Result<Vec<(Room, UnreadCounts)>, DomainError> {
        let rooms = self.access.rooms.of_member(actor).await?;
        let mut counts: HashMap<RoomId, UnreadCounts> = self
            .access
            .members
            .unread(actor, None)
            .await?
            .into_iter()
            .map(|counts| (counts.room_id, counts))
            .collect();
        Ok(rooms
            .into_iter()
            .map(|room| {
                // A room joined between the two reads has read nothing yet.
                let read = counts
                    .remove(&room.id)
                    .unwrap_or_else(|| UnreadCounts::read_up_to(room.id, Seq::ZERO));
                (room, read)
            })
            .collect())
    }

    /// Public rooms whose name contains `query` (case-insensitive).
    #[tracing::instrument(skip(self))]
    pub async fn search_public(
        &self,
        query: &RoomSearch,
        limit: PageLimit,
    ) -> Result<Vec<Room>, DomainError> {
        Ok(self
            .access
            .rooms
            .search_public(query.as_str(), limit.get())
            .await?)
    }

    /// A room's details: for members, and for anyone if it is public.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, actor: UserId, room_id: RoomId) -> Result<Room, DomainError> {
        Ok(self.access.check(actor, room_id, Action::View).await?.room)
    }

    /// Changes a room's name, topic or visibility (admins and the owner).
    #[tracing::instrument(skip(self, changes))]
    pub async fn update(
        &self,
        actor: UserId,
        room_id: RoomId,
        changes: RoomChanges,
    ) -> Result<Room, DomainError> {
        let room = self
            .access
            .check(actor, room_id, Action::UpdateRoom)
            .await?
            .room;
        let details = RoomDetails {
            name: changes.name.unwrap_or(room.name),
            topic: changes.topic.unwrap_or(room.topic),
            visibility: changes.visibility.unwrap_or(room.visibility),
        };
        let event = self
            .access
            .rooms
            .update_details(room_id, &details, self.clock.now())
            .await?
            .ok_or(DomainError::NotFound(Missing::Room))?;
        let updated = event
            .change
            .room()
            .cloned()
            .ok_or_else(|| DomainError::Internal("an update logged no room".into()))?;
        self.announce([event]).await;
        Ok(updated)
    }

    /// Deletes a room, its messages and its log (the owner).
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, actor: UserId, room_id: RoomId) -> Result<(), DomainError> {
        self.access
            .check(actor, room_id, Action::DeleteRoom)
            .await?;
        let deleted = self.access.rooms.delete(room_id, self.clock.now()).await?;
        self.announce(deleted).await;
        Ok(())
    }

    /// The members of a room, with their display names (members only).
    #[tracing::instrument(skip(self))]
    pub async fn members(
        &self,
        actor: UserId,
        room_id: RoomId,
    ) -> Result<Vec<Member>, DomainError> {
        self.access
            .check(actor, room_id, Action::ListMembers)
            .await?;
        let memberships = self.access.members.list(room_id).await?;
        let ids: Vec<UserId> = memberships
            .iter()
            .map(|membership| membership.user_id)
            .collect();
        let users: HashMap<UserId, User> = self
            .users
            .by_ids(&ids)
            .await?
            .into_iter()
            .map(|user| (user.id, user))
            .collect();
        Ok(memberships
            .into_iter()
            .filter_map(|membership| {
                let user = users.get(&membership.user_id)?;
                Some(Member {
                    display_name: user.display_name.clone(),
                    membership,
                })
            })
            .collect())
    }

    /// Joins a public room; joining a room one is in changes nothing.
    #[tracing::instrument(skip(self))]
    pub async fn join(&self, actor: UserId, room_id: RoomId) -> Result<Member, DomainError> {
        let access = self.access.check(actor, room_id, Action::Join).await?;
        if let Some(membership) = access.membership {
            return self.with_name(membership).await;
        }
        self.add(room_id, actor).await.map(|(member, _)| member)
    }

    /// Adds another user to a room (admins and the owner). Returns the
    /// member and whether they were added now (false: already a member).
    #[tracing::instrument(skip(self))]
    pub async fn add_member(
        &self,
        actor: UserId,
        room_id: RoomId,
        target: UserRef,
    ) -> Result<(Member, bool), DomainError> {
        let room = self.access.check(actor, room_id, Action::View).await?.room;
        if room.visibility == Visibility::Direct {
            return Err(ConflictError::DirectRoomFull.into());
        }
        self.access.check(actor, room_id, Action::AddMember).await?;
        let user = self.resolve(&target).await?;
        self.add(room_id, user.id).await
    }

    /// Removes `target` from a room: oneself (leaving), or someone of a lower
    /// role (kicking, admins and the owner). The owner cannot leave.
    #[tracing::instrument(skip(self))]
    pub async fn remove_member(
        &self,
        actor: UserId,
        room_id: RoomId,
        target: UserId,
    ) -> Result<(), DomainError> {
        let access = self.access.check(actor, room_id, Action::View).await?;
        let actor_role = access.membership.map(|membership| membership.role);
        let target_membership = if target == actor {
            None
        } else {
            let Some(actor_role) = actor_role else {
                return Err(DomainError::Forbidden);
            };
            let membership = self.membership_of(room_id, target).await?;
            if !can_kick(actor_role, membership.role) {
                return Err(DomainError::Forbidden);
            }
            Some(membership)
        };
        match (target_membership, actor_role) {
            (None, None) => return Err(DomainError::NotFound(Missing::Member)),
            (None, Some(Role::Owner)) => return Err(ConflictError::OwnerMustHandOver.into()),
            _ => {}
        }
        let left = self
            .access
            .members
            .remove(room_id, target, self.clock.now())
            .await?
            .ok_or(DomainError::NotFound(Missing::Member))?;
        self.announce([left]).await;
        Ok(())
    }

    /// Changes a member's role (the owner). Giving `owner` hands ownership
    /// over: the previous owner becomes an admin.
    #[tracing::instrument(skip(self))]
    pub async fn change_role(
        &self,
        actor: UserId,
        room_id: RoomId,
        target: UserId,
        role: Role,
    ) -> Result<Member, DomainError> {
        self.access
            .check(actor, room_id, Action::ChangeRole)
            .await?;
        let current = self
            .with_name(self.membership_of(room_id, target).await?)
            .await?;
        if target == actor {
            if role != Role::Owner {
                return Err(ConflictError::OwnerMustHandOver.into());
            }
            return Ok(current);
        }
        let now = self.clock.now();
        let events = if role == Role::Owner {
            let owner = self
                .with_name(self.membership_of(room_id, actor).await?)
                .await?;
            let events = self
                .access
                .members
                .transfer_ownership(&owner, &current, now)
                .await?;
            if events.is_empty() {
                return Err(DomainError::NotFound(Missing::Member));
            }
            events
        } else {
            let event = self
                .access
                .members
                .set_role(&current, role, now)
                .await?
                .ok_or(DomainError::NotFound(Missing::Member))?;
            vec![event]
        };
        let changed = events
            .iter()
            .filter_map(|event| event.change.member())
            .find(|member| member.membership.user_id == target)
            .cloned()
            .ok_or_else(|| DomainError::Internal("a role change logged no member".into()))?;
        self.announce(events).await;
        Ok(changed)
    }

    /// The one direct room of `actor` and another user, opened if needed.
    /// Returns the room and whether it was created now.
    #[tracing::instrument(skip(self))]
    pub async fn open_direct(
        &self,
        actor: UserId,
        other: UserRef,
    ) -> Result<(Room, bool), DomainError> {
        let other = self.resolve(&other).await?;
        let pair = DirectPair::new(actor, other.id)?;
        let me = self
            .users
            .by_id(actor)
            .await?
            .ok_or(DomainError::Unauthorized)?;
        let now = self.clock.now();
        let room = Room {
            id: RoomId::new(),
            name: RoomName::for_direct(&me.display_name, &other.display_name),
            topic: None,
            visibility: Visibility::Direct,
            owner_id: actor,
            created_at: now,
            last_seq: Seq::ZERO,
            last_pos: Pos::ZERO,
        };
        let name_of = |id: UserId| {
            if id == me.id {
                me.display_name.clone()
            } else {
                other.display_name.clone()
            }
        };
        let people = DirectPeople {
            pair,
            low_name: name_of(pair.low()),
            high_name: name_of(pair.high()),
        };
        let opened = self.access.rooms.open_direct(&room, &people, now).await?;
        // Announces both users of a new room, and whoever was re-added to an
        // existing one: their open connections follow the room at once.
        let room = opened
            .joined
            .iter()
            .rev()
            .find_map(|event| event.change.room().cloned())
            .unwrap_or(opened.room);
        self.announce(opened.joined).await;
        Ok((room, opened.created))
    }

    async fn add(&self, room_id: RoomId, user: UserId) -> Result<(Member, bool), DomainError> {
        let member = self
            .with_name(Membership {
                room_id,
                user_id: user,
                role: Role::Member,
                joined_at: self.clock.now(),
            })
            .await?;
        match self.access.members.add(&member).await {
            Ok(joined) => {
                self.announce([joined]).await;
                Ok((member, true))
            }
            Err(StoreError::Duplicate) => {
                let existing = self.membership_of(room_id, user).await?;
                Ok((self.with_name(existing).await?, false))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn membership_of(
        &self,
        room_id: RoomId,
        user: UserId,
    ) -> Result<Membership, DomainError> {
        self.access
            .members
            .get(room_id, user)
            .await?
            .ok_or(DomainError::NotFound(Missing::Member))
    }

    async fn resolve(&self, target: &UserRef) -> Result<User, DomainError> {
        let user = match target {
            UserRef::Id(id) => self.users.by_id(*id).await?,
            UserRef::Email(email) => self.users.by_email(email).await?,
        };
        // A deleted account is gone for everyone: nobody adds it to a room
        // or opens a conversation with it. Nor an account not yet verified:
        // its registration may still be replaced by another.
        user.filter(|user| user.deleted_at.is_none() && user.is_verified())
            .ok_or(DomainError::NotFound(Missing::User))
    }

    async fn with_name(&self, membership: Membership) -> Result<Member, DomainError> {
        let user = self
            .users
            .by_id(membership.user_id)
            .await?
            .ok_or(DomainError::NotFound(Missing::User))?;
        Ok(Member {
            display_name: user.display_name,
            membership,
        })
    }
}
