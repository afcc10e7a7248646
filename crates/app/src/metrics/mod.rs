//! Prometheus metrics (docs/operations.md#metrics): the names of what the
//! HTTP API and the WebSocket gateway count, written once here (the stores,
//! the fan-out and bcrypt name theirs in their own crates), the recorder
//! ([`recorder`]), the per-request middleware ([`http`]) and the separate
//! `METRICS_ADDRESS` listener ([`endpoint`]).
//!
//! Recording goes through the `metrics` facade, which does nothing until a
//! recorder is installed: with `METRICS_ADDRESS` unset nothing is kept.
//! Label values are route templates, status codes and fixed names
//! (`&'static str`), never paths, ids or anything a client sent.

pub mod endpoint;
pub mod http;
pub mod recorder;

/// Counter: HTTP requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "p_chat_http_requests_total";
/// Histogram: how long HTTP requests took to answer, by `method` and `route`.
pub const HTTP_REQUEST_SECONDS: &str = "p_chat_http_request_duration_seconds";
/// Gauge: open WebSocket connections (authenticated or not yet).
pub const WS_CONNECTIONS: &str = "p_chat_ws_connections";
/// Counter: client frames received, by `type`.
pub const WS_FRAMES_RECEIVED: &str = "p_chat_ws_frames_received_total";
/// Counter: frames sent to clients, by `type`.
pub const WS_FRAMES_SENT: &str = "p_chat_ws_frames_sent_total";
/// Counter: room events delivered to connections as they happened (live,
/// or filling a gap before a live one), not replays a `sync` asked for.
pub const WS_DELIVERIES: &str = "p_chat_ws_deliveries_total";
/// Counter: WebSocket connections ended, by close `code` and `cause`.
pub const WS_CLOSES: &str = "p_chat_ws_closes_total";

/// Label: the request's method ([`http::method_label`]).
pub const METHOD: &str = "method";
/// Label: the route template that matched (`/rooms/{id}`), or [`UNMATCHED`].
pub const ROUTE: &str = "route";
/// Label: the response's status code.
pub const STATUS: &str = "status";
/// Label: a frame's type.
pub const TYPE: &str = "type";
/// Label: a close code, or [`NO_CLOSE_CODE`].
pub const CODE: &str = "code";
/// Label: why a connection closed.
pub const CAUSE: &str = "cause";

/// [`ROUTE`] of a request no route matched (answered 404).
pub const UNMATCHED: &str = "unmatched";
/// [`CODE`] of a connection that ended without a close frame.
pub const NO_CLOSE_CODE: &str = "none";
/// [`CAUSE`] of a connection whose peer went away without closing.
pub const PEER_GONE: &str = "peer_gone";

/// The kinds of client frame, the [`TYPE`] of [`WS_FRAMES_RECEIVED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameIn {
    /// `auth`.
    Auth,
    /// `send`.
    Send,
    /// `sync`.
    Sync,
    /// `typing`.
    Typing,
    /// `ping`.
    Ping,
    /// A text frame that is not a valid client frame.
    Invalid,
    /// A binary frame (refused: frames are JSON text).
    Binary,
}

impl FrameIn {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Send => "send",
            Self::Sync => "sync",
            Self::Typing => "typing",
            Self::Ping => "ping",
            Self::Invalid => "invalid",
            Self::Binary => "binary",
        }
    }
}

/// The kinds of frame sent, the [`TYPE`] of [`WS_FRAMES_SENT`]: each
/// frame's own `type`, but for room events, which are all `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOut {
    /// `ready`.
    Ready,
    /// `ack`.
    Ack,
    /// `error`.
    Error,
    /// `pong`.
    Pong,
    /// `message` (a replay by seq).
    Message,
    /// `synced`.
    Synced,
    /// A room event of any change (`message`, `member_joined`, ...).
    Event,
    /// `typing`.
    Typing,
    /// `read_marker`.
    ReadMarker,
    /// `receipt`.
    Receipt,
    /// `presence`.
    Presence,
}

impl FrameOut {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Ack => "ack",
            Self::Error => "error",
            Self::Pong => "pong",
            Self::Message => "message",
            Self::Synced => "synced",
            Self::Event => "event",
            Self::Typing => "typing",
            Self::ReadMarker => "read_marker",
            Self::Receipt => "receipt",
            Self::Presence => "presence",
        }
    }
}

/// Counts one open WebSocket connection in [`WS_CONNECTIONS`] for as long
/// as it lives.
pub struct OpenConnection(());

impl OpenConnection {
    /// Counts a connection that just opened.
    pub fn new() -> Self {
        metrics::gauge!(WS_CONNECTIONS).increment(1.0);
        Self(())
    }
}

impl Default for OpenConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(WS_CONNECTIONS).decrement(1.0);
    }
}

/// Counts a client frame of type `kind`.
pub fn frame_received(kind: FrameIn) {
    metrics::counter!(WS_FRAMES_RECEIVED, TYPE => kind.as_str()).increment(1);
}

/// Counts a frame of type `kind` sent to a client.
pub fn frame_sent(kind: FrameOut) {
    metrics::counter!(WS_FRAMES_SENT, TYPE => kind.as_str()).increment(1);
}

/// Counts a room event delivered to a connection.
pub fn delivered() {
    metrics::counter!(WS_DELIVERIES).increment(1);
}

/// Counts a connection that ended with close `code` (`None`: without a
/// close frame) for `cause`.
pub fn closed(code: Option<u16>, cause: &'static str) {
    let code = code.map_or_else(|| NO_CLOSE_CODE.to_owned(), |code| code.to_string());
    metrics::counter!(WS_CLOSES, CODE => code, CAUSE => cause).increment(1);
}
