//! Rooms and membership: who may see and do what is decided from these
//! values by [`crate::permissions`].

use chrono::{DateTime, Utc};

use crate::error::ValidationError;
use crate::message::Seq;
use crate::position::Pos;
use crate::user::{DisplayName, UserId};

crate::id::uuid_id! {
    /// The identity of a room.
    RoomId
}

/// Who can find and enter a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Listed in the public directory; anyone may read its details and join.
    Public,
    /// Invisible to non-members; members are added by admins.
    Private,
    /// The one conversation of two users; nobody else ever joins.
    Direct,
}

impl Visibility {
    /// The wire and storage name: `public`, `private` or `direct`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Direct => "direct",
        }
    }

    /// Parses the wire or storage name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            "direct" => Ok(Self::Direct),
            _ => Err(ValidationError::Visibility),
        }
    }

    /// A visibility a user may choose for a room they create or update
    /// (direct rooms only come from opening a conversation with someone).
    pub fn parse_choosable(raw: &str) -> Result<Self, ValidationError> {
        match Self::parse(raw)? {
            Self::Direct => Err(ValidationError::Visibility),
            chosen => Ok(chosen),
        }
    }
}

/// A room's name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    /// The longest name accepted, in Unicode characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks a name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValidationError::RoomName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name of a direct room: its two members' names, cut to fit.
    pub fn for_direct(first: &DisplayName, second: &DisplayName) -> Self {
        let joined = format!("{} & {}", first.as_str(), second.as_str());
        let cut: String = joined.chars().take(Self::MAX_CHARS).collect();
        // Stored names are trimmed (what `parse` gives back when read).
        Self(cut.trim_end().to_owned())
    }

    /// The name as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room's topic: at most 1000 characters after trimming (newlines allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(String);

impl Topic {
    /// The longest topic accepted, in Unicode characters.
    pub const MAX_CHARS: usize = 1000;

    /// Trims and checks a topic; an empty one means "no topic" (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS
            || trimmed
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ValidationError::Topic);
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    /// The topic as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What public rooms are searched by (`GET /rooms/public?q=`): a text the
/// name contains, trimmed, at most as long as a name, and without control
/// characters (a NUL, for one, is not text a store can compare). Empty
/// matches every public room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSearch(String);

impl RoomSearch {
    /// Trims and checks a search text.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > RoomName::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValidationError::RoomSearch);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The text searched for.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The room's identity.
    pub id: RoomId,
    /// Its name.
    pub name: RoomName,
    /// Its topic, if any.
    pub topic: Option<Topic>,
    /// Who can find and enter it.
    pub visibility: Visibility,
    /// The member with the owner role (for a direct room: who opened it).
    pub owner_id: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The seq of its newest message (0 before the first).
    pub last_seq: Seq,
    /// The position of its newest event (see [`crate::events`]).
    pub last_pos: Pos,
}

/// A member's standing in a room, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads and posts.
    Member,
    /// Also manages the room's details, members and messages.
    Admin,
    /// Also deletes the room and hands out roles; exactly one per room.
    Owner,
}

impl Role {
    /// The wire and storage name: `owner`, `admin` or `member`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses the wire or storage name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(ValidationError::Role),
        }
    }
}

/// A user's membership of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The room.
    pub room_id: RoomId,
    /// The member.
    pub user_id: UserId,
    /// Their role there.
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// A membership with the member's current display name, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The membership.
    pub membership: Membership,
    /// The member's display name now.
    pub display_name: DisplayName,
}

/// The two users of a direct room, in a canonical order, so that the pair
/// (a, b) and the pair (b, a) are the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectPair {
    low: UserId,
    high: UserId,
}

impl DirectPair {
    /// The pair of two different users.
    pub fn new(first: UserId, second: UserId) -> Result<Self, ValidationError> {
        if first == second {
            return Err(ValidationError::DirectWithSelf);
        }
        Ok(Self {
            low: first.min(second),
            high: first.max(second),
        })
    }

    /// The user with the smaller id.
    pub fn low(&self) -> UserId {
        self.low
    }

    /// The user with the larger id.
    pub fn high(&self) -> UserId {
        self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_and_bounded() {
        assert_eq!(RoomName::parse("  general ").unwrap().as_str(), "general");
        assert!(RoomName::parse(&"é".repeat(100)).is_ok());
        for raw in ["", "  ", &"x".repeat(101), "tab\there"] {
            assert_eq!(
                RoomName::parse(raw),
                Err(ValidationError::RoomName),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn room_searches_are_trimmed_bounded_and_plain_text() {
        assert_eq!(RoomSearch::parse("  gen ").unwrap().as_str(), "gen");
        assert_eq!(RoomSearch::parse("").unwrap(), RoomSearch::default());
        assert!(RoomSearch::parse(&"é".repeat(100)).is_ok());
        for bad in ["\u{0}", "a\u{0}b", "a\nb", "a\u{1b}b", &"é".repeat(101)] {
            assert_eq!(
                RoomSearch::parse(bad),
                Err(ValidationError::RoomSearch),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_and_topics_refuse_nul() {
        assert_eq!(RoomName::parse("a\u{0}b"), Err(ValidationError::RoomName));
        assert_eq!(Topic::parse("a\u{0}b"), Err(ValidationError::Topic));
    }

    #[test]
    fn topics_are_optional_and_bounded() {
        assert_eq!(Topic::parse("   ").unwrap(), None);
        assert_eq!(Topic::parse(" a\nb ").unwrap().unwrap().as_str(), "a\nb");
        assert!(Topic::parse(&"t".repeat(1000)).unwrap().is_some());
        assert_eq!(Topic::parse(&"t".repeat(1001)), Err(ValidationError::Topic));
        assert_eq!(Topic::parse("bell\u{7}"), Err(ValidationError::Topic));
    }

    #[test]
    fn visibility_and_role_round_trip_their_names() {
        for visibility in [Visibility::Public, Visibility::Private, Visibility::Direct] {
            assert_eq!(Visibility::parse(visibility.as_str()), Ok(visibility));
        }
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Visibility::parse("Public").is_err());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn direct_cannot_be_chosen() {
        assert_eq!(
            Visibility::parse_choosable("direct"),
            Err(ValidationError::Visibility)
        );
        assert_eq!(
            Visibility::parse_choosable("public"),
            Ok(Visibility::Public)
        );
    }

    #[test]
    fn a_direct_pair_is_unordered_and_of_two_people() {
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(
            DirectPair::new(a, b).unwrap(),
            DirectPair::new(b, a).unwrap()
        );
        assert!(DirectPair::new(a, b).unwrap().low() < DirectPair::new(a, b).unwrap().high());
        assert_eq!(DirectPair::new(a, a), Err(ValidationError::DirectWithSelf));
    }

    #[test]
    fn a_direct_room_name_is_both_names_cut_to_fit() {
        let long = DisplayName::parse(&"n".repeat(64)).unwrap();
        let name = RoomName::for_direct(&long, &long);
        assert_eq!(name.as_str().chars().count(), RoomName::MAX_CHARS);
    }
}
