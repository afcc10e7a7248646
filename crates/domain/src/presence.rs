//! Presence: whether a user has a connection open anywhere in the
//! deployment, as users who share a room with them see it.
//!
//! The fan-out decides when a user comes online or goes offline (it counts
//! connections, across nodes, and waits out a grace period so a reconnect
//! does not flap); [`crate::services::People`] turns each such transition
//! into a [`PresenceChange`] for the rooms the user is in.

use chrono::{DateTime, Utc};

use crate::room::RoomId;
use crate::user::{DisplayName, UserId};

/// Whether a user is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    /// At least one connection is open on some node (or closed less than
    /// the grace period ago).
    Online,
    /// No connection anywhere since the grace period after the last one
    /// closed.
    Offline,
}

impl Presence {
    /// The wire name (`online`, `offline`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// A user's presence as the fan-out decided it changed, before anyone
/// knows whom to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The user's first connection in the deployment opened.
    Online(UserId),
    /// The user's last connection closed at `at`, and none opened within
    /// the grace period since.
    Offline {
        /// The user.
        user_id: UserId,
        /// When their last connection closed (their `last_seen_at`).
        at: DateTime<Utc>,
    },
}

impl Transition {
    /// The user whose presence changed.
    pub fn user_id(&self) -> UserId {
        match self {
            Self::Online(user_id) | Self::Offline { user_id, .. } => *user_id,
        }
    }
}

/// A presence change on its way to the connections of the users who share
/// a room with its user: each such connection hears it once, however many
/// of the rooms it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// Whose presence changed.
    pub user_id: UserId,
    /// What it is now.
    pub presence: Presence,
    /// When the user's last connection closed (`None` while online).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The user's rooms when the change was announced: whoever has a
    /// connection in one of them is told (read by the announcing node, so
    /// a node without a connection of the user can route it).
    pub rooms: Vec<RoomId>,
}

/// A user as another user who shares a room with them sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The user.
    pub id: UserId,
    /// Their name.
    pub display_name: DisplayName,
    /// Whether they are connected now.
    pub presence: Presence,
    /// When their last connection closed, while offline (`None` while
    /// online, or if they never connected).
    pub last_seen_at: Option<DateTime<Utc>>,
}
