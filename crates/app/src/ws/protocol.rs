//! The frames of docs/protocol.md: what clients send, parsed strictly, and
//! what the server sends, built from the REST API's views.

use bytestring::ByteString;
use p_chat_domain::error::ValidationError;
use p_chat_domain::events::{Broadcast, RoomEvent};
use p_chat_domain::ports::Shared;
use p_chat_domain::position::Pos;
use p_chat_domain::presence::PresenceChange;
use p_chat_domain::user::UserId;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::views::{EventView, MessageView, ReadStateView};
use crate::metrics::{FrameIn, FrameOut};

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate, or extend the connection with a fresh token.
    Auth {
        /// An access token.
        token: String,
    },
    /// Post a message.
    Send {
        /// The room.
        room_id: Uuid,
        /// The text.
        body: String,
        /// The client's idempotency key.
        client_msg_id: String,
        /// The message of the room it replies to.
        reply_to: Option<Uuid>,
        /// The members it mentions.
        #[serde(default)]
        mentions: Vec<Uuid>,
    },
    /// Replay a room's events after a position (`after_pos`), or, as
    /// older clients do, its messages after a seq (`after_seq`).
    Sync {
        /// The room.
        room_id: Uuid,
        /// Replay messages with a seq above this one.
        after_seq: Option<i64>,
        /// Replay events with a position above this one (any JSON here, so
        /// that a bad one is answered `invalid_pos`).
        after_pos: Option<Value>,
        /// At most this many (1 to 100, default 100).
        limit: Option<i64>,
    },
    /// The user is typing.
    Typing {
        /// The room.
        room_id: Uuid,
    },
    /// Keep-alive; answered with `pong`.
    Ping,
}

/// Why a client frame could not be read.
#[derive(Debug)]
pub struct FrameError {
    /// `malformed_frame`, `unknown_type` or `invalid_frame`.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
    /// The `client_msg_id` or `room_id` of the frame, if it had one.
    pub reference: Option<String>,
}

const TYPES: [&str; 5] = ["auth", "send", "sync", "typing", "ping"];

impl ClientFrame {
    /// The frame's kind (for `p_chat_ws_frames_received_total`).
    pub fn kind(&self) -> FrameIn {
        match self {
            Self::Auth { .. } => FrameIn::Auth,
            Self::Send { .. } => FrameIn::Send,
            Self::Sync { .. } => FrameIn::Sync,
            Self::Typing { .. } => FrameIn::Typing,
            Self::Ping => FrameIn::Ping,
        }
    }
}

/// Parses a text frame.
pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|error| FrameError {
        code: "malformed_frame",
        message: format!("not JSON: {error}"),
        reference: None,
    })?;
    let reference = ["client_msg_id", "room_id"]
        .iter()
        .find_map(|key| value.get(key).and_then(Value::as_str).map(str::to_owned));
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(FrameError {
            code: "malformed_frame",
            message: "a frame is a JSON object with a string \"type\"".into(),
            reference,
        });
    };
    if !TYPES.contains(&kind) {
        return Err(FrameError {
            code: "unknown_type",
            message: format!("unknown frame type {kind:?}"),
            reference,
        });
    }
    let frame = serde_json::from_value(value).map_err(|error| FrameError {
        code: "invalid_frame",
        message: error.to_string(),
        reference: reference.clone(),
    })?;
    if let ClientFrame::Sync {
        after_seq,
        after_pos,
        ..
    } = &frame
        && after_seq.is_some() == after_pos.is_some()
    {
        return Err(FrameError {
            code: "invalid_frame",
            message: "sync takes exactly one of after_pos and after_seq".into(),
            reference,
        });
    }
    Ok(frame)
}

/// Where a `sync` frame replays from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFrom {
    /// Events after this position.
    Pos(Pos),
    /// Messages after this seq (the protocol before positions).
    Seq(i64),
}

impl SyncFrom {
    /// The start of a `sync` frame's replay: `after_pos` must be a
    /// non-negative integer ([`ValidationError::Pos`] otherwise); the frame
    /// has exactly one of the two (checked by [`parse`]).
    pub fn of(after_seq: Option<i64>, after_pos: Option<&Value>) -> Result<Self, ValidationError> {
        match (after_pos, after_seq) {
            (Some(value), _) => value
                .as_i64()
                .ok_or(ValidationError::Pos)
                .and_then(Pos::new)
                .map(Self::Pos),
            (None, Some(seq)) => Ok(Self::Seq(seq)),
            (None, None) => Err(ValidationError::Pos),
        }
    }
}

/// A frame to send, with its kind (for `p_chat_ws_frames_sent_total`).
#[derive(Debug)]
pub struct Outgoing {
    /// The frame's kind.
    pub kind: FrameOut,
    /// The frame's JSON text (shared, for a frame every receiver gets alike).
    pub text: ByteString,
}

impl Outgoing {
    fn json(kind: FrameOut, frame: Value) -> Self {
        Self {
            kind,
            text: frame.to_string().into(),
        }
    }

    /// The frame of `shared` that every connection receives alike:
    /// rendered by `render` for the first of them, the same bytes for the
    /// others.
    fn shared<T>(kind: FrameOut, shared: &Shared<T>, render: impl FnOnce() -> Value) -> Self {
        let bytes = shared.rendered(|_| render().to_string().into());
        Self {
            kind,
            // Always UTF-8 (rendered from JSON text just above); the
            // conversion checks it without copying.
            text: ByteString::try_from(bytes).unwrap_or_default(),
        }
    }
}

/// `{"type":"error","code","message","ref"}`.
pub fn error(code: &str, message: &str, reference: Option<&str>) -> Outgoing {
    Outgoing::json(
        FrameOut::Error,
        json!({ "type": "error", "code": code, "message": message, "ref": reference }),
    )
}

/// `{"type":"ready","user_id","expires_at"}`.
pub fn ready(user_id: UserId, expires_at: chrono::DateTime<chrono::Utc>) -> Outgoing {
    Outgoing::json(
        FrameOut::Ready,
        json!({ "type": "ready", "user_id": user_id.as_uuid(), "expires_at": expires_at }),
    )
}

/// `{"type":"presence","user_id","presence","last_seen_at"}`: a user who
/// shares a room with the connection's came online or went offline.
pub fn presence(change: &Shared<PresenceChange>) -> Outgoing {
    Outgoing::shared(FrameOut::Presence, change, || {
        json!({
            "type": "presence",
            "user_id": change.user_id.as_uuid(),
            "presence": change.presence.as_str(),
            "last_seen_at": change.last_seen_at,
        })
    })
}

/// `{"type":"pong"}`.
pub fn pong() -> Outgoing {
    Outgoing::json(FrameOut::Pong, json!({ "type": "pong" }))
}

/// `{"type":"ack","client_msg_id","message"}`.
pub fn ack(client_msg_id: &str, message: MessageView) -> Outgoing {
    Outgoing::json(
        FrameOut::Ack,
        json!({ "type": "ack", "client_msg_id": client_msg_id, "message": message }),
    )
}

/// `{"type":"message","room_id","message"}`.
pub fn message(room_id: Uuid, message: MessageView) -> Outgoing {
    Outgoing::json(
        FrameOut::Message,
        json!({ "type": "message", "room_id": room_id, "message": message }),
    )
}

/// `{"type":"synced","room_id","last_seq","has_more"}`: the end of a
/// replay by seq.
pub fn synced(room_id: Uuid, last_seq: i64, has_more: bool) -> Outgoing {
    Outgoing::json(
        FrameOut::Synced,
        json!({ "type": "synced", "room_id": room_id, "last_seq": last_seq, "has_more": has_more }),
    )
}

/// `{"type":"synced","room_id","last_pos","has_more"}`: the end of a
/// replay by position.
pub fn synced_to(room_id: Uuid, last_pos: Pos, has_more: bool) -> Outgoing {
    Outgoing::json(
        FrameOut::Synced,
        json!({ "type": "synced", "room_id": room_id, "last_pos": last_pos.value(), "has_more": has_more }),
    )
}

/// The frame of a room event: `{"type", "room_id", "pos", ...}`.
pub fn event(event: &RoomEvent) -> Outgoing {
    Outgoing::json(FrameOut::Event, event_json(event))
}

/// The JSON of a room event's frame.
fn event_json(event: &RoomEvent) -> Value {
    json!(EventView::from(event.clone()))
}

/// The frame of a room event that the fan-out delivered, rendered once for
/// every connection it reaches (`event` is `shared`'s).
pub fn shared_event(shared: &Shared<Broadcast>, event: &RoomEvent) -> Outgoing {
    Outgoing::shared(FrameOut::Event, shared, || event_json(event))
}

/// The frame of a signal the fan-out delivered (`typing`, a read marker),
/// as the connection of `me` shows it: a read marker that moved is
/// `read_marker` (with the counts) on its user's own connections and a
/// `receipt` on the others'. Room events go through [`shared_event`].
pub fn broadcast(shared: &Shared<Broadcast>, me: UserId) -> Outgoing {
    match shared.value() {
        Broadcast::Event(room_event) => shared_event(shared, room_event),
        Broadcast::Typing { room_id, user_id } => {
            Outgoing::shared(FrameOut::Typing, shared, || {
                json!({
                    "type": "typing", "room_id": room_id.as_uuid(), "user_id": user_id.as_uuid(),
                })
            })
        }
        Broadcast::ReadMarker { user_id, counts } if *user_id == me => {
            let mut frame = json!(ReadStateView::from(*counts));
            frame["type"] = json!("read_marker");
            Outgoing::json(FrameOut::ReadMarker, frame)
        }
        Broadcast::ReadMarker { user_id, counts } => Outgoing::json(
            FrameOut::Receipt,
            json!({
                "type": "receipt",
                "room_id": counts.room_id.as_uuid(),
                "user_id": user_id.as_uuid(),
                "last_read_seq": counts.last_read_seq.value(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_by_type() {
        assert!(matches!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping)));
        let room = Uuid::new_v4();
        let sync = format!(r#"{{"type":"sync","room_id":"{room}","after_seq":3}}"#);
        assert!(matches!(
            parse(&sync),
            Ok(ClientFrame::Sync {
                after_seq: Some(3),
                after_pos: None,
                limit: None,
                ..
            })
        ));
    }

    #[test]
    fn a_sync_takes_exactly_one_starting_point() {
        let room = Uuid::new_v4();
        for fields in ["", r#","after_seq":1,"after_pos":1"#] {
            let frame = format!(r#"{{"type":"sync","room_id":"{room}"{fields}}}"#);
            let error = parse(&frame).unwrap_err();
            assert_eq!(error.code, "invalid_frame", "{frame}");
            assert_eq!(error.reference, Some(room.to_string()));
        }
    }

    #[test]
    fn after_pos_must_be_a_non_negative_integer() {
        assert_eq!(
            SyncFrom::of(None, Some(&json!(4))),
            Ok(SyncFrom::Pos(Pos::new(4).unwrap()))
        );
        assert_eq!(SyncFrom::of(Some(2), None), Ok(SyncFrom::Seq(2)));
        for bad in [json!(-1), json!("4"), json!(1.5), json!(null), json!([1])] {
            assert_eq!(
                SyncFrom::of(None, Some(&bad)),
                Err(ValidationError::Pos),
                "{bad}"
            );
        }
    }

    #[test]
    fn event_frames_carry_their_position() {
        let event = RoomEvent {
            room_id: p_chat_domain::room::RoomId::new(),
            pos: Pos::new(9).unwrap(),
            at: chrono::Utc::now(),
            change: p_chat_domain::events::Change::MemberLeft {
                user_id: UserId::new(),
            },
        };
        let frame: Value = serde_json::from_str(&self::event(&event).text).unwrap();
        assert_eq!(frame["type"], "member_left");
        assert_eq!(frame["pos"], 9);
        assert_eq!(frame["room_id"], json!(event.room_id.as_uuid()));
        assert!(frame["user_id"].is_string());
    }

    #[test]
    fn presence_frames_have_the_fixed_shape() {
        let user = UserId::new();
        let change = |presence, last_seen_at| {
            Shared::new(PresenceChange {
                user_id: user,
                presence,
                last_seen_at,
                rooms: vec![p_chat_domain::room::RoomId::new()],
            })
        };
        let came = change(p_chat_domain::presence::Presence::Online, None);
        let online: Value = serde_json::from_str(&presence(&came).text).unwrap();
        assert_eq!(
            online,
            json!({ "type": "presence", "user_id": user.as_uuid(), "presence": "online", "last_seen_at": null })
        );
        // Every connection it reaches sends the same bytes, rendered once.
        assert_eq!(
            presence(&came).text.as_bytes().as_ptr(),
            presence(&came).text.as_bytes().as_ptr()
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let offline: Value = serde_json::from_str(
            &presence(&change(
                p_chat_domain::presence::Presence::Offline,
                Some(at),
            ))
            .text,
        )
        .unwrap();
        assert_eq!(offline["presence"], "offline");
        assert_eq!(offline["last_seen_at"], "2026-12-03T10:00:00.123456Z");
        assert!(offline.get("rooms").is_none(), "rooms stay server-side");
    }

    #[test]
    fn bad_frames_get_the_right_code_and_reference() {
        assert_eq!(parse("{").unwrap_err().code, "malformed_frame");
        assert_eq!(parse("[1]").unwrap_err().code, "malformed_frame");
        assert_eq!(
            parse(r#"{"type":"dance"}"#).unwrap_err().code,
            "unknown_type"
        );
        let missing = parse(r#"{"type":"send","client_msg_id":"c1"}"#).unwrap_err();
        assert_eq!(
            (missing.code, missing.reference.as_deref()),
            ("invalid_frame", Some("c1"))
        );
    }
}
