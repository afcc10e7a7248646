//! One task per connection: authenticate, subscribe, then serve client
//! frames, room events, heartbeats, token expiry and shutdown from a single
//! loop, so everything one connection sends is naturally ordered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use chrono::Utc;
use p_chat_domain::DomainError;
use p_chat_domain::events::{Broadcast, Change, EventQuery, RoomEvent};
use p_chat_domain::message::{Draft, HistoryQuery, MessageId, PageLimit, Seq};
use p_chat_domain::ports::{Delivery, Shared, Subscriber, Subscription};
use p_chat_domain::position::Pos;
use p_chat_domain::room::{Room, RoomId};
use p_chat_domain::services::Principal;
use p_chat_domain::user::UserId;
use tokio::time::{Instant, interval, sleep_until, timeout};

use super::admission::Admission;
use super::close::CloseCause;
use super::guard;
use super::protocol::{self, ClientFrame, Outgoing, SyncFrom};
use super::rate::TokenBucket;
use crate::http::error::ApiError;
use crate::http::views::MessageView;
use crate::metrics::{self, FrameIn};
use crate::state::AppState;

/// How long a client has to authenticate with a first `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one outgoing frame may wait for a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new connection waits for the fan-out to listen for its rooms
/// and user (a round trip to Redis across nodes) before it goes on anyway.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a close frame may wait behind a backlog a slow client is still
/// reading, before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection ends.
enum End {
    /// Send a close frame with this cause's code and reason.
    Close(CloseCause),
    /// The peer is gone; nothing more can be sent.
    Gone,
}

type Outcome<T = ()> = Result<T, End>;

/// Serves one WebSocket until it ends, then closes it with the right code.
pub async fn run(
    state: Arc<AppState>,
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
    header_token: Option<String>,
    admission: Admission,
) {
    let _open = metrics::OpenConnection::new();
    let mut connection = Connection {
        admission,
        bucket: TokenBucket::new(state.ws.rate_burst, state.ws.rate_per_second),
        state,
        session,
        stream,
        last_heard: Instant::now(),
    };
    let end = match connection.serve(header_token).await {
        Ok(()) => End::Close(CloseCause::ClientClosed),
        Err(end) => end,
    };
    match end {
        End::Close(cause) => {
            metrics::closed(Some(cause.code()), cause.label());
            let reason = CloseReason {
                code: CloseCode::from(cause.code()),
                description: Some(cause.reason().to_owned()),
            };
            let _ = timeout(CLOSE_TIMEOUT, connection.session.close(Some(reason))).await;
        }
        End::Gone => metrics::closed(None, metrics::PEER_GONE),
    }
}

struct Connection {
    state: Arc<AppState>,
    session: actix_ws::Session,
    stream: AggregatedMessageStream,
    bucket: TokenBucket,
    last_heard: Instant,
    /// The connection slots this socket holds (released when it ends).
    admission: Admission,
}

/// An authenticated connection's state.
struct Live {
    principal: Principal,
    /// Where this connection is in each room it follows.
    cursors: HashMap<RoomId, Cursor>,
}

/// How far a connection has got in one room.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The position of the last event delivered (live events at or below
    /// it are repeats, or belong to a `sync`; the next one due is `pos + 1`).
    pos: Pos,
    /// The highest message seq sent, live or by a `sync` from `after_seq`
    /// (so that a client of the protocol before positions gets no message
    /// twice).
    seq: Seq,
}

impl Cursor {
    /// Where a connection starts in `room` as it is now.
    fn at(room: &Room) -> Self {
        Self {
            pos: room.last_pos,
            seq: room.last_seq,
        }
    }
}

fn unauthenticated(error: DomainError) -> End {
    match error {
        DomainError::Unavailable(_) => End::Close(CloseCause::Unavailable),
        _ => End::Close(CloseCause::AuthFailed),
    }
}

/// The wall-clock expiry of a token as a timer deadline.
fn deadline(principal: &Principal) -> Instant {
    let left = (principal.expires_at - Utc::now())
        .to_std()
        .unwrap_or_default();
    Instant::now() + left
}

impl Connection {
    async fn serve(&mut self, header_token: Option<String>) -> Outcome {
        let principal = match header_token {
            Some(token) => self
                .state
                .sessions
                .authenticate(&token)
                .await
                .map_err(unauthenticated)?,
            None => self.await_auth_frame().await?,
        };
        self.admission
            .admit(principal.user_id)
            .map_err(|_| End::Close(CloseCause::TooManyConnections))?;
        let user = principal.user_id;
        let rooms = self.member_rooms(&principal).await?;
        let mut subscription = self.state.fanout.subscribe(
            Subscriber {
                user_id: user,
                session_id: principal.session_id,
                rooms: rooms
                    .iter()
                    .map(|(room, cursor)| (*room, cursor.pos))
                    .collect(),
            },
            self.state.ws.queue_capacity,
        );
        // A session ended between the authentication and the subscription
        // told nobody this connection would hear of: look again.
        self.state
            .sessions
            .confirm(&principal)
            .await
            .map_err(unauthenticated)?;
        // Read again once events are flowing (across nodes: once this node
        // listens for them on the shared bus): anything newer than these
        // positions reaches this connection live; older ones are for `sync`.
        let _ = timeout(SUBSCRIBE_TIMEOUT, subscription.ready()).await;
        let cursors = self.member_rooms(&principal).await?;
        // Rooms joined between the two reads: followed from here, and read
        // on from the log (their events in between may have gone by).
        let joined: Vec<RoomId> = cursors
            .iter()
            .filter(|(room, _)| !rooms.contains_key(room))
            .map(|(room, cursor)| {
                subscription.follow(*room, cursor.pos);
                *room
            })
            .collect();
        let mut live = Live { principal, cursors };
        self.send(protocol::ready(user, live.principal.expires_at))
            .await?;
        for room in joined {
            self.fill_gap(&mut live, room, None).await?;
        }

        let mut shutdown = self.state.shutdown.clone();
        let mut heartbeat = interval(self.state.ws.ping_interval);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    return Err(End::Close(CloseCause::ShuttingDown));
                }
                () = sleep_until(deadline(&live.principal)) => {
                    return Err(End::Close(CloseCause::TokenExpired));
                }
                // Boxed: their futures are large and short-lived, and would
                // otherwise sit inline in every idle connection's task.
                delivery = subscription.next() => {
                    Box::pin(self.on_delivery(&mut live, delivery)).await?;
                }
                message = self.stream.recv() => {
                    Box::pin(self.on_message(&mut live, subscription.as_mut(), message)).await?;
                }
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > self.state.ws.idle_timeout {
                        return Err(End::Close(CloseCause::Unresponsive));
                    }
                    self.session.ping(b"").await.map_err(|_| End::Gone)?;
                }
            }
        }
    }

    async fn member_rooms(&self, principal: &Principal) -> Outcome<HashMap<RoomId, Cursor>> {
        let rooms = self
            .state
            .rooms
            .mine(principal.user_id)
            .await
            .map_err(|_| End::Close(CloseCause::Unavailable))?;
        Ok(rooms
            .iter()
            .map(|room| (room.id, Cursor::at(room)))
            .collect())
    }

    /// Waits for the first frame, which must be `auth`.
    async fn await_auth_frame(&mut self) -> Outcome<Principal> {
        let first = timeout(AUTH_TIMEOUT, async {
            loop {
                match self.stream.recv().await {
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        self.session.pong(&bytes).await.map_err(|_| End::Gone)?;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Text(text))) => return Ok(text),
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        metrics::frame_received(FrameIn::Binary);
                        return Err(End::Close(CloseCause::AuthNotFirst));
                    }
                    Some(Ok(_)) => return Err(End::Close(CloseCause::AuthNotFirst)),
                    Some(Err(error)) => return Err(stream_failed(&error)),
                    None => return Err(End::Gone),
                }
            }
        })
        .await
        .map_err(|_| End::Close(CloseCause::AuthTimeout))??;
        let frame = protocol::parse(&first);
        metrics::frame_received(frame.as_ref().map_or(FrameIn::Invalid, ClientFrame::kind));
        match frame {
            Ok(ClientFrame::Auth { token }) => self
                .state
                .sessions
                .authenticate(&token)
                .await
                .map_err(unauthenticated),
            _ => Err(End::Close(CloseCause::AuthNotFirst)),
        }
    }

    async fn send(&mut self, frame: Outgoing) -> Outcome {
        match timeout(SEND_TIMEOUT, self.session.text(frame.text)).await {
            Ok(Ok(())) => {
                metrics::frame_sent(frame.kind);
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(CloseCause::SendTimeout)),
        }
    }

    async fn send_error(&mut self, error: &DomainError, reference: Option<&str>) -> Outcome {
        let (code, message) = ApiError::describe(error);
        self.send(protocol::error(code, &message, reference)).await
    }

    async fn on_message(
        &mut self,
        live: &mut Live,
        subscription: &mut dyn Subscription,
        message: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Outcome {
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(error)) => return Err(stream_failed(&error)),
            None => return Err(End::Gone),
        };
        self.last_heard = Instant::now();
        if let AggregatedMessage::Pong(_) = message {
            return Ok(());
        }
        if !self.bucket.take(std::time::Instant::now()) {
            return Err(End::Close(CloseCause::RateLimited));
        }
        match message {
            AggregatedMessage::Text(text) => match protocol::parse(&text) {
                Ok(frame) => {
                    metrics::frame_received(frame.kind());
                    self.on_frame(live, subscription, frame).await
                }
                Err(error) => {
                    metrics::frame_received(FrameIn::Invalid);
                    let frame =
                        protocol::error(error.code, &error.message, error.reference.as_deref());
                    self.send(frame).await
                }
            },
            AggregatedMessage::Binary(_) => {
                metrics::frame_received(FrameIn::Binary);
                self.send(protocol::error(
                    "malformed_frame",
                    "frames are JSON text",
                    None,
                ))
                .await
            }
            AggregatedMessage::Ping(bytes) => {
                self.session.pong(&bytes).await.map_err(|_| End::Gone)
            }
            AggregatedMessage::Pong(_) => Ok(()),
            AggregatedMessage::Close(_) => Err(End::Close(CloseCause::ClientClosed)),
        }
    }

    async fn on_frame(
        &mut self,
        live: &mut Live,
        subscription: &mut dyn Subscription,
        frame: ClientFrame,
    ) -> Outcome {
        let user = live.principal.user_id;
        match frame {
            ClientFrame::Ping => self.send(protocol::pong()).await,
            ClientFrame::Auth { token } => self.reauthenticate(live, subscription, &token).await,
            ClientFrame::Send {
                room_id,
                body,
                client_msg_id,
                reply_to,
                mentions,
            } => {
                let sent = async {
                    self.state.limits.sends.check(&user)?;
                    let draft = Draft::parse(
                        &body,
                        Some(&client_msg_id),
                        reply_to.map(MessageId::from_uuid),
                        mentions.into_iter().map(UserId::from_uuid),
                    )?;
                    self.state
                        .messaging
                        .send(user, RoomId::from_uuid(room_id), draft)
                        .await
                }
                .await;
                match sent {
                    Ok(appended) => {
                        let message = MessageView::from(appended.value);
                        self.send(protocol::ack(&client_msg_id, message)).await
                    }
                    Err(error) => self.send_error(&error, Some(&client_msg_id)).await,
                }
            }
            ClientFrame::Sync {
                room_id,
                after_seq,
                after_pos,
                limit,
            } => {
                let reference = room_id.to_string();
                let room = RoomId::from_uuid(room_id);
                let replayed = match SyncFrom::of(after_seq, after_pos.as_ref()) {
                    Ok(SyncFrom::Pos(after)) => self.sync_events(live, room, after, limit).await,
                    Ok(SyncFrom::Seq(after)) => self.sync(live, room, after, limit).await,
                    Err(error) => Err(error.into()),
                };
                match replayed {
                    Ok(result) => result,
                    Err(error) => self.send_error(&error, Some(&reference)).await,
                }
            }
            ClientFrame::Typing { room_id } => {
                match self
                    .state
                    .messaging
                    .typing(user, RoomId::from_uuid(room_id))
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(error) => self.send_error(&error, Some(&room_id.to_string())).await,
                }
            }
        }
    }

    /// `auth` on an open connection: a token of the same user replaces the
    /// one the connection holds, and the connection moves to that token's
    /// session (ending the session it authenticated with before no longer
    /// closes it; ending the new one does).
    async fn reauthenticate(
        &mut self,
        live: &mut Live,
        subscription: &mut dyn Subscription,
        token: &str,
    ) -> Outcome {
        let user = live.principal.user_id;
        let principal = match self.state.sessions.authenticate(token).await {
            Ok(principal) if principal.user_id == user => principal,
            Ok(_) => return self.send_error(&DomainError::Forbidden, None).await,
            Err(error) => return self.send_error(&error, None).await,
        };
        if principal.session_id != live.principal.session_id {
            subscription.rebind(principal.session_id);
            // The session may have ended between the check and the rebind,
            // unseen by the fan-out: check once more now that it would see it.
            if let Err(error) = self.state.sessions.authenticate(token).await {
                return Err(unauthenticated(error));
            }
        }
        live.principal = principal;
        self.send(protocol::ready(user, principal.expires_at)).await
    }

    /// Replays a room after `after_seq`, then `synced`. Live events that
    /// arrive meanwhile wait in the subscription and are filtered by the
    /// cursor afterwards, so none is lost, repeated or reordered.
    async fn sync(
        &mut self,
        live: &mut Live,
        room: RoomId,
        after_seq: i64,
        limit: Option<i64>,
    ) -> Result<Outcome, DomainError> {
        let query = HistoryQuery {
            after: Some(Seq::new(after_seq)?),
            before: None,
            limit: PageLimit::new(limit.unwrap_or(PageLimit::MAX as i64))?,
        };
        let page = self
            .state
            .messaging
            .history(live.principal.user_id, room, query)
            .await?;
        let mut last = query.after.unwrap_or_default();
        for message in page.messages {
            last = message.seq;
            if let Err(end) = self
                .send(protocol::message(
                    room.as_uuid(),
                    MessageView::from(message),
                ))
                .await
            {
                return Ok(Err(end));
            }
        }
        if let Some(cursor) = live.cursors.get_mut(&room) {
            cursor.seq = cursor.seq.max(last);
        }
        Ok(self
            .send(protocol::synced(
                room.as_uuid(),
                last.value(),
                page.has_more,
            ))
            .await)
    }

    /// Replays a room's events after `after`, then `synced` with the last
    /// position replayed. Like [`Connection::sync`], live events that arrive
    /// meanwhile wait in the subscription and are filtered by the cursor
    /// afterwards; events this connection already had live may come again
    /// (the client applies each position once).
    async fn sync_events(
        &mut self,
        live: &mut Live,
        room: RoomId,
        after: Pos,
        limit: Option<i64>,
    ) -> Result<Outcome, DomainError> {
        let query = EventQuery {
            after,
            limit: limit
                .map(PageLimit::new)
                .transpose()?
                .unwrap_or(PageLimit::MAX_PAGE),
        };
        let page = self
            .state
            .messaging
            .events(live.principal.user_id, room, query)
            .await?;
        let last = page.last_pos(after);
        for event in &page.events {
            if let Err(end) = self.send(protocol::event(event)).await {
                return Ok(Err(end));
            }
        }
        if let Some(cursor) = live.cursors.get_mut(&room) {
            cursor.pos = cursor.pos.max(last);
            if let Some(seq) = page
                .events
                .iter()
                .filter_map(|event| match &event.change {
                    Change::Message(message) => Some(message.seq),
                    _ => None,
                })
                .max()
            {
                cursor.seq = cursor.seq.max(seq);
            }
        }
        Ok(self
            .send(protocol::synced_to(room.as_uuid(), last, page.has_more))
            .await)
    }

    async fn on_delivery(&mut self, live: &mut Live, delivery: Option<Delivery>) -> Outcome {
        let broadcast = match delivery {
            Some(Delivery::Event(broadcast)) => broadcast,
            Some(Delivery::Overflowed) => return Err(End::Close(CloseCause::QueueOverflow)),
            Some(Delivery::SessionEnded) => return Err(End::Close(CloseCause::SessionRevoked)),
            Some(Delivery::Recheck) => return self.recheck(live).await,
            Some(Delivery::Presence(change)) => {
                return self.send(protocol::presence(&change)).await;
            }
            None => return Err(End::Close(CloseCause::FanOutStopped)),
        };
        match broadcast.value() {
            Broadcast::Event(event) => self.deliver_in_order(live, event, &broadcast).await,
            Broadcast::Typing { .. } | Broadcast::ReadMarker { .. } => {
                self.send(protocol::broadcast(&broadcast, live.principal.user_id))
                    .await
            }
        }
    }

    /// Checks again what the fan-out may have missed for this connection:
    /// whether its session still lives, and whether its user's rooms are
    /// still the ones it follows. A room joined unseen cannot be followed
    /// from here without its `member_joined`, and the deletion of a room
    /// leaves no event in any log: either way the client reconnects and
    /// loads its rooms again.
    async fn recheck(&mut self, live: &Live) -> Outcome {
        self.state
            .sessions
            .confirm(&live.principal)
            .await
            .map_err(unauthenticated)?;
        let rooms = self.member_rooms(&live.principal).await?;
        let same = rooms.len() == live.cursors.len()
            && rooms.keys().all(|room| live.cursors.contains_key(room));
        if !same {
            return Err(End::Close(CloseCause::RoomsChanged));
        }
        Ok(())
    }

    /// Sends `event` only as the next position of its room: drops repeats
    /// and older ones, and first fills a gap from the event log (a later
    /// event can overtake an earlier one between commit and publication;
    /// the earlier one is committed by then, as positions are allocated
    /// under the room's lock). A room this connection does not follow
    /// starts with the user's own `member_joined`.
    async fn deliver_in_order(
        &mut self,
        live: &mut Live,
        event: &RoomEvent,
        shared: &Shared<Broadcast>,
    ) -> Outcome {
        let room = event.room_id;
        let me = live.principal.user_id;
        let cursor = match (live.cursors.get(&room), &event.change) {
            (Some(cursor), _) => *cursor,
            (
                None,
                Change::MemberJoined {
                    room: joined,
                    member,
                },
            ) if member.membership.user_id == me => Cursor {
                pos: event.pos.previous(),
                seq: joined.last_seq,
            },
            // Left before this connection's rooms were read, or unfollowed.
            (None, _) => return Ok(()),
        };
        if event.pos <= cursor.pos {
            return Ok(());
        }
        live.cursors.insert(room, cursor);
        if event.pos > cursor.pos.next() && !self.fill_gap(live, room, Some(event.pos)).await? {
            return Ok(());
        }
        self.deliver(live, event, || protocol::shared_event(shared, event))
            .await
    }

    /// Sends the events of `room` from the connection's cursor up to, not
    /// including, `upto` (`None`: to the end of its log). Returns whether
    /// the room is still followed (the user's own departure may be among
    /// them).
    async fn fill_gap(
        &mut self,
        live: &mut Live,
        room: RoomId,
        upto: Option<Pos>,
    ) -> Outcome<bool> {
        let me = live.principal.user_id;
        while let Some(cursor) = live.cursors.get(&room).copied() {
            if upto.is_some_and(|upto| cursor.pos.next() >= upto) {
                return Ok(true);
            }
            let page = match self.state.messaging.catch_up(me, room, cursor.pos).await {
                Ok(page) => page,
                // Deleted meanwhile: nothing more will come from this room.
                Err(DomainError::NotFound(_)) => {
                    live.cursors.remove(&room);
                    return Ok(false);
                }
                Err(_) => return Err(End::Close(CloseCause::GapUnfilled)),
            };
            let missing: Vec<&RoomEvent> = page
                .events
                .iter()
                .filter(|missing| upto.is_none_or(|upto| missing.pos < upto))
                .collect();
            if missing.is_empty() {
                return match upto {
                    None => Ok(true),
                    Some(_) => Err(End::Close(CloseCause::GapUnfilled)),
                };
            }
            for event in missing {
                self.deliver(live, event, || protocol::event(event)).await?;
            }
            if upto.is_none() && !page.has_more {
                return Ok(live.cursors.contains_key(&room));
            }
        }
        Ok(false)
    }

    /// Sends the next event of a room as the frame `frame` makes, and moves
    /// the room's cursor past it (a room left or deleted is no longer
    /// followed).
    async fn deliver(
        &mut self,
        live: &mut Live,
        event: &RoomEvent,
        frame: impl FnOnce() -> Outgoing,
    ) -> Outcome {
        let me = live.principal.user_id;
        let room = event.room_id;
        let Some(cursor) = live.cursors.get_mut(&room) else {
            return Ok(());
        };
        cursor.pos = event.pos;
        if let Change::Message(message) = &event.change {
            // Already sent by a `sync` from `after_seq`.
            if message.seq <= cursor.seq {
                return Ok(());
            }
            cursor.seq = message.seq;
        }
        let gone = match &event.change {
            Change::MemberLeft { user_id } => *user_id == me,
            Change::RoomDeleted => true,
            _ => false,
        };
        if gone {
            live.cursors.remove(&room);
        }
        self.send(frame()).await?;
        metrics::delivered();
        Ok(())
    }
}

/// How a connection whose client stream failed with `error` ends.
fn stream_failed(error: &ProtocolError) -> End {
    match guard::close_for(error) {
        Some(cause) => End::Close(cause),
        None => End::Gone,
    }
}
