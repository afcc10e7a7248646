//! Several p-chat nodes in this test process, on one throwaway PostgreSQL
//! database and one Redis (each cluster under its own channel prefix), and
//! what the cluster tests need around them: the nodes' `/ready` fan-out
//! status, a raw Redis client to watch and forge publications, and a slow
//! link to Redis for one node.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, sleep, sleep_until, timeout};
use futures_util::StreamExt;
use p_chat_fanout::testing::{redis_url, unique_prefix};
use p_chat_persistence::postgres::testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{TestApp, postgres_vars};

/// How long a node may take to report `"fanout":"cluster"` on `/ready`.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// How often `/ready` or Redis is polled while waiting for a state.
const POLL: Duration = Duration::from_millis(50);

/// The most one read of a proxied connection takes at once.
const LINK_BUFFER: usize = 16 * 1024;

/// Nodes of one deployment. The database outlives them (dropped last).
pub struct Cluster {
    /// The nodes, each a server on its own random port.
    pub nodes: Vec<TestApp>,
    /// The Redis they share.
    pub redis_url: String,
    /// Their channel prefix.
    pub prefix: String,
    database: TestDatabase,
}

impl Cluster {
    /// `count` nodes on the shared Redis, with `vars` on top of the test
    /// settings, each connected to Redis (its `/ready` says `cluster`:
    /// panics if one is not within [`CONNECT_WAIT`]); `None` (reported)
    /// without PostgreSQL or Redis.
    pub async fn spawn(count: usize, vars: &[(&str, &str)]) -> Option<Self> {
        let redis_url = redis_url()?;
        let cluster = Self::spawn_on(&redis_url, count, vars).await?;
        for (index, node) in cluster.nodes.iter().enumerate() {
            if let Err(last) = wait_for_fanout(node, "cluster", CONNECT_WAIT).await {
                panic!("node {index} did not connect to Redis within {CONNECT_WAIT:?}: {last}");
            }
        }
        Some(cluster)
    }

    /// `count` nodes on the Redis at `redis_url` (a test's private one),
    /// without waiting for them to reach it.
    pub async fn spawn_on(redis_url: &str, count: usize, vars: &[(&str, &str)]) -> Option<Self> {
        let database = TestDatabase::create().await?;
        let prefix = unique_prefix().as_str().to_owned();
        let mut cluster = Self {
            nodes: Vec::new(),
            redis_url: redis_url.to_owned(),
            prefix,
            database,
        };
        for _ in 0..count {
            let node = cluster.spawn_node(vars).await;
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    /// One more node of this deployment (not added to `nodes`).
    pub async fn spawn_node(&self, vars: &[(&str, &str)]) -> TestApp {
        self.spawn_node_via(&self.redis_url, vars).await
    }

    /// One more node of this deployment that reaches the cluster's Redis at
    /// `redis_url` (through a [`SlowLink`], say); not added to `nodes`.
    pub async fn spawn_node_via(&self, redis_url: &str, vars: &[(&str, &str)]) -> TestApp {
        let mut owned = postgres_vars(self.database.config());
        owned.push(("REDIS_URL", redis_url.to_owned()));
        owned.push(("REDIS_PREFIX", self.prefix.clone()));
        let mut all: Vec<(&str, &str)> = owned
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        all.extend_from_slice(vars);
        TestApp::spawn_with(&all).await
    }

    /// The database, to point more servers (processes) at it.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The name of the deployment's channel `suffix` (`room:<id>`,
    /// `user:<id>`, `sessions`).
    pub fn channel(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// A raw client of the cluster's Redis.
    pub async fn redis(&self) -> RawRedis {
        RawRedis::connect(&self.redis_url).await
    }
}

/// `GET /ready` on `node`, asserting a 200 with `status: ready`: its
/// `data.fanout`.
pub async fn fanout_of(node: &TestApp) -> String {
    let reply = node.get("/ready", None).await;
    assert_eq!(reply.status, StatusCode::OK, "/ready: {reply:?}");
    assert_eq!(reply.data()["status"], "ready", "/ready: {reply:?}");
    reply.data()["fanout"]
        .as_str()
        .unwrap_or_else(|| panic!("no string data.fanout in /ready: {reply:?}"))
        .to_owned()
}

/// Polls `/ready` until its `data.fanout` is `expected`; `Err` with the
/// last one seen after `within`.
pub async fn wait_for_fanout(
    node: &TestApp,
    expected: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let fanout = fanout_of(node).await;
        if fanout == expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("/ready still says \"fanout\":{fanout:?}"));
        }
        sleep(POLL).await;
    }
}

/// A plain client of a Redis server, for what the nodes cannot be asked to
/// do: publish garbage, count a channel's subscribers.
pub struct RawRedis {
    connection: redis::aio::MultiplexedConnection,
}

impl RawRedis {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Self {
        let client = redis::Client::open(url).expect("a Redis URL");
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis");
        Self { connection }
    }

    /// `PUBLISH channel payload`: how many subscribers received it.
    pub async fn publish(&mut self, channel: &str, payload: &[u8]) -> i64 {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut self.connection)
            .await
            .expect("PUBLISH")
    }

    /// `PUBSUB NUMSUB channel`: how many clients are subscribed to it (by
    /// name, not by pattern).
    pub async fn subscribers(&mut self, channel: &str) -> i64 {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut self.connection)
            .await
            .expect("PUBSUB NUMSUB");
        counts.first().map_or(0, |(_, count)| *count)
    }

    /// Polls until `channel` has exactly `count` subscribers; `Err` with
    /// the last count after `within`.
    pub async fn wait_for_subscribers(
        &mut self,
        channel: &str,
        count: i64,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.subscribers(channel).await;
            if now == count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{channel} has {now} subscribers, not {count}, after {within:?}"
                ));
            }
            sleep(POLL).await;
        }
    }
}

/// Everything published on a deployment's channels, as Redis delivers it to
/// a pattern subscriber: what the nodes really put on the wire.
pub struct Tap {
    messages: redis::aio::PubSubStream,
}

impl Tap {
    /// Subscribes to `pattern` (e.g. `<prefix>:*`) on `url`.
    pub async fn start(url: &str, pattern: &str) -> Self {
        let client = redis::Client::open(url).expect("a Redis URL");
        let mut pubsub = client.get_async_pubsub().await.expect("a pub/sub client");
        pubsub.psubscribe(pattern).await.expect("PSUBSCRIBE");
        let (_sink, messages) = pubsub.split();
        Self { messages }
    }

    /// The payload of the next publication on `channel` whose JSON
    /// satisfies `wanted` (others are skipped), within `within`.
    pub async fn next_on(
        &mut self,
        channel: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(message)) = timeout(left, self.messages.next()).await else {
                panic!("nothing wanted on {channel} within {within:?}; seen: {seen:?}");
            };
            let payload: serde_json::Value = serde_json::from_slice(message.get_payload_bytes())
                .unwrap_or_else(|error| {
                    panic!(
                        "a node published something that is not JSON on {}: {error}",
                        message.get_channel_name()
                    )
                });
            if message.get_channel_name() == channel && wanted(&payload) {
                return payload;
            }
            seen.push((message.get_channel_name().to_owned(), payload));
        }
    }
}

/// A TCP proxy in front of Redis that delays every byte by a fixed time in
/// each direction (order kept): a node behind it has a slow link to Redis,
/// as across a wide-area network.
pub struct SlowLink {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl SlowLink {
    /// Forwards a free local port to the Redis at `redis_url`, with `delay`
    /// each way.
    pub async fn start(redis_url: &str, delay: Duration) -> Self {
        let url = url::Url::parse(redis_url).expect("a Redis URL");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("a Redis host"),
            url.port().unwrap_or(6379)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let address = listener.local_addr().expect("the proxy's address");
        let acceptor = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        delayed_copy(client_read, server_write, delay),
                        delayed_copy(server_read, client_write, delay),
                    );
                });
            }
        });
        Self { address, acceptor }
    }

    /// The URL a node reaches Redis at through this link.
    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn delayed_copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0_u8; LINK_BUFFER];
        while let Ok(read) = from.read(&mut buffer).await {
            if read == 0
                || chunks
                    .send((Instant::now() + delay, buffer[..read].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((at, chunk)) = due.recv().await {
            sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}
