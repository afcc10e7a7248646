//! Presence across nodes, in Redis (docs/operations.md, "Presence across
//! nodes"), all keys under the deployment's prefix:
//!
//! - `presence:<user>`: a sorted set of the nodes that claim the user (a
//!   connection of theirs is open there, or closed less than the grace
//!   period ago), each scored by the time its claim expires. A node renews
//!   its claims every [`HEARTBEAT`]; unrenewed, a claim lasts [`CLAIM_TTL`].
//! - `presence:<user>:state`: `online` or `offline`, the presence last
//!   announced for the user, so that of the nodes that see the user arrive
//!   or leave, only the one that changes it announces it.
//! - `presence:nodes`: a sorted set of the live nodes, each scored by the
//!   time it is taken for dead unless it renews its entry; and
//!   `presence:node:<node>`, the users that node claims. A node that finds
//!   another one dead releases that node's claims, and announces offline
//!   those of its users nobody else claims.
//!
//! Claims and states change only in Lua scripts, each one atomic step: a
//! claim (an arrival, or a heartbeat) and a release (a departure after the
//! grace period, or a dead node's) cannot interleave, so the last
//! announced presence is the deployment's.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use p_chat_domain::presence::Transition;
use p_chat_domain::user::UserId;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval};

use super::ChannelPrefix;
use super::wire::NodeId;
use crate::local::{Attendance, Hub};

/// How often a node renews its claims and looks for dead nodes.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a claim, or a node's liveness, lasts unless renewed (three
/// heartbeats: one lost renewal does not end it).
const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How long a node's list of claimed users outlives its last renewal, for
/// another node to find it once the node is dead.
const NODE_LIST_TTL: Duration = Duration::from_secs(3600);
/// How many decided transitions may wait for their reader; past that the
/// newest are dropped (presence is best effort).
pub(super) const TRANSITION_QUEUE: usize = 10_000;

/// Claims the user for a node (KEYS: claims, state, the node's users;
/// ARGV: node, user, now, expiry, TTL, list TTL, times in milliseconds):
/// drops expired claims, sets the node's and the state to `online`.
/// Returns 1 if the state was not `online` before (the user came online).
const CLAIM: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], 'online', 'PX', ARGV[5])
if before == 'online' then return 0 end
return 1
";

/// Releases a node's claim of the user (same KEYS; ARGV: node, user, now,
/// TTL): if no live claim remains, sets the state to `offline`. Returns 1
/// if that changed the state (the user went offline).
const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], 'offline', 'PX', ARGV[4])
if before == 'offline' then return 0 end
return 1
";

/// Takes the dead nodes off the live ones (KEYS: the live nodes; ARGV:
/// now): returns them with their last expiry, each to one caller only.
const BURY: &str = r"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
return dead
";

/// Takes a dead node's list of users (KEYS: the list): returns and
/// deletes it.
const INHERIT: &str = r"
local users = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return users
";

/// A node's claims of users, in Redis.
#[derive(Clone)]
pub(super) struct Claims {
    manager: ConnectionManager,
    prefix: ChannelPrefix,
    node: NodeId,
}

/// The time now in milliseconds since the epoch, as claims are scored.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A duration in milliseconds, as Redis takes it.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Claims {
    pub(super) fn new(manager: ConnectionManager, prefix: ChannelPrefix, node: NodeId) -> Self {
        Self {
            manager,
            prefix,
            node,
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:presence:{suffix}", self.prefix.as_str())
    }

    fn claims_key(&self, user: UserId) -> String {
        self.key(&user.to_string())
    }

    fn state_key(&self, user: UserId) -> String {
        self.key(&format!("{user}:state"))
    }

    fn nodes_key(&self) -> String {
        self.key("nodes")
    }

    fn node_key(&self, node: &str) -> String {
        self.key(&format!("node:{node}"))
    }

    /// Claims `user` for this node; whether they came online.
    async fn claim(&self, user: UserId) -> redis::RedisResult<bool> {
        let now = now_ms();
        let changed: i64 = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(3)
            .arg(self.claims_key(user))
            .arg(self.state_key(user))
            .arg(self.node_key(&self.node.to_string()))
            .arg(self.node.to_string())
            .arg(user.to_string())
            .arg(now)
            .arg(now.saturating_add(millis(CLAIM_TTL)))
            .arg(millis(CLAIM_TTL))
            .arg(millis(NODE_LIST_TTL))
            .query_async(&mut self.manager.clone())
            .await?;
        Ok(changed == 1)
    }

    /// Releases `node`'s claim of `user`; whether they went offline.
    async fn release(&self, node: &str, user: UserId) -> redis::RedisResult<bool> {
        let changed: i64 = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(3)
            .arg(self.claims_key(user))
            .arg(self.state_key(user))
            .arg(self.node_key(node))
            .arg(node)
            .arg(user.to_string())
            .arg(now_ms())
            .arg(millis(CLAIM_TTL))
            .query_async(&mut self.manager.clone())
            .await?;
        Ok(changed == 1)
    }

    /// Renews this node's liveness.
    async fn live(&self) -> redis::RedisResult<()> {
        redis::cmd("ZADD")
            .arg(self.nodes_key())
            .arg(now_ms().saturating_add(millis(CLAIM_TTL)))
            .arg(self.node.to_string())
            .query_async(&mut self.manager.clone())
            .await
    }

    /// Releases the claims of every node found dead (each dead node is
    /// found by one node only); the users who went offline, with the time
    /// their node was last heard of.
    async fn bury(&self) -> redis::RedisResult<Vec<(UserId, DateTime<Utc>)>> {
        let dead: Vec<(String, f64)> = redis::cmd("EVAL")
            .arg(BURY)
            .arg(1)
            .arg(self.nodes_key())
            .arg(now_ms())
            .query_async(&mut self.manager.clone())
            .await?;
        let mut offline = Vec::new();
        for (node, expired) in dead {
            // Scores are whole milliseconds.
            #[allow(clippy::cast_possible_truncation)]
            let heard = (expired as i64).saturating_sub(millis(CLAIM_TTL));
            let at = DateTime::from_timestamp_millis(heard).unwrap_or_else(Utc::now);
            let users: Vec<String> = redis::cmd("EVAL")
                .arg(INHERIT)
                .arg(1)
                .arg(self.node_key(&node))
                .query_async(&mut self.manager.clone())
                .await?;
            tracing::warn!(%node, users = users.len(), "a node stopped renewing its presence claims: releasing them");
            for user in users {
                let Ok(user) = user.parse::<uuid::Uuid>().map(UserId::from_uuid) else {
                    continue; // not written by a node
                };
                if self.release(&node, user).await? {
                    offline.push((user, at));
                }
            }
        }
        Ok(offline)
    }

    /// Whether a live node claims `user` (`false` if Redis does not
    /// answer).
    pub(super) async fn claimed(&self, user: UserId) -> bool {
        let live: redis::RedisResult<i64> = redis::cmd("ZCOUNT")
            .arg(self.claims_key(user))
            .arg(format!("({}", now_ms()))
            .arg("+inf")
            .query_async(&mut self.manager.clone())
            .await;
        live.is_ok_and(|count| count > 0)
    }
}

/// Turns the hub's attendance into the deployment's presence transitions,
/// and every [`HEARTBEAT`] renews this node's liveness and claims (a
/// renewal that finds the user not `online`, as after Redis lost the
/// state, announces them) and releases the claims of dead nodes. While
/// Redis does not answer, nothing is decided: the heartbeat after it is
/// back claims again.
pub(super) async fn run(hub: Arc<Hub>, claims: Claims, decided: mpsc::Sender<Transition>) {
    let mut heartbeat = interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let node = claims.node.to_string();
    let decide = |transition: Transition| {
        if decided.try_send(transition).is_err() {
            tracing::warn!(
                ?transition,
                "presence queue full: a change is not announced"
            );
        }
    };
    loop {
        tokio::select! {
            attendance = hub.attendance() => {
                let Some(attendance) = attendance else { return };
                let decision = match attendance {
                    Attendance::Arrived(user) => claims
                        .claim(user)
                        .await
                        .map(|changed| changed.then_some(Transition::Online(user))),
                    Attendance::Left { user, at } => claims
                        .release(&node, user)
                        .await
                        .map(|changed| changed.then_some(Transition::Offline { user_id: user, at })),
                };
                match decision {
                    Ok(Some(transition)) => decide(transition),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, ?attendance, "cannot record a presence change in Redis"),
                }
            }
            _ = heartbeat.tick() => {
                if let Err(error) = renew(&hub, &claims, &decide).await {
                    tracing::warn!(%error, "cannot renew presence claims in Redis");
                }
            }
        }
    }
}

/// One heartbeat: this node's liveness and claims, then the dead nodes'.
async fn renew(hub: &Hub, claims: &Claims, decide: &impl Fn(Transition)) -> redis::RedisResult<()> {
    claims.live().await?;
    for user in hub.present_users() {
        if claims.claim(user).await? {
            decide(Transition::Online(user));
        }
    }
    for (user_id, at) in claims.bury().await? {
        decide(Transition::Offline { user_id, at });
    }
    Ok(())
}
