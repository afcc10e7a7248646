//! The frames of docs/protocol.md: what clients send, parsed strictly, and
//! what the server sends, built from the REST API's views.

use p_chat_domain::events::RoomEvent;
use p_chat_domain::room::Member;
use p_chat_domain::user::UserId;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::views::{MemberView, MessageView, RoomView};

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
    },
    /// Replay messages after a seq.
    Sync {
        /// The room.
        room_id: Uuid,
        /// Replay messages with a seq above this one.
        after_seq: i64,
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
    serde_json::from_value(value).map_err(|error| FrameError {
        code: "invalid_frame",
        message: error.to_string(),
        reference,
    })
}

/// `{"type":"error","code","message","ref"}`.
pub fn error(code: &str, message: &str, reference: Option<&str>) -> String {
    json!({ "type": "error", "code": code, "message": message, "ref": reference }).to_string()
}

/// `{"type":"ready","user_id","expires_at"}`.
pub fn ready(user_id: UserId, expires_at: chrono::DateTime<chrono::Utc>) -> String {
    json!({ "type": "ready", "user_id": user_id.as_uuid(), "expires_at": expires_at }).to_string()
}

/// `{"type":"pong"}`.
pub fn pong() -> String {
    json!({ "type": "pong" }).to_string()
}

/// `{"type":"ack","client_msg_id","message"}`.
pub fn ack(client_msg_id: &str, message: MessageView) -> String {
    json!({ "type": "ack", "client_msg_id": client_msg_id, "message": message }).to_string()
}

/// `{"type":"message","room_id","message"}`.
pub fn message(room_id: Uuid, message: MessageView) -> String {
    json!({ "type": "message", "room_id": room_id, "message": message }).to_string()
}

/// `{"type":"synced","room_id","last_seq","has_more"}`.
pub fn synced(room_id: Uuid, last_seq: i64, has_more: bool) -> String {
    json!({ "type": "synced", "room_id": room_id, "last_seq": last_seq, "has_more": has_more })
        .to_string()
}

fn member(member: &Member) -> MemberView {
    MemberView::from(member.clone())
}

/// The frame of any event but `Message` (whose delivery is ordered by seq).
pub fn event(event: &RoomEvent) -> String {
    let room_id = event.room_id().as_uuid();
    match event {
        RoomEvent::Message(message) => self::message(room_id, MessageView::from(message.clone())),
        RoomEvent::MessageUpdated(message) => json!({
            "type": "message_updated", "room_id": room_id, "message": MessageView::from(message.clone()),
        })
        .to_string(),
        RoomEvent::MessageDeleted(message) => json!({
            "type": "message_deleted", "room_id": room_id, "message": MessageView::from(message.clone()),
        })
        .to_string(),
        RoomEvent::MemberJoined { room, member: joined } => json!({
            "type": "member_joined", "room_id": room_id, "member": member(joined),
            "room": RoomView::from(room.clone()),
        })
        .to_string(),
        RoomEvent::MemberLeft { user_id, .. } => json!({
            "type": "member_left", "room_id": room_id, "user_id": user_id.as_uuid(),
        })
        .to_string(),
        RoomEvent::RoomUpdated(room) => json!({
            "type": "room_updated", "room_id": room_id, "room": RoomView::from(room.clone()),
        })
        .to_string(),
        RoomEvent::RoomDeleted(_) => json!({ "type": "room_deleted", "room_id": room_id }).to_string(),
        RoomEvent::Typing { user_id, .. } => json!({
            "type": "typing", "room_id": room_id, "user_id": user_id.as_uuid(),
        })
        .to_string(),
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
                after_seq: 3,
                limit: None,
                ..
            })
        ));
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
