//! Users as other users see them, and their presence: who is online, and
//! telling the users who share a room with someone when that changes.

use std::sync::Arc;

use crate::error::{DomainError, Missing};
use crate::ports::{FanOut, MembershipRepository, RoomRepository, UserRepository};
use crate::presence::{Person, Presence, PresenceChange, Transition};
use crate::user::UserId;

/// The people use cases: `GET /users/{id}` and presence announcements.
#[derive(Clone)]
pub struct People {
    users: Arc<dyn UserRepository>,
    rooms: Arc<dyn RoomRepository>,
    members: Arc<dyn MembershipRepository>,
    fanout: Arc<dyn FanOut>,
}

impl People {
    /// The use cases over the account and room stores and the fan-out
    /// (which knows who is connected).
    pub fn new(
        users: Arc<dyn UserRepository>,
        rooms: Arc<dyn RoomRepository>,
        members: Arc<dyn MembershipRepository>,
        fanout: Arc<dyn FanOut>,
    ) -> Self {
        Self {
            users,
            rooms,
            members,
            fanout,
        }
    }

    /// User `id` as `caller` sees them: visible to the users who share a
    /// room with them, and to themselves. Anyone else is told
    /// `user_not_found`, exactly as for an id nobody has.
    #[tracing::instrument(skip(self))]
    pub async fn person(&self, caller: UserId, id: UserId) -> Result<Person, DomainError> {
        if caller != id && !self.members.share_room(caller, id).await? {
            return Err(DomainError::NotFound(Missing::User));
        }
        let user = self
            .users
            .by_id(id)
            .await?
            .ok_or(DomainError::NotFound(Missing::User))?;
        let (presence, last_seen_at) = if self.fanout.online(id).await {
            (Presence::Online, None)
        } else {
            (Presence::Offline, self.users.last_seen(id).await?)
        };
        Ok(Person {
            id,
            display_name: user.display_name,
            presence,
            last_seen_at,
        })
    }

    /// Tells the users who share a room with the transition's user: reads
    /// the user's rooms now (so every node can route the change), and for
    /// an offline transition records `last_seen_at` first (so that a
    /// `GET /users/{id}` after the frame shows it).
    #[tracing::instrument(skip(self))]
    pub async fn announce(&self, transition: Transition) -> Result<(), DomainError> {
        let user_id = transition.user_id();
        let (presence, last_seen_at) = match transition {
            Transition::Online(_) => (Presence::Online, None),
            Transition::Offline { at, .. } => {
                self.users.record_last_seen(user_id, at).await?;
                (Presence::Offline, Some(at))
            }
        };
        let rooms: Vec<_> = self
            .rooms
            .of_member(user_id)
            .await?
            .into_iter()
            .map(|room| room.id)
            .collect();
        if rooms.is_empty() {
            return Ok(()); // nobody shares a room with them
        }
        self.fanout
            .announce(PresenceChange {
                user_id,
                presence,
                last_seen_at,
                rooms,
            })
            .await;
        Ok(())
    }

    /// Announces every transition the fan-out decides, until it decides no
    /// more (the composition root runs this for the server's lifetime). A
    /// transition that cannot be announced (the store is down) is logged
    /// and skipped: presence is best effort, and the next change corrects
    /// it.
    pub async fn run(&self) {
        while let Some(transition) = self.fanout.transition().await {
            if let Err(error) = self.announce(transition).await {
                tracing::warn!(%error, ?transition, "cannot announce a presence change");
            }
        }
    }
}
