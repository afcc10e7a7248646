//! The server on PostgreSQL: secrets at rest, durability across SIGKILL and
//! SIGTERM, and behaviour while the database is away. Skipped (loudly) without a database,
//! failed in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::process::ServerProcess;
use common::proxy::Proxy;
use common::ws::WsClient;
use common::{Backend, SECRET, TestApp, Tokens, assert_holds_no_secret, digest, postgres_vars};
use p_chat_persistence::postgres::testing::TestDatabase;
use serde_json::json;

#[actix_web::test]
async fn the_database_holds_no_password_or_token_in_clear() {
    let Some(app) = Backend::Postgres.spawn(&[]).await else {
        return;
    };
    let verification = app.register("uma@example.com", "secret words").await;
    app.register("vic@example.com", "other words").await; // left unverified
    let verified = Tokens::from(&app.verify(&verification).await);
    let login = Tokens::from(&app.authorize("uma@example.com", "secret words").await);
    let rotated = Tokens::from(&app.refresh(&login.refresh).await);

    let config = app.database().unwrap().config();
    let dump = std::process::Command::new("pg_dump")
        .args([
            "--data-only",
            "-h",
            &config.host,
            "-p",
            &config.port.to_string(),
        ])
        .args(["-U", &config.user, &config.database])
        .output()
        .expect("pg_dump is installed");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8(dump.stdout).unwrap();

    assert!(
        dump.contains("uma@example.com"),
        "the dump holds the data: {dump}"
    );
    assert_eq!(
        dump.matches("$2b$").count(),
        2,
        "one bcrypt hash per user: {dump}"
    );
    assert_holds_no_secret(
        "dump",
        &dump,
        &[
            &digest("secret words"),
            &digest("other words"),
            &verification,
            &verified.access,
            &verified.refresh,
            &login.access,
            &login.refresh,
            &rotated.access,
            &rotated.refresh,
        ],
    );
}

#[actix_web::test]
async fn on_an_empty_database_the_server_creates_its_schema_and_sigkill_loses_nothing() {
    let Some(database) = TestDatabase::create_empty().await else {
        return;
    };
    let vars = server_vars(&database, &[]);
    let vars = as_refs(&vars);

    let first = ServerProcess::start(&vars);
    assert!(
        first.log().contains("schema is up to date"),
        "{}",
        first.log()
    );
    let app = TestApp::connect(&first.base);
    let verification = app.register("wes@example.com", "pw").await;
    assert_eq!(app.verify(&verification).await.status, StatusCode::OK);
    let login = Tokens::from(&app.authorize("wes@example.com", "pw").await);
    let renamed = app
        .send(
            "PATCH",
            "/users/me",
            Some(&login.access),
            Some("application/json"),
            json!({ "display_name": "Wes" }).to_string(),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    drop(first); // SIGKILL: no chance to flush or drain anything

    let second = ServerProcess::start(&vars);
    let app = TestApp::connect(&second.base);
    assert_eq!(
        app.authorize("wes@example.com", "pw").await.status,
        StatusCode::OK
    );
    let me = app.get("/users/me", Some(&login.access)).await;
    assert_eq!(me.data()["display_name"], "Wes");
    assert_eq!(app.refresh(&login.refresh).await.status, StatusCode::OK);
    assert_eq!(
        app.refresh(&login.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    let duplicate = app
        .post(
            "/session/register",
            json!({ "email": "WES@example.com", "password": digest("x") }),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
}

/// The settings of a server process on `database`, with `extra` on top.
fn server_vars(
    database: &TestDatabase,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut vars: Vec<(&str, String)> = postgres_vars(database.config());
    vars.extend([
        ("PORT", "0".to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("JWT_SECRET", SECRET.to_owned()),
    ]);
    vars.extend(extra.iter().map(|(key, value)| (*key, (*value).to_owned())));
    vars
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

/// SIGTERM while four connections have sends in flight: before each closes
/// with 1001 it gets acks (and message events), never an error; every
/// acknowledged message is stored, and the room's seqs stay dense.
#[actix_web::test]
async fn sigterm_with_sends_in_flight_acknowledges_only_stored_messages() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let vars = server_vars(
        &database,
        &[("WS_RATE_BURST", "500"), ("WS_RATE_PER_SECOND", "500")],
    );
    let mut server = ServerProcess::start(&as_refs(&vars));
    let app = TestApp::connect(&server.base);
    let ivy = app.user("ivy@example.com").await;
    let room = app
        .create_room(
            &ivy,
            json!({ "name": "Last words", "visibility": "private" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = WsClient::connect_to(&server.base, Some(&ivy.token), None)
            .await
            .unwrap();
        client.expect_next_type("ready").await;
        clients.push(client);
    }
    for (index, client) in clients.iter_mut().enumerate() {
        for n in 0..50 {
            client
                .send_message_to(&room, "last words", &format!("ivy-{index}-{n}"))
                .await;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let mut acked = BTreeSet::new();
    for client in &mut clients {
        for frame in client
            .expect_close_within(1001, Duration::from_secs(15))
            .await
        {
            match frame["type"].as_str() {
                Some("ack") => {
                    acked.insert(frame["client_msg_id"].as_str().unwrap().to_owned());
                }
                Some("message") => {}
                _ => panic!("before the close: {frame}"),
            }
        }
    }
    let exit = server
        .wait_for_exit(Duration::from_secs(20))
        .expect("exit after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", server.log());
    assert!(!acked.is_empty(), "no send was acknowledged");

    let second = ServerProcess::start(&as_refs(&vars));
    let app = TestApp::connect(&second.base);
    let mut stored = Vec::new();
    loop {
        let after = stored.len();
        let page = app
            .call(
                "GET",
                &format!("/rooms/{room}/messages?after_seq={after}&limit=100"),
                &ivy.token,
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        stored.extend(page.data()["messages"].as_array().unwrap().iter().cloned());
        if page.data()["has_more"] != true {
            break;
        }
    }
    for (index, message) in stored.iter().enumerate() {
        assert_eq!(message["seq"], index + 1, "seqs are dense: {message}");
    }
    let stored: BTreeSet<String> = stored
        .iter()
        .map(|message| message["client_msg_id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn a_database_outage_gives_503s_and_recovers_without_a_restart() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let upstream = format!("{}:{}", database.config().host, database.config().port);
    let upstream = tokio::net::lookup_host(upstream)
        .await
        .unwrap()
        .next()
        .unwrap();
    let mut proxy = Proxy::start(upstream).await;
    let proxied = p_chat_persistence::postgres::PgConfig {
        host: "127.0.0.1".into(),
        port: proxy.port(),
        ..database.config().clone()
    };
    let mut vars: Vec<(&str, String)> = postgres_vars(&proxied);
    vars.push(("PSQL_TIMEOUT_SECONDS", "2".to_owned()));
    let vars: Vec<(&str, &str)> = vars
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    let app = TestApp::spawn_with(&vars).await;

    let tokens = app.logged_in_user("xia@example.com", "pw").await;
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);

    proxy.cut();
    let down = Instant::now();
    assert!(
        within(Duration::from_secs(5), || async {
            app.get("/ready", None).await.status == StatusCode::SERVICE_UNAVAILABLE
        })
        .await,
        "/ready did not turn 503"
    );
    let login = app.authorize("xia@example.com", "pw").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE, "{login:?}");
    assert_eq!(login.error_code(), "service_unavailable");
    let me = app.get("/users/me", Some(&tokens.access)).await;
    assert_eq!(me.status, StatusCode::SERVICE_UNAVAILABLE, "{me:?}");
    assert!(me.headers.contains_key("retry-after"));
    assert!(
        down.elapsed() < Duration::from_secs(10),
        "answers came too slowly"
    );
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);

    proxy.restore().await;
    assert!(
        within(Duration::from_secs(10), || async {
            app.get("/ready", None).await.status == StatusCode::OK
        })
        .await,
        "/ready did not recover"
    );
    assert_eq!(
        app.authorize("xia@example.com", "pw").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/users/me", Some(&tokens.access)).await.status,
        StatusCode::OK
    );
}
