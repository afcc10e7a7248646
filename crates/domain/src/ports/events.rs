use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::events::{EventPage, EventQuery};
use crate::room::RoomId;

/// Each room's event log, as the chat store writes it: every change of a
/// room is an event at the room's next position (1, 2, 3, ... with no gap
/// and no reuse), stored in the same atomic step as the change. This port
/// reads the log back and prunes it.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// The room's events with a position above `query.after`, ascending,
    /// at most `query.limit`, and whether more follow. What the log holds is
    /// a contiguous run of positions up to the room's `last_pos`, less a
    /// pruned prefix: a page that does not start at `query.after + 1` means
    /// the events asked for were pruned. Message events show the message as
    /// it is now. Empty for a room that does not exist.
    async fn after(&self, room: RoomId, query: &EventQuery) -> Result<EventPage, StoreError>;

    /// Prunes, room by room, the oldest events: every event up to the
    /// newest one that happened before `before` (always a prefix of the
    /// room's log, never a hole). Returns how many were removed.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
