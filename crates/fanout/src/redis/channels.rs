//! The names of the Redis channels a deployment uses, all under one prefix
//! (`REDIS_PREFIX`), so several deployments, or parallel tests, can share
//! a Redis server without hearing each other.

use p_chat_domain::room::RoomId;
use p_chat_domain::user::UserId;

use crate::local::Topic;

/// The prefix of a deployment's channel names, when none is configured.
pub const DEFAULT_PREFIX: &str = "p-chat";

/// A valid channel prefix: 1 to [`ChannelPrefix::MAX_LEN`] ASCII letters,
/// digits, `-`, `_`, `.` or `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPrefix(String);

/// What a channel prefix may be, as errors state it.
pub const PREFIX_RULE: &str = "1 to 64 ASCII letters, digits, '-', '_', '.' or ':'";

/// Why a channel prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {PREFIX_RULE}")]
pub struct InvalidPrefix;

impl ChannelPrefix {
    /// The longest prefix accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks a configured prefix.
    pub fn parse(raw: &str) -> Result<Self, InvalidPrefix> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(allowed) {
            return Err(InvalidPrefix);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The prefix as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ChannelPrefix {
    fn default() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }
}

/// What a node finds on one of the deployment's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// A room's events and typing: `<prefix>:room:<id>`.
    Topic(Topic),
    /// Ended login sessions, heard by every node: `<prefix>:sessions`.
    Sessions,
    /// Presence changes, heard by every node: `<prefix>:presence`.
    Presence,
}

impl Channel {
    /// The channel's name under `prefix`.
    pub(crate) fn name(self, prefix: &ChannelPrefix) -> String {
        let prefix = prefix.as_str();
        match self {
            Self::Topic(Topic::Room(room)) => format!("{prefix}:room:{room}"),
            Self::Topic(Topic::User(user)) => format!("{prefix}:user:{user}"),
            Self::Sessions => format!("{prefix}:sessions"),
            Self::Presence => format!("{prefix}:presence"),
        }
    }

    /// The channel of a room's events.
    pub(crate) fn room(room: RoomId) -> Self {
        Self::Topic(Topic::Room(room))
    }

    /// The channel that routes a user's new memberships.
    pub(crate) fn user(user: UserId) -> Self {
        Self::Topic(Topic::User(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        for good in ["p-chat", "a", "team.chat:prod_1", &"x".repeat(64)] {
            assert!(ChannelPrefix::parse(good).is_ok(), "{good}");
        }
        for bad in ["", " p", "p chat", "p*", "é", &"x".repeat(65)] {
            assert_eq!(ChannelPrefix::parse(bad), Err(InvalidPrefix), "{bad}");
        }
        assert!(
            PREFIX_RULE.contains(&format!("1 to {} ", ChannelPrefix::MAX_LEN)),
            "the stated rule follows MAX_LEN"
        );
    }

    #[test]
    fn channel_names_carry_the_prefix() {
        let prefix = ChannelPrefix::parse("t1").expect("prefix");
        let room = RoomId::from_uuid(uuid::Uuid::nil());
        assert_eq!(
            Channel::room(room).name(&prefix),
            "t1:room:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            Channel::Sessions.name(&ChannelPrefix::default()),
            "p-chat:sessions"
        );
    }
}
