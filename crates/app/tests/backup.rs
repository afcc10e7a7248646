//! Backup and restore (issue 14), as docs/operations.md#backup-and-restore
//! tells an operator to do it: the `p-chat` binary on a throwaway database
//! is used, then stopped; `pg_dump -Fc > backup.dump` writes the backup;
//! `pg_restore --clean --if-exists ... < backup.dump` loads it into another,
//! empty database, and later once more over that database after it went
//! on; each time the binary started on it serves the same account, room and
//! messages, and the room's numbering goes on without a gap. Both databases
//! are dropped at the end. Skipped (loudly) without a database or pg_dump/pg_restore, failed
//! in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use actix_web::http::StatusCode;
use common::pg_tools::{program, run, skip};
use common::process::ServerProcess;
use common::resume::{as_refs, process_vars};
use common::{TestApp, TestUser};
use p_chat_persistence::postgres::PgConfig;
use p_chat_persistence::postgres::testing::TestDatabase;
use serde_json::{Value, json};

/// The group name skips are reported under.
const GROUP: &str = "PostgreSQL backup";
/// How many messages the room holds before the backup.
const MESSAGES: usize = 5;

/// A backup file, removed on drop.
struct DumpFile(PathBuf);

impl Drop for DumpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `program` pointed at `database` the way libpq programs take it.
fn libpq(program: &Path, database: &PgConfig) -> Command {
    let mut command = Command::new(program);
    command
        .arg("--host")
        .arg(&database.host)
        .arg("--port")
        .arg(database.port.to_string())
        .arg("--username")
        .arg(&database.user);
    if let Some(password) = &database.password {
        command.env("PGPASSWORD", password);
    }
    command
}

/// What the room looks like to `user`: the room and its whole history.
async fn snapshot(app: &TestApp, user: &TestUser, room: &str) -> (Value, Value) {
    let room_reply = app
        .call("GET", &format!("/rooms/{room}"), &user.token, None)
        .await;
    assert_eq!(room_reply.status, StatusCode::OK, "{room_reply:?}");
    let history = app
        .call(
            "GET",
            &format!("/rooms/{room}/messages?limit=100"),
            &user.token,
            None,
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{history:?}");
    (
        room_reply.data().clone(),
        history.data()["messages"].clone(),
    )
}

#[actix_web::test]
async fn a_pg_dump_restored_into_an_empty_database_serves_the_same_chat_and_goes_on() {
    let (Some(pg_dump), Some(pg_restore)) = (program("pg_dump"), program("pg_restore")) else {
        skip::<()>(GROUP, "pg_dump or pg_restore not found");
        return;
    };
    let Some(original) = TestDatabase::create().await else {
        return;
    };
    let Some(restored) = TestDatabase::create_empty().await else {
        return;
    };

    // Used, then stopped.
    let vars = process_vars(original.config(), &[]);
    let server = ServerProcess::start(&as_refs(&vars));
    let app = TestApp::connect(&server.base);
    let user = app.user("backup@example.com").await;
    let room = app
        .create_room(
            &user,
            json!({ "name": "kept", "topic": "survives a restore" }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sent = Vec::new();
    for index in 1..=MESSAGES {
        sent.push(
            app.post_message(&user, &room, &format!("message {index}"))
                .await,
        );
    }
    let edited = app
        .call(
            "PATCH",
            &format!("/rooms/{room}/messages/{}", sent[1]["id"].as_str().unwrap()),
            &user.token,
            Some(json!({ "body": "message 2, edited" })),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{edited:?}");
    let before = snapshot(&app, &user, &room).await;
    drop(server);

    // Backed up as the docs say: `pg_dump -Fc ... > backup.dump`.
    let dump =
        DumpFile(std::env::temp_dir().join(format!("p-chat-backup-{}.dump", uuid::Uuid::new_v4())));
    run(libpq(&pg_dump, original.config())
        .arg("-Fc")
        .arg(&original.config().database)
        .stdout(File::create(&dump.0).unwrap()));

    // Restored into the empty database; the server on it serves the same
    // chat, and the room's numbering goes on.
    restore(&pg_restore, restored.config(), &dump);
    let extra = serve_restored(restored.config(), &user, &room, &before, &sent).await;

    // Restored again over that database, which went on meanwhile (the
    // message after the restore): `--clean --if-exists` puts it back as
    // the backup has it, as when a deployment is rolled back.
    restore(&pg_restore, restored.config(), &dump);
    let again = serve_restored(restored.config(), &user, &room, &before, &sent).await;
    assert_ne!(again["id"], extra["id"], "the later message is gone");
}

/// `pg_restore --clean --if-exists --single-transaction --exit-on-error -d
/// DB < backup.dump`, as the docs say.
fn restore(pg_restore: &Path, database: &PgConfig, dump: &DumpFile) {
    run(libpq(pg_restore, database)
        .args([
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
        ])
        .arg("--dbname")
        .arg(&database.database)
        .stdin(File::open(&dump.0).unwrap()));
}

/// Starts the binary on the restored `database`: no migration is left to
/// run, `user` logs in and finds the room and its history as `before`,
/// and a new message takes the next seq. Returns that message.
async fn serve_restored(
    database: &PgConfig,
    user: &TestUser,
    room: &str,
    before: &(Value, Value),
    sent: &[Value],
) -> Value {
    let vars = process_vars(database, &[]);
    let server = ServerProcess::start(&as_refs(&vars));
    assert!(
        server.log().contains("applied=0"),
        "the restored schema is current:\n{}",
        server.log()
    );
    let app = TestApp::connect(&server.base);
    let login = app.authorize(&user.email, "pw").await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    let user = TestUser {
        token: login.data()["access_token"].as_str().unwrap().to_owned(),
        ..user.clone()
    };
    let after = snapshot(&app, &user, room).await;
    assert_eq!(after.0, before.0, "the room");
    assert_eq!(after.1, before.1, "the messages, with their ids and seqs");
    let seqs: Vec<i64> = after
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=MESSAGES as i64).collect::<Vec<_>>());

    let next = app.post_message(&user, room, "after the restore").await;
    assert_eq!(next["seq"], json!(MESSAGES + 1), "{next}");
    assert!(sent.iter().all(|message| message["id"] != next["id"]));
    let rooms = app.call("GET", "/rooms", &user.token, None).await;
    assert_eq!(
        rooms.data()[0]["last_seq"],
        json!(MESSAGES + 1),
        "{rooms:?}"
    );
    next
}
