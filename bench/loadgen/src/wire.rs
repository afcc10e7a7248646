//! What travels: the bench's message body (room index, per-room sequence,
//! scheduled send time) and the delivered frame both targets send, p-chat's
//! `message` event shape, of which the bench reads only `type` and
//! `message.body`.

use serde::{Deserialize, Serialize};

/// A frame as a receiver reads it; every other field is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Delivered<'a> {
    /// `message` for a delivery; `ready`, `ack`, `error`, presence and the rest otherwise.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// The delivered message, on `message` frames.
    #[serde(borrow)]
    pub message: Option<DeliveredMessage<'a>>,
}

/// The part of a delivered message the bench wrote.
#[derive(Debug, Deserialize, Serialize)]
pub struct DeliveredMessage<'a> {
    /// A [`Body`] as text.
    #[serde(borrow)]
    pub body: &'a str,
}

/// What the bench puts in every message, so that any receiver can tell its
/// room, its place in the room and when it was due without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// The room's index in the run (0-based), whatever the target calls it.
    pub room: usize,
    /// The message's sequence within its room (0-based, gap-free).
    pub seq: u64,
    /// When the message was scheduled to be sent, in µs after the run's start.
    pub scheduled_us: u64,
}

impl Body {
    /// The body as sent: three decimal numbers separated by spaces.
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.room, self.seq, self.scheduled_us)
    }

    /// Reads a body the bench wrote; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let room = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let scheduled_us = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            room,
            seq,
            scheduled_us,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
    use super::*;

    #[test]
    fn a_body_reads_back_as_written() {
        let body = Body {
            room: 7,
            seq: 42,
            scheduled_us: 1_234_567,
        };
        assert_eq!(Body::parse(&body.encode()), Some(body));
    }

    #[test]
    fn anything_else_is_not_a_body() {
        for text in ["", "1 2", "1 2 3 4", "a 2 3", "1 -2 3"] {
            assert_eq!(Body::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_pchat_message_event_is_read_for_its_type_and_body() {
        let frame = r#"{"type":"message","room_id":"r","pos":3,"message":{"id":"x","seq":2,"body":"1 2 3","author":{"display_name":"a \"b\""}}}"#;
        let delivered: Delivered<'_> = serde_json::from_str(frame).unwrap();
        assert_eq!(delivered.kind, "message");
        assert_eq!(delivered.message.unwrap().body, "1 2 3");
    }
}
