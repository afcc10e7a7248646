//! PostgreSQL's own programs, for the tests that need more than a database
//! on the shared server: a private cluster with TLS (postgres_tls.rs) and
//! `pg_dump`/`pg_restore` (backup.rs). A missing program skips the test
//! loudly, or fails it under `CI=true`.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Where Debian installs each major version's programs.
const VERSIONED_BIN_DIRS: &str = "/usr/lib/postgresql";
/// How long `pg_ctl start` may wait for the cluster to accept connections.
const START_WAIT_SECONDS: &str = "60";

/// Reports a skipped test (see [`p_chat_testkit::skip`]), or fails under CI.
pub fn skip<T>(group: &str, reason: &str) -> Option<T> {
    p_chat_testkit::skip(group, reason);
    None
}

/// The PostgreSQL program `name`: from the newest major version under
/// /usr/lib/postgresql/*/bin (pg_dump must not be older than the server),
/// else from `PATH`.
pub fn program(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(VERSIONED_BIN_DIRS)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| path.is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, path)| path)
        .or_else(|| on_path(name))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The certificate and key a cluster serves TLS with, in PEM.
pub struct ServerIdentity {
    pub certificate: String,
    pub key: String,
}

/// A throwaway PostgreSQL cluster of its own (initdb in a temp dir, run as
/// the `postgres` OS user when the tests run as root, since PostgreSQL
/// refuses to run as root), listening on 127.0.0.1 and 127.0.0.2 on a free
/// port with `ssl=on`; plain connections stay allowed (`host` lines, not
/// `hostssl`). Trust authentication for the `postgres` role. Stopped
/// (`pg_ctl stop -m immediate`) and removed on drop, panics included.
pub struct TlsCluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
    runuser: Option<PathBuf>,
    /// The port it listens on.
    pub port: u16,
}

/// The group name skips and failures are reported under.
pub const TLS_GROUP: &str = "PostgreSQL TLS";

impl TlsCluster {
    /// Creates and starts a cluster serving `identity`, or explains why it
    /// cannot (the skip rules of [`skip`]).
    pub fn start(identity: &ServerIdentity) -> Option<Self> {
        let (Some(initdb), Some(pg_ctl), Some(psql)) =
            (program("initdb"), program("pg_ctl"), program("psql"))
        else {
            return skip(
                TLS_GROUP,
                "initdb, pg_ctl or psql not found (under /usr/lib/postgresql/*/bin or on PATH)",
            );
        };
        let runuser = if is_root() {
            match on_path("runuser").or_else(|| {
                ["/usr/sbin/runuser", "/sbin/runuser"]
                    .into_iter()
                    .map(PathBuf::from)
                    .find(|path| path.is_file())
            }) {
                Some(runuser) => Some(runuser),
                None => return skip(TLS_GROUP, "running as root and runuser is missing"),
            }
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("p-chat-pgtls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let mut cluster = Self {
            dir,
            pg_ctl,
            psql,
            runuser,
            port: free_port(),
        };
        cluster.init(&initdb, identity);
        cluster.start_server();
        Some(cluster)
    }

    /// A command run as the cluster's owner, in the cluster's directory
    /// (the owner may not be allowed into the test's).
    fn as_owner(&self, program: &Path) -> Command {
        let mut command = match &self.runuser {
            Some(runuser) => {
                let mut command = Command::new(runuser);
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.current_dir(&self.dir);
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&mut self, initdb: &Path, identity: &ServerIdentity) {
        let certificate = self.dir.join("server.crt");
        let key = self.dir.join("server.key");
        std::fs::write(&certificate, &identity.certificate).unwrap();
        std::fs::write(&key, &identity.key).unwrap();
        run(Command::new("chmod").arg("600").arg(&key));
        if self.runuser.is_some() {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&self.dir));
        }
        run(self
            .as_owner(initdb)
            .args([
                "--no-sync",
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
            ])
            .arg("--pgdata")
            .arg(self.data()));
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1,127.0.0.2'\nport = {port}\n\
             unix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = '{certificate}'\nssl_key_file = '{key}'\n\
             fsync = off\nmax_connections = 40\n",
            port = self.port,
            dir = self.dir.display(),
            certificate = certificate.display(),
            key = key.display(),
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .unwrap();
        conf.write_all(settings.as_bytes()).unwrap();
    }

    fn start_server(&self) {
        run(self
            .as_owner(&self.pg_ctl)
            .args(["start", "-w", "-t", START_WAIT_SECONDS, "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log")));
    }

    /// Runs one SQL statement as `postgres` over the cluster's unix socket,
    /// returning what it printed.
    pub fn sql(&self, statement: &str) -> String {
        let output = run(self
            .as_owner(&self.psql)
            .arg("--host")
            .arg(&self.dir)
            .args(["--port", &self.port.to_string()])
            .args(["--username", "postgres", "--dbname", "postgres"])
            .args([
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
                "--command",
                statement,
            ]));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.pg_ctl)
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
        // The postmaster's children may still hold files for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = writeln!(
            std::io::stderr(),
            "warning: could not remove {}",
            self.dir.display()
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
