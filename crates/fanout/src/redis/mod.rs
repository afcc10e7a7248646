//! The fan-out across nodes: every node keeps a [`Hub`] for its own
//! connections and shares room events with the other nodes through Redis
//! pub/sub (docs/operations.md, "Running several nodes").
//!
//! - A node delivers what it publishes to its own connections at once, and
//!   publishes it once on the room's channel (a `member_joined` also on the
//!   joining user's channel, so the node holding their connections starts
//!   following the room). Publishing goes through a bounded queue: a request
//!   never waits for Redis, and what Redis could not take is sent, in
//!   order, when it is back.
//! - A node subscribes to a room's channel while one of its connections is
//!   a member, to a user's channel while it holds one of their
//!   connections, and to the channel of ended sessions always.
//! - Redis pub/sub is at-most-once, so positions decide, not the bus:
//!   connections drop repeats and fill gaps from the event log as on one
//!   node; after each `SUBSCRIBE`, after a reconnect, and after its receive
//!   queue overflowed, the node reads the log of the rooms concerned from
//!   the last position it knew and delivers what it missed.
//! - Presence: each node claims, in one sorted set per user, the users it
//!   has a connection of (or who linger within the grace period), and
//!   renews its claims by heartbeat, so a dead node's claims expire. A
//!   Lua script per arrival and departure decides, atomically across the
//!   nodes, whether the user's deployment-wide presence changed; the
//!   change is announced on the presence channel, which every node hears
//!   (see [`presence`]).

mod channels;
mod presence;
mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use p_chat_domain::events::{Broadcast, Change, EventQuery};
use p_chat_domain::message::PageLimit;
use p_chat_domain::ports::{Delivery, EventLog, FanOut, FanOutStatus, Subscriber, Subscription};
use p_chat_domain::position::Pos;
use p_chat_domain::presence::{PresenceChange, Transition};
use p_chat_domain::room::RoomId;
use p_chat_domain::session::SessionId;
use p_chat_domain::user::UserId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::{MissedTickBehavior, interval, sleep};

use self::channels::Channel;
pub use self::channels::{ChannelPrefix, DEFAULT_PREFIX, InvalidPrefix, PREFIX_RULE};
use self::wire::{News, NodeId};
use crate::local::{Hub, Interest, Topic};
use crate::metrics;

/// How many publications may wait for Redis; past that the newest are
/// dropped (other nodes fill the gap from the log).
const PUBLISH_QUEUE: usize = 10_000;
/// How many received publications may wait for this node's hub; past that
/// the node catches every room up from the log instead.
const RECEIVE_QUEUE: usize = 10_000;
/// How often the link to Redis is checked (and, when down, retried).
const LINK_CHECK: Duration = Duration::from_millis(500);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one Redis command may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause before a failed publication is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// While Redis stays down, one reminder in the log per this many checks.
const CHECKS_PER_REMINDER: u32 = 60;
/// The longest channel name a log line quotes.
const LOGGED_CHANNEL_CHARS: usize = 120;

/// A Redis server's address, as `REDIS_URL` gives it
/// (`redis://[user:password@]host[:port][/db]`). Its `Debug` hides the
/// password.
#[derive(Clone)]
pub struct RedisUrl(redis::ConnectionInfo);

/// Why a `REDIS_URL` was refused.
#[derive(Debug, thiserror::Error)]
#[error("not a Redis URL (redis://[user:password@]host[:port][/db]): {0}")]
pub struct InvalidRedisUrl(String);

impl RedisUrl {
    /// Checks a configured URL (without connecting).
    pub fn parse(raw: &str) -> Result<Self, InvalidRedisUrl> {
        let info = raw
            .into_connection_info()
            .map_err(|error| InvalidRedisUrl(error.to_string()))?;
        // Push messages (RESP3) carry what the subscriptions receive.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Ok(Self(info.set_redis_settings(settings)))
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({})", self.0.addr())
    }
}

/// Why the Redis fan-out could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Redis client: {0}")]
pub struct RedisSetupError(#[from] redis::RedisError);

/// The fan-out of a node among several, sharing events through Redis.
pub struct RedisFanOut {
    hub: Arc<Hub>,
    outbox: mpsc::Sender<Outgoing>,
    link: Arc<Link>,
    barriers: mpsc::UnboundedSender<Barrier>,
    /// The users' claims, for [`FanOut::online`].
    claims: presence::Claims,
    /// The presence transitions this node decided.
    transitions: Mutex<mpsc::Receiver<Transition>>,
}

/// A request to be told when the subscriptions that the hub's connections
/// needed at the time are in place and caught up.
struct Barrier {
    done: oneshot::Sender<()>,
    /// Whether to wait for Redis while the link is down (else answered at
    /// once: the node catches up when the link is back).
    through_outage: bool,
}

/// Sends a barrier and waits for its answer.
async fn pass(barriers: &mpsc::UnboundedSender<Barrier>, through_outage: bool) {
    let (done, wait) = oneshot::channel();
    if barriers
        .send(Barrier {
            done,
            through_outage,
        })
        .is_ok()
    {
        let _ = wait.await;
    }
}

/// The state of this node's link to Redis, shared by its tasks.
#[derive(Default)]
struct Link {
    /// Subscribed and answering: events reach the other nodes.
    up: AtomicBool,
    /// The connection dropped (seen by the client library); cleared when
    /// the node has subscribed again.
    lost: AtomicBool,
    /// The receive queue overflowed: publications were dropped.
    lagged: AtomicBool,
}

impl RedisFanOut {
    /// Starts the node's tasks (listening, publishing, catching up) on the
    /// current tokio runtime. Connecting happens in the background: a node
    /// whose Redis is unreachable starts degraded, says so in the log and
    /// in [`FanOut::status`], and keeps trying. A user's presence outlasts
    /// their last connection on this node by `grace`.
    pub fn start(
        url: &RedisUrl,
        prefix: ChannelPrefix,
        log: Arc<dyn EventLog>,
        grace: Duration,
    ) -> Result<Self, RedisSetupError> {
        let client = Client::open(url.0.clone())?;
        let link = Arc::new(Link::default());
        metrics::redis_up(false);
        let (pushes, received) = mpsc::channel(RECEIVE_QUEUE);
        let listen_link = link.clone();
        let listening = ConnectionManager::new_lazy_with_config(
            client.clone(),
            manager_config().set_push_sender(move |push: PushInfo| {
                if push.kind == PushKind::Disconnection {
                    listen_link.lost.store(true, Ordering::SeqCst);
                }
                pushes.try_send(push).map_err(|_| {
                    listen_link.lagged.store(true, Ordering::SeqCst);
                })
            }),
        )?;
        let publishing = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())?;
        let claiming = ConnectionManager::new_lazy_with_config(client, manager_config())?;
        let (interest, interests) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub::reporting(interest, grace));
        let (outbox, outgoing) = mpsc::channel(PUBLISH_QUEUE);
        let (barriers, barrier_requests) = mpsc::unbounded_channel();
        let (work, catch_ups) = mpsc::unbounded_channel();
        let node = NodeId::new();
        let claims = presence::Claims::new(claiming, prefix.clone(), node);
        let (decided, transitions) = mpsc::channel(presence::TRANSITION_QUEUE);
        tokio::spawn(presence::run(hub.clone(), claims.clone(), decided));
        tokio::spawn(catch_up(hub.clone(), log, catch_ups));
        tokio::spawn(publish(publishing, prefix.clone(), node, outgoing));
        tokio::spawn(
            Listener {
                hub: hub.clone(),
                prefix,
                node,
                manager: listening,
                link: link.clone(),
                desired: HashSet::new(),
                work,
                checks_down: 0,
            }
            .run(interests, received, barrier_requests),
        );
        Ok(Self {
            hub,
            outbox,
            link,
            barriers,
            claims,
            transitions: Mutex::new(transitions),
        })
    }

    /// Waits until every subscription this node's connections needed when
    /// it was called is in place in Redis and caught up from the log (for
    /// tests: nothing published from then on can be missed). Waits for
    /// Redis if it is down.
    pub async fn settled(&self) {
        pass(&self.barriers, true).await;
    }

    fn enqueue(&self, news: News) {
        if let Err(error) = self.outbox.try_send(Outgoing::News(news)) {
            tracing::warn!(
                error = %error,
                "Redis publish queue full: a publication is dropped (other nodes fill it from the event log)"
            );
        }
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(LINK_CHECK)
}

#[async_trait]
impl FanOut for RedisFanOut {
    async fn publish(&self, event: Broadcast) {
        self.hub.publish(event.clone()).await;
        self.enqueue(News::Broadcast(Box::new(event)));
    }

    async fn end_session(&self, session: SessionId) {
        self.hub.end_session(session).await;
        self.enqueue(News::SessionEnded(session));
    }

    fn subscribe(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription> {
        Box::new(RedisSubscription {
            local: self.hub.subscribe(subscriber, capacity),
            barriers: self.barriers.clone(),
        })
    }

    fn status(&self) -> FanOutStatus {
        if self.link.up.load(Ordering::SeqCst) {
            FanOutStatus::Cluster
        } else {
            FanOutStatus::Degraded
        }
    }

    async fn flush(&self) {
        let (done, sent) = oneshot::channel();
        if self.outbox.send(Outgoing::Flush(done)).await.is_ok() {
            let _ = sent.await;
        }
    }

    async fn announce(&self, change: PresenceChange) {
        self.hub.announce_now(change.clone());
        self.enqueue(News::Presence(Box::new(change)));
    }

    /// Present here, or claimed by a live node (Redis unreachable: here
    /// only).
    async fn online(&self, user: UserId) -> bool {
        self.hub.present(user) || self.claims.claimed(user).await
    }

    async fn transition(&self) -> Option<Transition> {
        self.transitions.lock().await.recv().await
    }
}

/// A connection's subscription on a node among several: the hub's, ready
/// once the node listens on Redis to what the connection needs.
struct RedisSubscription {
    local: Box<dyn Subscription>,
    barriers: mpsc::UnboundedSender<Barrier>,
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        self.local.next().await
    }

    fn rebind(&mut self, session: SessionId) {
        self.local.rebind(session);
    }

    async fn ready(&mut self) {
        pass(&self.barriers, false).await;
    }

    fn follow(&mut self, room: RoomId, pos: Pos) {
        self.local.follow(room, pos);
    }
}

/// What the publish queue holds.
enum Outgoing {
    /// A publication.
    News(News),
    /// Answer once everything before has been published.
    Flush(oneshot::Sender<()>),
}

/// The channels a publication goes to.
fn channels_of(news: &News) -> Vec<Channel> {
    match news {
        News::Broadcast(broadcast) => {
            let mut channels = vec![Channel::room(broadcast.room_id())];
            if let Broadcast::Event(event) = broadcast.as_ref()
                && let Change::MemberJoined { member, .. } = &event.change
            {
                channels.push(Channel::user(member.membership.user_id));
            }
            channels
        }
        News::SessionEnded(_) => vec![Channel::Sessions],
        News::Presence(_) => vec![Channel::Presence],
    }
}

/// Drains the publish queue into Redis, in order. A publication Redis
/// refuses is retried until it goes through, but for typing, which is
/// worth nothing late.
async fn publish(
    mut manager: ConnectionManager,
    prefix: ChannelPrefix,
    node: NodeId,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(next) = outgoing.recv().await {
        let news = match next {
            Outgoing::News(news) => news,
            Outgoing::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let payload = wire::encode(node, &news);
        let typing = matches!(&news, News::Broadcast(broadcast)
            if matches!(broadcast.as_ref(), Broadcast::Typing { .. }));
        for channel in channels_of(&news) {
            let name = channel.name(&prefix);
            let mut failing = false;
            loop {
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(&name)
                    .arg(&payload)
                    .query_async(&mut manager)
                    .await;
                match sent {
                    Ok(_) => break,
                    Err(_) if typing => {
                        metrics::redis_publish_failed();
                        break;
                    }
                    Err(error) => {
                        metrics::redis_publish_failed();
                        if !failing {
                            tracing::warn!(%error, "cannot publish to Redis; retrying");
                            failing = true;
                        }
                        sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
    }
}

/// Work for the catch-up task.
enum CatchUp {
    /// Read these rooms' logs on from these positions.
    Rooms(Vec<(RoomId, Pos)>),
    /// Answer once everything before is done.
    Barrier(oneshot::Sender<()>),
}

/// Catches rooms up from the event log, one at a time (a reconnect of a
/// node following many rooms reads them in turn, not all at once).
async fn catch_up(
    hub: Arc<Hub>,
    log: Arc<dyn EventLog>,
    mut work: mpsc::UnboundedReceiver<CatchUp>,
) {
    while let Some(next) = work.recv().await {
        match next {
            CatchUp::Rooms(rooms) => {
                for (room, mark) in rooms {
                    catch_up_room(&hub, log.as_ref(), room, mark).await;
                }
            }
            CatchUp::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Delivers the events of `room` after `mark`. Of a long run, only the last
/// page goes through the hub: each connection fills what comes before it
/// from the log itself, straight to its socket, instead of through a queue
/// that would overflow.
async fn catch_up_room(hub: &Hub, log: &dyn EventLog, room: RoomId, mark: Pos) {
    let mut after = mark;
    let mut last_page = Vec::new();
    loop {
        let query = EventQuery {
            after,
            limit: PageLimit::MAX_PAGE,
        };
        let page = match log.after(room, &query).await {
            Ok(page) => page,
            Err(error) => {
                // Its connections fill the gap at the room's next event.
                tracing::warn!(%room, %error, "cannot catch a room up from the event log");
                break;
            }
        };
        if page.events.is_empty() {
            break;
        }
        after = page.last_pos(after);
        let more = page.has_more;
        last_page = page.events;
        if !more {
            break;
        }
    }
    hub.catch_up(last_page);
}

/// The interest changes already reported, without waiting for more.
fn pending(interests: &mut mpsc::UnboundedReceiver<Interest>) -> Vec<Interest> {
    std::iter::from_fn(|| interests.try_recv().ok()).collect()
}

/// The task that holds the node's subscriptions and hands what they receive
/// to the hub.
struct Listener {
    hub: Arc<Hub>,
    prefix: ChannelPrefix,
    node: NodeId,
    manager: ConnectionManager,
    link: Arc<Link>,
    /// What the hub has connections for: the channels to be subscribed to
    /// (besides the sessions channel).
    desired: HashSet<Topic>,
    work: mpsc::UnboundedSender<CatchUp>,
    /// Consecutive failed checks of the link.
    checks_down: u32,
}

impl Listener {
    async fn run(
        mut self,
        mut interests: mpsc::UnboundedReceiver<Interest>,
        mut received: mpsc::Receiver<PushInfo>,
        mut barriers: mpsc::UnboundedReceiver<Barrier>,
    ) {
        let mut check = interval(LINK_CHECK);
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Barriers that wait for Redis wait here while the link is down.
        let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            tokio::select! {
                Some(first) = interests.recv() => {
                    let mut changes = vec![first];
                    changes.extend(pending(&mut interests));
                    self.apply(changes).await;
                }
                Some(push) = received.recv() => self.on_push(push),
                barrier = barriers.recv() => {
                    // The fan-out is gone: so is this node's listening.
                    let Some(barrier) = barrier else { return };
                    // Changes reported before the barrier are applied first.
                    self.apply(pending(&mut interests)).await;
                    if barrier.through_outage || self.link.up.load(Ordering::SeqCst) {
                        waiting.push(barrier.done);
                    } else {
                        let _ = barrier.done.send(());
                    }
                }
                _ = check.tick() => self.check().await,
            }
            if self.link.lagged.swap(false, Ordering::SeqCst) {
                tracing::warn!(
                    "Redis receive queue overflowed: catching every room up from the event log"
                );
                self.catch_up_all();
            }
            if self.link.up.load(Ordering::SeqCst) {
                for barrier in waiting.drain(..) {
                    let _ = self.work.send(CatchUp::Barrier(barrier));
                }
            }
        }
    }

    /// Subscribes to the topics that gained their first connection and
    /// unsubscribes from those that lost their last, then catches the newly
    /// followed rooms up.
    async fn apply(&mut self, changes: Vec<Interest>) {
        let mut touched = HashSet::new();
        for change in changes {
            let topic = match change {
                Interest::Listen(topic) => {
                    self.desired.insert(topic);
                    topic
                }
                Interest::Unlisten(topic) => {
                    self.desired.remove(&topic);
                    topic
                }
            };
            touched.insert(topic);
        }
        if touched.is_empty() || !self.link.up.load(Ordering::SeqCst) {
            return; // applied in full when the link is back
        }
        let (listen, unlisten): (Vec<Topic>, Vec<Topic>) = touched
            .into_iter()
            .partition(|topic| self.desired.contains(topic));
        if !unlisten.is_empty() {
            let names = self.names(&unlisten);
            if let Err(error) = self.manager.unsubscribe(&names).await {
                self.link_down(&error);
                return;
            }
        }
        if !listen.is_empty() {
            let names = self.names(&listen);
            if let Err(error) = self.manager.subscribe(&names).await {
                self.link_down(&error);
                return;
            }
            let rooms: Vec<RoomId> = listen
                .iter()
                .filter_map(|topic| match topic {
                    Topic::Room(room) => Some(*room),
                    Topic::User(_) => None,
                })
                .collect();
            let _ = self.work.send(CatchUp::Rooms(self.hub.marks(&rooms)));
        }
    }

    fn names(&self, topics: &[Topic]) -> Vec<String> {
        topics
            .iter()
            .map(|topic| Channel::Topic(*topic).name(&self.prefix))
            .collect()
    }

    /// Checks the link; when it is down, tries to subscribe again to
    /// everything, and on success catches every room up.
    async fn check(&mut self) {
        if self.link.lost.load(Ordering::SeqCst) && self.link.up.swap(false, Ordering::SeqCst) {
            metrics::redis_up(false);
            tracing::error!(
                "lost the connection to Redis: this node serves only its own connections until it reconnects"
            );
        }
        let answered: redis::RedisResult<String> =
            redis::cmd("PING").query_async(&mut self.manager).await;
        if let Err(error) = answered {
            self.link_down(&error);
            return;
        }
        if self.link.up.load(Ordering::SeqCst) {
            return;
        }
        let mut names = vec![
            Channel::Sessions.name(&self.prefix),
            Channel::Presence.name(&self.prefix),
        ];
        names.extend(
            self.desired
                .iter()
                .map(|topic| Channel::Topic(*topic).name(&self.prefix)),
        );
        self.link.lost.store(false, Ordering::SeqCst);
        if let Err(error) = self.manager.subscribe(&names).await {
            self.link_down(&error);
            return;
        }
        self.link.up.store(true, Ordering::SeqCst);
        metrics::redis_connected();
        self.checks_down = 0;
        tracing::info!(
            channels = names.len(),
            "connected to Redis: fan-out reaches the other nodes; catching rooms up from the event log"
        );
        self.catch_up_all();
    }

    fn link_down(&mut self, error: &redis::RedisError) {
        let was_up = self.link.up.swap(false, Ordering::SeqCst);
        metrics::redis_up(false);
        if was_up || self.checks_down.is_multiple_of(CHECKS_PER_REMINDER) {
            tracing::error!(
                %error,
                "Redis (REDIS_URL) is unreachable: this node serves only its own connections \
                 (degraded fan-out) until it reconnects"
            );
        }
        self.checks_down = self.checks_down.saturating_add(1);
    }

    /// After publications may have been lost: reads every followed room's
    /// log on, and has every connection check its session and rooms.
    fn catch_up_all(&self) {
        let _ = self.work.send(CatchUp::Rooms(self.hub.all_marks()));
        self.hub.recheck_all();
    }

    /// Hands a received publication to the hub; garbage is logged and
    /// dropped.
    fn on_push(&self, push: PushInfo) {
        if push.kind != PushKind::Message {
            return; // subscription confirmations, disconnections (see `check`)
        }
        let (channel, payload) = match push.data.as_slice() {
            [Value::BulkString(channel), Value::BulkString(payload)] => (channel, payload),
            _ => {
                tracing::warn!("ignored a Redis message of unexpected shape");
                return;
            }
        };
        let publication = match wire::decode(payload) {
            Ok(publication) => publication,
            Err(error) => {
                let channel: String = String::from_utf8_lossy(channel)
                    .chars()
                    .take(LOGGED_CHANNEL_CHARS)
                    .collect();
                tracing::warn!(%channel, %error, "ignored an unreadable publication");
                return;
            }
        };
        if publication.node == self.node {
            return; // delivered here when it was published
        }
        match publication.news {
            News::Broadcast(broadcast) => self.hub.publish_now(*broadcast),
            News::SessionEnded(session) => self.hub.end_session_now(session),
            News::Presence(change) => self.hub.announce_now(*change),
        }
    }
}
