//! TLS to PostgreSQL (issue 14): a private cluster with `ssl=on`, serving a
//! certificate for localhost/127.0.0.1 from a CA made by the test, reached
//! with each `PSQL_SSLMODE`: in process (the migrations' connection and the
//! pool's), and through the `p-chat` binary (the server and the admin CLI).
//! Skipped (loudly) without initdb or runuser, failed in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::TestApp;
use common::pg_tools::{ServerIdentity, TlsCluster};
use common::process::ServerProcess;
use common::resume::{as_refs, process_vars};
use p_chat_persistence::postgres::testing::session_tls_and_jit;
use p_chat_persistence::postgres::{PgConfig, PgRoots, PgStore, PgTls, run_migrations};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// How long a refused start may take at most: the TLS handshake fails at
/// once, far within the connection timeout.
const REFUSAL_LIMIT: Duration = Duration::from_secs(15);

/// How long the cluster may take to apply a configuration reload.
const RELOAD_LIMIT: Duration = Duration::from_secs(10);

/// A certificate authority made for one test.
type Authority = CertifiedIssuer<'static, KeyPair>;

fn authority(name: &str) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate from `ca` for localhost and 127.0.0.1 (not 127.0.0.2,
/// where the cluster listens too: the host-name check has a wrong name to
/// refuse).
fn server_identity(ca: &Authority) -> ServerIdentity {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, ca).unwrap();
    ServerIdentity {
        certificate: certificate.pem(),
        key: key.serialize_pem(),
    }
}

/// A PEM file of a CA certificate, removed on drop.
struct RootFile(PathBuf);

impl RootFile {
    fn new(ca: &Authority) -> Self {
        let path = std::env::temp_dir().join(format!("p-chat-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, ca.pem()).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn verify_full(&self) -> PgTls {
        PgTls::VerifyFull(PgRoots::from_pem_file(&self.0).unwrap())
    }
}

impl Drop for RootFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The cluster's maintenance database as the trusted `postgres` role.
fn config(cluster: &TlsCluster, host: &str, tls: PgTls) -> PgConfig {
    PgConfig {
        host: host.to_owned(),
        port: cluster.port,
        user: "postgres".to_owned(),
        password: None,
        database: "postgres".to_owned(),
        pool_size: 2,
        timeout: Duration::from_secs(10),
        tls,
    }
}

/// The migrations and the pool both connect with `config`, and the
/// server sees their connection encrypted or not as `encrypted` says, with
/// the connection string's options (`jit=off`) applied.
async fn assert_connects(cluster: &TlsCluster, config: &PgConfig, encrypted: bool) {
    let mode = config.tls.mode();
    if let Err(error) = run_migrations(config).await {
        panic!("migrations with {mode}: {error}\n{}", cluster.log());
    }
    let store = PgStore::new(config).unwrap();
    store.ping().await.unwrap();
    let session = session_tls_and_jit(&store).await.unwrap();
    assert_eq!(session, (encrypted, "off".to_owned()), "{mode}");
}

/// Both connection paths are refused with `config`; returns the message.
async fn refusal(config: &PgConfig) -> String {
    let migrations = run_migrations(config).await.unwrap_err().to_string();
    let pool = PgStore::new(config).unwrap().ping().await.unwrap_err();
    let pool = pool.to_string();
    assert!(
        pool.contains("PostgreSQL TLS"),
        "the pool's error is as specific: {pool}"
    );
    migrations
}

#[actix_web::test]
async fn each_sslmode_connects_as_it_says_and_verify_full_checks_the_chain_and_the_name() {
    let ca = authority("p-chat test CA");
    let Some(cluster) = TlsCluster::start(&server_identity(&ca)) else {
        return;
    };
    let right = RootFile::new(&ca);
    let wrong = RootFile::new(&authority("another CA"));

    assert_connects(
        &cluster,
        &config(&cluster, "127.0.0.1", PgTls::Require),
        true,
    )
    .await;
    assert_connects(
        &cluster,
        &config(&cluster, "127.0.0.1", right.verify_full()),
        true,
    )
    .await;
    assert_connects(
        &cluster,
        &config(&cluster, "localhost", right.verify_full()),
        true,
    )
    .await;
    // `disable` stays plain TCP: the cluster allows it (`host`, not
    // `hostssl`), so nothing changes for deployments that do not opt in.
    assert_connects(
        &cluster,
        &config(&cluster, "127.0.0.1", PgTls::Disable),
        false,
    )
    .await;

    let untrusted = refusal(&config(&cluster, "127.0.0.1", wrong.verify_full())).await;
    let expected = format!(
        "certificate not trusted by PSQL_SSLROOTCERT={}",
        wrong.path()
    );
    assert!(untrusted.contains(&expected), "{untrusted}");
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");

    let misnamed = refusal(&config(&cluster, "127.0.0.2", right.verify_full())).await;
    assert!(
        misnamed.contains("certificate is not valid for PSQL_HOST"),
        "{misnamed}"
    );
    // `require` does not check the name (nor the chain), as libpq's does not.
    assert_connects(
        &cluster,
        &config(&cluster, "127.0.0.2", PgTls::Require),
        true,
    )
    .await;

    // A server without TLS is refused, never used in plain TCP.
    cluster.sql("ALTER SYSTEM SET ssl = off");
    cluster.sql("SELECT pg_reload_conf()");
    let reloaded = Instant::now();
    while cluster.sql("SHOW ssl") != "off" {
        assert!(reloaded.elapsed() < RELOAD_LIMIT, "ssl stays on");
        std::thread::sleep(Duration::from_millis(50));
    }
    for tls in [PgTls::Require, right.verify_full()] {
        let plain = refusal(&config(&cluster, "127.0.0.1", tls)).await;
        assert!(plain.contains("server does not support TLS"), "{plain}");
    }
    assert_connects(
        &cluster,
        &config(&cluster, "127.0.0.1", PgTls::Disable),
        false,
    )
    .await;
}

/// Runs the binary with `args` and `vars` until it exits (killed after
/// [`REFUSAL_LIMIT`]), returning its status, its log and how long it took.
fn run_to_exit(args: &[&str], vars: &[(&str, &str)]) -> (Option<ExitStatus>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_p-chat"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    while started.elapsed() < REFUSAL_LIMIT {
        if let Some(exited) = child.try_wait().unwrap() {
            status = Some(exited);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    (
        status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[actix_web::test]
async fn the_binary_serves_over_verify_full_and_refuses_to_start_on_an_untrusted_certificate() {
    let ca = authority("p-chat test CA");
    let Some(cluster) = TlsCluster::start(&server_identity(&ca)) else {
        return;
    };
    let right = RootFile::new(&ca);
    let wrong = RootFile::new(&authority("another CA"));
    let database = config(&cluster, "localhost", PgTls::Disable);
    let vars = |root: &RootFile| {
        process_vars(
            &database,
            &[
                ("PSQL_SSLMODE", "verify-full"),
                ("PSQL_SSLROOTCERT", root.path()),
            ],
        )
    };

    let trusted = vars(&right);
    let server = ServerProcess::start(&as_refs(&trusted));
    let app = TestApp::connect(&server.base);
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);
    app.logged_in_user("tls@example.com", "pw").await;
    assert!(server.log().contains("verify-full"), "{}", server.log());
    drop(server);

    let untrusted = vars(&wrong);
    let expected = format!(
        "PostgreSQL TLS: certificate not trusted by PSQL_SSLROOTCERT={}",
        wrong.path()
    );
    for args in [&[][..], &["admin", "list"][..]] {
        let (status, log, took) = run_to_exit(args, &as_refs(&untrusted));
        let status =
            status.unwrap_or_else(|| panic!("p-chat {args:?} still ran after {took:?}:\n{log}"));
        assert!(!status.success(), "p-chat {args:?} exited {status}:\n{log}");
        assert!(log.contains(&expected), "p-chat {args:?}:\n{log}");
        assert!(!log.contains("listening on"), "p-chat {args:?}:\n{log}");
    }
}
