//! Sending (with replies and mentions), reading, editing, deleting and
//! reacting to messages; read markers; search.

use std::sync::Arc;

use crate::error::{ConflictError, DomainError, Missing, ValidationError};
use crate::events::{Broadcast, Change, EventPage, EventQuery, Logged, RoomEvent};
use crate::message::{
    Draft, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage, PageLimit, Seq,
};
use crate::permissions::{Action, can};
use crate::ports::{Clock, EventLog, FanOut, MembershipRepository, MessageRepository, Reacted};
use crate::position::Pos;
use crate::reaction::{Emoji, ReactionChange};
use crate::read::{Receipt, UnreadCounts};
use crate::room::RoomId;
use crate::search::{SearchHit, SearchQuery};
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

    /// The memberships store (markers, mention checks).
    fn members(&self) -> &dyn MembershipRepository {
        self.access.members.as_ref()
    }

    /// Posts a message (members). Returns once it is durably stored, with
    /// its event; a repeat of the author's `client_msg_id` in the room
    /// returns the first message with no event and stores nothing. A reply
    /// must name a message of this room (a deleted one too); everyone
    /// mentioned must be a member ([`ValidationError::Reply`],
    /// [`ValidationError::Mentions`]).
    #[tracing::instrument(skip(self, draft))]
    pub async fn send(
        &self,
        actor: UserId,
        room_id: RoomId,
        draft: Draft,
    ) -> Result<Logged<Message>, DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        if let Some(reply_to) = draft.reply_to
            && self.messages.by_id(room_id, reply_to).await?.is_none()
        {
            return Err(ValidationError::Reply.into());
        }
        if !draft.mentions.is_empty() {
            let members = self
                .members()
                .which_members(room_id, draft.mentions.users())
                .await?;
            if members.len() != draft.mentions.users().len() {
                return Err(ValidationError::Mentions.into());
            }
        }
        let message = NewMessage {
            id: MessageId::new(),
            room_id,
            author_id: actor,
            body: draft.body,
            client_msg_id: draft.client_msg_id,
            created_at: self.clock.now(),
            reply_to: draft.reply_to,
            mentions: draft.mentions,
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
    #[tracing::instrument(skip(self))]
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
    #[tracing::instrument(skip(self))]
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
    #[tracing::instrument(skip(self, body))]
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
    #[tracing::instrument(skip(self))]
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

    /// The caller's reaction change, once they may post in the room (a
    /// reaction reaches every member, as a message does).
    async fn reaction(
        &self,
        actor: UserId,
        room_id: RoomId,
        message_id: MessageId,
        emoji: Emoji,
    ) -> Result<ReactionChange, DomainError> {
        self.access.check(actor, room_id, Action::Post).await?;
        Ok(ReactionChange {
            message_id,
            emoji,
            user_id: actor,
        })
    }

    /// Adds the caller's reaction to a message (members; idempotent).
    /// A tombstone takes none ([`ConflictError::MessageDeleted`]); a 21st
    /// distinct emoji is [`ConflictError::TooManyReactions`].
    #[tracing::instrument(skip(self))]
    pub async fn react(
        &self,
        actor: UserId,
        room_id: RoomId,
        message_id: MessageId,
        emoji: Emoji,
    ) -> Result<Message, DomainError> {
        let change = self.reaction(actor, room_id, message_id, emoji).await?;
        let reacted = self
            .messages
            .react(room_id, &change, self.clock.now())
            .await?;
        self.reacted(reacted).await
    }

    /// Takes the caller's reaction back (members; idempotent), as
    /// [`Messaging::react`] refuses.
    #[tracing::instrument(skip(self))]
    pub async fn unreact(
        &self,
        actor: UserId,
        room_id: RoomId,
        message_id: MessageId,
        emoji: Emoji,
    ) -> Result<Message, DomainError> {
        let change = self.reaction(actor, room_id, message_id, emoji).await?;
        let reacted = self
            .messages
            .unreact(room_id, &change, self.clock.now())
            .await?;
        self.reacted(reacted).await
    }

    /// The message a reaction change leaves, announced if it changed.
    async fn reacted(&self, reacted: Reacted) -> Result<Message, DomainError> {
        match reacted {
            Reacted::Done(logged) => {
                let Logged { value, event } = *logged;
                self.announce(event).await;
                Ok(value)
            }
            Reacted::NoMessage => Err(DomainError::NotFound(Missing::Message)),
            Reacted::Deleted => Err(ConflictError::MessageDeleted.into()),
            Reacted::TooMany => Err(ConflictError::TooManyReactions.into()),
        }
    }

    /// Moves the caller's read marker forward to `seq` (members): never
    /// backward (an older seq changes nothing), never beyond the room's
    /// newest message ([`ValidationError::SeqAhead`]). A move is announced
    /// to the caller's connections (their badges) and the room's members
    /// (a receipt). Returns the caller's read state of the room after it.
    #[tracing::instrument(skip(self))]
    pub async fn mark_read(
        &self,
        actor: UserId,
        room_id: RoomId,
        seq: Seq,
    ) -> Result<UnreadCounts, DomainError> {
        // Members only, as for posting: a public room's visitor has no marker.
        let room = self.access.check(actor, room_id, Action::Post).await?.room;
        if seq > room.last_seq {
            return Err(ValidationError::SeqAhead.into());
        }
        let moved = self
            .members()
            .mark_read(room_id, actor, seq)
            .await?
            .ok_or(DomainError::NotFound(Missing::Room))?;
        let counts = self
            .members()
            .unread(actor, Some(room_id))
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| UnreadCounts::read_up_to(room_id, moved.last_read_seq));
        if moved.moved {
            self.fanout
                .publish(Broadcast::ReadMarker {
                    user_id: actor,
                    counts,
                })
                .await;
        }
        Ok(counts)
    }

    /// Where each member of the room has read up to (whoever may list the
    /// members).
    #[tracing::instrument(skip(self))]
    pub async fn receipts(
        &self,
        actor: UserId,
        room_id: RoomId,
    ) -> Result<Vec<Receipt>, DomainError> {
        self.access
            .check(actor, room_id, Action::ListMembers)
            .await?;
        Ok(self.members().receipts(room_id).await?)
    }

    /// Searches the messages the caller can read now. A room named must be
    /// one the caller may read (else as for its history: 404 or 403).
    #[tracing::instrument(skip(self, query), fields(user = %query.user))]
    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>, DomainError> {
        if let Some(room_id) = query.room {
            self.access
                .check(query.user, room_id, Action::ReadHistory)
                .await?;
        }
        Ok(self.messages.search(&query).await?)
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
