//! A WebSocket client for `GET /ws` (docs/protocol.md), on awc.
//!
//! Every read is bounded by a timeout, so a server that stays silent fails
//! the test instead of hanging it. Pings from the server are answered with
//! pongs by every read.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::{Instant, timeout};
use awc::error::{WsClientError, WsProtocolError};
use awc::ws::{CloseCode, CloseReason, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};

use super::TestApp;

/// How long any single expected frame may take to arrive.
pub const WAIT: Duration = Duration::from_secs(5);

/// The largest frame the client accepts (the server's own limit is on what
/// it receives, not on what it sends).
const CLIENT_MAX_FRAME: usize = 1 << 20;

/// What the server sent next.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame holding JSON.
    Json(Value),
    /// A close frame with its code, if it carried one.
    Close(Option<u16>),
    /// A WebSocket-level ping (already answered with a pong).
    Ping,
    /// Anything else: non-JSON text, binary, pong, continuation.
    Other(String),
    /// The connection ended without a close frame (EOF or protocol error).
    Ended(String),
}

/// Both halves of the upgraded connection, whatever awc's concrete type.
trait Io:
    Stream<Item = Result<awc::ws::Frame, WsProtocolError>>
    + Sink<Message, Error = WsProtocolError>
    + Unpin
{
}

impl<T> Io for T where
    T: Stream<Item = Result<awc::ws::Frame, WsProtocolError>>
        + Sink<Message, Error = WsProtocolError>
        + Unpin
{
}

/// One WebSocket connection to the server.
pub struct WsClient {
    io: Pin<Box<dyn Io>>,
    /// Set once a close frame or the end of the stream was read.
    ended: bool,
    /// The description of the close frame received, for failure reports.
    close_description: Option<String>,
    /// Whether server pings get a pong (a dead client's do not).
    answer_pings: bool,
    /// Whether `presence` frames are read (else skipped: they come whenever
    /// someone who shares a room connects or leaves, so only the tests of
    /// presence read them).
    hear_presence: bool,
}

impl fmt::Debug for WsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClient")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The `ws://` address of `GET /ws` on a server at `base` (`http://...`).
pub fn ws_url(base: &str) -> String {
    format!("{}/ws", base.replacen("http://", "ws://", 1))
}

/// The server's own origin (`http://host:port`), as a browser on its
/// pages would send it.
pub fn origin_of(app: &TestApp) -> String {
    app.base.clone()
}

impl WsClient {
    /// Upgrades `GET /ws` on `app`, with `Authorization: Bearer` and
    /// `Origin` headers when given. A refused upgrade gives its status.
    pub async fn connect(
        app: &TestApp,
        bearer: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, StatusCode> {
        Self::connect_to(&app.base, bearer, origin).await
    }

    /// Like [`WsClient::connect`], for a server at `base` (`http://host:port`).
    pub async fn connect_to(
        base: &str,
        bearer: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, StatusCode> {
        match Self::upgrade(base, bearer, origin).await {
            Ok(client) => Ok(client),
            Err(WsClientError::InvalidResponseStatus(status)) => Err(status),
            Err(error) => panic!("upgrading {} failed: {error:?}", ws_url(base)),
        }
    }

    /// Like [`WsClient::connect_to`] with a bearer token, for clients that
    /// retry while a server restarts: any failure to upgrade (no server
    /// there, a refused upgrade) is an `Err` saying what happened.
    pub async fn try_connect_to(base: &str, bearer: &str) -> Result<Self, String> {
        Self::upgrade(base, Some(bearer), None)
            .await
            .map_err(|error| format!("upgrading {} failed: {error:?}", ws_url(base)))
    }

    async fn upgrade(
        base: &str,
        bearer: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, WsClientError> {
        let url = ws_url(base);
        let client = awc::Client::builder().timeout(WAIT).finish();
        let mut request = client.ws(url.as_str()).max_frame_size(CLIENT_MAX_FRAME);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.origin(origin);
        }
        let (_response, framed) = request.connect().await?;
        Ok(Self {
            io: Box::pin(framed),
            ended: false,
            answer_pings: true,
            hear_presence: false,
            close_description: None,
        })
    }

    /// Connects with `token` as the bearer and waits for `ready` (returned).
    pub async fn connect_ready(app: &TestApp, token: &str) -> (Self, Value) {
        let mut client = Self::connect(app, Some(token), None)
            .await
            .unwrap_or_else(|status| panic!("upgrade refused: {status}"));
        let ready = client.next_json().await;
        assert_eq!(ready["type"], "ready", "first frame: {ready}");
        (client, ready)
    }

    /// Sends one WebSocket message, or reports why it could not be written.
    pub async fn try_send(&mut self, message: Message) -> Result<(), String> {
        match timeout(WAIT, self.io.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("{error:?}")),
            Err(_) => Err("write timed out".to_owned()),
        }
    }

    /// Sends one WebSocket message (panics if it cannot be written).
    pub async fn send_message(&mut self, message: Message) {
        if let Err(error) = self.try_send(message).await {
            panic!("sending a frame failed: {error}");
        }
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json(&mut self, value: Value) {
        self.send_raw_text(value.to_string()).await;
    }

    /// Sends `text` as it is, in one text frame.
    pub async fn send_raw_text(&mut self, text: String) {
        self.send_message(Message::Text(text.into())).await;
    }

    /// Sends `{"type":"auth","token":token}`.
    pub async fn send_auth(&mut self, token: &str) {
        self.send_json(json!({ "type": "auth", "token": token }))
            .await;
    }

    /// Sends a `send` frame.
    pub async fn send_message_to(&mut self, room_id: &str, body: &str, client_msg_id: &str) {
        self.send_json(json!({
            "type": "send",
            "room_id": room_id,
            "body": body,
            "client_msg_id": client_msg_id,
        }))
        .await;
    }

    /// From now on, leaves server pings unanswered, as a client whose
    /// network died would.
    pub fn stop_answering_pings(&mut self) {
        self.answer_pings = false;
    }

    /// Reads `presence` frames from now on (see [`WsClient::hear_presence`]).
    pub fn hear_presence(&mut self) {
        self.hear_presence = true;
    }

    /// The next frame within `wait`, or `None` if nothing came. Server pings
    /// are answered (unless [`WsClient::stop_answering_pings`]); `presence`
    /// frames are skipped unless [`WsClient::hear_presence`].
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left).await? {
                Frame::Json(value) if !self.hear_presence && value["type"] == "presence" => {}
                frame => return Some(frame),
            }
        }
    }

    async fn read_frame(&mut self, wait: Duration) -> Option<Frame> {
        if self.ended {
            return Some(Frame::Ended("already closed".to_owned()));
        }
        let item = match timeout(wait, self.io.next()).await {
            Err(_) => return None,
            Ok(item) => item,
        };
        let frame = match item {
            None => Frame::Ended("end of stream".to_owned()),
            Some(Err(error)) => Frame::Ended(format!("protocol error: {error:?}")),
            Some(Ok(awc::ws::Frame::Text(bytes))) => match serde_json::from_slice(&bytes) {
                Ok(value) => Frame::Json(value),
                Err(_) => Frame::Other(format!("text {:?}", String::from_utf8_lossy(&bytes))),
            },
            Some(Ok(awc::ws::Frame::Close(reason))) => {
                self.close_description = reason.as_ref().and_then(|r| r.description.clone());
                Frame::Close(reason.map(|reason| u16::from(reason.code)))
            }
            Some(Ok(awc::ws::Frame::Ping(payload))) => {
                if self.answer_pings {
                    // Best effort: the connection may be closing.
                    let _ = self.try_send(Message::Pong(payload)).await;
                }
                Frame::Ping
            }
            Some(Ok(awc::ws::Frame::Pong(_))) => Frame::Other("pong".to_owned()),
            Some(Ok(awc::ws::Frame::Binary(bytes))) => {
                Frame::Other(format!("binary of {} bytes", bytes.len()))
            }
            Some(Ok(awc::ws::Frame::Continuation(_))) => Frame::Other("continuation".to_owned()),
        };
        if matches!(frame, Frame::Close(_) | Frame::Ended(_)) {
            self.ended = true;
        }
        Some(frame)
    }

    /// The next JSON frame within `wait` (pings skipped), `Err` with what
    /// came instead (a close, the end, other frames or nothing).
    pub async fn try_next_json(&mut self, wait: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + wait;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => {
                    return Err(format!(
                        "no JSON frame within {wait:?} (skipped {skipped:?})"
                    ));
                }
                Some(Frame::Json(value)) => return Ok(value),
                Some(Frame::Ping) => {}
                Some(Frame::Other(other)) => skipped.push(other),
                Some(other) => return Err(format!("{other:?} (skipped {skipped:?})")),
            }
        }
    }

    /// The next JSON frame (pings skipped); panics on anything else or after
    /// [`WAIT`].
    pub async fn next_json(&mut self) -> Value {
        match self.try_next_json(WAIT).await {
            Ok(value) => value,
            Err(error) => panic!("expected a JSON frame, got {error}"),
        }
    }

    /// Reads JSON frames until one satisfies `predicate` (within [`WAIT`]);
    /// returns it and the frames read before it.
    pub async fn drain_until(
        &mut self,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_next_json(left).await {
                Ok(value) if predicate(&value) => return (value, before),
                Ok(value) => before.push(value),
                Err(error) => panic!("waiting for {what}: {error}; read before: {before:?}"),
            }
        }
    }

    /// Reads until a frame of type `kind` (other frames are skipped) and
    /// returns it.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        self.drain_until(&format!("a {kind:?} frame"), |value| value["type"] == kind)
            .await
            .0
    }

    /// The next JSON frame, which must be of type `kind`.
    pub async fn expect_next_type(&mut self, kind: &str) -> Value {
        let value = self.next_json().await;
        assert_eq!(
            value["type"], kind,
            "expected a {kind:?} frame, got {value}"
        );
        value
    }

    /// Reads until a close frame within `wait` and asserts its code; returns
    /// the JSON frames read before it.
    pub async fn expect_close_within(&mut self, code: u16, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => panic!(
                    "no close {code} within {wait:?}; read {} JSON frames, the last: {:?}",
                    before.len(),
                    before.last()
                ),
                Some(Frame::Close(got)) => {
                    assert_eq!(
                        got,
                        Some(code),
                        "close code (reason {:?}); {} JSON frames before it, the last: {:?}",
                        self.close_description,
                        before.len(),
                        before.last()
                    );
                    return before;
                }
                Some(Frame::Ended(how)) => panic!(
                    "expected close {code}, the connection ended without a close frame ({how}); \
                     {} JSON frames before, the last: {:?}",
                    before.len(),
                    before.last()
                ),
                Some(Frame::Json(value)) => before.push(value),
                Some(Frame::Ping | Frame::Other(_)) => {}
            }
        }
    }

    /// [`WsClient::expect_close_within`] [`WAIT`].
    pub async fn expect_close(&mut self, code: u16) -> Vec<Value> {
        self.expect_close_within(code, WAIT).await
    }

    /// Sends `{"type":"ping"}` and reads until the `pong`: proof that the
    /// connection is open and has handled everything sent before. Returns
    /// the other JSON frames read meanwhile.
    pub async fn ping_pong(&mut self) -> Vec<Value> {
        self.send_json(json!({ "type": "ping" })).await;
        self.drain_until("pong", |value| value["type"] == "pong")
            .await
            .1
    }

    /// Every JSON frame arriving within `wait` (panics on a close).
    pub async fn collect_for(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return frames;
            }
            match self.next_frame(left).await {
                None => return frames,
                Some(Frame::Json(value)) => frames.push(value),
                Some(Frame::Ping | Frame::Other(_)) => {}
                Some(other) => panic!("connection closed: {other:?}; read before: {frames:?}"),
            }
        }
    }

    /// Closes the connection normally (1000) and waits briefly for the echo.
    pub async fn close(mut self) {
        if self.ended {
            return;
        }
        let reason = CloseReason {
            code: CloseCode::Normal,
            description: None,
        };
        if self.try_send(Message::Close(Some(reason))).await.is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(frame) = self
            .next_frame(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            if matches!(frame, Frame::Close(_) | Frame::Ended(_)) {
                return;
            }
        }
    }
}
