//! Rooms, memberships and messages in memory: one state behind one mutex,
//! seen through three port adapters, so operations spanning them (creating
//! a room with its owner, appending a message and advancing `last_seq`,
//! deleting a room with everything in it) are atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use p_chat_domain::message::{
    Appended, ClientMsgId, HistoryPage, HistoryQuery, Message, MessageBody, MessageId, NewMessage,
};
use p_chat_domain::ports::{
    MembershipRepository, MessageRepository, OpenedDirect, RoomDetails, RoomRepository, StoreError,
};
use p_chat_domain::room::{DirectPair, Membership, Role, Room, RoomId};
use p_chat_domain::user::UserId;

use crate::lock;

/// The shared state of the three chat adapters. Create one, then hand out
/// its [`MemoryChat::rooms`], [`MemoryChat::memberships`] and
/// [`MemoryChat::messages`] views.
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
}

impl MemoryChat {
    /// Removes every membership of `user` (a stale registration replaced).
    pub(super) fn remove_user(&self, user: UserId) {
        for members in lock(&self.state).members.values_mut() {
            members.remove(&user);
        }
    }

    /// Removes every membership of `user` and returns the rooms left, unless
    /// the user owns a room: then nothing changes and `None` is returned.
    pub(super) fn remove_user_unless_owner(&self, user: UserId) -> Option<Vec<RoomId>> {
        let mut chat = lock(&self.state);
        let owns = chat
            .members
            .values()
            .any(|members| members.get(&user).is_some_and(|m| m.role == Role::Owner));
        if owns {
            return None;
        }
        let mut left = Vec::new();
        for (room, members) in &mut chat.members {
            if members.remove(&user).is_some() {
                left.push(*room);
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
    async fn create(&self, room: &Room, owner: &Membership) -> Result<(), StoreError> {
        let mut chat = lock(&self.0.state);
        if chat.rooms.contains_key(&room.id) {
            return Err(StoreError::Duplicate);
        }
        chat.rooms.insert(room.id, room.clone());
        chat.add_member(owner);
        Ok(())
    }

    async fn open_direct(
        &self,
        room: &Room,
        pair: DirectPair,
        now: DateTime<Utc>,
    ) -> Result<OpenedDirect, StoreError> {
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
        for user_id in [pair.low(), pair.high()] {
            let membership = Membership {
                room_id,
                user_id,
                role: Role::Member,
                joined_at: now,
            };
            if chat.add_member(&membership) {
                joined.push(membership);
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
    ) -> Result<Option<Room>, StoreError> {
        let mut chat = lock(&self.0.state);
        Ok(chat.rooms.get_mut(&id).map(|room| {
            room.name = details.name.clone();
            room.topic = details.topic.clone();
            room.visibility = details.visibility;
            room.clone()
        }))
    }

    async fn delete(&self, id: RoomId) -> Result<bool, StoreError> {
        let mut chat = lock(&self.0.state);
        let existed = chat.rooms.remove(&id).is_some();
        chat.members.remove(&id);
        chat.messages.remove(&id);
        chat.client_ids.retain(|(room_id, _, _), _| *room_id != id);
        chat.direct.retain(|_, room_id| *room_id != id);
        Ok(existed)
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

    async fn add(&self, membership: &Membership) -> Result<(), StoreError> {
        let mut chat = lock(&self.0.state);
        if !chat.rooms.contains_key(&membership.room_id) {
            return Err(StoreError::Failure("no such room".into()));
        }
        if chat.add_member(membership) {
            Ok(())
        } else {
            Err(StoreError::Duplicate)
        }
    }

    async fn remove(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut chat = lock(&self.0.state);
        Ok(chat
            .members
            .get_mut(&room)
            .and_then(|members| members.remove(&user))
            .is_some())
    }

    async fn set_role(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<Option<Membership>, StoreError> {
        let mut chat = lock(&self.0.state);
        Ok(chat
            .members
            .get_mut(&room)
            .and_then(|members| members.get_mut(&user))
            .map(|membership| {
                membership.role = role;
                membership.clone()
            }))
    }

    async fn transfer_ownership(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
    ) -> Result<bool, StoreError> {
        let mut chat = lock(&self.0.state);
        let Some(members) = chat.members.get_mut(&room) else {
            return Ok(false);
        };
        let from_is_owner = members.get(&from).is_some_and(|m| m.role == Role::Owner);
        if from == to || !from_is_owner || !members.contains_key(&to) {
            return Ok(false);
        }
        for (user, role) in [(from, Role::Admin), (to, Role::Owner)] {
            if let Some(membership) = members.get_mut(&user) {
                membership.role = role;
            }
        }
        if let Some(stored) = chat.rooms.get_mut(&room) {
            stored.owner_id = to;
        }
        Ok(true)
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
}

#[async_trait]
impl MessageRepository for MemoryMessages {
    async fn append(&self, new: &NewMessage) -> Result<Option<Appended>, StoreError> {
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
                return Ok(Some(Appended {
                    message,
                    created: false,
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
        };
        if let Some(room) = chat.rooms.get_mut(&new.room_id) {
            room.last_seq = seq;
        }
        chat.messages
            .entry(new.room_id)
            .or_default()
            .push(message.clone());
        Ok(Some(Appended {
            message,
            created: true,
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
    ) -> Result<Option<Message>, StoreError> {
        let mut chat = lock(&self.0.state);
        Ok(find_mut(&mut chat, room, id)
            .filter(|message| !message.is_deleted())
            .map(|message| {
                message.body = Some(body.clone());
                message.edited_at = Some(at);
                message.clone()
            }))
    }

    async fn tombstone(
        &self,
        room: RoomId,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        let mut chat = lock(&self.0.state);
        Ok(find_mut(&mut chat, room, id).map(|message| {
            message.body = None;
            message.deleted_at.get_or_insert(at);
            message.clone()
        }))
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
