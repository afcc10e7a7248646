//! The in-process [`FanOut`] adapter: routes room events to the connections
//! of this process. The Redis adapter ([`crate::redis`]) puts one in front
//! of each node's connections; the gateway does not change.
//!
//! Routing tables sit behind one mutex held only for map updates and
//! non-blocking `try_send`s into each connection's bounded queue: no socket
//! is written under it, and no room waits for another room's task. Each
//! room's events pass a [`Sequencer`] first, which puts publications that
//! raced each other back into position order.
//!
//! The hub also keeps its users' attendance: a user's first connection
//! here is reported as [`Attendance::Arrived`]; when their last one closes
//! they linger for the grace period, and only if none opened meanwhile is
//! [`Attendance::Left`] reported. Within one process these are the
//! presence transitions; across nodes the Redis adapter weighs them against
//! the other nodes' claims.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::events::{Broadcast, Change, RoomEvent};
use p_chat_domain::ports::{
    Clock, Delivery, FanOut, Shared, Subscriber, Subscription, SystemClock,
};
use p_chat_domain::position::Pos;
use p_chat_domain::presence::{PresenceChange, Transition};
use p_chat_domain::room::RoomId;
use p_chat_domain::session::SessionId;
use p_chat_domain::user::UserId;
use tokio::sync::{Notify, mpsc};

use crate::metrics;
use crate::sequencer::{Admitted, HOLD, Sequencer};

type ConnId = u64;

/// How long a user whose last connection closed still counts as present
/// (`PRESENCE_GRACE_MS`), when the composition root sets no other.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How many attendance reports may wait for their reader; past that the
/// newest are dropped (presence is best effort).
const ATTENDANCE_QUEUE: usize = 10_000;

/// Fans events out to this process's connections.
pub struct Hub {
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
    /// Where [`Attendance`] is read from (by one reader).
    attendance: tokio::sync::Mutex<mpsc::Receiver<Attendance>>,
}

/// A user's attendance on one hub, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attendance {
    /// The user's first connection here opened (and they were not
    /// lingering here).
    Arrived(UserId),
    /// The user's last connection here closed at `at`, and none opened
    /// within the grace period since.
    Left {
        /// The user.
        user: UserId,
        /// When their last connection here closed.
        at: DateTime<Utc>,
    },
}

/// A user whose last connection here closed, within the grace period.
#[derive(Debug, Clone, Copy)]
struct Lingering {
    /// Tells this grace period's timer from a later one's.
    generation: u64,
    /// When the last connection closed.
    since: DateTime<Utc>,
}

/// What a hub has connections for: a room with at least one member
/// connected here, or a user with at least one connection here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A room some connection here follows.
    Room(RoomId),
    /// A user connected here.
    User(UserId),
}

/// A change of what a hub has connections for, reported (in the order they
/// happen) to whoever routes events to it from other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// The first connection for the topic arrived.
    Listen(Topic),
    /// The last connection for the topic is gone.
    Unlisten(Topic),
}

#[derive(Default)]
struct Routes {
    connections: HashMap<ConnId, Connection>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, HashSet<ConnId>>,
    sessions: HashMap<SessionId, HashSet<ConnId>>,
    /// The event order of each room that has connections.
    order: HashMap<RoomId, Sequencer>,
    /// The highest position known of each room that has connections: what
    /// its connections had when they subscribed, or the newest event
    /// delivered since. A catch-up from the event log reads on from here.
    marks: HashMap<RoomId, Pos>,
    /// Where changes of `rooms` and `users` are reported.
    interest: Option<mpsc::UnboundedSender<Interest>>,
    /// Users without a connection here whose grace period runs.
    lingering: HashMap<UserId, Lingering>,
    /// The generation of the next grace period.
    next_grace: u64,
    /// How long a grace period lasts.
    grace: Duration,
    /// Where attendance is reported.
    attendance: Option<mpsc::Sender<Attendance>>,
    /// The routes themselves, for the timers of grace periods.
    me: Weak<Mutex<Routes>>,
}

struct Connection {
    user: UserId,
    session: SessionId,
    rooms: HashSet<RoomId>,
    queue: mpsc::Sender<Delivery>,
    flags: Arc<Flags>,
}

/// Why a connection must close, set by the hub, read by its subscription.
#[derive(Default)]
struct Flags {
    overflowed: AtomicBool,
    session_ended: AtomicBool,
    recheck: AtomicBool,
    wake: Notify,
}

fn lock(routes: &Mutex<Routes>) -> MutexGuard<'_, Routes> {
    routes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Ends a room's holding period `generation` after [`HOLD`]: what its
/// sequencer still holds then goes out (connections fill the gap).
fn flush_later(routes: Weak<Mutex<Routes>>, room: RoomId, generation: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(HOLD).await;
        let Some(routes) = routes.upgrade() else {
            return;
        };
        let mut routes = lock(&routes);
        let due = routes
            .order
            .get_mut(&room)
            .map(|order| order.flush(generation))
            .unwrap_or_default();
        for event in due {
            routes.deliver(Broadcast::Event(event));
        }
    });
}

/// Removes `id` from `ids` (one of the maps keyed by room, user or session)
/// and the entry once empty; returns whether it was the last one.
fn forget<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashSet<ConnId>>,
    key: K,
    id: ConnId,
) -> bool {
    let Some(ids) = map.get_mut(&key) else {
        return false;
    };
    ids.remove(&id);
    if ids.is_empty() {
        map.remove(&key);
        return true;
    }
    false
}

/// The connections under `key` (of a room, user or session), copied out so
/// the routes can change while they are served.
fn listed<K: std::hash::Hash + Eq>(map: &HashMap<K, HashSet<ConnId>>, key: &K) -> Vec<ConnId> {
    map.get(key)
        .map(|ids| ids.iter().copied().collect())
        .unwrap_or_default()
}

/// Adds `id` under `key`; returns whether it is the first one.
fn remember<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashSet<ConnId>>,
    key: K,
    id: ConnId,
) -> bool {
    match map.entry(key) {
        Entry::Vacant(vacant) => {
            vacant.insert(HashSet::from([id]));
            true
        }
        Entry::Occupied(occupied) => {
            occupied.into_mut().insert(id);
            false
        }
    }
}

impl Routes {
    fn report(&self, change: Interest) {
        if let Some(interest) = &self.interest {
            let _ = interest.send(change);
        }
    }

    fn attend(&self, attendance: Attendance) {
        if let Some(queue) = &self.attendance
            && queue.try_send(attendance).is_err()
        {
            tracing::warn!(
                ?attendance,
                "attendance queue full: a presence report is dropped"
            );
        }
    }

    /// A connection of `user` opened here: they arrive, unless they were
    /// lingering (a reconnect within the grace period changes nothing).
    fn arrive(&mut self, user: UserId) {
        if self.lingering.remove(&user).is_none() {
            self.attend(Attendance::Arrived(user));
        }
    }

    /// The last connection of `user` here closed: they linger for the
    /// grace period, then leave unless a connection opened meanwhile.
    fn depart(&mut self, user: UserId) {
        let generation = self.next_grace;
        self.next_grace = self.next_grace.wrapping_add(1);
        // To the microsecond, as stores keep `last_seen_at`.
        let since = SystemClock.now();
        self.lingering.insert(user, Lingering { generation, since });
        let me = self.me.clone();
        let grace = self.grace;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(grace).await;
                    if let Some(routes) = me.upgrade() {
                        lock(&routes).grace_over(user, generation);
                    }
                });
            }
            // No runtime to wait on (the process is ending): leave now.
            Err(_) => self.grace_over(user, generation),
        }
    }

    /// Ends grace period `generation` of `user`: they leave if it is still
    /// theirs (no connection opened since, nor a later period started).
    fn grace_over(&mut self, user: UserId, generation: u64) {
        let Some(lingering) = self.lingering.get(&user).copied() else {
            return;
        };
        if lingering.generation != generation || self.users.contains_key(&user) {
            return;
        }
        self.lingering.remove(&user);
        self.attend(Attendance::Left {
            user,
            at: lingering.since,
        });
    }

    /// Sends `change` once to every connection here in one of its rooms,
    /// but its user's own.
    fn announce(&mut self, change: PresenceChange) {
        let targets: HashSet<ConnId> = change
            .rooms
            .iter()
            .flat_map(|room| listed(&self.rooms, room))
            .collect();
        let subject = change.user_id;
        let delivery = Delivery::Presence(Shared::new(change));
        let mut overflowed = Vec::new();
        let mut queued = 0;
        for id in targets {
            let Some(connection) = self.connections.get(&id) else {
                continue;
            };
            if connection.user == subject {
                continue;
            }
            if connection.queue.try_send(delivery.clone()).is_ok() {
                queued += 1;
            } else {
                overflowed.push(id);
            }
        }
        metrics::queued(queued);
        for id in overflowed {
            self.expel(id, |flags| &flags.overflowed);
        }
    }

    fn join(&mut self, id: ConnId, room: RoomId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.rooms.insert(room);
            if remember(&mut self.rooms, room, id) {
                self.report(Interest::Listen(Topic::Room(room)));
            }
        }
    }

    /// Joins a connection that has read `room` up to `pos` (the room's mark
    /// starts there if it is new here).
    fn follow(&mut self, id: ConnId, room: RoomId, pos: Pos) {
        self.join(id, room);
        self.marks.entry(room).or_insert(pos);
    }

    fn leave(&mut self, id: ConnId, room: RoomId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.rooms.remove(&room);
        }
        self.forget_member(id, room);
    }

    /// Takes `id` off `room`'s connections; the room's order and mark go
    /// with its last one.
    fn forget_member(&mut self, id: ConnId, room: RoomId) {
        if forget(&mut self.rooms, room, id) {
            self.order.remove(&room);
            self.marks.remove(&room);
            self.report(Interest::Unlisten(Topic::Room(room)));
        }
    }

    fn connections_of(&self, user: UserId) -> Vec<ConnId> {
        listed(&self.users, &user)
    }

    /// Unsubscribes a connection entirely and hands it back, so the caller
    /// can set its flags before its queue sender is dropped (a receiver woken
    /// by the closed queue must already see why).
    fn remove(&mut self, id: ConnId) -> Option<Connection> {
        let connection = self.connections.remove(&id)?;
        for room in &connection.rooms {
            self.forget_member(id, *room);
        }
        if forget(&mut self.users, connection.user, id) {
            self.report(Interest::Unlisten(Topic::User(connection.user)));
            self.depart(connection.user);
        }
        forget(&mut self.sessions, connection.session, id);
        Some(connection)
    }

    /// Puts `event` in its room's order, and delivers what is due.
    fn admit(&mut self, event: RoomEvent, routes: &Arc<Mutex<Routes>>) {
        let room = event.room_id;
        if !self.rooms.contains_key(&room) && !self.joins_here(&event) {
            return; // no connection listens to this room
        }
        let order = self
            .order
            .entry(room)
            .or_insert_with(|| Sequencer::starting_at(event.pos));
        match order.admit(event) {
            Admitted::Due(events) => {
                for event in events {
                    self.deliver(Broadcast::Event(event));
                }
            }
            Admitted::Held {
                flush_after: Some(generation),
            } => flush_later(Arc::downgrade(routes), room, generation),
            Admitted::Held { flush_after: None } | Admitted::Repeat => {}
        }
    }

    /// Whether `event` makes a user with connections here a member of its
    /// room (then the room has listeners from that event on).
    fn joins_here(&self, event: &RoomEvent) -> bool {
        matches!(&event.change, Change::MemberJoined { member, .. }
            if self.users.contains_key(&member.membership.user_id))
    }

    /// Sends `event` to the connections of its room (and first subscribes a
    /// joining user's connections to it, and afterwards unsubscribes a
    /// leaving user's).
    fn deliver(&mut self, event: Broadcast) {
        let room = event.room_id();
        let change = match &event {
            Broadcast::Event(event) => Some(&event.change),
            Broadcast::Typing { .. } | Broadcast::ReadMarker { .. } => None,
        };
        if let Some(Change::MemberJoined { member, .. }) = change {
            for id in self.connections_of(member.membership.user_id) {
                self.join(id, room);
            }
        }
        let typist = match &event {
            Broadcast::Typing { user_id, .. } => Some(*user_id),
            Broadcast::Event(_) | Broadcast::ReadMarker { .. } => None,
        };
        let targets = listed(&self.rooms, &room);
        let event = Shared::new(event);
        let mut overflowed = Vec::new();
        let mut queued = 0;
        for id in targets {
            let Some(connection) = self.connections.get(&id) else {
                continue;
            };
            if Some(connection.user) == typist {
                continue;
            }
            if connection
                .queue
                .try_send(Delivery::Event(event.clone()))
                .is_ok()
            {
                queued += 1;
            } else {
                overflowed.push(id);
            }
        }
        metrics::queued(queued);
        for id in overflowed {
            self.expel(id, |flags| &flags.overflowed);
        }
        let event = match event.value() {
            Broadcast::Event(event) => event,
            Broadcast::Typing { .. } | Broadcast::ReadMarker { .. } => return,
        };
        if self.rooms.contains_key(&room) {
            let mark = self.marks.entry(room).or_insert(event.pos);
            *mark = (*mark).max(event.pos);
        }
        let change = &event.change;
        match change {
            Change::MemberLeft { user_id } => {
                for id in self.connections_of(*user_id) {
                    self.leave(id, room);
                }
            }
            Change::RoomDeleted => {
                for id in listed(&self.rooms, &room) {
                    self.leave(id, room);
                }
            }
            _ => {}
        }
    }

    /// Moves a connection from its session's set to `session`'s.
    fn rebind(&mut self, id: ConnId, session: SessionId) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let before = std::mem::replace(&mut connection.session, session);
        if before == session {
            return;
        }
        forget(&mut self.sessions, before, id);
        remember(&mut self.sessions, session, id);
    }

    /// Removes a connection and tells it why, in that order of visibility:
    /// flag first, then the queue closes as the connection is dropped.
    fn expel(&mut self, id: ConnId, why: impl Fn(&Flags) -> &AtomicBool) {
        if let Some(connection) = self.remove(id) {
            why(&connection.flags).store(true, Ordering::SeqCst);
            connection.flags.wake.notify_one();
        }
    }
}

impl Default for Hub {
    /// A hub whose users linger for [`DEFAULT_GRACE`].
    fn default() -> Self {
        Self::with_grace(DEFAULT_GRACE)
    }
}

impl Hub {
    /// A hub whose users linger for `grace` after their last connection
    /// closes before they leave.
    pub fn with_grace(grace: Duration) -> Self {
        let (queue, attendance) = mpsc::channel(ATTENDANCE_QUEUE);
        let routes = Arc::new_cyclic(|me| {
            Mutex::new(Routes {
                grace,
                attendance: Some(queue),
                me: me.clone(),
                ..Routes::default()
            })
        });
        Self {
            routes,
            next_id: AtomicU64::new(0),
            attendance: tokio::sync::Mutex::new(attendance),
        }
    }

    /// A hub that reports to `interest` each room and user it starts or
    /// stops having connections for, as the Redis adapter needs to
    /// subscribe to exactly those.
    pub fn reporting(interest: mpsc::UnboundedSender<Interest>, grace: Duration) -> Self {
        let hub = Self::with_grace(grace);
        lock(&hub.routes).interest = Some(interest);
        hub
    }

    /// The next attendance report; `None` once the hub is gone. One caller
    /// reads them: the hub itself as [`FanOut::transition`], or the Redis
    /// adapter.
    pub async fn attendance(&self) -> Option<Attendance> {
        self.attendance.lock().await.recv().await
    }

    /// Whether `user` has a connection here, or is lingering here.
    pub fn present(&self, user: UserId) -> bool {
        let routes = lock(&self.routes);
        routes.users.contains_key(&user) || routes.lingering.contains_key(&user)
    }

    /// Every user with a connection here or lingering here.
    pub fn present_users(&self) -> Vec<UserId> {
        let routes = lock(&self.routes);
        routes
            .users
            .keys()
            .chain(routes.lingering.keys())
            .copied()
            .collect()
    }

    /// [`FanOut::announce`] to this hub's connections.
    pub fn announce_now(&self, change: PresenceChange) {
        lock(&self.routes).announce(change);
    }

    /// The rooms among `rooms` that have connections here, each with the
    /// highest position known of it (see [`Hub::catch_up`]).
    pub fn marks(&self, rooms: &[RoomId]) -> Vec<(RoomId, Pos)> {
        let routes = lock(&self.routes);
        rooms
            .iter()
            .filter_map(|room| routes.marks.get(room).map(|pos| (*room, *pos)))
            .collect()
    }

    /// Every room that has connections here, with the highest position
    /// known of it.
    pub fn all_marks(&self) -> Vec<(RoomId, Pos)> {
        let routes = lock(&self.routes);
        routes
            .marks
            .iter()
            .map(|(room, pos)| (*room, *pos))
            .collect()
    }

    /// Delivers events read from a room's log after its mark (what the bus
    /// may have lost): those the hub has not passed yet, in order, as if
    /// they had been published. Connections drop what they already have.
    pub fn catch_up(&self, events: Vec<RoomEvent>) {
        let mut routes = lock(&self.routes);
        for event in events {
            if routes
                .marks
                .get(&event.room_id)
                .is_some_and(|mark| event.pos > *mark)
            {
                routes.admit(event, &self.routes);
            }
        }
    }

    /// [`FanOut::publish`], which never waits: for callers that are not
    /// async (the Redis adapter's listener).
    pub fn publish_now(&self, broadcast: Broadcast) {
        let mut routes = lock(&self.routes);
        match broadcast {
            Broadcast::Event(event) => routes.admit(event, &self.routes),
            signal @ (Broadcast::Typing { .. } | Broadcast::ReadMarker { .. }) => {
                routes.deliver(signal);
            }
        }
    }

    /// Tells every connection to check its session and rooms again
    /// ([`Delivery::Recheck`]), as after this node was cut off from the
    /// others.
    pub fn recheck_all(&self) {
        let routes = lock(&self.routes);
        for connection in routes.connections.values() {
            connection.flags.recheck.store(true, Ordering::SeqCst);
            connection.flags.wake.notify_one();
        }
    }

    /// [`FanOut::end_session`], which never waits.
    pub fn end_session_now(&self, session: SessionId) {
        let mut routes = lock(&self.routes);
        for id in listed(&routes.sessions, &session) {
            routes.expel(id, |flags| &flags.session_ended);
        }
    }
}

#[async_trait]
impl FanOut for Hub {
    async fn publish(&self, broadcast: Broadcast) {
        self.publish_now(broadcast);
    }

    async fn end_session(&self, session: SessionId) {
        self.end_session_now(session);
    }

    async fn announce(&self, change: PresenceChange) {
        self.announce_now(change);
    }

    async fn online(&self, user: UserId) -> bool {
        self.present(user)
    }

    /// In one process the hub's attendance is the whole truth.
    async fn transition(&self) -> Option<Transition> {
        Some(match self.attendance().await? {
            Attendance::Arrived(user) => Transition::Online(user),
            Attendance::Left { user, at } => Transition::Offline { user_id: user, at },
        })
    }

    fn subscribe(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, events) = mpsc::channel(capacity.max(1));
        let flags = Arc::new(Flags::default());
        let mut routes = lock(&self.routes);
        routes.connections.insert(
            id,
            Connection {
                user: subscriber.user_id,
                session: subscriber.session_id,
                rooms: HashSet::new(),
                queue,
                flags: flags.clone(),
            },
        );
        if remember(&mut routes.users, subscriber.user_id, id) {
            routes.report(Interest::Listen(Topic::User(subscriber.user_id)));
            routes.arrive(subscriber.user_id);
        }
        remember(&mut routes.sessions, subscriber.session_id, id);
        for (room, pos) in subscriber.rooms {
            routes.follow(id, room, pos);
        }
        Box::new(HubSubscription {
            id,
            routes: self.routes.clone(),
            events,
            flags,
        })
    }
}

/// One connection's end of the hub.
struct HubSubscription {
    id: ConnId,
    routes: Arc<Mutex<Routes>>,
    events: mpsc::Receiver<Delivery>,
    flags: Arc<Flags>,
}

impl HubSubscription {
    fn verdict(&self) -> Option<Delivery> {
        if self.flags.overflowed.load(Ordering::SeqCst) {
            Some(Delivery::Overflowed)
        } else if self.flags.session_ended.load(Ordering::SeqCst) {
            Some(Delivery::SessionEnded)
        } else {
            None
        }
    }
}

#[async_trait]
impl Subscription for HubSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(verdict) = self.verdict() {
                return Some(verdict);
            }
            if self.flags.recheck.swap(false, Ordering::SeqCst) {
                return Some(Delivery::Recheck);
            }
            tokio::select! {
                biased;
                () = self.flags.wake.notified() => {}
                event = self.events.recv() => {
                    return match event {
                        Some(event) => {
                            metrics::dequeued(1);
                            Some(event)
                        }
                        None => self.verdict(),
                    };
                }
            }
        }
    }

    fn rebind(&mut self, session: SessionId) {
        lock(&self.routes).rebind(self.id, session);
    }

    fn follow(&mut self, room: RoomId, pos: Pos) {
        lock(&self.routes).follow(self.id, room, pos);
    }
}

impl Drop for HubSubscription {
    /// Leaves the routes (so nothing more is queued), then counts what is
    /// left in the queue as gone.
    fn drop(&mut self) {
        lock(&self.routes).remove(self.id);
        metrics::dequeued(self.events.len());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;
    use crate::test_support::message;

    /// Whether `subscription` is told its session ended within a short wait.
    async fn session_ended(subscription: &mut Box<dyn Subscription>) -> bool {
        matches!(
            timeout(HOLD, subscription.next()).await,
            Ok(Some(Delivery::SessionEnded))
        )
    }

    #[tokio::test]
    async fn a_rebound_connection_ends_with_its_new_session_only() {
        let hub = Hub::default();
        let (first, second) = (SessionId::new(), SessionId::new());
        let subscriber = |session_id| Subscriber {
            user_id: UserId::new(),
            session_id,
            rooms: Vec::new(),
        };
        let mut moved = hub.subscribe(subscriber(first), 16);
        let mut stayed = hub.subscribe(subscriber(first), 16);
        moved.rebind(second);
        moved.rebind(second);
        hub.end_session(first).await;
        assert!(
            session_ended(&mut stayed).await,
            "the other connection of S1"
        );
        assert!(
            !session_ended(&mut moved).await,
            "ended with its old session"
        );
        hub.end_session(second).await;
        assert!(session_ended(&mut moved).await, "outlived its new session");
        assert!(lock(&hub.routes).sessions.is_empty(), "routes left behind");
    }

    /// A connection of a new user subscribed to `room`.
    fn connection(hub: &Hub, room: RoomId) -> Box<dyn Subscription> {
        hub.subscribe(
            Subscriber {
                user_id: UserId::new(),
                session_id: SessionId::new(),
                rooms: vec![(room, Pos::ZERO)],
            },
            16,
        )
    }

    /// The position of the next delivery within `wait`, if one comes.
    async fn next_seq(subscription: &mut Box<dyn Subscription>, wait: Duration) -> Option<i64> {
        match timeout(wait, subscription.next()).await {
            Ok(Some(Delivery::Event(event))) => match event.pos() {
                Some(pos) => Some(pos.value()),
                None => panic!("not a room event: {event:?}"),
            },
            Ok(other) => panic!("not an event: {other:?}"),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn messages_published_out_of_order_reach_connections_in_order() {
        let hub = Hub::default();
        let room = RoomId::new();
        let mut subscription = connection(&hub, room);
        for seq in [1, 3, 4, 2, 5] {
            hub.publish(message(room, seq).into()).await;
        }
        for expected in 1..=5 {
            assert_eq!(next_seq(&mut subscription, HOLD).await, Some(expected));
        }
    }

    #[tokio::test]
    async fn a_message_whose_predecessor_never_comes_goes_out_after_the_hold() {
        let hub = Hub::default();
        let room = RoomId::new();
        let mut subscription = connection(&hub, room);
        hub.publish(message(room, 1).into()).await;
        hub.publish(message(room, 3).into()).await;
        assert_eq!(next_seq(&mut subscription, HOLD).await, Some(1));
        assert_eq!(
            next_seq(&mut subscription, HOLD / 2).await,
            None,
            "3 is held"
        );
        assert_eq!(next_seq(&mut subscription, HOLD * 4).await, Some(3));
        hub.publish(message(room, 4).into()).await;
        assert_eq!(next_seq(&mut subscription, HOLD).await, Some(4));
    }

    /// Records only [`metrics::QUEUED_DELIVERIES`], for the test below.
    struct QueueGauge(Arc<std::sync::atomic::AtomicU64>);

    impl QueueGauge {
        fn value(&self) -> f64 {
            f64::from_bits(self.0.load(Ordering::SeqCst))
        }
    }

    impl ::metrics::Recorder for QueueGauge {
        fn describe_counter(
            &self,
            _: ::metrics::KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: ::metrics::KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: ::metrics::KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            _: &::metrics::Key,
            _: &::metrics::Metadata<'_>,
        ) -> ::metrics::Counter {
            ::metrics::Counter::noop()
        }
        fn register_gauge(
            &self,
            key: &::metrics::Key,
            _: &::metrics::Metadata<'_>,
        ) -> ::metrics::Gauge {
            assert_eq!(key.name(), metrics::QUEUED_DELIVERIES);
            ::metrics::Gauge::from_arc(self.0.clone())
        }
        fn register_histogram(
            &self,
            _: &::metrics::Key,
            _: &::metrics::Metadata<'_>,
        ) -> ::metrics::Histogram {
            ::metrics::Histogram::noop()
        }
    }

    #[test]
    fn the_queue_gauge_counts_what_waits_in_connections_queues() {
        let gauge = QueueGauge(Arc::new(std::sync::atomic::AtomicU64::new(0f64.to_bits())));
        ::metrics::with_local_recorder(&gauge, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let hub = Hub::default();
            let room = RoomId::new();
            let mut reading = connection(&hub, room);
            let dropped = connection(&hub, room);
            for pos in 1..=3 {
                hub.publish_now(message(room, pos).into());
            }
            assert_eq!(
                gauge.value(),
                6.0,
                "three events for each of two connections"
            );
            assert_eq!(runtime.block_on(next_seq(&mut reading, HOLD)), Some(1));
            assert_eq!(gauge.value(), 5.0, "one read");
            drop(dropped);
            assert_eq!(gauge.value(), 2.0, "a closed connection's queue is gone");
            drop(reading);
            assert_eq!(gauge.value(), 0.0);
        });
    }
}
