use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use crate::events::Broadcast;
use crate::position::Pos;
use crate::presence::{PresenceChange, Transition};
use crate::room::RoomId;
use crate::session::SessionId;
use crate::user::UserId;

/// What the fan-out hands every receiver of one publication: the value,
/// and room for the one rendering of it that each receiver's adapter would
/// otherwise repeat (a WebSocket frame's text): the first receiver that
/// needs it makes it, the others share it. A room of a thousand members
/// then costs one encoding, not a thousand.
pub struct Shared<T> {
    value: T,
    rendering: OnceLock<Bytes>,
}

impl<T> Shared<T> {
    /// `value`, not rendered yet.
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            value,
            rendering: OnceLock::new(),
        })
    }

    /// The value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The value's rendering: made by `render` on the first call, the same
    /// bytes (shared, not copied) on every later one. A receiver whose view
    /// depends on who receives it must not use this.
    pub fn rendered(&self, render: impl FnOnce(&T) -> Bytes) -> Bytes {
        self.rendering.get_or_init(|| render(&self.value)).clone()
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(formatter)
    }
}

/// Two shared values are equal when their values are (a rendering is only
/// a cache of the value).
impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

/// What a connection's subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event or signal of one of the connection's rooms (shared by all
    /// receivers).
    Event(Arc<Shared<Broadcast>>),
    /// The connection could not keep up: its queue overflowed and it was
    /// unsubscribed. It must be closed (events are never silently skipped).
    Overflowed,
    /// The connection's login session was revoked: it must be closed.
    SessionEnded,
    /// The fan-out may have missed what concerns this connection beyond its
    /// rooms' events (its node was cut off from the other nodes for a
    /// while): an ended session, a room the user was added to. The
    /// connection checks its session and its user's rooms again.
    Recheck,
    /// A user who shares a room with the connection's user came online or
    /// went offline (shared by all receivers).
    Presence(Arc<Shared<PresenceChange>>),
}

/// A connection's stream of deliveries. Dropping it unsubscribes.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once the fan-out is gone.
    async fn next(&mut self) -> Option<Delivery>;

    /// Moves the connection to another login session of the same user, as
    /// when it re-authenticates with that session's token: a connection
    /// belongs to the session of the token it currently holds. From the
    /// return on, [`FanOut::end_session`] of `session` ends it with
    /// [`Delivery::SessionEnded`], and ending the session it belonged to
    /// before no longer does. Rebinding to its current session changes
    /// nothing; on a subscription already ended it has no effect.
    ///
    /// The caller checks that `session` is alive again after the rebind, so
    /// a session ended in between cannot be missed.
    fn rebind(&mut self, session: SessionId);

    /// Waits until everything published from now on for this connection's
    /// rooms and user reaches it (across nodes: until the node listens to
    /// them on the shared bus; not at all while cut off from it, as the
    /// node catches up when it is back). The connection reads its rooms'
    /// positions after this, so nothing falls between.
    async fn ready(&mut self) {}

    /// Adds a room the user turned out to be a member of after subscribing
    /// (joined in between), whose log the connection has read up to `pos`.
    fn follow(&mut self, room: RoomId, pos: Pos);
}

/// Who a new subscription is for.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The connected user.
    pub user_id: UserId,
    /// The login session the connection authenticated with.
    pub session_id: SessionId,
    /// The rooms the user is a member of now, each with the last position
    /// the connection has read of it: an adapter across nodes reads on from
    /// there what its bus may have lost while it started listening.
    pub rooms: Vec<(RoomId, Pos)>,
}

/// Whether published events reach every node serving the deployment, as
/// `GET /ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOutStatus {
    /// One process serves every connection: nothing to reach.
    Local,
    /// Connected to the bus the nodes share.
    Cluster,
    /// Cut off from the shared bus: this node serves its own connections
    /// only, until it reconnects and catches them up from the event log.
    Degraded,
}

impl FanOutStatus {
    /// The status's wire name (`local`, `cluster`, `degraded`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Cluster => "cluster",
            Self::Degraded => "degraded",
        }
    }
}

/// Real-time fan-out of room events to connections, in one process or
/// across the nodes of a deployment (through Redis), behind the same trait.
///
/// Routing follows membership: a `member_joined` event subscribes the new
/// member's connections to its room before it is delivered, a
/// `member_left` or `room_deleted` event unsubscribes them after. Room
/// events are published after their commit, and publications can overtake
/// each other; an adapter may put a room's events back in position order,
/// but subscribers still check positions and fill gaps from the event log.
/// Publishing never blocks on a slow connection: one that cannot take an
/// event is unsubscribed and told [`Delivery::Overflowed`].
#[async_trait]
pub trait FanOut: Send + Sync {
    /// Delivers `event` to every connection subscribed to its room (for
    /// `Typing`, except the typist's own).
    async fn publish(&self, event: Broadcast);

    /// Tells every connection of `session` that it has ended.
    async fn end_session(&self, session: SessionId);

    /// Subscribes one connection, with room for `capacity` undelivered events.
    fn subscribe(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription>;

    /// Whether events reach the other nodes now.
    fn status(&self) -> FanOutStatus {
        FanOutStatus::Local
    }

    /// Waits until everything published so far has left this process for
    /// the other nodes (at once for a fan-out within one process): a
    /// short-lived process, such as the admin console ending a user's
    /// sessions, calls it before it exits. Callers bound the wait.
    async fn flush(&self) {}

    /// Tells every connection, on every node, of a user who shares one of
    /// `change.rooms` with its user, once per connection (however many of
    /// them it shares), but none of that user's own connections.
    async fn announce(&self, _change: PresenceChange) {}

    /// Whether `user` is online anywhere in the deployment: a connection of
    /// theirs is open on some node, or closed less than the grace period
    /// ago.
    async fn online(&self, _user: UserId) -> bool {
        false
    }

    /// The next presence transition this node decided: a user's first
    /// connection in the deployment opened, or the grace period after
    /// their last one closed ran out. Each transition is decided by one
    /// node. `None` once the fan-out decides none (or is gone). One caller
    /// reads them.
    async fn transition(&self) -> Option<Transition> {
        None
    }
}

/// A fan-out with nobody listening, for services used without real-time
/// clients (batch jobs, other services' tests). Publishing does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFanOut;

/// The subscription of [`NoFanOut`]: nothing ever arrives.
struct Silence;

#[async_trait]
impl Subscription for Silence {
    async fn next(&mut self) -> Option<Delivery> {
        None
    }

    fn rebind(&mut self, _session: SessionId) {}

    fn follow(&mut self, _room: RoomId, _pos: Pos) {}
}

#[async_trait]
impl FanOut for NoFanOut {
    async fn publish(&self, _event: Broadcast) {}

    async fn end_session(&self, _session: SessionId) {}

    fn subscribe(&self, _subscriber: Subscriber, _capacity: usize) -> Box<dyn Subscription> {
        Box::new(Silence)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_shared_value_is_rendered_once_for_every_receiver() {
        let shared = Shared::new(7_u32);
        let renders = Cell::new(0);
        let render = |value: &u32| {
            renders.set(renders.get() + 1);
            Bytes::from(value.to_string())
        };
        let first = shared.rendered(render);
        let second = shared.rendered(render);
        assert_eq!(renders.get(), 1);
        assert_eq!(first, "7");
        // The same buffer, not a copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
        assert_eq!(*shared.value(), 7);
    }
}
