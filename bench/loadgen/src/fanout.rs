//! The fan-out run: `rooms × members` connections (one per member), one
//! sender per room (its first member), open-loop sends at a fixed total
//! rate spread evenly over the rooms, and at every receiver the latency from
//! each message's **scheduled** send time to its receipt (a sender that
//! falls behind does not hide the delay: coordinated omission), plus the
//! messages lost, duplicated and reordered against the per-room sequence in
//! the body.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::BenchError;
use crate::http::Api;
use crate::wire::{Body, Delivered};
use crate::{pchat, reference};

/// A client WebSocket as both targets' connections are.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Client sockets send each frame at once: Nagle's algorithm (with the
/// peer's delayed ACK) would add tens of ms that are no server's doing.
pub const DISABLE_NAGLE: bool = true;
/// Connections opened at once during setup.
const CONNECT_CONCURRENCY: usize = 64;
/// How often the end of a run checks whether every delivery arrived.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// Lead time between the end of the setup and the first scheduled send.
const START_LEAD: Duration = Duration::from_millis(200);
/// The longest latency the histogram holds, in µs (longer ones are clamped).
const MAX_LATENCY_US: u64 = 600_000_000;
/// Significant decimal digits of the histogram.
const HISTOGRAM_DIGITS: u8 = 3;

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// p-chat: accounts, rooms and authenticated sockets through its API.
    PChat,
    /// The bench's reference broadcast server (`p-chat-bench reference`).
    Reference,
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::PChat => "p-chat",
            Self::Reference => "reference",
        })
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The server measured.
    pub target: Target,
    /// Its base URL, `http://host:port`.
    pub url: String,
    /// Rooms, each with its own sender.
    pub rooms: usize,
    /// Members (connections) per room, the sender included.
    pub members: usize,
    /// Messages per second offered, over all rooms together.
    pub rate: f64,
    /// How long the sends go on.
    pub duration: Duration,
    /// How long after the last send a missing delivery is still waited for.
    pub grace: Duration,
}

impl FanoutConfig {
    /// The messages the run sends: `rate × duration`.
    pub fn total_messages(&self) -> u64 {
        // A count of messages: the product is small and non-negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let total = (self.rate * self.duration.as_secs_f64()).round() as u64;
        total
    }

    /// The messages of `room`: global message `g` goes to room `g % rooms`.
    fn messages_of(&self, room: usize) -> u64 {
        let (total, rooms, room) = (self.total_messages(), self.rooms as u64, room as u64);
        if room >= total {
            0
        } else {
            (total - room).div_ceil(rooms)
        }
    }

    /// When message `seq` of `room` is due, after the run's start.
    fn due(&self, room: usize, seq: u64) -> Duration {
        #[allow(clippy::cast_precision_loss)] // message counts stay far below 2^52
        let global = (seq * self.rooms as u64 + room as u64) as f64;
        Duration::from_secs_f64(global / self.rate)
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The server measured.
    pub target: Target,
    /// Messages per second offered.
    pub offered_rate: f64,
    /// Deliveries expected: messages × members.
    pub expected: u64,
    /// Distinct deliveries received.
    pub delivered: u64,
    /// Distinct deliveries per second, from the start to the last receipt.
    pub deliveries_per_second: f64,
    /// Expected deliveries that had not arrived by the end of the grace period.
    pub lost: u64,
    /// Deliveries received again.
    pub duplicated: u64,
    /// Deliveries that arrived after a later message of the same room.
    pub reordered: u64,
    /// `error` frames the target sent (a rate limit, a refused send).
    pub errors: u64,
    /// Messages not sent because the sender's connection was closed (by
    /// an overloaded server); their deliveries count as lost too.
    pub unsent: u64,
    /// Latencies recorded, in µs from the scheduled send.
    pub latency_us: Histogram<u64>,
}

impl Report {
    /// The latency at quantile `q`, in ms.
    pub fn latency_ms(&self, q: f64) -> f64 {
        #[allow(clippy::cast_precision_loss)] // µs latencies stay far below 2^52
        let us = self.latency_us.value_at_quantile(q) as f64;
        us / 1000.0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} offered {:.0} msg/s: {:.0} deliveries/s ({}/{}), p50 {:.1} ms, p99 {:.1} ms, p999 {:.1} ms, lost {}, dup {}, reordered {}, errors {}, unsent {}",
            self.target,
            self.offered_rate,
            self.deliveries_per_second,
            self.delivered,
            self.expected,
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.lost,
            self.duplicated,
            self.reordered,
            self.errors,
            self.unsent,
        )
    }
}

/// What one receiving connection saw.
struct Seen {
    /// Per message of its room: received already.
    received: Vec<bool>,
    highest: Option<u64>,
    delivered: u64,
    duplicated: u64,
    reordered: u64,
    errors: u64,
    last_receipt: Option<Instant>,
    latency_us: Histogram<u64>,
}

/// A `send` frame of p-chat's protocol.
#[derive(Serialize)]
struct PchatSend<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: &'a str,
    body: &'a str,
    client_msg_id: &'a str,
}

/// Sets up the target, runs the sends and collects every receiver's counts.
pub async fn run(config: &FanoutConfig) -> Result<Report, BenchError> {
    if config.rooms == 0 || config.members == 0 || config.rate <= 0.0 {
        return Err(BenchError::new("rooms, members and rate must be positive"));
    }
    let api = Api::new(&config.url)?;
    let authority = api.authority().to_owned();
    // Per room: the name `send` frames give it, and each member's socket.
    let rooms: Vec<(String, Vec<WsStream>)> = match config.target {
        Target::Reference => {
            stream::iter(0..config.rooms)
                .then(|room| {
                    let authority = authority.clone();
                    async move {
                        let sockets = stream::iter(0..config.members)
                            .map(|_| reference::connect(&authority, room))
                            .buffered(CONNECT_CONCURRENCY)
                            .try_collect()
                            .await?;
                        Ok::<_, BenchError>((room.to_string(), sockets))
                    }
                })
                .try_collect()
                .await?
        }
        Target::PChat => {
            let set_up = pchat::set_up(&api, config.rooms, config.members).await?;
            let mut rooms = Vec::with_capacity(set_up.len());
            for room in set_up {
                let sockets = stream::iter(room.tokens.iter())
                    .map(|token| pchat::connect(&authority, token))
                    .buffered(CONNECT_CONCURRENCY)
                    .try_collect()
                    .await?;
                rooms.push((room.id, sockets));
            }
            rooms
        }
    };

    let start = Instant::now() + START_LEAD;
    let distinct = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (index, (name, sockets)) in rooms.into_iter().enumerate() {
        let messages = config.messages_of(index);
        for (member, socket) in sockets.into_iter().enumerate() {
            let (sink, incoming) = socket.split();
            if member == 0 {
                senders.push(tokio::spawn(send(
                    config.clone(),
                    index,
                    name.clone(),
                    sink,
                    start,
                )));
            }
            let seen = Seen {
                received: vec![false; usize::try_from(messages).unwrap_or(usize::MAX)],
                highest: None,
                delivered: 0,
                duplicated: 0,
                reordered: 0,
                errors: 0,
                last_receipt: None,
                latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, HISTOGRAM_DIGITS)
                    .map_err(|error| BenchError::new(format!("histogram: {error}")))?,
            };
            receivers.push(tokio::spawn(receive(
                incoming,
                seen,
                start,
                Arc::clone(&distinct),
                stopped.clone(),
            )));
        }
    }

    // Senders' halves of their sockets stay open until the receivers are done.
    let mut sinks = Vec::with_capacity(senders.len());
    let mut unsent = 0;
    for sender in senders {
        let sent = sender.await??;
        unsent += sent.unsent;
        sinks.push(sent.sink);
    }
    let expected = config.total_messages() * config.members as u64;
    let deadline = Instant::now() + config.grace;
    while distinct.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    // Every receiver watches this; none gone is no failure to report.
    let _ = stop.send(true);

    let mut latency_us = Histogram::new_with_bounds(1, MAX_LATENCY_US, HISTOGRAM_DIGITS)
        .map_err(|error| BenchError::new(format!("histogram: {error}")))?;
    let mut report = Report {
        target: config.target,
        offered_rate: config.rate,
        expected,
        delivered: 0,
        deliveries_per_second: 0.0,
        lost: 0,
        duplicated: 0,
        reordered: 0,
        errors: 0,
        unsent,
        latency_us: latency_us.clone(),
    };
    let mut last_receipt = start;
    for receiver in receivers {
        let seen = receiver.await?;
        report.delivered += seen.delivered;
        report.duplicated += seen.duplicated;
        report.reordered += seen.reordered;
        report.errors += seen.errors;
        report.lost += seen.received.iter().filter(|received| !**received).count() as u64;
        last_receipt = last_receipt.max(seen.last_receipt.unwrap_or(start));
        latency_us
            .add(&seen.latency_us)
            .map_err(|error| BenchError::new(format!("histogram: {error}")))?;
    }
    report.latency_us = latency_us;
    let elapsed = last_receipt.duration_since(start).as_secs_f64();
    if elapsed > 0.0 {
        #[allow(clippy::cast_precision_loss)] // delivery counts stay far below 2^52
        let rate = report.delivered as f64 / elapsed;
        report.deliveries_per_second = rate;
    }
    for mut sink in sinks {
        // The run is over: a close that fails changes no count.
        let _ = sink.close().await;
    }
    Ok(report)
}

/// What a sender did: its half of the socket (kept open until the end of
/// the run) and the messages it could not send.
struct Sent {
    sink: SplitSink<WsStream, Message>,
    unsent: u64,
}

/// Sends room `room`'s messages on schedule: each when due, or at once (in
/// one write) when the sender is behind; the body carries the due time. A
/// connection the server closed ends the sending; the rest counts as unsent
/// (and lost), so an overloaded server is measured rather than aborting the run.
async fn send(
    config: FanoutConfig,
    room: usize,
    name: String,
    mut sink: SplitSink<WsStream, Message>,
    start: Instant,
) -> Result<Sent, BenchError> {
    let messages = config.messages_of(room);
    let mut seq = 0;
    while seq < messages {
        tokio::time::sleep_until(start + config.due(room, seq)).await;
        let now = Instant::now();
        let mut batch = Vec::new();
        while seq < messages && start + config.due(room, seq) <= now {
            let due = config.due(room, seq);
            let body = Body {
                room,
                seq,
                scheduled_us: u64::try_from(due.as_micros()).unwrap_or(u64::MAX),
            }
            .encode();
            batch.push(match config.target {
                Target::Reference => reference::send_frame(room, &body),
                Target::PChat => serde_json::to_string(&PchatSend {
                    kind: "send",
                    room_id: &name,
                    body: &body,
                    client_msg_id: &format!("m{seq}"),
                })?,
            });
            seq += 1;
        }
        let sent = batch.len() as u64;
        let mut frames = stream::iter(batch.into_iter().map(|frame| Ok(Message::text(frame))));
        if sink.send_all(&mut frames).await.is_err() {
            return Ok(Sent {
                sink,
                unsent: messages - seq + sent,
            });
        }
    }
    Ok(Sent { sink, unsent: 0 })
}

/// Counts one connection's deliveries until told to stop.
async fn receive(
    mut incoming: SplitStream<WsStream>,
    mut seen: Seen,
    start: Instant,
    distinct: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) -> Seen {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            frame = incoming.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        };
        let now = Instant::now();
        let Ok(delivered) = serde_json::from_str::<Delivered<'_>>(&text) else {
            continue;
        };
        if delivered.kind == "error" {
            seen.errors += 1;
        }
        let Some(body) = delivered
            .message
            .filter(|_| delivered.kind == "message")
            .and_then(|message| Body::parse(message.body))
        else {
            continue;
        };
        let Some(slot) = usize::try_from(body.seq)
            .ok()
            .and_then(|seq| seen.received.get_mut(seq))
        else {
            continue;
        };
        if *slot {
            seen.duplicated += 1;
            continue;
        }
        *slot = true;
        seen.delivered += 1;
        distinct.fetch_add(1, Ordering::Relaxed);
        if seen.highest.is_some_and(|highest| body.seq < highest) {
            seen.reordered += 1;
        }
        seen.highest = seen.highest.max(Some(body.seq));
        seen.last_receipt = Some(now);
        let received_us = u64::try_from(now.duration_since(start).as_micros()).unwrap_or(u64::MAX);
        seen.latency_us
            .saturating_record(received_us.saturating_sub(body.scheduled_us).max(1));
    }
    seen
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
    use super::*;

    fn config(rate: f64, seconds: u64, rooms: usize) -> FanoutConfig {
        FanoutConfig {
            target: Target::Reference,
            url: "http://127.0.0.1:1".to_owned(),
            rooms,
            members: 3,
            rate,
            duration: Duration::from_secs(seconds),
            grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_messages_are_spread_over_the_rooms_and_add_up() {
        let config = config(10.0, 1, 3);
        let per_room: Vec<u64> = (0..3).map(|room| config.messages_of(room)).collect();
        assert_eq!(per_room, vec![4, 3, 3]);
        assert_eq!(per_room.iter().sum::<u64>(), config.total_messages());
    }

    #[test]
    fn the_schedule_interleaves_the_rooms_at_the_offered_rate() {
        let config = config(100.0, 1, 2);
        assert_eq!(config.due(0, 0), Duration::ZERO);
        assert_eq!(config.due(1, 0), Duration::from_millis(10));
        assert_eq!(config.due(0, 1), Duration::from_millis(20));
    }
}
