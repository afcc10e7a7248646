//! The API description checked from outside: `GET /openapi.json` validates
//! as OpenAPI 3.1 (openapi-spec-validator), and schemathesis fuzzes a
//! running server against it on the in-memory store and on PostgreSQL: no
//! 5xx, every status, content type, header and body as documented.
//! Without the Python tools the tests report that they did not run
//! (`p_chat_testkit::skip`), and fail under `CI=true` (.ci/run installs the
//! tools).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::{Backend, TestApp};
use p_chat_domain::services::{Operator, UserRef};
use p_chat_domain::user::{InstanceRole, UserId};
use serde_json::json;

/// The schemathesis CLI, run by the `python3` the tools were installed for
/// (its script may not be on `PATH`).
const SCHEMATHESIS: &[&str] = &["-m", "schemathesis.cli"];

/// Everything schemathesis checks, but whether every schema-valid input is
/// accepted: the domain's rules (trimmed lengths, one emoji, exactly one of
/// `user_id` and `email`) are refused with 400 and are not all expressible
/// in JSON Schema. Invalid input must still be refused
/// (`negative_data_rejection`).
const CHECKS: &[&str] = &[
    "--checks",
    "all",
    "--exclude-checks",
    "positive_data_acceptance",
];

/// Test cases per operation and phase: enough to find a plain-text
/// extractor error or a 500, small enough for a few minutes in all.
const MAX_EXAMPLES: &str = "20";

/// The slowest answer schemathesis accepts, in seconds.
const MAX_RESPONSE_SECONDS: &str = "5";

/// The wall-clock bound of one schemathesis run: killed past it.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Operations that end the fuzzer's own session (logout, ending the
/// current session from the session list): fuzzed in a run of their own,
/// after everything else, so the token of the main run stays valid.
const SESSION_ENDERS: &[&str] = &["/session/logout", "/users/me/sessions/{id}"];

/// The fuzzer's account (password `pw`).
const FUZZER: &str = "fuzzer@example.com";

/// Writes `line` to the process's stderr, past the test harness's capture,
/// so that `cargo test` shows it for a passing test too.
fn to_stderr(line: &str) {
    let mut stderr = std::io::stderr();
    writeln!(stderr, "{line}").unwrap();
}

/// Whether `program args` runs and succeeds.
fn installed(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The served document, after checking how it is served.
async fn served_document(app: &TestApp) -> String {
    let (status, headers, body) = app.get_text("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    body
}

/// A file in the temporary directory, unique to this test, removed when
/// dropped (a failing test panics past any explicit clean-up).
struct TempFile(PathBuf);

impl TempFile {
    /// An empty file name-suffixed `name`.
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "p-chat-openapi-{}-{name}",
            uuid::Uuid::new_v4().simple()
        )))
    }

    /// A file holding `contents`.
    fn with(name: &str, contents: &str) -> Self {
        let file = Self::new(name);
        std::fs::write(&file.0, contents).unwrap();
        file
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs openapi-spec-validator on `file` as OpenAPI 3.1: its verdict and output.
fn validate(file: &Path) -> (bool, String) {
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(file)
        .output()
        .expect("run openapi-spec-validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[actix_web::test]
async fn the_served_document_validates_as_openapi_3_1() {
    if !installed("python3", &["-c", "import openapi_spec_validator"]) {
        p_chat_testkit::skip(
            "openapi-spec-validator",
            "python3 -m openapi_spec_validator is not installed (pip install openapi-spec-validator)",
        );
        return;
    }
    let app = TestApp::spawn().await;
    let document = served_document(&app).await;
    let (valid, output) = validate(&TempFile::with("openapi.json", &document).0);
    assert!(valid, "the document is not valid OpenAPI 3.1:\n{output}");

    // The validator does refuse a document that is not one.
    let broken = TempFile::with("broken.json", r#"{"openapi": "3.1.0", "paths": {}}"#);
    let (valid, output) = validate(&broken.0);
    assert!(!valid, "a document without info passed: {output}");
}

/// Ids of the data made before fuzzing, so that the fuzzer also sends ids
/// that exist (and the responses about real rooms, messages with replies,
/// mentions and reactions, events and receipts are checked too).
struct Seeds {
    rooms: Vec<String>,
    messages: Vec<String>,
    /// User ids (a room member path also takes `me`).
    users: Vec<String>,
    invites: Vec<String>,
}

/// A second user, a public room both are in with messages (a reply with a
/// mention, a reaction, an edit, a deletion) and read markers, a private
/// room, a direct room and an invitation, made by the fuzzer (`token`).
async fn seed(app: &TestApp, token: &str) -> Seeds {
    let other = app.user("other@example.com").await;
    let me = app.get("/users/me", Some(token)).await.data()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: &'static str,
                path: String,
                token: String,
                body: Option<serde_json::Value>| async move {
        let reply = app.call(method, &path, &token, body).await;
        assert!(reply.status.is_success(), "{method} {path}: {reply:?}");
        reply.data().clone()
    };
    let id = |value: &serde_json::Value| value["id"].as_str().unwrap().to_owned();
    let public = json!({ "name": "fuzzed", "visibility": "public" });
    let public = id(&call("POST", "/rooms".into(), token.into(), Some(public)).await);
    let private = json!({ "name": "private" });
    let private = id(&call("POST", "/rooms".into(), token.into(), Some(private)).await);
    call(
        "PUT",
        format!("/rooms/{public}/members/me"),
        other.token.clone(),
        None,
    )
    .await;
    let messages = format!("/rooms/{public}/messages");
    let first = id(&call(
        "POST",
        messages.clone(),
        token.into(),
        Some(json!({ "body": "hello" })),
    )
    .await);
    let reply = json!({ "body": "@other hi", "reply_to": first, "mentions": [other.id] });
    let second = id(&call("POST", messages.clone(), other.token.clone(), Some(reply)).await);
    let third = id(&call(
        "POST",
        messages.clone(),
        token.into(),
        Some(json!({ "body": "gone" })),
    )
    .await);
    let reaction = format!("/rooms/{public}/messages/{first}/reactions/%F0%9F%91%8D");
    call("PUT", reaction, other.token.clone(), None).await;
    call(
        "PATCH",
        format!("{messages}/{first}"),
        token.into(),
        Some(json!({ "body": "hello!" })),
    )
    .await;
    call("DELETE", format!("{messages}/{third}"), token.into(), None).await;
    call(
        "PUT",
        format!("/rooms/{public}/read"),
        other.token.clone(),
        Some(json!({ "seq": 1 })),
    )
    .await;
    let direct = id(&call(
        "POST",
        "/dms".into(),
        token.into(),
        Some(json!({ "user_id": other.id })),
    )
    .await);
    let invite = id(&call(
        "POST",
        "/admin/invites".into(),
        token.into(),
        Some(json!({})),
    )
    .await);
    Seeds {
        rooms: vec![public, private, direct],
        messages: vec![first, second, third],
        users: vec![me, other.id],
        invites: vec![invite],
    }
}

/// How often the fuzzer sends a seeded id instead of a generated one.
const SEEDED_PROBABILITY: f64 = 0.5;

/// The schemathesis configuration that offers the seeded ids for the path
/// parameters that take them.
fn config(seeds: &Seeds) -> String {
    let list = |values: &[String]| {
        let quoted: Vec<String> = values.iter().map(|value| format!("{value:?}")).collect();
        quoted.join(", ")
    };
    let bind = |dictionary: &str| {
        format!("{{ dictionary = {dictionary:?}, probability = {SEEDED_PROBABILITY} }}")
    };
    format!(
        r#"# Each run starts afresh: no crash files kept in the source tree.
[cache]
enabled = false

[dictionaries.rooms]
values = [{rooms}]
[dictionaries.messages]
values = [{messages}]
[dictionaries.users]
values = [{users}]
[dictionaries.members]
values = [{users}, "me"]
[dictionaries.invites]
values = [{invites}]
[dictionaries.emoji]
values = ["👍", "🎉"]

[[operations]]
include-path-regex = '^/rooms/'
parameters = {{ "path.id" = {room}, "path.message_id" = {message}, "path.user" = {member}, "path.emoji" = {emoji} }}

[[operations]]
include-path-regex = '^/(users|admin/users)/'
parameters = {{ "path.id" = {user} }}

[[operations]]
include-path-regex = '^/admin/invites/'
parameters = {{ "path.id" = {invite} }}
"#,
        rooms = list(&seeds.rooms),
        messages = list(&seeds.messages),
        users = list(&seeds.users),
        invites = list(&seeds.invites),
        room = bind("rooms"),
        message = bind("messages"),
        user = bind("users"),
        member = bind("members"),
        emoji = bind("emoji"),
        invite = bind("invites"),
    )
}

/// One schemathesis run against `base` as `token`, configured by the file
/// `config`, with `filters`; panics with its report on any failure, and
/// prints its summary.
async fn fuzz_run(label: &str, base: &str, token: &str, config: &Path, filters: &[&str]) {
    let log = TempFile::new("schemathesis.log");
    let mut command = Command::new("python3");
    command
        .args(SCHEMATHESIS)
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(CHECKS)
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--max-response-time", MAX_RESPONSE_SECONDS])
        .args(["--request-timeout", "10", "--no-shrink"])
        .args(filters)
        .env("NO_COLOR", "1")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log.0).unwrap())
        .stderr(Stdio::null());
    // The server answers on this test's runtime: wait off it.
    let (status, elapsed) = actix_web::rt::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = command.spawn().expect("start schemathesis");
        loop {
            if let Some(status) = child.try_wait().expect("wait for schemathesis") {
                return (Some(status), started.elapsed());
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let report = std::fs::read_to_string(&log.0).unwrap_or_default();
    let summary = summary(&report);
    to_stderr(&format!(
        "schemathesis ({label}, {elapsed:.0?}, checks: {}): {summary}",
        CHECKS.join(" ")
    ));
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("schemathesis ({label}) found problems ({status}):\n{report}"),
        None => panic!("schemathesis ({label}) ran past {RUN_TIMEOUT:?}:\n{report}"),
    }
    assert!(
        !summary.contains("Tested: 0"),
        "schemathesis ({label}) tested nothing:\n{report}"
    );
}

/// The summary lines of a schemathesis report: operations tested, test
/// cases and their outcome, failures by kind, the seed to replay them.
fn summary(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let mut picked = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.starts_with("Tested:") || line.starts_with("Seed:") || line.starts_with('❌') {
            picked.push((*line).to_owned());
        }
        if *line == "Test cases:"
            && let Some(next) = lines.get(index + 1)
        {
            picked.push(format!("test cases: {next}"));
        }
    }
    picked.join("; ")
}

/// The fuzzer's account: registered, verified with the token the register
/// answer carries (no SMTP here) and logged in over the API, then made an
/// instance administrator on the console side (so `/admin/*` is fuzzed past
/// its 403) and logged in again. Returns the access token.
async fn fuzzer_account(app: &TestApp) -> String {
    let user = app.user(FUZZER).await;
    app.state()
        .admin
        .set_role(
            Operator::Console,
            &UserRef::Id(UserId::from_uuid(user.id.parse().unwrap())),
            InstanceRole::Admin,
        )
        .await
        .unwrap();
    login(app).await
}

/// A new login session of the fuzzer's account: its access token.
async fn login(app: &TestApp) -> String {
    let reply = app.authorize(FUZZER, "pw").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.data()["access_token"].as_str().unwrap().to_owned()
}

/// Fuzzes every described operation on `backend` as an instance
/// administrator, then the operations that end the session as a second
/// login of the same account.
async fn schemathesis_finds_nothing(backend: Backend) {
    if !installed("python3", &[SCHEMATHESIS, &["--version"]].concat()) {
        p_chat_testkit::skip(
            "schemathesis",
            "the schemathesis CLI is not installed (pip install schemathesis)",
        );
        return;
    }
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let token = fuzzer_account(&app).await;
    let seeds = seed(&app, &token).await;
    let config = TempFile::with("schemathesis.toml", &config(&seeds));
    let label = format!("{backend:?}");
    let mut excluded = Vec::new();
    for path in SESSION_ENDERS {
        excluded.extend(["--exclude-path", path]);
    }
    fuzz_run(&label, app.base(), &token, &config.0, &excluded).await;

    let token = login(&app).await;
    let mut included = Vec::new();
    for path in SESSION_ENDERS {
        included.extend(["--include-path", path]);
    }
    fuzz_run(
        &format!("{label}, session enders"),
        app.base(),
        &token,
        &config.0,
        &included,
    )
    .await;
}

on_both_stores!(schemathesis_finds_nothing);
