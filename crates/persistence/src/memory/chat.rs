//! Rooms, memberships, messages and room events in memory: one state behind
//! one mutex, seen through four port adapters, so operations spanning them
//! (creating a room with its owner, appending a message with its event and
//! advancing `last_seq` and `last_pos`, deleting a room with everything in
//! it) are atomic.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::events::{Change, EventPage, EventQuery, Logged, RoomEvent};
use p_chat_domain::message::{
    ClientMsgId, HistoryPage, HistoryQuery, Mentions, Message, MessageBody, MessageId, NewMessage,
    Seq,
};
use p_chat_domain::ports::{
    DirectPeople, EventLog, MembershipRepository, MessageRepository, OpenedDirect, Reacted,
    RoomDetails, RoomRepository, StoreError,
};
use p_chat_domain::reaction::{Reaction, ReactionChange};
use p_chat_domain::read::{MarkerMove, Receipt, UnreadCounts};
use p_chat_domain::room::{DirectPair, Member, Membership, Role, Room, RoomId};
use p_chat_domain::search::{SearchHit, SearchQuery};
use p_chat_domain::user::{DisplayName, UserId};

use crate::lock;

/// The shared state of the four chat adapters. Create one, then hand out
/// its [`MemoryChat::rooms`], [`MemoryChat::memberships`],
/// [`MemoryChat::messages`] and [`MemoryChat::events`] views.
#[derive(Debug, Clone, Default)]
pub struct MemoryChat {
    state: Arc<Mutex<Chat>>,
}

#[derive(Debug, Default)]
struct Chat {
    rooms: HashMap<RoomId, Room>,
    /// Members of each room, by user.
    members: HashMap<RoomId, BTreeMap<UserId, Membership>>,
    /// Each room's messages; the message with seq n is at index n - 1.
    messages: HashMap<RoomId, Vec<Message>>,
    /// Client ids already used, per room and author, to their message's seq.
    client_ids: HashMap<(RoomId, UserId, ClientMsgId), i64>,
    direct: HashMap<DirectPair, RoomId>,
    /// Each room's event log: positions `first..=last_pos` in order, the
    /// ones before `first` pruned.
    events: HashMap<RoomId, VecDeque<RoomEvent>>,
    /// Members' read markers, per room; a member without one has read
    /// nothing (seq 0). They go with the membership.
    markers: HashMap<RoomId, HashMap<UserId, Seq>>,
}

impl MemoryChat {
    /// The [`RoomRepository`] view.
    pub fn rooms(&self) -> MemoryRooms {
        MemoryRooms(self.clone())
    }

    /// The [`MembershipRepository`] view.
    pub fn memberships(&self) -> MemoryMemberships {
        MemoryMemberships(self.clone())
    }

    /// The [`MessageRepository`] view.
    pub fn messages(&self) -> MemoryMessages {
        MemoryMessages(self.clone())
    }

    /// The [`EventLog`] view.
    pub fn events(&self) -> MemoryEvents {
        MemoryEvents(self.clone())
    }
}

impl MemoryChat {
    /// Removes every membership of `user` (a stale registration replaced).
    pub(super) fn remove_user(&self, user: UserId) {
        let mut chat = lock(&self.state);
        for members in chat.members.values_mut() {
            members.remove(&user);
        }
        for markers in chat.markers.values_mut() {
            markers.remove(&user);
        }
    }

    /// Removes every membership of `user`, logging `member_left` in each
    /// room at `at` (returned), and shows `name` in the user's earlier
    /// membership events, unless the user owns a room: then nothing changes
    /// and `None` is returned.
    pub(super) fn remove_user_unless_owner(
        &self,
        user: UserId,
        name: &DisplayName,
        at: DateTime<Utc>,
    ) -> Option<Vec<RoomEvent>> {
        let mut chat = lock(&self.state);
        let owns = chat
            .members
            .values()
            .any(|members| members.get(&user).is_some_and(|m| m.role == Role::Owner));
        if owns {
            return None;
        }
        let mut rooms: Vec<RoomId> = chat
            .members
            .iter()
            .filter(|(_, members)| members.contains_key(&user))
            .map(|(room, _)| *room)
            .collect();
        rooms.sort();
        let mut left = Vec::new();
        for room in rooms {
            if let Some(members) = chat.members.get_mut(&room) {
                members.remove(&user);
            }
            chat.forget_marker(room, user);
            left.extend(chat.log(room, at, |_| Change::MemberLeft { user_id: user }));
        }
        for event in chat.events.values_mut().flatten() {
            if let Change::MemberJoined { member, .. } | Change::MemberUpdated(member) =
                &mut event.change
                && member.membership.user_id == user
            {
                member.display_name = name.clone();
            }
        }
        Some(left)
    }
}

impl Chat {
    /// `user`'s membership in `room`, if any.
    fn membership(&self, room: RoomId, user: UserId) -> Option<&Membership> {
        self.members
            .get(&room)
            .and_then(|members| members.get(&user))
    }

    fn add_member(&mut self, membership: &Membership) -> bool {
        let members = self.members.entry(membership.room_id).or_default();
        if members.contains_key(&membership.user_id) {
            return false;
        }
        members.insert(membership.user_id, membership.clone());
        true
    }

    /// Logs an event in `room` at its next position: `change` is built from
    /// the room with its `last_pos` already advanced. `None` if there is no
    /// such room.
    fn log(
        &mut self,
        room_id: RoomId,
        at: DateTime<Utc>,
        change: impl FnOnce(&Room) -> Change,
    ) -> Option<RoomEvent> {
        let room = self.rooms.get_mut(&room_id)?;
        room.last_pos = room.last_pos.next();
        let event = RoomEvent {
            room_id,
            pos: room.last_pos,
            at,
            change: change(room),
        };
        self.events
            .entry(room_id)
            .or_default()
            .push_back(event.clone());
        Some(event)
    }

    /// `member_joined` of `member` in `room` (the room as it is then).
    fn log_join(&mut self, member: &Member) -> Option<RoomEvent> {
        self.log(
            member.membership.room_id,
            member.membership.joined_at,
            |room| Change::MemberJoined {
                room: room.clone(),
                member: member.clone(),
            },
        )
    }

    /// Drops `user`'s read marker of `room` (their membership ended).
    fn forget_marker(&mut self, room: RoomId, user: UserId) {
        if let Some(markers) = self.markers.get_mut(&room) {
            markers.remove(&user);
        }
    }

    /// `user`'s read marker of `room`.
    fn marker(&self, room: RoomId, user: UserId) -> Seq {
        self.markers
            .get(&room)
            .and_then(|markers| markers.get(&user))
            .copied()
            .unwrap_or(Seq::ZERO)
    }

    /// `user`'s read state of `room`: what is unread after their marker.
    fn unread(&self, room: RoomId, user: UserId) -> UnreadCounts {
        let last_read_seq = self.marker(room, user);
        let mut counts = UnreadCounts::read_up_to(room, last_read_seq);
        let unread = self
            .messages
            .get(&room)
            .map(|messages| messages.get(clamp(last_read_seq.value(), messages.len())..))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|message| message.author_id != user && !message.is_deleted());
        for message in unread {
            if counts.unread < UnreadCounts::CAP {
                counts.unread += 1;
            }
            if counts.mentions < UnreadCounts::CAP && message.mentions.includes(user) {
                counts.mentions += 1;
            }
        }
        counts
    }

    /// The stored message with `seq` in `room`.
    fn message(&self, room: RoomId, seq: i64) -> Option<&Message> {
        self.messages.get(&room)?.get(position(seq)?)
    }
}

/// Rooms in memory (a view of a [`MemoryChat`]).
#[derive(Debug, Clone)]
pub struct MemoryRooms(MemoryChat);

/// Memberships in memory (a view of a [`MemoryChat`]).
#[derive(Debug, Clone)]
pub struct MemoryMemberships(MemoryChat);

/// Messages in memory (a view of a [`MemoryChat`]).
#[derive(Debug, Clone)]
pub struct MemoryMessages(MemoryChat);

#[async_trait]
impl RoomRepository for MemoryRooms {
    async fn create(&self, room: &Room, owner: &Member) -> Result<RoomEvent, StoreError> {
        let mut chat = lock(&self.0.state);
        if chat.rooms.contains_key(&room.id) {
            return Err(StoreError::Duplicate);
        }
        chat.rooms.insert(room.id, room.clone());
        chat.add_member(&owner.membership);
        chat.log_join(owner)
            .ok_or_else(|| StoreError::Failure("a new room vanished".into()))
    }

    async fn open_direct(
        &self,
        room: &Room,
        people: &DirectPeople,
        now: DateTime<Utc>,
    ) -> Result<OpenedDirect, StoreError> {
        let pair = people.pair;
        let mut chat = lock(&self.0.state);
        let (room_id, created) = match chat.direct.get(&pair) {
            Some(existing) => (*existing, false),
            None => {
                chat.rooms.insert(room.id, room.clone());
                chat.direct.insert(pair, room.id);
                (room.id, true)
            }
        };
        let mut joined = Vec::new();
        for (user_id, name) in [
            (pair.low(), &people.low_name),
            (pair.high(), &people.high_name),
        ] {
            let member = Member {
                display_name: name.clone(),
                membership: Membership {
                    room_id,
                    user_id,
                    role: Role::Member,
                    joined_at: now,
                },
            };
            if chat.add_member(&member.membership) {
                joined.extend(chat.log_join(&member));
            }
        }
        let stored = chat
            .rooms
            .get(&room_id)
            .cloned()
            .ok_or_else(|| StoreError::Failure("a direct pair names a missing room".into()))?;
        Ok(OpenedDirect {
            room: stored,
            created,
            joined,
        })
    }

    async fn by_id(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(lock(&self.0.state).rooms.get(&id).cloned())
    }

    async fn with_membership(
        &self,
        id: RoomId,
        user: UserId,
    ) -> Result<Option<(Room, Option<Membership>)>, StoreError> {
        let chat = lock(&self.0.state);
        Ok(chat
            .rooms
            .get(&id)
            .map(|room| (room.clone(), chat.membership(id, user).cloned())))
    }

    async fn update_details(
        &self,
        id: RoomId,
        details: &RoomDetails,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(room) = chat.rooms.get_mut(&id) else {
            return Ok(None);
        };
        room.name = details.name.clone();
        room.topic = details.topic.clone();
        room.visibility = details.visibility;
        Ok(chat.log(id, at, |room| Change::RoomUpdated(room.clone())))
    }

    async fn delete(&self, id: RoomId, at: DateTime<Utc>) -> Result<Option<RoomEvent>, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(room) = chat.rooms.remove(&id) else {
            return Ok(None);
        };
        chat.members.remove(&id);
        chat.messages.remove(&id);
        chat.events.remove(&id);
        chat.markers.remove(&id);
        chat.client_ids.retain(|(room_id, _, _), _| *room_id != id);
        chat.direct.retain(|_, room_id| *room_id != id);
        Ok(Some(RoomEvent {
            room_id: id,
            pos: room.last_pos.next(),
            at,
            change: Change::RoomDeleted,
        }))
    }

    async fn of_member(&self, user: UserId) -> Result<Vec<Room>, StoreError> {
        let chat = lock(&self.0.state);
        let mut rooms: Vec<Room> = chat
            .members
            .iter()
            .filter(|(_, members)| members.contains_key(&user))
            .filter_map(|(room_id, _)| chat.rooms.get(room_id).cloned())
            .collect();
        rooms.sort_by_key(|room| (room.created_at, room.id));
        Ok(rooms)
    }

    async fn search_public(&self, query: &str, limit: usize) -> Result<Vec<Room>, StoreError> {
        let needle = query.to_lowercase();
        let chat = lock(&self.0.state);
        let mut rooms: Vec<Room> = chat
            .rooms
            .values()
            .filter(|room| room.visibility == p_chat_domain::room::Visibility::Public)
            .filter(|room| room.name.as_str().to_lowercase().contains(&needle))
            .cloned()
            .collect();
        rooms.sort_by(|a, b| (a.name.as_str(), a.id).cmp(&(b.name.as_str(), b.id)));
        rooms.truncate(limit);
        Ok(rooms)
    }
}

#[async_trait]
impl MembershipRepository for MemoryMemberships {
    async fn get(&self, room: RoomId, user: UserId) -> Result<Option<Membership>, StoreError> {
        Ok(lock(&self.0.state).membership(room, user).cloned())
    }

    async fn add(&self, member: &Member) -> Result<RoomEvent, StoreError> {
        let mut chat = lock(&self.0.state);
        if !chat.rooms.contains_key(&member.membership.room_id) {
            return Err(StoreError::Failure("no such room".into()));
        }
        if !chat.add_member(&member.membership) {
            return Err(StoreError::Duplicate);
        }
        chat.log_join(member)
            .ok_or_else(|| StoreError::Failure("no such room".into()))
    }

    async fn remove(
        &self,
        room: RoomId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let mut chat = lock(&self.0.state);
        let removed = chat
            .members
            .get_mut(&room)
            .and_then(|members| members.remove(&user))
            .is_some();
        chat.forget_marker(room, user);
        Ok(if removed {
            chat.log(room, at, |_| Change::MemberLeft { user_id: user })
        } else {
            None
        })
    }

    async fn set_role(
        &self,
        member: &Member,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let (room, user) = (member.membership.room_id, member.membership.user_id);
        let mut chat = lock(&self.0.state);
        let Some(membership) = chat
            .members
            .get_mut(&room)
            .and_then(|members| members.get_mut(&user))
        else {
            return Ok(None);
        };
        membership.role = role;
        let changed = Member {
            display_name: member.display_name.clone(),
            membership: membership.clone(),
        };
        Ok(chat.log(room, at, |_| Change::MemberUpdated(changed)))
    }

    async fn transfer_ownership(
        &self,
        from: &Member,
        to: &Member,
        at: DateTime<Utc>,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        let room = from.membership.room_id;
        let (from_id, to_id) = (from.membership.user_id, to.membership.user_id);
        let mut chat = lock(&self.0.state);
        let Some(members) = chat.members.get_mut(&room) else {
            return Ok(Vec::new());
        };
        let from_is_owner = members.get(&from_id).is_some_and(|m| m.role == Role::Owner);
        if to.membership.room_id != room
            || from_id == to_id
            || !from_is_owner
            || !members.contains_key(&to_id)
        {
            return Ok(Vec::new());
        }
        let mut changed = Vec::new();
        for (member, role) in [(from, Role::Admin), (to, Role::Owner)] {
            if let Some(membership) = members.get_mut(&member.membership.user_id) {
                membership.role = role;
                changed.push(Member {
                    display_name: member.display_name.clone(),
                    membership: membership.clone(),
                });
            }
        }
        if let Some(stored) = chat.rooms.get_mut(&room) {
            stored.owner_id = to_id;
        }
        let mut events: Vec<RoomEvent> = changed
            .into_iter()
            .filter_map(|member| chat.log(room, at, |_| Change::MemberUpdated(member)))
            .collect();
        events.extend(chat.log(room, at, |room| Change::RoomUpdated(room.clone())));
        Ok(events)
    }

    async fn list(&self, room: RoomId) -> Result<Vec<Membership>, StoreError> {
        let chat = lock(&self.0.state);
        let mut members: Vec<Membership> = chat
            .members
            .get(&room)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default();
        members.sort_by_key(|membership| (membership.joined_at, membership.user_id));
        Ok(members)
    }

    async fn which_members(
        &self,
        room: RoomId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let chat = lock(&self.0.state);
        let mut members: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|user| chat.membership(room, *user).is_some())
            .collect();
        members.sort();
        members.dedup();
        Ok(members)
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<MarkerMove>, StoreError> {
        let mut chat = lock(&self.0.state);
        if chat.membership(room, user).is_none() {
            return Ok(None);
        }
        let marker = chat
            .markers
            .entry(room)
            .or_default()
            .entry(user)
            .or_default();
        let moved = seq > *marker;
        if moved {
            *marker = seq;
        }
        Ok(Some(MarkerMove {
            last_read_seq: *marker,
            moved,
        }))
    }

    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<UnreadCounts>, StoreError> {
        let chat = lock(&self.0.state);
        Ok(chat
            .members
            .iter()
            .filter(|(room_id, members)| {
                members.contains_key(&user) && room.is_none_or(|only| only == **room_id)
            })
            .map(|(room_id, _)| chat.unread(*room_id, user))
            .collect())
    }

    async fn receipts(&self, room: RoomId) -> Result<Vec<Receipt>, StoreError> {
        let members = self.list(room).await?;
        let chat = lock(&self.0.state);
        Ok(members
            .into_iter()
            .map(|membership| Receipt {
                user_id: membership.user_id,
                last_read_seq: chat.marker(room, membership.user_id),
            })
            .collect())
    }
    async fn share_room(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        let chat = lock(&self.0.state);
        Ok(chat
            .members
            .values()
            .any(|members| members.contains_key(&a) && members.contains_key(&b)))
    }
}

#[async_trait]
impl MessageRepository for MemoryMessages {
    async fn append(&self, new: &NewMessage) -> Result<Option<Logged<Message>>, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(room) = chat.rooms.get_mut(&new.room_id) else {
            return Ok(None);
        };
        let seq = room.last_seq.next();
        if let Some(client_id) = &new.client_msg_id {
            let key = (new.room_id, new.author_id, client_id.clone());
            if let Some(existing) = chat.client_ids.get(&key) {
                let message = position(*existing)
                    .and_then(|index| chat.messages.get(&new.room_id)?.get(index).cloned())
                    .ok_or_else(|| {
                        StoreError::Failure("a client id names a missing message".into())
                    })?;
                return Ok(Some(Logged {
                    value: message,
                    event: None,
                }));
            }
            chat.client_ids.insert(key, seq.value());
        }
        let message = Message {
            id: new.id,
            room_id: new.room_id,
            seq,
            author_id: new.author_id,
            body: Some(new.body.clone()),
            client_msg_id: new.client_msg_id.clone(),
            created_at: new.created_at,
            edited_at: None,
            deleted_at: None,
            reply_to: new.reply_to,
            mentions: new.mentions.clone(),
            reactions: Vec::new(),
        };
        if let Some(room) = chat.rooms.get_mut(&new.room_id) {
            room.last_seq = seq;
        }
        chat.messages
            .entry(new.room_id)
            .or_default()
            .push(message.clone());
        let event = chat.log(new.room_id, new.created_at, |_| {
            Change::Message(message.clone())
        });
        crate::metrics::message_stored();
        Ok(Some(Logged {
            value: message,
            event,
        }))
    }

    async fn page(&self, room: RoomId, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let chat = lock(&self.0.state);
        let all = chat
            .messages
            .get(&room)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Messages are stored at index seq - 1, so cursors are slice bounds.
        let start = query
            .after
            .map_or(0, |after| clamp(after.value(), all.len()));
        let end = query
            .before
            .map_or(all.len(), |before| clamp(before.value() - 1, all.len()));
        let window = all.get(start..end.max(start)).unwrap_or_default();
        let limit = query.limit.get();
        let (page, has_more) = if query.reads_forward() {
            (&window[..limit.min(window.len())], window.len() > limit)
        } else {
            (
                &window[window.len().saturating_sub(limit)..],
                window.len() > limit,
            )
        };
        Ok(HistoryPage {
            messages: page.to_vec(),
            has_more,
        })
    }

    async fn by_id(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let chat = lock(&self.0.state);
        Ok(chat
            .messages
            .get(&room)
            .and_then(|messages| messages.iter().find(|message| message.id == id))
            .cloned())
    }

    async fn edit(
        &self,
        room: RoomId,
        id: MessageId,
        body: &MessageBody,
        at: DateTime<Utc>,
    ) -> Result<Option<RoomEvent>, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(edited) = find_mut(&mut chat, room, id)
            .filter(|message| !message.is_deleted())
            .map(|message| {
                message.body = Some(body.clone());
                message.edited_at = Some(at);
                message.clone()
            })
        else {
            return Ok(None);
        };
        Ok(chat.log(room, at, |_| Change::MessageUpdated(edited)))
    }

    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Logged<Message>>, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(message) = find_mut(&mut chat, room, id) else {
            return Ok(None);
        };
        if message.is_deleted() {
            return Ok(Some(Logged {
                value: message.clone(),
                event: None,
            }));
        }
        message.body = None;
        message.deleted_at = Some(at);
        message.mentions = Mentions::default();
        message.reactions.clear();
        let tombstone = message.clone();
        let event = chat.log(room, at, |_| Change::MessageDeleted(tombstone.clone()));
        Ok(Some(Logged {
            value: tombstone,
            event,
        }))
    }

    async fn react(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError> {
        self.react_with(room, change, at, Change::ReactionAdded, |reactions| {
            let full = reactions.len() >= Reaction::MAX_PER_MESSAGE;
            match reactions.iter_mut().find(|r| r.emoji == change.emoji) {
                Some(reaction) if reaction.user_ids.contains(&change.user_id) => Ok(false),
                Some(reaction) => {
                    reaction.user_ids.push(change.user_id);
                    Ok(true)
                }
                None if full => Err(Reacted::TooMany),
                None => {
                    reactions.push(Reaction {
                        emoji: change.emoji.clone(),
                        user_ids: vec![change.user_id],
                    });
                    Ok(true)
                }
            }
        })
    }

    async fn unreact(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
    ) -> Result<Reacted, StoreError> {
        self.react_with(room, change, at, Change::ReactionRemoved, |reactions| {
            let Some(reaction) = reactions.iter_mut().find(|r| r.emoji == change.emoji) else {
                return Ok(false);
            };
            let before = reaction.user_ids.len();
            reaction.user_ids.retain(|user| *user != change.user_id);
            let changed = reaction.user_ids.len() != before;
            reactions.retain(|reaction| !reaction.user_ids.is_empty());
            Ok(changed)
        })
    }

    /// A linear scan of the user's rooms: every word of the search must
    /// occur (ignoring case); more occurrences rank higher.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        let chat = lock(&self.0.state);
        let mut found: Vec<(usize, SearchHit)> = Vec::new();
        for (room_id, members) in &chat.members {
            if !members.contains_key(&query.user) || query.room.is_some_and(|only| only != *room_id)
            {
                continue;
            }
            let (Some(room), Some(messages)) =
                (chat.rooms.get(room_id), chat.messages.get(room_id))
            else {
                continue;
            };
            for message in messages {
                let Some(body) = &message.body else { continue };
                if query
                    .before
                    .is_some_and(|before| message.created_at >= before)
                {
                    continue;
                }
                if let Some(rank) = query.text.occurrences(body.as_str()) {
                    found.push((
                        rank,
                        SearchHit {
                            message: message.clone(),
                            room_name: room.name.clone(),
                        },
                    ));
                }
            }
        }
        let newest_first = |a: &SearchHit, b: &SearchHit| {
            (b.message.created_at, b.message.id).cmp(&(a.message.created_at, a.message.id))
        };
        found.sort_by(|(_, a), (_, b)| newest_first(a, b));
        found.truncate(SearchQuery::CANDIDATES);
        found.sort_by(|(rank_a, a), (rank_b, b)| rank_b.cmp(rank_a).then(newest_first(a, b)));
        found.truncate(query.limit.get());
        Ok(found.into_iter().map(|(_, hit)| hit).collect())
    }
}

impl MemoryMessages {
    /// Applies a reaction change under the lock: `apply` changes the
    /// message's reactions and says whether it did; a change is logged.
    fn react_with(
        &self,
        room: RoomId,
        change: &ReactionChange,
        at: DateTime<Utc>,
        logged: fn(ReactionChange) -> Change,
        apply: impl FnOnce(&mut Vec<Reaction>) -> Result<bool, Reacted>,
    ) -> Result<Reacted, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(message) = find_mut(&mut chat, room, change.message_id) else {
            return Ok(Reacted::NoMessage);
        };
        if message.is_deleted() {
            return Ok(Reacted::Deleted);
        }
        let changed = match apply(&mut message.reactions) {
            Ok(changed) => changed,
            Err(refused) => return Ok(refused),
        };
        let value = message.clone();
        let event = if changed {
            chat.log(room, at, |_| logged(change.clone()))
        } else {
            None
        };
        Ok(Reacted::Done(Box::new(Logged { value, event })))
    }
}

/// Room event logs in memory (a view of a [`MemoryChat`]).
#[derive(Debug, Clone)]
pub struct MemoryEvents(MemoryChat);

#[async_trait]
impl EventLog for MemoryEvents {
    async fn after(&self, room: RoomId, query: &EventQuery) -> Result<EventPage, StoreError> {
        let chat = lock(&self.0.state);
        let log = chat.events.get(&room);
        let limit = query.limit.get();
        let mut following = log
            .into_iter()
            .flatten()
            .skip_while(|event| event.pos <= query.after);
        let mut events: Vec<RoomEvent> = following.by_ref().take(limit).cloned().collect();
        let has_more = following.next().is_some();
        // Message events show the message as it is now.
        for event in &mut events {
            if let Some(logged) = event.change.message() {
                let current = chat
                    .message(room, logged.seq.value())
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Failure("an event names a missing message".into())
                    })?;
                match &mut event.change {
                    Change::Message(message)
                    | Change::MessageUpdated(message)
                    | Change::MessageDeleted(message) => *message = current,
                    _ => {}
                }
            }
        }
        Ok(EventPage { events, has_more })
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut chat = lock(&self.0.state);
        let mut pruned = 0;
        for log in chat.events.values_mut() {
            // Everything up to the newest event older than `before`: a
            // prefix, also where clocks put an older event after a newer one.
            let Some(last_old) = log.iter().rposition(|event| event.at < before) else {
                continue;
            };
            log.drain(..=last_old);
            pruned += u64::try_from(last_old + 1).unwrap_or(u64::MAX);
        }
        Ok(pruned)
    }
}

fn find_mut(chat: &mut Chat, room: RoomId, id: MessageId) -> Option<&mut Message> {
    chat.messages
        .get_mut(&room)?
        .iter_mut()
        .find(|message| message.id == id)
}

/// The index of the message with `seq`.
fn position(seq: i64) -> Option<usize> {
    usize::try_from(seq - 1).ok()
}

/// A seq as a slice bound within `len` messages.
fn clamp(seq: i64, len: usize) -> usize {
    usize::try_from(seq.max(0)).unwrap_or(usize::MAX).min(len)
}
