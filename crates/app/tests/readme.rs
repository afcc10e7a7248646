//! The README's curl walkthrough, run exactly as printed against a fresh
//! server: a walkthrough that cannot be pasted is a bug.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::path::Path;
use std::process::Command;

use common::process::ServerProcess;

/// The heading the walkthrough sits under.
const HEADING: &str = "### With curl";

/// The first `sh` code block after [`HEADING`] in the README.
fn walkthrough() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(readme).unwrap();
    let (_, section) = readme.split_once(HEADING).expect("the curl walkthrough");
    let (_, block) = section.split_once("```sh\n").expect("its sh block");
    let (script, _) = block.split_once("\n```").expect("the block's end");
    script.to_owned()
}

/// What the walkthrough needs and this machine lacks.
fn missing_tool() -> Option<String> {
    ["curl", "jq", "sha256sum"].into_iter().find_map(|tool| {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success());
        (!found).then(|| format!("`{tool}` is not installed"))
    })
}

#[test]
fn the_curl_walkthrough_runs_as_printed() {
    if let Some(missing) = missing_tool() {
        p_chat_testkit::skip("README walkthrough", &missing);
        return;
    }
    let server = ServerProcess::start(&[("PORT", "0"), ("BCRYPT_COST", "4")]);
    let output = Command::new("bash")
        // Stop at the first command that fails, as a reader would.
        .args(["-e", "-u", "-o", "pipefail", "-c", &walkthrough()])
        .env("P_CHAT", &server.base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    // What it prints on the way: the new name, the message's seq, the history.
    for printed in ["\"Ada L.\"", "\n1\n", "\"hello\""] {
        assert!(
            stdout.contains(printed),
            "{printed:?} missing from:\n{stdout}"
        );
    }
    assert!(stderr.is_empty(), "{stderr}");
}
