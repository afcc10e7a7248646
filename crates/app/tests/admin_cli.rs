//! `p-chat admin ...` through the real binary on PostgreSQL: the way a
//! self-hoster makes the first administrator and manages accounts from the
//! console, seen by a server running on the same database. Skipped (loudly)
//! without a database, failed in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use actix_web::http::StatusCode;
use common::process::ServerProcess;
use common::{SECRET, TestApp, Tokens, postgres_vars};
use p_chat_persistence::postgres::testing::TestDatabase;

/// Runs `p-chat admin <args>` against `vars`, with `stdin` piped in.
fn admin(vars: &[(&str, String)], args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_p-chat"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(key, value)| (*key, value.as_str())))
        .current_dir(std::env::temp_dir())
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run p-chat admin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("p-chat admin output")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[actix_web::test]
async fn the_console_manages_accounts_a_running_server_sees() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let mut vars = postgres_vars(database.config());
    vars.extend([
        ("JWT_SECRET", SECRET.to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
    ]);

    let created = admin(
        &vars,
        &["create-user", "Root@Example.com", "--admin"],
        "first secret\n",
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let line = stdout(&created);
    assert!(line.starts_with("root@example.com "), "{line}");
    assert!(line.trim_end().ends_with(" admin active"), "{line}");
    // The password never appears in what the command prints.
    assert!(!format!("{line}{}", stderr(&created)).contains("first secret"));

    let mut server_vars: Vec<(&str, &str)> = vars
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    server_vars.push(("PORT", "0"));
    let server = ServerProcess::start(&server_vars);
    let app = TestApp::connect(&server.base);

    // A verified administrator at once: no email round trip.
    let login = app.authorize("root@example.com", "first secret").await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    let token = Tokens::from(&login).access;
    let me = app.get("/users/me", Some(&token)).await;
    assert_eq!(me.data()["role"], "admin");
    assert_eq!(
        app.get("/admin/users", Some(&token)).await.status,
        StatusCode::OK
    );

    let member = app.logged_in_user("member@example.com", "pw").await;
    let promoted = admin(&vars, &["make-admin", "member@example.com"], "");
    assert!(
        stdout(&promoted).contains(" admin active"),
        "{}",
        stderr(&promoted)
    );
    assert_eq!(
        app.get("/admin/users", Some(&member.access)).await.status,
        StatusCode::OK
    );
    let demoted = admin(&vars, &["unmake-admin", "member@example.com"], "");
    assert!(
        stdout(&demoted).contains(" member active"),
        "{}",
        stderr(&demoted)
    );
    assert_eq!(
        app.get("/admin/users", Some(&member.access)).await.status,
        StatusCode::FORBIDDEN
    );

    let disabled = admin(&vars, &["disable", "member@example.com"], "");
    assert!(
        stdout(&disabled).contains(" disabled"),
        "{}",
        stderr(&disabled)
    );
    assert_eq!(
        app.get("/users/me", Some(&member.access)).await.status,
        StatusCode::UNAUTHORIZED,
        "the disabled account's sessions ended"
    );
    assert_eq!(
        app.authorize("member@example.com", "pw").await.status,
        StatusCode::UNAUTHORIZED
    );
    let enabled = admin(&vars, &["enable", "member@example.com"], "");
    assert!(
        stdout(&enabled).contains(" member active"),
        "{}",
        stderr(&enabled)
    );
    assert_eq!(
        app.authorize("member@example.com", "pw").await.status,
        StatusCode::OK
    );

    let reset = admin(
        &vars,
        &["reset-password", "member@example.com"],
        "a new one\n",
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert_eq!(
        app.authorize("member@example.com", "pw").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.authorize("member@example.com", "a new one")
            .await
            .status,
        StatusCode::OK
    );

    let listed = admin(&vars, &["list", "EXAMPLE"], "");
    let printed = stdout(&listed);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("member@example.com ") && lines[1].starts_with("root@example.com ")
    );

    // Mistakes are refused with a message and a failing exit status.
    for (args, stdin, expected) in [
        (&["disable", "nobody@example.com"][..], "", "user not found"),
        (
            &["create-user", "root@example.com"][..],
            "pw\n",
            "already exists",
        ),
        (&["create-user", "new@example.com"][..], "", "no password"),
        (&["make-admin", "not an email"][..], "", "email"),
    ] {
        let output = admin(&vars, args, stdin);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn the_console_refuses_the_in_memory_store() {
    let output = admin(&[], &["list"], "");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("PSQL_HOST is not set"),
        "{}",
        stderr(&output)
    );
}

/// With Redis, what the console ends reaches the running servers at once:
/// a disabled user's open WebSocket closes with 4001, long before its
/// access token would expire.
#[actix_web::test]
async fn a_console_disable_closes_open_sockets_on_running_nodes() {
    let Some(cluster) = common::cluster::Cluster::spawn(1, &[]).await else {
        return;
    };
    let node = &cluster.nodes[0];
    let user = node.user("disabled-live@example.com").await;
    let (mut socket, _) = common::ws::WsClient::connect_ready(node, &user.token).await;
    let mut vars = postgres_vars(cluster.database().config());
    vars.extend([
        ("JWT_SECRET", SECRET.to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("REDIS_URL", cluster.redis_url.clone()),
        ("REDIS_PREFIX", cluster.prefix.clone()),
    ]);
    let disabled = admin(&vars, &["disable", "disabled-live@example.com"], "");
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    assert!(
        !stderr(&disabled).contains("warning"),
        "{}",
        stderr(&disabled)
    );
    socket
        .expect_close_within(4001, std::time::Duration::from_secs(2))
        .await;
}
