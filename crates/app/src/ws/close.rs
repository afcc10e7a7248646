//! Why a connection closes: each cause with its close code (docs/protocol.md),
//! its reason text and its fixed label in the `p_chat_ws_closes_total`
//! metric, written once here.

use super::admission::CLOSE_TOO_MANY_CONNECTIONS;
use super::guard::{CLOSE_INVALID_UTF8, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_LARGE};

/// A normal closure (RFC 6455 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
/// The server is going away.
const CLOSE_GOING_AWAY: u16 = 1001;
/// The server met a condition it cannot serve the connection through.
const CLOSE_INTERNAL: u16 = 1011;
/// "Service restart": reconnect.
const CLOSE_SERVICE_RESTART: u16 = 1012;
/// Authentication failed, was never given, expired or was revoked.
const CLOSE_UNAUTHENTICATED: u16 = 4001;
/// The client is too slow, or sends too fast.
const CLOSE_TOO_SLOW: u16 = 4008;

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The client closed, or the connection ended normally.
    ClientClosed,
    /// The client stopped answering pings.
    Unresponsive,
    /// The server is shutting down.
    ShuttingDown,
    /// A violation of the framing protocol.
    ProtocolError,
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// A frame header declared more than the limit.
    FrameTooLarge,
    /// A message assembled from continuations grew past the limit.
    MessageTooLarge,
    /// The store failed.
    Unavailable,
    /// A gap in a room's events could not be filled from the log.
    GapUnfilled,
    /// The fan-out stopped.
    FanOutStopped,
    /// The user's rooms changed while this node was cut off from the others.
    RoomsChanged,
    /// The token (on the upgrade or in `auth`) was refused.
    AuthFailed,
    /// The first frame was not a text `auth` frame.
    AuthNotFirst,
    /// No `auth` frame came in time.
    AuthTimeout,
    /// The connection's access token expired.
    TokenExpired,
    /// The connection's session ended.
    SessionRevoked,
    /// An outgoing frame waited too long for a client that does not read.
    SendTimeout,
    /// The connection's fan-out queue overflowed.
    QueueOverflow,
    /// The client sent frames faster than `WS_RATE_*` allows.
    RateLimited,
    /// The user already has `WS_MAX_CONNECTIONS_PER_USER` connections.
    TooManyConnections,
}

impl CloseCause {
    /// The close code sent.
    pub fn code(self) -> u16 {
        match self {
            Self::ClientClosed | Self::Unresponsive => CLOSE_NORMAL,
            Self::ShuttingDown => CLOSE_GOING_AWAY,
            Self::ProtocolError => CLOSE_PROTOCOL_ERROR,
            Self::InvalidUtf8 => CLOSE_INVALID_UTF8,
            Self::FrameTooLarge | Self::MessageTooLarge => CLOSE_TOO_LARGE,
            Self::Unavailable | Self::GapUnfilled | Self::FanOutStopped => CLOSE_INTERNAL,
            Self::RoomsChanged => CLOSE_SERVICE_RESTART,
            Self::AuthFailed
            | Self::AuthNotFirst
            | Self::AuthTimeout
            | Self::TokenExpired
            | Self::SessionRevoked => CLOSE_UNAUTHENTICATED,
            Self::SendTimeout | Self::QueueOverflow | Self::RateLimited => CLOSE_TOO_SLOW,
            Self::TooManyConnections => CLOSE_TOO_MANY_CONNECTIONS,
        }
    }

    /// The close reason sent, for people reading the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ClientClosed => "bye",
            Self::Unresponsive => "no answer to pings",
            Self::ShuttingDown => "server shutting down",
            Self::ProtocolError => "protocol error",
            Self::InvalidUtf8 => "text is not UTF-8",
            Self::FrameTooLarge => "frame too large",
            Self::MessageTooLarge => "message too large",
            Self::Unavailable => "service unavailable",
            Self::GapUnfilled => "cannot fill a gap; reconnect and sync",
            Self::FanOutStopped => "fan-out stopped",
            Self::RoomsChanged => "rooms changed while this server was cut off; reconnect and sync",
            Self::AuthFailed => "authentication failed",
            Self::AuthNotFirst => "the first frame must be auth",
            Self::AuthTimeout => "no authentication within 10 seconds",
            Self::TokenExpired => "access token expired",
            Self::SessionRevoked => "session revoked",
            Self::SendTimeout | Self::QueueOverflow => "client too slow",
            Self::RateLimited => "rate limit exceeded",
            Self::TooManyConnections => "too many connections",
        }
    }

    /// The `cause` label of `p_chat_ws_closes_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Unresponsive => "unresponsive",
            Self::ShuttingDown => "shutdown",
            Self::ProtocolError => "protocol_error",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::FrameTooLarge => "frame_too_large",
            Self::MessageTooLarge => "message_too_large",
            Self::Unavailable => "unavailable",
            Self::GapUnfilled => "gap_unfilled",
            Self::FanOutStopped => "fanout_stopped",
            Self::RoomsChanged => "rooms_changed",
            Self::AuthFailed => "auth_failed",
            Self::AuthNotFirst => "auth_not_first",
            Self::AuthTimeout => "auth_timeout",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::SendTimeout => "send_timeout",
            Self::QueueOverflow => "queue_overflow",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
        }
    }
}
