//! Presence through Redis beyond the port's contract: the claims of a node
//! that died (it stopped renewing them) are released by another node, which
//! announces offline those of its users that no live node claims.

// Test code: a failed `unwrap` or `expect` is a failed test, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::events::{EventPage, EventQuery};
use p_chat_domain::ports::{EventLog, FanOut, StoreError};
use p_chat_domain::presence::Transition;
use p_chat_domain::room::RoomId;
use p_chat_domain::user::UserId;
use p_chat_fanout::redis::{RedisFanOut, RedisUrl};
use p_chat_fanout::testing::{redis_url, unique_prefix};
use tokio::time::timeout;

/// How long the surviving node may take to find the dead one (its first
/// heartbeat runs at start).
const FOUND: Duration = Duration::from_secs(3);
/// How long claims of the live fake node last.
const LIVE_FOR_MS: i64 = 60_000;

/// An empty log: no room events in these tests.
struct NoLog;

#[async_trait]
impl EventLog for NoLog {
    async fn after(&self, _room: RoomId, _query: &EventQuery) -> Result<EventPage, StoreError> {
        Ok(EventPage {
            events: Vec::new(),
            has_more: false,
        })
    }

    async fn prune(&self, _before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_go_offline_unless_another_node_claims_them() {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = unique_prefix();
    let p = prefix.as_str().to_owned();
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    // The dead node was last heard of 31 s ago: its liveness ran out 1 s ago.
    let (dead, alive) = ("dead-node", "live-node");
    let dead_until = now - 1_000;
    let (alone, shared) = (UserId::new(), UserId::new());
    let mut claims: HashMap<UserId, Vec<(&str, i64)>> = HashMap::new();
    claims.insert(alone, vec![(dead, now + LIVE_FOR_MS)]);
    claims.insert(
        shared,
        vec![(dead, now + LIVE_FOR_MS), (alive, now + LIVE_FOR_MS)],
    );
    let _: () = redis::cmd("ZADD")
        .arg(format!("{p}:presence:nodes"))
        .arg(dead_until)
        .arg(dead)
        .arg(now + LIVE_FOR_MS)
        .arg(alive)
        .query_async(&mut redis)
        .await
        .unwrap();
    for (user, by) in &claims {
        for (node, until) in by {
            let _: () = redis::cmd("ZADD")
                .arg(format!("{p}:presence:{user}"))
                .arg(*until)
                .arg(*node)
                .query_async(&mut redis)
                .await
                .unwrap();
            let _: () = redis::cmd("SADD")
                .arg(format!("{p}:presence:node:{node}"))
                .arg(user.to_string())
                .query_async(&mut redis)
                .await
                .unwrap();
        }
        let _: () = redis::cmd("SET")
            .arg(format!("{p}:presence:{user}:state"))
            .arg("online")
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    let url = RedisUrl::parse(&url).unwrap();
    let survivor: Arc<dyn FanOut> = Arc::new(
        RedisFanOut::start(&url, prefix, Arc::new(NoLog), Duration::from_millis(300)).unwrap(),
    );
    let transition = timeout(FOUND, survivor.transition())
        .await
        .expect("the dead node is found")
        .expect("a transition");
    match transition {
        Transition::Offline { user_id, at } => {
            assert_eq!(user_id, alone, "only the user nobody else claims");
            let heard = DateTime::from_timestamp_millis(dead_until - 30_000).unwrap();
            assert_eq!(at, heard, "last seen when the dead node was last heard of");
        }
        other => panic!("expected offline, got {other:?}"),
    }
    assert!(
        timeout(Duration::from_millis(500), survivor.transition())
            .await
            .is_err(),
        "the user another node claims stays online"
    );
    assert!(!survivor.online(alone).await);
    assert!(survivor.online(shared).await);
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{p}:presence:nodes"))
        .arg(0)
        .arg(-1)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!left.contains(&dead.to_owned()), "buried once: {left:?}");
    let inherited: i64 = redis::cmd("EXISTS")
        .arg(format!("{p}:presence:node:{dead}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(inherited, 0, "the dead node's list is gone");
}
