//! The near-limit reference: a minimal broadcast WebSocket server written
//! for the bench, with no storage and no authentication, to show what this
//! machine delivers when nothing but fan-out is done. A connection names
//! its rooms in the upgrade's query (`/ws?rooms=0,5`); a client frame
//! `{"room": i, "body": "..."}` is encoded once as p-chat's `message` event
//! shape and the same bytes are queued to every connection of room `i`.
//! One task per connection, a bounded queue each; a frame for a full queue
//! is dropped (the bench reports it as lost).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::error::BenchError;
use crate::fanout::{DISABLE_NAGLE, WsStream};
use crate::wire::DeliveredMessage;

/// Frames queued for one connection before further ones are dropped
/// (p-chat's `WS_QUEUE_CAPACITY` default).
const QUEUE_CAPACITY: usize = 256;

/// A client frame: a body for a room.
#[derive(Deserialize)]
struct Incoming<'a> {
    room: u64,
    #[serde(borrow)]
    body: &'a str,
}

/// The delivered frame, shaped like p-chat's `message` event.
#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: u64,
    #[serde(borrow)]
    message: DeliveredMessage<'a>,
}

/// A room's subscribers: each connection's id and queue.
type Subscribers = Vec<(u64, mpsc::Sender<Utf8Bytes>)>;

/// Which connections' queues each room delivers to.
#[derive(Default)]
struct Hub {
    rooms: RwLock<HashMap<u64, Subscribers>>,
    dropped: AtomicU64,
}

impl Hub {
    fn subscribe(&self, connection: u64, rooms: &[u64], queue: &mpsc::Sender<Utf8Bytes>) {
        let mut map = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        for room in rooms {
            map.entry(*room)
                .or_default()
                .push((connection, queue.clone()));
        }
    }

    fn unsubscribe(&self, connection: u64, rooms: &[u64]) {
        let mut map = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        for room in rooms {
            if let Some(subscribers) = map.get_mut(room) {
                subscribers.retain(|(id, _)| *id != connection);
                if subscribers.is_empty() {
                    map.remove(room);
                }
            }
        }
    }

    /// Queues the same bytes to every subscriber of `room`.
    fn broadcast(&self, room: u64, frame: &Utf8Bytes) {
        let map = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        for (_, queue) in map.get(&room).into_iter().flatten() {
            if queue.try_send(frame.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A running reference server.
#[derive(Debug)]
pub struct Reference {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Reference {
    /// Listens on `address` (port 0 picks a free one) and serves in the background.
    pub async fn start(address: SocketAddr) -> Result<Self, BenchError> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(accept(listener, Arc::new(Hub::default())));
        Ok(Self { address, task })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the process ends (the accept loop never returns on its own).
    pub async fn run(mut self) -> Result<(), BenchError> {
        Ok((&mut self.task).await?)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, hub: Arc<Hub>) {
    let mut next_id = 0_u64;
    loop {
        // A failed accept (out of descriptors) is retried with the next one.
        if let Ok((stream, _)) = listener.accept().await {
            next_id += 1;
            tokio::spawn(serve(stream, Arc::clone(&hub), next_id));
        }
    }
}

async fn serve(stream: TcpStream, hub: Arc<Hub>, id: u64) {
    // Nagle would hold small frames back: every frame counts here.
    let _ = stream.set_nodelay(true);
    let mut rooms = Vec::new();
    // tungstenite's handshake callback type fixes the error variant.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        rooms = rooms_of(request.uri().query());
        Ok(response)
    };
    let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (queue, mut outgoing) = mpsc::channel(QUEUE_CAPACITY);
    hub.subscribe(id, &rooms, &queue);
    drop(queue);
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some((room, bytes)) = encode(&text) {
                        hub.broadcast(room, &bytes);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            Some(frame) = outgoing.recv() => {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    break;
                }
                let mut failed = false;
                while let Ok(frame) = outgoing.try_recv() {
                    if sink.feed(Message::Text(frame)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    hub.unsubscribe(id, &rooms);
}

/// The rooms of `rooms=0,5` in a query; anything unreadable is no room.
fn rooms_of(query: Option<&str>) -> Vec<u64> {
    query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.strip_prefix("rooms="))
        .flat_map(|list| list.split(','))
        .filter_map(|room| room.parse().ok())
        .collect()
}

/// A client frame's room and its delivered frame, encoded once.
fn encode(text: &str) -> Option<(u64, Utf8Bytes)> {
    let incoming: Incoming<'_> = serde_json::from_str(text).ok()?;
    let outgoing = Outgoing {
        kind: "message",
        room_id: incoming.room,
        message: DeliveredMessage {
            body: incoming.body,
        },
    };
    let encoded = serde_json::to_string(&outgoing).ok()?;
    Some((incoming.room, Utf8Bytes::from(encoded)))
}

/// A client connection to the reference subscribed to `room`.
pub async fn connect(authority: &str, room: usize) -> Result<WsStream, BenchError> {
    let (socket, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{authority}/ws?rooms={room}"),
        None,
        DISABLE_NAGLE,
    )
    .await?;
    Ok(socket)
}

/// The frame a client sends to put `body` in `room`.
pub fn send_frame(room: usize, body: &str) -> String {
    format!(r#"{{"room":{room},"body":"{body}"}}"#)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
    use super::*;
    use crate::wire::Delivered;

    #[test]
    fn rooms_are_read_from_the_query() {
        assert_eq!(rooms_of(Some("rooms=0,5,x&other=1")), vec![0, 5]);
        assert!(rooms_of(None).is_empty());
    }

    #[test]
    fn a_client_frame_becomes_a_message_event_the_bench_reads() {
        let (room, bytes) = encode(&send_frame(3, "3 0 10")).unwrap();
        assert_eq!(room, 3);
        let delivered: Delivered<'_> = serde_json::from_str(bytes.as_str()).unwrap();
        assert_eq!(delivered.kind, "message");
        assert_eq!(delivered.message.unwrap().body, "3 0 10");
    }
}
