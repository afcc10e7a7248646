//! The browser client end to end: runs the Playwright suite in `e2e/`
//! (`node --test e2e/`) against this build's server binary, so that
//! `cargo test --workspace` covers the client too.
//!
//! Without Node.js, Chromium or the suite's `node_modules` (`npm ci` in `e2e/`)
//! the test says loudly that it was skipped; under `CI=true` it fails instead.
#![allow(clippy::expect_used)] // test code: a panic is a failure report

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser the suite drives, as Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn the_browser_client_passes_its_end_to_end_suite() {
    let root = workspace_root();
    if let Some(missing) = missing_prerequisite(&root) {
        p_chat_testkit::skip("browser end-to-end", &missing);
        return;
    }
    let output = Command::new("node")
        // One process per test file, side by side: each has its own server.
        .args([
            "--test",
            "--test-concurrency=2",
            "--test-reporter=spec",
            "e2e/",
        ])
        .current_dir(&root)
        .env("P_CHAT_BIN", env!("CARGO_BIN_EXE_p-chat"))
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "the end-to-end suite failed (server logs: target/e2e/*.server.log)\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The workspace root, two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/app sits two levels below the workspace root")
        .to_path_buf()
}

/// What the suite needs and this machine lacks, with how to get it.
fn missing_prerequisite(root: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("Node.js (`node`) is not installed".to_owned());
    }
    if !Path::new(CHROMIUM).is_file() {
        return Some(format!(
            "{CHROMIUM} is missing (apt-get install -y chromium)"
        ));
    }
    if !root.join("e2e/node_modules/playwright-core").is_dir() {
        return Some("e2e/node_modules is missing (cd e2e && npm ci)".to_owned());
    }
    None
}
