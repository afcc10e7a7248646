#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! `GET /metrics` on `METRICS_ADDRESS` (docs/operations.md#metrics): after a
//! scripted session every counter has moved by exactly what the session did,
//! on both stores; no label holds an id, an email or a room name; the
//! listener answers `GET /metrics` only, refuses a public address unless
//! told, and stops with the server.
//!
//! The recorder is global to the process: the in-process sessions run one
//! after the other in ONE test function, and measure differences between
//! scrapes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use actix_web::http::StatusCode;
use awc::ws::Message;
use common::process::ServerProcess;
use common::ws::WsClient;
use common::{Backend, TestApp};
use p_chat::config::{Config, ConfigError};
use p_chat::metrics as app;
use p_chat_auth::BCRYPT_SECONDS;
use p_chat_fanout::metrics::{QUEUED_DELIVERIES, REDIS_CONNECTS, REDIS_UP};
use p_chat_fanout::testing::{RedisServer, unique_prefix};
use p_chat_persistence::metrics as store;
use serde_json::{Value, json};

/// How long a node may take to see Redis go or come back (link checks
/// every half second, each bounded by a 2-second timeout).
const REDIS_OUTAGE: Duration = Duration::from_secs(15);

/// How long the counters may take to settle after the session (a closed
/// socket's task ends a moment after its close frame is read).
const SETTLE: Duration = Duration::from_secs(5);

/// A free port on the loopback interface, for `METRICS_ADDRESS`.
fn free_loopback_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// One scrape, parsed: each sample by its name and its labels.
#[derive(Debug, Clone)]
struct Scrape {
    text: String,
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut samples = HashMap::new();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
            samples.insert((name.to_owned(), labels), value);
        }
        Self { text, samples }
    }

    /// The sample `name` with exactly `labels`, if present.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// Like [`Scrape::find`], absent counting as 0.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or(0.0)
    }
}

/// `GET http://address/metrics`, asserting the 200 and its content type.
async fn scrape(address: SocketAddr) -> Scrape {
    let mut response = awc::Client::default()
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        app::endpoint::CONTENT_TYPE
    );
    let body = response.body().limit(8 << 20).await.unwrap();
    Scrape::parse(String::from_utf8(body.to_vec()).unwrap())
}

/// What one expectation compares: a series and the amount it must have
/// moved by.
struct Moved {
    name: String,
    labels: Vec<(&'static str, String)>,
    by: f64,
}

fn moved(name: &str, labels: &[(&'static str, &str)], by: f64) -> Moved {
    Moved {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(key, value)| (*key, (*value).to_owned()))
            .collect(),
        by,
    }
}

/// The expectations that do not hold yet between `before` and `after`.
fn unmet(before: &Scrape, after: &Scrape, expected: &[Moved]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|want| {
            let labels: Vec<(&str, &str)> = want
                .labels
                .iter()
                .map(|(key, value)| (*key, value.as_str()))
                .collect();
            let delta = after.get(&want.name, &labels) - before.get(&want.name, &labels);
            ((delta - want.by).abs() > 1e-9).then(|| {
                format!(
                    "{}{labels:?} moved by {delta}, expected {}",
                    want.name, want.by
                )
            })
        })
        .collect()
}

/// Scrapes until every expectation holds (within [`SETTLE`]), then asserts
/// them all exactly; returns the last scrape.
async fn assert_moved(address: SocketAddr, before: &Scrape, expected: &[Moved]) -> Scrape {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let after = scrape(address).await;
        let unmet = unmet(before, &after, expected);
        if unmet.is_empty() {
            return after;
        }
        if std::time::Instant::now() > deadline {
            panic!("after the session:\n{}\n\n{}", unmet.join("\n"), after.text);
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails if any token of the scrape is a UUID, or any of `secrets` appears.
fn assert_no_identifiers(scrape: &Scrape, secrets: &[&str]) {
    for token in scrape
        .text
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .filter(|token| token.len() >= 32)
    {
        assert!(
            uuid::Uuid::parse_str(token).is_err(),
            "a label holds an id: {token}\n{}",
            scrape.text
        );
    }
    for secret in secrets {
        assert!(
            !scrape.text.contains(secret),
            "the scrape holds {secret:?}\n{}",
            scrape.text
        );
    }
}

/// `method route status` moved by `by` in the request counter.
fn requests(method: &'static str, route: &'static str, status: &'static str, by: f64) -> Moved {
    moved(
        app::HTTP_REQUESTS,
        &[
            (app::METHOD, method),
            (app::ROUTE, route),
            (app::STATUS, status),
        ],
        by,
    )
}

/// The scripted session on `backend`: returns `false` when the store is
/// not available here (PostgreSQL outside CI; reported by the helper).
async fn scripted_session(backend: Backend) -> bool {
    let metrics = free_loopback_address();
    let metrics_var = metrics.to_string();
    let Some(app) = backend
        .spawn(&[("METRICS_ADDRESS", metrics_var.as_str())])
        .await
    else {
        return false;
    };
    let before = scrape(metrics).await;

    let email = format!("metrics-{backend:?}@example.com").to_lowercase();
    let room_name = format!("Metrics room {backend:?}");
    let user = app.user(&email).await;
    let room = app
        .create_room(&user, json!({ "name": room_name, "visibility": "private" }))
        .await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let (mut socket, _ready) = WsClient::connect_ready(&app, &user.token).await;
    let open = scrape(metrics).await;
    assert_eq!(
        open.get(app::WS_CONNECTIONS, &[]) - before.get(app::WS_CONNECTIONS, &[]),
        1.0,
        "one socket open"
    );

    for index in 0..5 {
        let reply = app
            .call(
                "POST",
                &format!("/rooms/{room_id}/messages"),
                &user.token,
                Some(json!({ "body": format!("over REST {index}") })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        socket.expect_next_type("message").await;
    }
    for index in 0..5 {
        socket
            .send_message_to(
                &room_id,
                &format!("over the socket {index}"),
                &format!("m-{index}"),
            )
            .await;
        let frames = [socket.next_json().await, socket.next_json().await];
        let mut kinds: Vec<&str> = frames
            .iter()
            .map(|frame| frame["type"].as_str().unwrap())
            .collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["ack", "message"], "{frames:?}");
    }
    assert!(socket.ping_pong().await.is_empty());
    socket.close().await;

    // A socket that authenticates with a bad token: 4001.
    let mut refused = WsClient::connect(&app, None, None).await.unwrap();
    refused.send_auth("not-a-token").await;
    refused.expect_close(4001).await;
    // A frame over 64 KiB: 1009 at its header.
    let mut oversized = WsClient::connect(&app, None, None).await.unwrap();
    let _ = oversized
        .try_send(Message::Text("x".repeat(70 * 1024).into()))
        .await;
    oversized.expect_close(1009).await;

    // Unmatched paths and ids are never labels.
    let stranger = uuid::Uuid::new_v4();
    let unmatched = app.get(&format!("/no/such/{stranger}"), None).await;
    assert_eq!(unmatched.status, StatusCode::NOT_FOUND);
    let absent = app
        .call("GET", &format!("/rooms/{stranger}"), &user.token, None)
        .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);

    let mut expected = vec![
        requests("POST", "/session/register", "200", 1.0),
        requests("GET", "/session/emailVerify", "200", 1.0),
        requests("POST", "/session/authorize", "200", 1.0),
        requests("GET", "/users/me", "200", 1.0),
        requests("POST", "/rooms", "201", 1.0),
        requests("POST", "/rooms/{id}/messages", "201", 5.0),
        requests("GET", "/ws", "101", 3.0),
        requests("GET", "/rooms/{id}", "404", 1.0),
        requests("GET", app::UNMATCHED, "404", 1.0),
        moved(
            &format!("{}_count", app::HTTP_REQUEST_SECONDS),
            &[(app::METHOD, "POST"), (app::ROUTE, "/rooms/{id}/messages")],
            5.0,
        ),
        moved(store::MESSAGES_STORED, &[], 10.0),
        moved(app::WS_CONNECTIONS, &[], 0.0),
        moved(QUEUED_DELIVERIES, &[], 0.0),
        moved(app::WS_FRAMES_RECEIVED, &[(app::TYPE, "send")], 5.0),
        moved(app::WS_FRAMES_RECEIVED, &[(app::TYPE, "ping")], 1.0),
        moved(app::WS_FRAMES_RECEIVED, &[(app::TYPE, "auth")], 1.0),
        moved(
            app::WS_FRAMES_RECEIVED,
            &[(app::TYPE, app::FrameIn::Invalid.as_str())],
            0.0,
        ),
        moved(app::WS_FRAMES_SENT, &[(app::TYPE, "ready")], 1.0),
        moved(app::WS_FRAMES_SENT, &[(app::TYPE, "ack")], 5.0),
        moved(app::WS_FRAMES_SENT, &[(app::TYPE, "event")], 10.0),
        moved(app::WS_FRAMES_SENT, &[(app::TYPE, "pong")], 1.0),
        moved(app::WS_FRAMES_SENT, &[(app::TYPE, "error")], 0.0),
        moved(app::WS_DELIVERIES, &[], 10.0),
        moved(
            app::WS_CLOSES,
            &[(app::CODE, "1000"), (app::CAUSE, "client_closed")],
            1.0,
        ),
        moved(
            app::WS_CLOSES,
            &[(app::CODE, "4001"), (app::CAUSE, "auth_failed")],
            1.0,
        ),
        moved(
            app::WS_CLOSES,
            &[(app::CODE, "1009"), (app::CAUSE, "frame_too_large")],
            1.0,
        ),
        moved(
            &format!("{BCRYPT_SECONDS}_count"),
            &[(p_chat_auth::OPERATION, "hash")],
            1.0,
        ),
        moved(
            &format!("{BCRYPT_SECONDS}_count"),
            &[(p_chat_auth::OPERATION, "verify")],
            1.0,
        ),
    ];
    if matches!(backend, Backend::Postgres) {
        // Sent one after the other: ten transactions of one message each.
        let batches = format!("{}_count", store::GROUP_COMMIT_BATCH);
        let batched = format!("{}_sum", store::GROUP_COMMIT_BATCH);
        expected.push(moved(&batches, &[], 10.0));
        expected.push(moved(&batched, &[], 10.0));
    }
    let after = assert_moved(metrics, &before, &expected).await;

    let ok = [(store::OUTCOME, "ok")];
    let queries = format!("{}_count", store::DB_QUERY_SECONDS);
    let waits = format!("{}_count", store::DB_POOL_WAIT_SECONDS);
    match backend {
        Backend::Postgres => {
            assert!(after.get(&queries, &ok) > before.get(&queries, &ok));
            assert!(after.get(&waits, &[]) > before.get(&waits, &[]));
            assert_eq!(after.find(store::DB_POOL_MAX_CONNECTIONS, &[]), Some(16.0));
            assert!(after.get(store::DB_POOL_CONNECTIONS, &[]) >= 1.0);
            assert_eq!(after.find(store::DB_POOL_WAITING, &[]), Some(0.0));
            assert!(after.find(store::DB_POOL_IDLE_CONNECTIONS, &[]).is_some());
        }
        Backend::Memory => {
            assert_eq!(after.find(&queries, &ok), before.find(&queries, &ok));
        }
    }
    for histogram in [
        app::HTTP_REQUEST_SECONDS,
        BCRYPT_SECONDS,
        store::GROUP_COMMIT_BATCH,
    ] {
        assert!(
            !after.text.contains(&format!("{histogram}{{quantile"))
                && !after.text.contains(&format!("# TYPE {histogram} summary")),
            "{histogram} has buckets"
        );
    }
    assert!(after.text.contains(&format!(
        "{}_bucket{{method=\"POST\",route=\"/rooms/{{id}}/messages\",le=\"0.001\"}}",
        app::HTTP_REQUEST_SECONDS
    )));
    assert!(
        after.text.contains(&format!(
            "# HELP {} Messages stored",
            store::MESSAGES_STORED
        )),
        "metrics are described"
    );
    assert_no_identifiers(
        &after,
        &[&email, "example.com", &room_name, "Metrics room", "no/such"],
    );
    true
}

/// Scrapes until `holds` is true of a scrape, within `limit`.
async fn wait_for(
    address: SocketAddr,
    what: &str,
    limit: Duration,
    holds: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let now = scrape(address).await;
        if holds(&now) {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {limit:?}:\n{}",
            now.text
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With `REDIS_URL`, the Redis gauge follows the link: 1 once subscribed,
/// 0 while Redis is down, 1 again after the reconnect, which is counted.
/// Returns `false` when PostgreSQL or `redis-server` is not available here.
async fn redis_health() -> bool {
    let Some(mut redis) = RedisServer::start() else {
        return false;
    };
    let metrics = free_loopback_address();
    let (metrics_var, redis_url) = (metrics.to_string(), redis.url());
    let prefix = unique_prefix();
    let Some(_app) = Backend::Postgres
        .spawn(&[
            ("METRICS_ADDRESS", metrics_var.as_str()),
            ("REDIS_URL", redis_url.as_str()),
            ("REDIS_PREFIX", prefix.as_str()),
        ])
        .await
    else {
        return false;
    };
    let up = |value: f64| move |scrape: &Scrape| scrape.find(REDIS_UP, &[]) == Some(value);
    let first = wait_for(metrics, "Redis up", SETTLE, up(1.0)).await;
    let connects = first.get(REDIS_CONNECTS, &[]);
    assert!(connects >= 1.0);
    redis.stop();
    wait_for(metrics, "Redis down", REDIS_OUTAGE, up(0.0)).await;
    redis.start_again().expect("redis-server restarts");
    let again = wait_for(metrics, "Redis up again", REDIS_OUTAGE, up(1.0)).await;
    assert_eq!(again.get(REDIS_CONNECTS, &[]), connects + 1.0);
    true
}

/// Everything the in-process servers record, on both stores in turn (the
/// second server shares the process's one recorder with the first), then
/// what the listener refuses: one test, as they share the recorder.
#[actix_web::test]
async fn a_scripted_session_moves_each_counter_by_exactly_what_it_did() {
    assert!(scripted_session(Backend::Memory).await);
    // Without PostgreSQL or redis-server, these report their skip
    // (p_chat_testkit::skip) and return false.
    scripted_session(Backend::Postgres).await;
    redis_health().await;
    the_listener_answers_get_metrics_only().await;
}

/// `GET /metrics` only: other methods are 405, other paths 404; the
/// listener serves no API route.
async fn the_listener_answers_get_metrics_only() {
    let metrics = free_loopback_address();
    let app = TestApp::spawn_with(&[("METRICS_ADDRESS", metrics.to_string().as_str())]).await;
    let client = awc::Client::default();
    let url = |path: &str| format!("http://{metrics}{path}");
    for method in ["POST", "PUT", "DELETE", "HEAD", "PATCH"] {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client
            .request(method.clone(), url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers().get("allow").unwrap(), "GET");
    }
    for path in [
        "/",
        "/metrics/",
        "/metrics/x",
        "/health",
        "/session/register",
    ] {
        let response = client.get(url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The API does not serve them either.
    let (status, _, _) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A non-loopback `METRICS_ADDRESS` stops start-up, naming the variable,
/// unless `METRICS_PUBLIC=true`.
#[test]
fn a_public_metrics_address_needs_the_opt_in() {
    let load = |pairs: &[(&str, &str)]| {
        Config::from_vars(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    };
    let error = load(&[("METRICS_ADDRESS", "0.0.0.0:9464")]).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                var: "METRICS_ADDRESS",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("METRICS_PUBLIC=true"), "{error}");
    let config = load(&[
        ("METRICS_ADDRESS", "0.0.0.0:9464"),
        ("METRICS_PUBLIC", "true"),
    ])
    .unwrap();
    assert_eq!(
        config.metrics.unwrap().address,
        "0.0.0.0:9464".parse().unwrap()
    );
}

/// The binary refuses a public address at start-up, and its metrics
/// listener stops with the server on SIGTERM.
#[test]
fn the_binary_refuses_a_public_address_and_stops_its_listener_on_sigterm() {
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_p-chat"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("METRICS_ADDRESS", "0.0.0.0:0")
        .env("PORT", "0")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(log.contains("METRICS_ADDRESS"), "{log}");

    let metrics = free_loopback_address();
    let metrics_var = metrics.to_string();
    let mut server = ServerProcess::start(&[
        ("PORT", "0"),
        ("BCRYPT_COST", "4"),
        ("METRICS_ADDRESS", metrics_var.as_str()),
    ]);
    // The socket accepts as soon as it is bound, a moment before the line
    // that announces it reaches the captured log: wait for both.
    let announced = format!("metrics on http://{metrics}/metrics");
    let deadline = std::time::Instant::now() + SETTLE;
    while TcpStream::connect(metrics).is_err() || !server.log().contains(&announced) {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait_for_exit(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|exit| exit.success()),
        "{exit:?}\n{}",
        server.log()
    );
    assert!(
        TcpStream::connect(metrics).is_err(),
        "the listener outlived the server"
    );
}

/// The dashboard in docs/ is JSON Grafana can import: panels on a
/// Prometheus datasource variable, querying only metrics that exist.
#[test]
fn the_grafana_dashboard_is_importable_json() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/p-chat-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(dashboard["title"].is_string());
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|variable| variable["type"] == "datasource" && variable["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 12, "{} panels", panels.len());
    let known = [
        app::HTTP_REQUESTS,
        app::HTTP_REQUEST_SECONDS,
        app::WS_CONNECTIONS,
        app::WS_FRAMES_RECEIVED,
        app::WS_FRAMES_SENT,
        app::WS_DELIVERIES,
        app::WS_CLOSES,
        store::MESSAGES_STORED,
        store::DB_POOL_CONNECTIONS,
        store::DB_POOL_MAX_CONNECTIONS,
        store::DB_POOL_IDLE_CONNECTIONS,
        store::DB_POOL_WAITING,
        store::DB_POOL_WAIT_SECONDS,
        store::DB_QUERY_SECONDS,
        store::GROUP_COMMIT_BATCH,
        BCRYPT_SECONDS,
        QUEUED_DELIVERIES,
        p_chat_fanout::metrics::REDIS_UP,
        p_chat_fanout::metrics::REDIS_CONNECTS,
        p_chat_fanout::metrics::REDIS_PUBLISH_FAILURES,
    ];
    let mut used = std::collections::BTreeSet::new();
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("p_chat_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(known.contains(&base), "{expr}: unknown metric {name}");
                used.insert(base);
            }
        }
    }
    assert_eq!(
        used.len(),
        known.len(),
        "every metric has a panel: {used:?}"
    );
}
