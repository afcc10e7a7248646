//! A real SMTP server for the tests: `tests/support/smtp_sink.py` (Python's
//! aiosmtpd) as a child process on a free port, keeping every mail it gets.
//!
//! Without `python3` or its `aiosmtpd` module (`python3 -m pip install
//! aiosmtpd`) [`SmtpSink::start`] says loudly that the test is skipped and
//! returns `None`; under `CI=true` it fails instead.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What mailed links start with in these tests (`PUBLIC_URL`).
pub const PUBLIC_URL: &str = "http://chat.p-chat.test";

/// The sender of the test server's mail (`SMTP_FROM`).
pub const FROM: &str = "p-chat <noreply@p-chat.test>";

/// How long a mail may take to arrive before the test fails.
const MAIL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the sink may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Distinguishes the mail directories of one test process's sinks.
static SINKS: AtomicUsize = AtomicUsize::new(0);

/// A running SMTP sink. Dropping it stops the server and deletes its mail.
pub struct SmtpSink {
    child: Child,
    port: u16,
    directory: PathBuf,
    /// Mails already handed out by [`SmtpSink::wait_for_mail`].
    taken: Mutex<HashSet<PathBuf>>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1 and waits until it listens;
    /// `None` (reported as skipped) when Python or aiosmtpd is missing.
    pub fn start() -> Option<Self> {
        if let Some(missing) = missing_prerequisite() {
            skip(&missing);
            return None;
        }
        let directory = std::env::temp_dir().join(format!(
            "p-chat-smtp-{}-{}",
            std::process::id(),
            SINKS.fetch_add(1, Ordering::SeqCst)
        ));
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py"))
            .arg(&directory)
            // The sink exits when this pipe closes, even if the test is killed.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("the sink's stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = port_tx.send(line);
        });
        let line = port_rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let Some(port) = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|port| port.parse().ok())
        else {
            let _ = child.kill();
            panic!("the SMTP sink did not start: {line:?}");
        };
        Some(Self {
            child,
            port,
            directory,
            taken: Mutex::new(HashSet::new()),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The variables that make a p-chat server mail through this sink.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMTP_HOST", "127.0.0.1".to_owned()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_TLS", "none".to_owned()),
            ("SMTP_FROM", FROM.to_owned()),
            ("PUBLIC_URL", PUBLIC_URL.to_owned()),
        ]
    }

    /// The next mail to `to` not handed out before, as the sink decoded it:
    /// its headers, a blank line and its plain-text body. Panics when none
    /// arrives in time.
    pub async fn wait_for_mail(&self, to: &str) -> String {
        let deadline = Instant::now() + MAIL_TIMEOUT;
        loop {
            if let Some(mail) = self.take_mail(to) {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} reached the SMTP sink within {MAIL_TIMEOUT:?}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many mails to `to` the sink has received.
    pub fn count_mails(&self, to: &str) -> usize {
        self.received()
            .into_iter()
            .filter(|(_, recipients)| recipients.iter().any(|r| r == to))
            .count()
    }

    fn take_mail(&self, to: &str) -> Option<String> {
        let mut taken = self.taken.lock().unwrap();
        let (number, _) = self.received().into_iter().find(|(number, recipients)| {
            recipients.iter().any(|r| r == to) && !taken.contains(&self.file(*number, "txt"))
        })?;
        let path = self.file(number, "txt");
        let mail = std::fs::read_to_string(&path).expect("a received mail");
        taken.insert(path);
        Some(mail)
    }

    /// Every complete mail so far, in arrival order: number and recipients.
    fn received(&self) -> Vec<(u64, Vec<String>)> {
        let Ok(entries) = std::fs::read_dir(&self.directory) else {
            return Vec::new();
        };
        let mut mails: Vec<(u64, Vec<String>)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let number = name.strip_suffix(".rcpt")?.parse().ok()?;
                let recipients = std::fs::read_to_string(entry.path()).ok()?;
                Some((number, recipients.lines().map(str::to_owned).collect()))
            })
            .collect();
        mails.sort();
        mails
    }

    fn file(&self, number: u64, suffix: &str) -> PathBuf {
        self.directory.join(format!("{number}.{suffix}"))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// The token of the first `PUBLIC_URL/?<parameter>=<token>` link in `mail`.
pub fn link_token(mail: &str, parameter: &str) -> String {
    let prefix = format!("{PUBLIC_URL}/?{parameter}=");
    let start = mail
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in the mail:\n{mail}"))
        + prefix.len();
    mail[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// What the sink needs and this machine lacks, with how to get it.
fn missing_prerequisite() -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Err(_) => Some("python3 is not installed".to_owned()),
        Ok(status) if !status.success() => Some(
            "the Python module aiosmtpd is missing (python3 -m pip install aiosmtpd)".to_owned(),
        ),
        Ok(_) => None,
    }
}

/// Reports a skipped test (see [`p_chat_testkit::skip`]), or fails it
/// under CI where it must run.
fn skip(reason: &str) {
    p_chat_testkit::skip("SMTP", reason);
}
