//! Messages, their per-room sequence numbers, and history pages.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::error::ValidationError;
use crate::reaction::Reaction;
use crate::room::RoomId;
use crate::user::UserId;

/// A message's position in its room: 1, 2, 3, ... with no gap and no reuse.
/// 0 stands for "before the first message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seq(i64);

impl Seq {
    /// Before the first message.
    pub const ZERO: Self = Self(0);

    /// A seq from a client or from storage; negative values are invalid.
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        if value < 0 {
            return Err(ValidationError::Seq);
        }
        Ok(Self(value))
    }

    /// The number.
    pub fn value(&self) -> i64 {
        self.0
    }

    /// The seq after this one.
    pub fn next(&self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

crate::id::uuid_id! {
    /// The identity of a message.
    MessageId
}

/// A message's text: 1 to 4000 Unicode characters after trimming, with line
/// breaks and tabs but no other control characters (no NUL, no escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// The longest body accepted, in Unicode characters.
    pub const MAX_CHARS: usize = 4000;

    /// Trims and checks a body. Longer bodies are refused, never truncated.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0
            || length > Self::MAX_CHARS
            || trimmed
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValidationError::MessageBody);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's own id for a message, making sends idempotent: 1 to 64
/// printable characters (a UUID is a good choice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// The longest id accepted, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Checks a client's id (not trimmed: it is compared exactly).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let length = raw.chars().count();
        if length == 0 || length > Self::MAX_CHARS || raw.chars().any(char::is_control) {
            return Err(ValidationError::ClientMsgId);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The users a message mentions: at most [`Mentions::MAX`], each once, in
/// the order given. Whether they are members of the room is the messaging
/// service's check, as it needs the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mentions(Vec<UserId>);

impl Mentions {
    /// The most users one message mentions.
    pub const MAX: usize = 50;

    /// Drops repeats (the first of each stays) and checks the count.
    pub fn parse(users: impl IntoIterator<Item = UserId>) -> Result<Self, ValidationError> {
        let mut unique: Vec<UserId> = Vec::new();
        for user in users {
            if !unique.contains(&user) {
                if unique.len() == Self::MAX {
                    return Err(ValidationError::Mentions);
                }
                unique.push(user);
            }
        }
        Ok(Self(unique))
    }

    /// The users.
    pub fn users(&self) -> &[UserId] {
        &self.0
    }

    /// Whether `user` is mentioned.
    pub fn includes(&self, user: UserId) -> bool {
        self.0.contains(&user)
    }

    /// Whether nobody is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a member sends: the text and its optional parts, parsed (the room
/// and membership checks are the service's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The text.
    pub body: MessageBody,
    /// The sender's idempotency key, if any.
    pub client_msg_id: Option<ClientMsgId>,
    /// The message of the same room it replies to.
    pub reply_to: Option<MessageId>,
    /// The members it mentions.
    pub mentions: Mentions,
}

impl Draft {
    /// Parses what a client sends (REST and WebSocket alike).
    pub fn parse(
        body: &str,
        client_msg_id: Option<&str>,
        reply_to: Option<MessageId>,
        mentions: impl IntoIterator<Item = UserId>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            body: MessageBody::parse(body)?,
            client_msg_id: client_msg_id.map(ClientMsgId::parse).transpose()?,
            reply_to,
            mentions: Mentions::parse(mentions)?,
        })
    }

    /// A plain message: no idempotency key, no reply, no mention.
    pub fn text(body: MessageBody) -> Self {
        Self {
            body,
            client_msg_id: None,
            reply_to: None,
            mentions: Mentions::default(),
        }
    }
}

/// A stored message. A deleted one keeps its seq and its `reply_to` and
/// loses its body, mentions and reactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message's identity.
    pub id: MessageId,
    /// The room it was posted in.
    pub room_id: RoomId,
    /// Its position in the room.
    pub seq: Seq,
    /// Who posted it.
    pub author_id: UserId,
    /// Its text; `None` once deleted.
    pub body: Option<MessageBody>,
    /// The sender's idempotency key, if one was given.
    pub client_msg_id: Option<ClientMsgId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When its body was last changed.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted (tombstoned).
    pub deleted_at: Option<DateTime<Utc>>,
    /// The message of the same room it replies to (which may be deleted).
    pub reply_to: Option<MessageId>,
    /// The members it mentions.
    pub mentions: Mentions,
    /// Its reactions, one per distinct emoji, in the order each emoji was
    /// first added.
    pub reactions: Vec<Reaction>,
}

impl Message {
    /// Whether the message is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// A message to store; the store assigns its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The id it will have.
    pub id: MessageId,
    /// The room it goes to.
    pub room_id: RoomId,
    /// Its author.
    pub author_id: UserId,
    /// Its text.
    pub body: MessageBody,
    /// The sender's idempotency key, if any.
    pub client_msg_id: Option<ClientMsgId>,
    /// When it is sent.
    pub created_at: DateTime<Utc>,
    /// The message of the same room it replies to.
    pub reply_to: Option<MessageId>,
    /// The members it mentions.
    pub mentions: Mentions,
}

/// How many messages one history page holds: 1 to 100, 50 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(usize);

impl PageLimit {
    /// The most messages in one page.
    pub const MAX: usize = 100;

    /// The largest page (what a replay reads when no limit is given).
    pub const MAX_PAGE: Self = Self(Self::MAX);

    /// Checks a requested page size.
    pub fn new(limit: i64) -> Result<Self, ValidationError> {
        match usize::try_from(limit) {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(Self(limit)),
            _ => Err(ValidationError::PageLimit),
        }
    }

    /// The size.
    pub fn get(&self) -> usize {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(50)
    }
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryQuery {
    /// Only messages with a seq above this one; the page starts right after it.
    pub after: Option<Seq>,
    /// Only messages with a seq below this one; without `after`, the page
    /// ends right before it.
    pub before: Option<Seq>,
    /// The page size.
    pub limit: PageLimit,
}

impl HistoryQuery {
    /// Whether the page is anchored at its start (`after` given) and so reads
    /// forwards; otherwise it is the newest messages below `before` (or of all).
    pub fn reads_forward(&self) -> bool {
        self.after.is_some()
    }
}

/// One page of history, in ascending seq order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages.
    pub messages: Vec<Message>,
    /// Whether more messages match beyond the page: after its last message
    /// when reading forward, before its first otherwise.
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded_in_characters() {
        assert_eq!(MessageBody::parse("  hi \n").unwrap().as_str(), "hi");
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        for raw in ["", " \n\t ", &"x".repeat(4001), "nul\u{0}"] {
            assert_eq!(MessageBody::parse(raw), Err(ValidationError::MessageBody));
        }
    }

    #[test]
    fn bodies_keep_line_breaks_and_tabs_but_no_other_control_character() {
        assert_eq!(MessageBody::parse("a\r\n\tb").unwrap().as_str(), "a\r\n\tb");
        for bad in ["a\u{0}b", "\u{0}", "a\u{1b}[31mb", "a\u{7f}", "a\u{85}b"] {
            assert_eq!(
                MessageBody::parse(bad),
                Err(ValidationError::MessageBody),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_ids_are_bounded_and_exact() {
        assert_eq!(ClientMsgId::parse(" a ").unwrap().as_str(), " a ");
        assert!(ClientMsgId::parse(&"c".repeat(64)).is_ok());
        for raw in ["", &"c".repeat(65), "new\nline"] {
            assert_eq!(ClientMsgId::parse(raw), Err(ValidationError::ClientMsgId));
        }
    }

    #[test]
    fn page_limits_run_from_1_to_100_with_50_by_default() {
        assert_eq!(PageLimit::default().get(), 50);
        assert_eq!(PageLimit::new(1).unwrap().get(), 1);
        assert_eq!(PageLimit::new(100).unwrap().get(), 100);
        for bad in [0, -1, 101, i64::MAX] {
            assert_eq!(PageLimit::new(bad), Err(ValidationError::PageLimit));
        }
    }

    #[test]
    fn mentions_drop_repeats_and_stop_at_50_distinct_users() {
        let ada = UserId::new();
        let bob = UserId::new();
        let mentions = Mentions::parse([ada, bob, ada]).unwrap();
        assert_eq!(mentions.users(), &[ada, bob]);
        assert!(mentions.includes(bob) && !mentions.includes(UserId::new()));
        let fifty: Vec<UserId> = (0..50).map(|_| UserId::new()).collect();
        let mut repeated = fifty.clone();
        repeated.extend(fifty.iter().copied());
        assert_eq!(Mentions::parse(repeated).unwrap().users().len(), 50);
        let mut fifty_one = fifty;
        fifty_one.push(UserId::new());
        assert_eq!(Mentions::parse(fifty_one), Err(ValidationError::Mentions));
        assert!(Mentions::parse([]).unwrap().is_empty());
    }

    #[test]
    fn seqs_are_never_negative() {
        assert_eq!(Seq::new(-1), Err(ValidationError::Seq));
        assert_eq!(Seq::new(0).unwrap(), Seq::ZERO);
        assert_eq!(Seq::ZERO.next().value(), 1);
    }
}
