#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! The bench builds and runs: a short, slow fan-out against the reference
//! started in process delivers every message exactly once and in order. No
//! timing is asserted: the machine is shared.

mod common;

use std::time::Duration;

use p_chat_bench::reference::Reference;
use p_chat_bench::{FanoutConfig, Target, fanout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fanout_to_the_reference_delivers_everything_once_in_order() {
    let server = Reference::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = FanoutConfig {
        target: Target::Reference,
        url: format!("http://{}", server.address()),
        rooms: 2,
        members: 3,
        rate: 50.0,
        duration: Duration::from_secs(2),
        grace: Duration::from_secs(5),
    };
    let report = fanout::run(&config).await.unwrap();

    common::assert_all_delivered_once(&report, 100 * 3);
    assert!(report.deliveries_per_second > 0.0, "{report}");
}
