//! Sending, reading, editing and deleting messages.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Missing};
use crate::events::RoomEvent;
use crate::message::{
    Appended, ClientMsgId, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage,
};
use crate::permissions::{Action, can};
use crate::ports::{Clock, FanOut, MessageRepository};
use crate::room::RoomId;
use crate::services::access::RoomAccess;
use crate::user::UserId;

/// The messaging use cases.
#[derive(Clone)]
pub struct Messaging {
    access: RoomAccess,
    messages: Arc<dyn MessageRepository>,
    clock: Arc<dyn Clock>,
    fanout: Arc<dyn FanOut>,
}

impl Messaging {
    /// Builds the service.
    pub fn new(
        access: RoomAccess,
        messages: Arc<dyn MessageRepository>,
        clock: Arc<dyn Clock>,
        fanout: Arc<dyn FanOut>,
    ) -> Self {
        Self {
            access,
            messages,
            clock,
            fanout,
        }
    }

    /// Posts a message (members). Returns once it is durably stored; a
    /// repeat of the author's `client_msg_id` in the room returns the first
    /// message with `created: false` and stores nothing.
    pub async fn send(
        &self,
        actor: UserId,
        room_id: RoomId,
        body: MessageBody,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<Appended, DomainError> {
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
        if appended.created {
            // After the commit: delivery order is restored by seq downstream.
            self.fanout
                .publish(RoomEvent::Message(appended.message.clone()))
                .await;
        }
        Ok(appended)
    }

    /// Tells the room's other members that `actor` is typing (members).
    pub async fn typing(&self, actor: UserId, room_id: RoomId) -> Result<(), DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        self.fanout
            .publish(RoomEvent::Typing {
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
        match self
            .messages
            .edit(room_id, message_id, &body, self.clock.now())
            .await?
        {
            Some(edited) => {
                self.fanout
                    .publish(RoomEvent::MessageUpdated(edited.clone()))
                    .await;
                Ok(edited)
            }
            // Deleted between our read and our write.
            None => Err(ConflictError::MessageDeleted.into()),
        }
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
        self.fanout
            .publish(RoomEvent::MessageDeleted(tombstone.clone()))
            .await;
        Ok(tombstone)
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
