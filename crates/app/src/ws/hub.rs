//! The in-process [`FanOut`] adapter: routes room events to the connections
//! of this process. A multi-node adapter (Redis, NATS) implements the same
//! port; the gateway does not change.
//!
//! Routing tables sit behind one mutex held only for map updates and
//! non-blocking `try_send`s into each connection's bounded queue: no socket
//! is written under it, and no room waits for another room's task. Each
//! room's events pass a [`Sequencer`] first, which puts publications that
//! raced each other back into position order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_trait::async_trait;
use p_chat_domain::events::{Broadcast, Change, RoomEvent};
use p_chat_domain::ports::{Delivery, FanOut, Subscriber, Subscription};
use p_chat_domain::room::RoomId;
use p_chat_domain::session::SessionId;
use p_chat_domain::user::UserId;
use tokio::sync::{Notify, mpsc};

use super::sequencer::{Admitted, HOLD, Sequencer};

type ConnId = u64;

/// Fans events out to this process's connections.
#[derive(Default)]
pub struct Hub {
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Routes {
    connections: HashMap<ConnId, Connection>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, HashSet<ConnId>>,
    sessions: HashMap<SessionId, HashSet<ConnId>>,
    /// The event order of each room that has connections.
    order: HashMap<RoomId, Sequencer>,
}

struct Connection {
    user: UserId,
    session: SessionId,
    rooms: HashSet<RoomId>,
    queue: mpsc::Sender<Arc<Broadcast>>,
    flags: Arc<Flags>,
}

/// Why a connection must close, set by the hub, read by its subscription.
#[derive(Default)]
struct Flags {
    overflowed: AtomicBool,
    session_ended: AtomicBool,
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

impl Routes {
    fn join(&mut self, id: ConnId, room: RoomId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.rooms.insert(room);
            self.rooms.entry(room).or_default().insert(id);
        }
    }

    fn leave(&mut self, id: ConnId, room: RoomId) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.rooms.remove(&room);
        }
        if let Some(members) = self.rooms.get_mut(&room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(&room);
                self.order.remove(&room);
            }
        }
    }

    fn connections_of(&self, user: UserId) -> Vec<ConnId> {
        self.users
            .get(&user)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Unsubscribes a connection entirely and hands it back, so the caller
    /// can set its flags before its queue sender is dropped (a receiver woken
    /// by the closed queue must already see why).
    fn remove(&mut self, id: ConnId) -> Option<Connection> {
        let connection = self.connections.remove(&id)?;
        for room in &connection.rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.remove(&id);
                if members.is_empty() {
                    self.rooms.remove(room);
                    self.order.remove(room);
                }
            }
        }
        if let Some(ids) = self.users.get_mut(&connection.user) {
            ids.remove(&id);
            if ids.is_empty() {
                self.users.remove(&connection.user);
            }
        }
        if let Some(ids) = self.sessions.get_mut(&connection.session) {
            ids.remove(&id);
            if ids.is_empty() {
                self.sessions.remove(&connection.session);
            }
        }
        Some(connection)
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
            Broadcast::Typing { .. } => None,
        };
        if let Some(Change::MemberJoined { member, .. }) = change {
            for id in self.connections_of(member.membership.user_id) {
                self.join(id, room);
            }
        }
        let typist = match &event {
            Broadcast::Typing { user_id, .. } => Some(*user_id),
            Broadcast::Event(_) => None,
        };
        let targets: Vec<ConnId> = self
            .rooms
            .get(&room)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let event = Arc::new(event);
        let mut overflowed = Vec::new();
        for id in targets {
            let Some(connection) = self.connections.get(&id) else {
                continue;
            };
            if Some(connection.user) == typist {
                continue;
            }
            if connection.queue.try_send(event.clone()).is_err() {
                overflowed.push(id);
            }
        }
        for id in overflowed {
            self.expel(id, |flags| &flags.overflowed);
        }
        let change = match event.as_ref() {
            Broadcast::Event(event) => &event.change,
            Broadcast::Typing { .. } => return,
        };
        match change {
            Change::MemberLeft { user_id } => {
                for id in self.connections_of(*user_id) {
                    self.leave(id, room);
                }
            }
            Change::RoomDeleted => {
                let ids: Vec<ConnId> = self
                    .rooms
                    .get(&room)
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default();
                for id in ids {
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
        if let Some(ids) = self.sessions.get_mut(&before) {
            ids.remove(&id);
            if ids.is_empty() {
                self.sessions.remove(&before);
            }
        }
        self.sessions.entry(session).or_default().insert(id);
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

#[async_trait]
impl FanOut for Hub {
    async fn publish(&self, broadcast: Broadcast) {
        let room = broadcast.room_id();
        let mut routes = lock(&self.routes);
        let event = match broadcast {
            Broadcast::Event(event) => event,
            typing @ Broadcast::Typing { .. } => return routes.deliver(typing),
        };
        if !routes.rooms.contains_key(&room) && !routes.joins_here(&event) {
            return; // no connection listens to this room
        }
        let order = routes
            .order
            .entry(room)
            .or_insert_with(|| Sequencer::starting_at(event.pos));
        match order.admit(event) {
            Admitted::Due(events) => {
                for event in events {
                    routes.deliver(Broadcast::Event(event));
                }
            }
            Admitted::Held {
                flush_after: Some(generation),
            } => flush_later(Arc::downgrade(&self.routes), room, generation),
            Admitted::Held { flush_after: None } => {}
        }
    }

    async fn end_session(&self, session: SessionId) {
        let mut routes = lock(&self.routes);
        let ids: Vec<ConnId> = routes
            .sessions
            .get(&session)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            routes.expel(id, |flags| &flags.session_ended);
        }
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
        routes
            .users
            .entry(subscriber.user_id)
            .or_default()
            .insert(id);
        routes
            .sessions
            .entry(subscriber.session_id)
            .or_default()
            .insert(id);
        for room in subscriber.rooms {
            routes.join(id, room);
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
    events: mpsc::Receiver<Arc<Broadcast>>,
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
            tokio::select! {
                biased;
                () = self.flags.wake.notified() => {}
                event = self.events.recv() => {
                    return match event {
                        Some(event) => Some(Delivery::Event(event)),
                        None => self.verdict(),
                    };
                }
            }
        }
    }

    fn rebind(&mut self, session: SessionId) {
        lock(&self.routes).rebind(self.id, session);
    }
}

impl Drop for HubSubscription {
    fn drop(&mut self) {
        lock(&self.routes).remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::super::test_support::message;
    use super::*;

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
                rooms: vec![room],
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
}
