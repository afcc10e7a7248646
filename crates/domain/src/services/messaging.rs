//! Sending, reading, editing and deleting messages.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Missing, ValidationError};
use crate::events::{Broadcast, Change, EventPage, EventQuery, Logged, RoomEvent};
use crate::message::{
    ClientMsgId, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage, PageLimit,
};
use crate::permissions::{Action, can};
use crate::ports::{Clock, EventLog, FanOut, MessageRepository};
use crate::position::Pos;
use crate::room::RoomId;
use crate::services::access::RoomAccess;
use crate::user::UserId;

/// The messaging use cases, and the replay of rooms' event logs.
#[derive(Clone)]
pub struct Messaging {
    access: RoomAccess,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    fanout: Arc<dyn FanOut>,
}

impl Messaging {
    /// Builds the service.
    pub fn new(
        access: RoomAccess,
        messages: Arc<dyn MessageRepository>,
        events: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        fanout: Arc<dyn FanOut>,
    ) -> Self {
        Self {
            access,
            messages,
            events,
            clock,
            fanout,
        }
    }

    /// Hands a committed event to the fan-out, if the change logged one.
    async fn announce(&self, event: Option<RoomEvent>) {
        if let Some(event) = event {
            // After the commit: delivery order is restored by pos downstream.
            self.fanout.publish(Broadcast::Event(event)).await;
        }
    }

    /// Posts a message (members). Returns once it is durably stored, with
    /// its event; a repeat of the author's `client_msg_id` in the room
    /// returns the first message with no event and stores nothing.
    #[tracing::instrument(skip(self, body, client_msg_id))]
    pub async fn send(
        &self,
        actor: UserId,
        room_id: RoomId,
        body: MessageBody,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<Logged<Message>, DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        let message = NewMessage {
            id: MessageId::new(),
            room_id,
            author_id: actor,
            body,
            client_msg_id,
            created_at: self.clock.now(),
        };
        let appended = self
            .messages
            .append(&message)
            .await?
            .ok_or(DomainError::NotFound(Missing::Room))?;
        self.announce(appended.event.clone()).await;
        Ok(appended)
    }

    /// Tells the room's other members that `actor` is typing (members).
    pub async fn typing(&self, actor: UserId, room_id: RoomId) -> Result<(), DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        self.fanout
            .publish(Broadcast::Typing {
                room_id,
                user_id: actor,
            })
            .await;
        Ok(())
    }

    /// A page of a room's history (members).
    pub async fn history(
        &self,
        actor: UserId,
        room_id: RoomId,
        query: HistoryQuery,
    ) -> Result<HistoryPage, DomainError> {
        self.access
            .check(actor, room_id, Action::ReadHistory)
            .await?;
        Ok(self.messages.page(room_id, &query).await?)
    }

    /// The room's events after `query.after` (members), to resume from a
    /// position. A position beyond the room's `last_pos` is not one this
    /// server gave ([`ValidationError::PosAhead`]); one whose next events
    /// were pruned asks the caller to reload the room
    /// ([`DomainError::ResyncRequired`]): nothing is skipped silently.
    #[tracing::instrument(skip(self))]
    pub async fn events(
        &self,
        actor: UserId,
        room_id: RoomId,
        query: EventQuery,
    ) -> Result<EventPage, DomainError> {
        let room = self
            .access
            .check(actor, room_id, Action::ReadHistory)
            .await?
            .room;
        if query.after > room.last_pos {
            return Err(ValidationError::PosAhead.into());
        }
        let page = self.events.after(room_id, &query).await?;
        // The log is contiguous up to the room's `last_pos` (read before the
        // page, so the page reaches at least that far) but for a pruned
        // prefix: a page that does not go on from `after` starts past it.
        let contiguous = match page.events.first() {
            Some(first) => first.pos == query.after.next(),
            None => query.after == room.last_pos,
        };
        if !contiguous {
            // A room deleted since the check lost its log with it.
            if self.access.rooms.by_id(room_id).await?.is_none() {
                return Err(DomainError::NotFound(Missing::Room));
            }
            return Err(DomainError::ResyncRequired);
        }
        Ok(page)
    }

    /// The events after `after` for a connection of `actor` that followed
    /// the room up to `after` and has a gap to fill (a publication that
    /// came late or never): unlike [`Messaging::events`] it does not check
    /// membership now, as what `actor` may see ends with their own
    /// `member_left` (the page is cut after it), not before it. A room
    /// deleted meanwhile is [`Missing::Room`].
    #[tracing::instrument(skip(self))]
    pub async fn catch_up(
        &self,
        actor: UserId,
        room_id: RoomId,
        after: Pos,
    ) -> Result<EventPage, DomainError> {
        let query = EventQuery {
            after,
            limit: PageLimit::MAX_PAGE,
        };
        let mut page = self.events.after(room_id, &query).await?;
        if page.events.is_empty() {
            self.access
                .rooms
                .by_id(room_id)
                .await?
                .ok_or(DomainError::NotFound(Missing::Room))?;
        }
        if let Some(left) = page.events.iter().position(
            |event| matches!(event.change, Change::MemberLeft { user_id } if user_id == actor),
        ) {
            page.events.truncate(left + 1);
            page.has_more = false;
        }
        Ok(page)
    }

    /// Prunes every room's events older than `before` (retention); the
    /// messages themselves stay in history.
    #[tracing::instrument(skip(self))]
    pub async fn prune_events(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, DomainError> {
        Ok(self.events.prune(before).await?)
    }

    /// Changes the text of one's own message.
    pub async fn edit(
        &self,
        actor: UserId,
        room_id: RoomId,
        message_id: MessageId,
        body: MessageBody,
    ) -> Result<Message, DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        let message = self.message(room_id, message_id).await?;
        if message.author_id != actor {
            return Err(DomainError::Forbidden);
        }
        if message.is_deleted() {
            return Err(ConflictError::MessageDeleted.into());
        }
        let Some(event) = self
            .messages
            .edit(room_id, message_id, &body, self.clock.now())
            .await?
        else {
            // Deleted between our read and our write.
            return Err(ConflictError::MessageDeleted.into());
        };
        let edited = event
            .change
            .message()
            .cloned()
            .ok_or_else(|| DomainError::Internal("an edit logged no message".into()))?;
        self.announce(Some(event)).await;
        Ok(edited)
    }

    /// Deletes a message, leaving a tombstone: its author, or an admin or
    /// the owner. Deleting a deleted message changes nothing.
    pub async fn delete(
        &self,
        actor: UserId,
        room_id: RoomId,
        message_id: MessageId,
    ) -> Result<Message, DomainError> {
        let access = self.access.check(actor, room_id, Action::Post).await?;
        let message = self.message(room_id, message_id).await?;
        let role = access.membership.map(|membership| membership.role);
        if message.author_id != actor
            && !can(role, access.room.visibility, Action::DeleteOthersMessages)
        {
            return Err(DomainError::Forbidden);
        }
        let tombstone = self
            .messages
            .tombstone(room_id, message_id, self.clock.now())
            .await?
            .ok_or(DomainError::NotFound(Missing::Message))?;
        self.announce(tombstone.event).await;
        Ok(tombstone.value)
    }

    async fn message(
        &self,
        room_id: RoomId,
        message_id: MessageId,
    ) -> Result<Message, DomainError> {
        self.messages
            .by_id(room_id, message_id)
            .await?
            .ok_or(DomainError::NotFound(Missing::Message))
    }
}
