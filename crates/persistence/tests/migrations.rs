//! The embedded migrations on PostgreSQL: several processes starting on one
//! empty database at once (two nodes, or `p-chat admin` beside a first
//! start) all succeed, and the schema is applied once. Skipped (loudly)
//! without a database, failed in CI.

// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use p_chat_persistence::postgres::run_migrations;
use p_chat_persistence::postgres::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_of_one_database_take_turns() {
    for _ in 0..ROUNDS {
        let Some(database) = TestDatabase::create_empty().await else {
            return;
        };
        migrate_at_once(&database).await;
    }
}

/// Fresh databases tried: a race lost once in a while must still show.
const ROUNDS: usize = 5;
/// Processes starting at once on each.
const PROCESSES: usize = 6;

async fn migrate_at_once(database: &TestDatabase) {
    let runs = (0..PROCESSES).map(|_| {
        let config = database.config().clone();
        tokio::spawn(async move { run_migrations(&config).await })
    });
    let mut applied = Vec::new();
    for run in runs {
        applied.push(
            run.await
                .unwrap()
                .expect("every process migrates or finds it done"),
        );
    }
    applied.sort_unstable();
    // One process applied every migration; the others found nothing to do.
    let (done, first) = applied.split_at(PROCESSES - 1);
    assert!(done.iter().all(|&count| count == 0), "{applied:?}");
    assert!(first[0] >= 4, "{applied:?}");
    // And the store works.
    database.store().ping().await.unwrap();
}
