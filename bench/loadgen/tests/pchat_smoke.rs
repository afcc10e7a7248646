#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! The bench's p-chat side works end to end: a short, slow fan-out against
//! a real p-chat (in memory, in process, on its own actix runtime) sets up
//! accounts, rooms and sockets through the API and gets every message once
//! and in order. No timing is asserted: the machine is shared.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use p_chat::config::Config;
use p_chat::startup::Application;
use p_chat_bench::{FanoutConfig, Target, fanout};

/// The settings the bench documents for p-chat (bench/README.md), with
/// test-speed bcrypt.
const SETTINGS: &[(&str, &str)] = &[
    ("PORT", "0"),
    ("BCRYPT_COST", "4"),
    ("JWT_SECRET", "bench-secret-that-is-at-least-32-bytes-long"),
    ("WS_RATE_PER_SECOND", "10000"),
    ("WS_RATE_BURST", "10000"),
    ("RATE_REGISTER_IP", "100000/1s"),
    ("RATE_VERIFY_IP", "100000/1s"),
    ("RATE_WS_UPGRADE_IP", "100000/1s"),
    ("WS_MAX_UNAUTHENTICATED_PER_IP", "100000"),
];

/// Starts p-chat on a thread of its own (actix runs single-threaded
/// runtimes) and answers with its address; it serves until the process ends.
fn spawn_pchat() -> SocketAddr {
    let (started, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let vars: HashMap<String, String> = SETTINGS
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            let application = Application::build(Config::from_vars(vars).expect("config"))
                .await
                .expect("application");
            started.send(application.address()).expect("address");
            application.run_until_stopped().await.expect("server");
        });
    });
    address.recv().expect("p-chat started")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fanout_to_pchat_delivers_everything_once_in_order() {
    let address = spawn_pchat();
    let config = FanoutConfig {
        target: Target::PChat,
        url: format!("http://{address}"),
        rooms: 2,
        members: 3,
        rate: 20.0,
        duration: Duration::from_secs(2),
        grace: Duration::from_secs(5),
    };
    let report = fanout::run(&config).await.unwrap();

    common::assert_all_delivered_once(&report, 40 * 3);
}
