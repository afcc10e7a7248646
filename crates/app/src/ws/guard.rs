//! The WebSocket's inbound byte stream, guarded before actix-ws decodes it,
//! and what a decoding error closes the connection with.
//!
//! actix-ws's decoder waits until a whole frame has arrived before it looks
//! at the frame's declared length, and reads everything the socket has into
//! its buffer first: a client that declares a 150 MiB frame makes the server
//! buffer 150 MiB before the frame is refused. [`FrameGuard`] sits between
//! the request payload and that decoder. It reads each frame header itself
//! and fails the stream as soon as a header declares more than the limit,
//! for a single frame or for a fragmented message as it grows, before any of
//! that payload is read. It passes bytes on no further than the end of the
//! current frame, so the decoder never holds more than one frame, and the
//! HTTP layer's own back-pressure stops reading the socket meanwhile.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_ws::ProtocolError;
use futures_core::Stream;

use super::close::CloseCause;

/// The close code for a frame or message over the size limit (RFC 6455 7.4.1).
pub const CLOSE_TOO_LARGE: u16 = 1009;
/// The close code for a text frame that is not UTF-8 (RFC 6455 8.1).
pub const CLOSE_INVALID_UTF8: u16 = 1007;
/// The close code for any other violation of the framing protocol.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// The longest frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER_BYTES: usize = 14;
/// The opcode of a continuation frame (RFC 6455 5.2).
const OPCODE_CONTINUATION: u8 = 0x0;
/// The opcode of a text frame.
const OPCODE_TEXT: u8 = 0x1;
/// The opcode of a binary frame.
const OPCODE_BINARY: u8 = 0x2;

/// A payload stream that refuses frames and fragmented messages declared
/// larger than `limit` bytes, and never runs ahead of the frame being read.
pub struct FrameGuard<S> {
    inner: S,
    limit: u64,
    /// Bytes read from `inner` and not passed on yet.
    pending: Bytes,
    /// The header of the next frame, while it is incomplete.
    header: BytesMut,
    /// Payload bytes of the current frame not passed on yet.
    remaining: u64,
    /// The payload declared so far by an unfinished fragmented message.
    fragmented: Option<u64>,
    /// A frame has just been passed on whole: yield once, so the decoder
    /// takes it before anything more is read.
    at_boundary: bool,
    /// The limit was exceeded: nothing more is read.
    refused: bool,
}

impl<S> FrameGuard<S> {
    /// Guards `inner` with a limit of `limit` bytes per frame and per message.
    pub fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            pending: Bytes::new(),
            header: BytesMut::with_capacity(MAX_HEADER_BYTES),
            remaining: 0,
            fragmented: None,
            at_boundary: false,
            refused: false,
        }
    }

    /// Moves header bytes from `pending` into `header`; whether it is whole.
    fn fill_header(&mut self) -> bool {
        while self.header.len() < header_len(&self.header) && !self.pending.is_empty() {
            let take = (header_len(&self.header) - self.header.len()).min(self.pending.len());
            self.header.extend_from_slice(&self.pending.split_to(take));
        }
        self.header.len() >= header_len(&self.header)
    }

    /// Checks a whole header against the limit and starts its payload.
    fn admit_header(&mut self) -> Result<Bytes, PayloadError> {
        let header = self.header.split().freeze();
        let (fin, opcode, length) = parse_header(&header);
        if length > self.limit {
            return Err(PayloadError::Overflow);
        }
        match opcode {
            OPCODE_CONTINUATION => {
                let total = self.fragmented.unwrap_or(0).saturating_add(length);
                if total > self.limit {
                    return Err(PayloadError::Overflow);
                }
                self.fragmented = (!fin).then_some(total);
            }
            OPCODE_TEXT | OPCODE_BINARY if !fin => self.fragmented = Some(length),
            // Whole messages, control frames (which may interleave with a
            // fragmented message) and bad opcodes (the decoder refuses them).
            _ => {}
        }
        self.remaining = length;
        self.at_boundary = length == 0;
        Ok(header)
    }
}

/// How long the header that starts with `header` is (at least 2 bytes).
fn header_len(header: &[u8]) -> usize {
    let Some(&second) = header.get(1) else {
        return 2;
    };
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 == 0 { 0 } else { 4 };
    2 + extended + mask
}

/// The FIN bit, opcode and declared payload length of a whole header.
fn parse_header(header: &[u8]) -> (bool, u8, u64) {
    let first = header.first().copied().unwrap_or_default();
    let second = header.get(1).copied().unwrap_or_default();
    let length = match second & 0x7F {
        126 => header
            .get(2..4)
            .and_then(|bytes| <[u8; 2]>::try_from(bytes).ok())
            .map_or(u64::MAX, |bytes| u64::from(u16::from_be_bytes(bytes))),
        127 => header
            .get(2..10)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map_or(u64::MAX, u64::from_be_bytes),
        short => u64::from(short),
    };
    (first & 0x80 != 0, first & 0x0F, length)
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        if this.at_boundary {
            this.at_boundary = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if this.pending.is_empty() {
                match Pin::new(&mut this.inner).poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => this.pending = bytes,
                    other => return other,
                }
                continue;
            }
            if this.remaining > 0 {
                let take = usize::try_from(this.remaining)
                    .unwrap_or(usize::MAX)
                    .min(this.pending.len());
                this.remaining -= take as u64;
                this.at_boundary = this.remaining == 0;
                return Poll::Ready(Some(Ok(this.pending.split_to(take))));
            }
            if this.fill_header() {
                let admitted = this.admit_header();
                this.refused = admitted.is_err();
                return Poll::Ready(Some(admitted));
            }
        }
    }
}

/// How a connection whose client stream failed with `error` ends: why it
/// is closed, or `None` when the peer is gone.
pub fn close_for(error: &ProtocolError) -> Option<CloseCause> {
    match error {
        ProtocolError::Overflow => Some(CloseCause::FrameTooLarge),
        ProtocolError::Io(io) => match io.get_ref() {
            Some(inner) => match inner.downcast_ref::<PayloadError>() {
                Some(PayloadError::Overflow) => Some(CloseCause::FrameTooLarge),
                // The connection broke under the stream.
                Some(_) => None,
                None if is_too_large(io) => Some(CloseCause::MessageTooLarge),
                None if is_invalid_utf8(io, inner) => Some(CloseCause::InvalidUtf8),
                None => Some(CloseCause::ProtocolError),
            },
            None => Some(CloseCause::ProtocolError),
        },
        _ => Some(CloseCause::ProtocolError),
    }
}

/// actix-ws reports a fragmented message over its own limit as an I/O error
/// with this text (the guard refuses them first; this is the second line).
fn is_too_large(io: &io::Error) -> bool {
    io.to_string() == "Exceeded maximum continuation size"
}

/// actix-ws reports a text frame that is not UTF-8 as an `InvalidData` I/O
/// error holding the `Utf8Error` (single frames) or its text (assembled ones).
fn is_invalid_utf8(
    io: &io::Error,
    inner: &(dyn std::error::Error + Send + Sync + 'static),
) -> bool {
    if io.kind() != io::ErrorKind::InvalidData {
        return false;
    }
    if inner.downcast_ref::<std::str::Utf8Error>().is_some() {
        return true;
    }
    let text = inner.to_string();
    text.starts_with("invalid utf-8") || text.starts_with("incomplete utf-8")
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use futures_util::StreamExt;

    use super::*;

    /// A payload that yields these chunks, then ends.
    struct Chunks(VecDeque<Bytes>);

    impl Stream for Chunks {
        type Item = Result<Bytes, PayloadError>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    const LIMIT: usize = 1000;

    /// A masked client frame header declaring `length` bytes.
    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=0xFFFF => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&length.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes
    }

    /// Everything the guard passes on, until it ends or refuses.
    async fn run(chunks: Vec<Vec<u8>>) -> (Vec<u8>, Option<PayloadError>) {
        let inner = Chunks(chunks.into_iter().map(Bytes::from).collect());
        let mut guard = FrameGuard::new(inner, LIMIT);
        let mut out = Vec::new();
        while let Some(item) = guard.next().await {
            match item {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(error) => return (out, Some(error)),
            }
        }
        (out, None)
    }

    #[actix_web::test]
    async fn frames_within_the_limit_pass_unchanged_even_split_anywhere() {
        let mut stream = header(true, OPCODE_TEXT, 5);
        stream.extend_from_slice(b"hello");
        stream.extend(header(true, OPCODE_BINARY, 300));
        stream.extend(vec![7; 300]);
        stream.extend(header(true, 0x9, 0));
        let chunks: Vec<Vec<u8>> = stream.chunks(3).map(<[u8]>::to_vec).collect();
        let (out, error) = run(chunks).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(out, stream);
    }

    #[actix_web::test]
    async fn a_header_declaring_too_much_is_refused_before_its_payload() {
        let mut first = header(true, OPCODE_TEXT, 100 * 1024 * 1024);
        first.extend(vec![0; 10]);
        let (out, error) = run(vec![first, vec![0; 100]]).await;
        assert!(out.is_empty(), "passed on {} bytes", out.len());
        assert!(matches!(error, Some(PayloadError::Overflow)), "{error:?}");
        let (_, error) = run(vec![header(true, OPCODE_BINARY, LIMIT as u64 + 1)]).await;
        assert!(matches!(error, Some(PayloadError::Overflow)), "{error:?}");
        let (_, error) = run(vec![header(true, OPCODE_BINARY, LIMIT as u64)]).await;
        assert!(error.is_none(), "{error:?}");
    }

    #[actix_web::test]
    async fn a_fragmented_message_is_refused_when_it_grows_past_the_limit() {
        let mut stream = header(false, OPCODE_TEXT, 400);
        stream.extend(vec![b'a'; 400]);
        // A ping between fragments does not count.
        stream.extend(header(true, 0x9, 100));
        stream.extend(vec![0; 100]);
        stream.extend(header(false, OPCODE_CONTINUATION, 400));
        stream.extend(vec![b'b'; 400]);
        let accepted = stream.len();
        stream.extend(header(true, OPCODE_CONTINUATION, 201));
        let (out, error) = run(vec![stream]).await;
        assert_eq!(out.len(), accepted);
        assert!(matches!(error, Some(PayloadError::Overflow)), "{error:?}");
    }

    #[actix_web::test]
    async fn a_finished_fragmented_message_frees_its_budget() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend(header(false, OPCODE_TEXT, 600));
            stream.extend(vec![b'a'; 600]);
            stream.extend(header(true, OPCODE_CONTINUATION, 400));
            stream.extend(vec![b'b'; 400]);
        }
        let (out, error) = run(vec![stream.clone()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(out, stream);
    }

    #[test]
    fn decoding_errors_close_with_their_rfc_6455_codes() {
        let utf8 = String::from_utf8(vec![0xC3, 0x28])
            .unwrap_err()
            .utf8_error();
        let cases = [
            (ProtocolError::Overflow, Some(CLOSE_TOO_LARGE)),
            (
                ProtocolError::Io(io::Error::other(PayloadError::Overflow)),
                Some(CLOSE_TOO_LARGE),
            ),
            (
                ProtocolError::Io(io::Error::other(PayloadError::Incomplete(None))),
                None,
            ),
            (
                ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, utf8)),
                Some(CLOSE_INVALID_UTF8),
            ),
            (
                ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, utf8.to_string())),
                Some(CLOSE_INVALID_UTF8),
            ),
            (
                ProtocolError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "Received a frame with non-zero reserved bits",
                )),
                Some(CLOSE_PROTOCOL_ERROR),
            ),
            (ProtocolError::UnmaskedFrame, Some(CLOSE_PROTOCOL_ERROR)),
        ];
        for (error, code) in cases {
            assert_eq!(close_for(&error).map(CloseCause::code), code, "{error:?}");
        }
    }
}
