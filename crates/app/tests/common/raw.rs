//! Raw TCP clients, for what an HTTP or WebSocket library would not send:
//! frame headers that declare more than they deliver, request bodies that
//! nobody reads. Every read is bounded by a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::rt::time::{sleep, timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestApp;

/// How long a probe waits for the server, at most.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The WebSocket opcode of a continuation frame.
pub const CONTINUATION: u8 = 0x0;
/// The WebSocket opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// The WebSocket opcode of a close frame.
pub const CLOSE: u8 = 0x8;

/// A TCP connection to `app`'s port.
pub async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connect")
}

/// Reads one byte at a time up to the end of a response head (so nothing
/// after it is consumed) and returns the head.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match timeout(PATIENCE, stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            other => panic!(
                "no whole response head ({other:?}); read {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Upgrades `GET /ws` by hand (with `Authorization: Bearer` if given) and
/// returns the socket right after the 101 response head.
pub async fn ws_upgrade(app: &TestApp, bearer: Option<&str>) -> TcpStream {
    let mut stream = connect(app).await;
    let authorization = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {authorization}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    stream
}

/// A client frame header (masked, with an all-zero key so the payload goes
/// as it is) declaring `length` payload bytes.
pub fn frame_header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
    let mut header = vec![if fin { 0x80 } else { 0 } | opcode];
    if length < 126 {
        header.push(0x80 | length as u8);
    } else if let Ok(short) = u16::try_from(length) {
        header.push(0x80 | 126);
        header.extend_from_slice(&short.to_be_bytes());
    } else {
        header.push(0x80 | 127);
        header.extend_from_slice(&length.to_be_bytes());
    }
    header.extend_from_slice(&[0; 4]);
    header
}

/// A whole client frame carrying `payload`.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame_header(fin, opcode, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// The frames in `bytes` from the server (unmasked), as opcode and payload;
/// a trailing partial frame is left out.
pub fn server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 2 {
        let opcode = bytes[at] & 0x0F;
        let (length, start) = match bytes[at + 1] & 0x7F {
            126 if bytes.len() >= at + 4 => (
                usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])),
                at + 4,
            ),
            127 if bytes.len() >= at + 10 => {
                let mut long = [0u8; 8];
                long.copy_from_slice(&bytes[at + 2..at + 10]);
                (u64::from_be_bytes(long) as usize, at + 10)
            }
            126 | 127 => break,
            short => (usize::from(short), at + 2),
        };
        if bytes.len() < start + length {
            break;
        }
        frames.push((opcode, bytes[start..start + length].to_vec()));
        at = start + length;
    }
    frames
}

/// The code of the first close frame in `frames`.
pub fn close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames
        .iter()
        .find(|(opcode, _)| *opcode == CLOSE)
        .and_then(|(_, payload)| Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?])))
}

/// What happened while a client kept sending.
#[derive(Debug)]
pub struct Flood {
    /// Bytes the client had written when the server ended the connection
    /// (or when it gave up).
    pub written_when_closed: u64,
    /// Whether the server ended the connection (EOF or reset) before the
    /// client had written everything it meant to.
    pub closed_by_server: bool,
    /// Whether the server ended the connection at all (rather than staying
    /// silent for [`PATIENCE`]).
    pub ended: bool,
    /// Everything the server sent.
    pub received: Vec<u8>,
}

/// Writes `chunks`, one every `pause`, while reading whatever the server
/// sends, until the server ends the connection or [`PATIENCE`] passes
/// without a word from it.
pub async fn flood(
    stream: TcpStream,
    chunks: impl Iterator<Item = Vec<u8>> + 'static,
    pause: Duration,
) -> Flood {
    let (mut reader, mut writer) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let writing = {
        let (written, stop, finished) = (written.clone(), stop.clone(), finished.clone());
        actix_web::rt::spawn(async move {
            for chunk in chunks {
                if stop.load(Ordering::SeqCst) || writer.write_all(&chunk).await.is_err() {
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                sleep(pause).await;
            }
            finished.store(true, Ordering::SeqCst);
        })
    };
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 4096];
    let ended = loop {
        match timeout(PATIENCE, reader.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
    };
    let written_when_closed = written.load(Ordering::SeqCst);
    let closed_by_server = ended && !finished.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let _ = writing.await;
    Flood {
        written_when_closed,
        closed_by_server,
        ended,
        received,
    }
}
