//! Resuming across a crash (issue 11): the `p-chat` binary on PostgreSQL is
//! SIGKILLed and started again on the same database while a client is away;
//! the client reconnects to the new process and replays exactly what it
//! missed, changes from before and after the crash alike. Skipped (loudly)
//! without a database, failed in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use common::TestApp;
use common::process::ServerProcess;
use common::resume::{self, a_comes_back, a_goes_away, as_refs, process_vars};
use p_chat_persistence::postgres::testing::TestDatabase;

/// A goes away; B edits, deletes, sends and renames; the server is killed
/// (no chance to flush anything) and started again; B changes the
/// membership on the new process (whose positions go on from the old
/// ones'); A comes back to the new process and resumes over the WebSocket
/// and REST.
#[actix_web::test]
async fn a_client_resumes_from_its_position_after_a_sigkill_and_restart() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let vars = process_vars(database.config(), &[]);
    let first = ServerProcess::start(&as_refs(&vars));
    let app = TestApp::connect(&first.base);
    let cast = resume::cast(&app, "restart").await;
    let remembered = a_goes_away(&app, &cast).await;
    let mut expected = resume::message_and_room_changes(&app, &cast).await;
    let before_crash = resume::last_pos(&app, &cast.b, &cast.room).await;
    drop(first); // SIGKILL

    let second = ServerProcess::start(&as_refs(&vars));
    let app = TestApp::connect(&second.base);
    assert_eq!(
        resume::last_pos(&app, &cast.b, &cast.room).await,
        before_crash,
        "the log survives the crash as it was"
    );
    expected.extend(resume::membership_changes(&app, &cast).await);
    a_comes_back(&app, &cast, &remembered, &expected).await;
}
