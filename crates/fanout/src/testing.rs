//! Redis for tests of this and other crates: the shared server named by
//! `P_CHAT_TEST_REDIS_URL` (each test under its own channel prefix), or a
//! private `redis-server` on a free port for tests that stop and start it.
//!
//! Without a reachable Redis a test says loudly that it is skipped, unless
//! `CI=true`, where it fails instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis::ChannelPrefix;

/// The variable naming the shared Redis of the tests.
pub const REDIS_URL_VAR: &str = "P_CHAT_TEST_REDIS_URL";
/// Where the shared Redis is when the variable is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// How long a private server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared Redis's URL, if it answers (else the skip is reported, or
/// the test fails under `CI=true`).
pub fn redis_url() -> Option<String> {
    let url = std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    match ping(&url) {
        Ok(()) => Some(url),
        Err(reason) => skip(&format!(
            "Redis at {url} ({REDIS_URL_VAR}) does not answer: {reason}"
        )),
    }
}

/// A channel prefix no other test uses.
pub fn unique_prefix() -> ChannelPrefix {
    let name = format!("p-chat-test-{}", uuid::Uuid::new_v4().simple());
    match ChannelPrefix::parse(&name) {
        Ok(prefix) => prefix,
        Err(error) => panic!("{error}"),
    }
}

/// A `redis-server` of the test's own, on a free port, stopped when
/// dropped (never the shared one).
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a private server, or `None` if `redis-server` cannot run here
    /// (reported, or a failure under `CI=true`).
    pub fn start() -> Option<Self> {
        let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(address) => address.port(),
            Err(error) => return skip(&format!("no free port for redis-server: {error}")),
        };
        let mut server = Self { port, child: None };
        server.start_again()?;
        Some(server)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its subscribers' connections drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, and waits until it answers.
    pub fn start_again(&mut self) -> Option<()> {
        self.stop();
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => self.child = Some(child),
            Err(error) => return skip(&format!("cannot run redis-server: {error}")),
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while ping(&self.url()).is_err() {
            if Instant::now() > deadline {
                return skip(&format!("redis-server on port {} did not start", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis server answers PING at `url` (a plain TCP exchange, so
/// that it works inside or outside any runtime).
fn ping(url: &str) -> Result<(), String> {
    use std::io::Read as _;
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| e.to_string())?;
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        return Err("only redis:// URLs are supported by the tests".to_owned());
    };
    let mut stream =
        std::net::TcpStream::connect((host.as_str(), *port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut answer = [0_u8; 7];
    stream.read_exact(&mut answer).map_err(|e| e.to_string())?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer {:?}",
            String::from_utf8_lossy(&answer)
        ))
    }
}

/// Reports a skipped test (see [`p_chat_testkit::skip`]), or fails under CI.
fn skip<T>(reason: &str) -> Option<T> {
    p_chat_testkit::skip("Redis", reason);
    None
}
