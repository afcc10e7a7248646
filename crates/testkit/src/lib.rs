//! # p-chat test kit
//!
//! Tests that need something from the machine (PostgreSQL, Redis, Chromium,
//! Python tools) report through [`skip`] when it is missing, so that a
//! skipped test never passes for a tested one: under `CI=true` it fails;
//! otherwise it says so where `cargo test` shows it, and the workspace's test
//! runner (`.cargo/test-runner.sh`) repeats every skip in one summary line
//! after the test binary's own result.

use std::fs::OpenOptions;
use std::io::Write;

/// The variable naming the file the test runner collects skips in.
pub const SKIPPED_LOG_VAR: &str = "P_CHAT_SKIPPED_LOG";

/// Reports that the calling test cannot run here because of `reason`
/// (`group` names what it needs, such as `PostgreSQL`), and returns so that
/// the test can end early; under `CI=true`, where every test must run, it
/// panics instead.
///
/// # Panics
/// Under `CI=true`, always: that is the point.
pub fn skip(group: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{group} tests cannot run in CI: {reason}");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    // Straight to the process's stderr, past the test harness's capture
    // (which hides the output of passing tests).
    let _ = writeln!(std::io::stderr(), "SKIPPED ({group}) {test}: {reason}");
    // For the runner's summary: one tab-separated line per skip.
    if let Some(path) = std::env::var_os(SKIPPED_LOG_VAR)
        && let Ok(mut log) = OpenOptions::new().append(true).create(true).open(path)
    {
        let _ = writeln!(
            log,
            "{group}\t{test}\t{}",
            reason.replace(['\t', '\n'], " ")
        );
    }
}
