//! Presence across nodes, in Redis (docs/operations.md, "Running several
//! nodes"):
//!
//! - `<prefix>:presence:<user>`: a sorted set of the nodes that claim the
//!   user (a connection of theirs is open there, or closed less than the
//!   grace period ago), each scored by the time its claim expires. A node
//!   renews its claims every [`HEARTBEAT`]; the claims of a node that
//!   died expire after [`CLAIM_TTL`].
//! - `<prefix>:presence:<user>:state`: `online` or `offline`, the presence
//!   last announced for the user, so that of the nodes that see the user
//!   arrive or leave, only the one that changes it announces it.
//!
//! Both change only in Lua scripts, each one atomic step: a claim (an
//! arrival, or a heartbeat) and a release (a departure after the grace
//! period) cannot interleave, so the last announced presence is the
//! deployment's.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use p_chat_domain::presence::Transition;
use p_chat_domain::user::UserId;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval};

use super::ChannelPrefix;
use super::wire::NodeId;
use crate::local::{Attendance, Hub};

/// How often a node renews its claims.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a claim lives unless renewed (three heartbeats: one lost
/// renewal does not end it).
const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How many decided transitions may wait for their reader; past that the
/// newest are dropped (presence is best effort).
pub(super) const TRANSITION_QUEUE: usize = 10_000;

/// Claims the user for this node (KEYS: claims, state; ARGV: node, now,
/// expiry, TTL, all in milliseconds): drops expired claims, sets this
/// node's, and the state to `online`. Returns 1 if the state was not
/// `online` before (the user came online), else 0.
const CLAIM: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], 'online', 'PX', ARGV[4])
if before == 'online' then return 0 end
return 1
";

/// Releases this node's claim of the user (same KEYS; ARGV: node, now,
/// TTL): if no live claim remains, sets the state to `offline`. Returns 1
/// if that changed the state (the user went offline), else 0.
const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], 'offline', 'PX', ARGV[3])
if before == 'offline' then return 0 end
return 1
";

/// This node's claims of users, in Redis.
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

    fn claims_key(&self, user: UserId) -> String {
        format!("{}:presence:{user}", self.prefix.as_str())
    }

    fn state_key(&self, user: UserId) -> String {
        format!("{}:presence:{user}:state", self.prefix.as_str())
    }

    /// Claims `user` for this node; whether they came online.
    async fn claim(&self, user: UserId) -> redis::RedisResult<bool> {
        let now = now_ms();
        let changed: i64 = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(2)
            .arg(self.claims_key(user))
            .arg(self.state_key(user))
            .arg(self.node.to_string())
            .arg(now)
            .arg(now.saturating_add(millis(CLAIM_TTL)))
            .arg(millis(CLAIM_TTL))
            .query_async(&mut self.manager.clone())
            .await?;
        Ok(changed == 1)
    }

    /// Releases this node's claim of `user`; whether they went offline.
    async fn release(&self, user: UserId) -> redis::RedisResult<bool> {
        let changed: i64 = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(2)
            .arg(self.claims_key(user))
            .arg(self.state_key(user))
            .arg(self.node.to_string())
            .arg(now_ms())
            .arg(millis(CLAIM_TTL))
            .query_async(&mut self.manager.clone())
            .await?;
        Ok(changed == 1)
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
/// and renews this node's claims every [`HEARTBEAT`] (a renewal that finds
/// the user not `online`, as after Redis lost the state, announces them).
/// While Redis does not answer, nothing is decided: the heartbeat after it
/// is back claims again.
pub(super) async fn run(hub: Arc<Hub>, claims: Claims, decided: mpsc::Sender<Transition>) {
    let mut heartbeat = interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let decide = |transition: Transition| {
        if decided.try_send(transition).is_err() {
            tracing::warn!(?transition, "presence queue full: a change is not announced");
        }
    };
    loop {
        tokio::select! {
            attendance = hub.attendance() => {
                let Some(attendance) = attendance else { return };
                match attendance {
                    Attendance::Arrived(user) => match claims.claim(user).await {
                        Ok(true) => decide(Transition::Online(user)),
                        Ok(false) => {}
                        Err(error) => tracing::warn!(%error, %user, "cannot claim a user's presence in Redis"),
                    },
                    Attendance::Left { user, at } => match claims.release(user).await {
                        Ok(true) => decide(Transition::Offline { user_id: user, at }),
                        Ok(false) => {}
                        Err(error) => tracing::warn!(%error, %user, "cannot release a user's presence in Redis"),
                    },
                }
            }
            _ = heartbeat.tick() => {
                for user in hub.present_users() {
                    match claims.claim(user).await {
                        Ok(true) => decide(Transition::Online(user)),
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(%error, "cannot renew presence claims in Redis");
                            break;
                        }
                    }
                }
            }
        }
    }
}
