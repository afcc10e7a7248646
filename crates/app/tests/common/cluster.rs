//! Several p-chat nodes in this test process, on one throwaway PostgreSQL
//! database and one Redis (each cluster under its own channel prefix).

use p_chat_fanout::testing::{redis_url, unique_prefix};
use p_chat_persistence::postgres::testing::TestDatabase;

use super::{TestApp, postgres_vars};

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
    /// settings; `None` (reported) without PostgreSQL or Redis.
    pub async fn spawn(count: usize, vars: &[(&str, &str)]) -> Option<Self> {
        let redis_url = redis_url()?;
        Self::spawn_on(&redis_url, count, vars).await
    }

    /// `count` nodes on the Redis at `redis_url` (a test's private one).
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
        let mut owned = postgres_vars(self.database.config());
        owned.push(("REDIS_URL", self.redis_url.clone()));
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
}
