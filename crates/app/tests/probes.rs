//! The defects an outside probe found (issue #10), replayed over raw TCP
//! against a real server: WebSocket frame headers that declare more than
//! the limit, fragmented messages that grow past it, and request bodies
//! that the endpoint never reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::iter;
use std::time::Duration;

use serde_json::{Value, json};

use actix_web::http::StatusCode;
use common::Backend;
use common::raw::{self, CONTINUATION, TEXT};

/// What the probe sends: far more than the server may hold.
const HUGE: u64 = 100 * 1024 * 1024;
/// The client writes this much at a time...
const CHUNK: usize = 64 * 1024;
/// ...this often: at most 16 MiB/s, so sending all of [`HUGE`] takes over
/// six seconds, far longer than the server may keep reading.
const PAUSE: Duration = Duration::from_millis(4);

/// Asserts that the server closed the connection 1009 and dropped it while
/// the client still had most of [`HUGE`] to send.
fn assert_refused_early(flood: &raw::Flood) {
    let frames = raw::server_frames(&flood.received);
    assert_eq!(raw::close_code(&frames), Some(1009), "{frames:?}");
    assert!(
        flood.closed_by_server && flood.written_when_closed < HUGE / 2,
        "the server was still reading after {} of {HUGE} bytes",
        flood.written_when_closed
    );
}

async fn a_header_declaring_over_64_kib_closes_1009_before_the_payload(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    // Unauthenticated: the frame stands where the `auth` frame should.
    let stream = raw::ws_upgrade(&app, None).await;
    let header = raw::frame_header(true, TEXT, HUGE);
    let payload = iter::repeat_n(vec![b' '; CHUNK], HUGE as usize / CHUNK);
    let flood = raw::flood(stream, iter::once(header).chain(payload), PAUSE).await;
    assert_refused_early(&flood);
}

async fn fragments_growing_past_64_kib_close_1009_as_they_grow(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let stream = raw::ws_upgrade(&app, None).await;
    // An unfinished text message, then continuation frames of 64 KiB less
    // their header (each one under the limit), for as long as it is read.
    let fragment = vec![b' '; CHUNK - 14];
    let first = raw::frame(false, TEXT, &fragment);
    let rest = iter::repeat_n(
        raw::frame(false, CONTINUATION, &fragment),
        HUGE as usize / CHUNK,
    );
    let flood = raw::flood(stream, iter::once(first).chain(rest), PAUSE).await;
    assert_refused_early(&flood);
}

/// The server's frames, until it ends the connection, after `frames` were
/// sent on a fresh connection authenticated with `token`.
async fn answer_to(app: &common::TestApp, token: &str, frames: Vec<Vec<u8>>) -> Vec<(u8, Vec<u8>)> {
    let stream = raw::ws_upgrade(app, Some(token)).await;
    let flood = raw::flood(stream, frames.into_iter(), Duration::ZERO).await;
    raw::server_frames(&flood.received)
}

async fn text_that_is_not_utf8_closes_1007(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let token = app.user("ann@example.com").await.token;
    // "ab" then a lone continuation byte: not UTF-8.
    let bad = [b'a', b'b', 0x80];
    let frames = answer_to(&app, &token, vec![raw::frame(true, TEXT, &bad)]).await;
    assert_eq!(raw::close_code(&frames), Some(1007), "{frames:?}");
    // The same split over fragments: judged once assembled.
    let fragments = vec![
        raw::frame(false, TEXT, &bad[..2]),
        raw::frame(true, CONTINUATION, &bad[2..]),
    ];
    let frames = answer_to(&app, &token, fragments).await;
    assert_eq!(raw::close_code(&frames), Some(1007), "{frames:?}");
    // Other framing errors stay 1002: a continuation with nothing to continue.
    let frames = answer_to(&app, &token, vec![raw::frame(true, CONTINUATION, b"x")]).await;
    assert_eq!(raw::close_code(&frames), Some(1002), "{frames:?}");
}

mod websocket {
    use super::*;

    on_both_stores!(
        a_header_declaring_over_64_kib_closes_1009_before_the_payload,
        fragments_growing_past_64_kib_close_1009_as_they_grow,
        text_that_is_not_utf8_closes_1007,
    );
}

async fn nul_and_control_characters_in_text_are_400_not_500(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    let ann = app.user("ann@example.com").await;
    let token = ann.token.as_str();
    // The probe.
    for q in ["%00", "a%00b", "%1B%5B31m", "a%0Ab"] {
        let reply = app.get(&format!("/rooms/public?q={q}"), Some(token)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "q={q}: {reply:?}");
        assert_eq!(reply.error_code(), "invalid_query", "q={q}");
    }
    let fine = app.get("/rooms/public?q=%20gen%20", Some(token)).await;
    assert_eq!(fine.status, StatusCode::OK, "{fine:?}");

    let create = |body: Value| app.call("POST", "/rooms", token, Some(body));
    let reply = create(json!({ "name": "a\u{0}b" })).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );
    let reply = create(json!({ "name": "ok", "topic": "a\u{0}b" })).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_topic")
    );
    let room = app.create_room(&ann, json!({ "name": "ok" })).await;
    let room = room["id"].as_str().unwrap();
    let reply = app
        .call(
            "PATCH",
            &format!("/rooms/{room}"),
            token,
            Some(json!({ "topic": "\u{0}" })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_topic")
    );
    let messages = format!("/rooms/{room}/messages");
    for (body, code) in [
        (json!({ "body": "a\u{0}b" }), "invalid_body"),
        (json!({ "body": "a\u{1b}b" }), "invalid_body"),
        (
            json!({ "body": "ok", "client_msg_id": "a\u{0}" }),
            "invalid_client_msg_id",
        ),
    ] {
        let reply = app.call("POST", &messages, token, Some(body.clone())).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let reply = app
        .call(
            "POST",
            &messages,
            token,
            Some(json!({ "body": "two\nlines\tand a tab" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let reply = app
        .call(
            "PATCH",
            "/users/me",
            token,
            Some(json!({ "display_name": "a\u{0}" })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_display_name")
    );
    let reply = app
        .post(
            "/session/register",
            json!({ "email": "a\u{0}@example.com", "password": common::digest("pw") }),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_email")
    );
}

on_both_stores!(nul_and_control_characters_in_text_are_400_not_500);

/// `GET /ready` (which reads no body) with a chunked body of `size`
/// bytes in chunks of `chunk`, terminated or not.
fn ready_with_chunked_body(size: usize, chunk: usize, terminated: bool) -> Vec<Vec<u8>> {
    let head = b"GET /ready HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut writes = vec![head.to_vec()];
    for _ in 0..size / chunk {
        let mut write = format!("{chunk:x}\r\n").into_bytes();
        write.extend(vec![b'a'; chunk]);
        write.extend(b"\r\n");
        writes.push(write);
    }
    if terminated {
        writes.push(b"0\r\n\r\n".to_vec());
    }
    writes
}

async fn an_unread_request_body_does_not_keep_the_connection_open(backend: Backend) {
    let Some(app) = backend.spawn(&[]).await else {
        return;
    };
    const BODY: usize = 256 * 1024;
    let shapes = [
        // The probe: one chunk, all at once (open forever on PostgreSQL,
        // whose `/ready` waits for the database while the body arrives).
        (
            "one chunk at once",
            ready_with_chunked_body(BODY, BODY, true),
            Duration::ZERO,
        ),
        (
            "never terminated",
            ready_with_chunked_body(BODY, BODY, false),
            Duration::ZERO,
        ),
        (
            "small chunks",
            ready_with_chunked_body(BODY, 1024, true),
            Duration::ZERO,
        ),
        // A body that trickles in for far longer than the server lingers.
        (
            "trickling",
            ready_with_chunked_body(100 * BODY, 1024, true),
            Duration::from_millis(20),
        ),
    ];
    for (shape, writes, pause) in shapes {
        let stream = raw::connect(&app).await;
        let flood = raw::flood(stream, writes.into_iter(), pause).await;
        let answer = String::from_utf8_lossy(&flood.received);
        assert!(answer.starts_with("HTTP/1.1 200"), "{shape}: {answer}");
        assert!(
            flood.ended,
            "{shape}: the connection stayed open after {answer}"
        );
    }
}

mod unread_body {
    use super::*;

    on_both_stores!(an_unread_request_body_does_not_keep_the_connection_open);
}
