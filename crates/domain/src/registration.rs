//! Who may register: the instance's registration mode and the invitations
//! an administrator hands out when registration is by invitation only.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::ValidationError;
use crate::token::TokenHash;
use crate::user::UserId;

crate::id::uuid_id! {
    /// The identity of one invitation (what an administrator lists and revokes;
    /// the token itself is never stored).
    InviteId
}

/// `REGISTRATION`: who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Anyone (the default).
    #[default]
    Open,
    /// Only someone holding a valid invitation.
    Invite,
    /// Nobody; administrators create accounts with `p-chat admin create-user`.
    Closed,
}

impl RegistrationMode {
    /// Reads `open`, `invite` or `closed`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Self::Open),
            "invite" => Some(Self::Invite),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// How many registrations one invitation admits: 1 to [`Self::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteUses(u32);

impl InviteUses {
    /// The most registrations one invitation may admit.
    pub const MAX: u32 = 1000;

    /// Checks a count chosen by an administrator.
    pub fn new(uses: i64) -> Result<Self, ValidationError> {
        u32::try_from(uses)
            .ok()
            .filter(|uses| (1..=Self::MAX).contains(uses))
            .map(Self)
            .ok_or(ValidationError::InviteUses)
    }

    /// The count.
    pub fn get(&self) -> u32 {
        self.0
    }
}

/// How long an invitation stays valid: one minute to [`Self::MAX_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteLifetime(TimeDelta);

impl InviteLifetime {
    /// The shortest lifetime, in seconds.
    pub const MIN_SECONDS: i64 = 60;
    /// The longest lifetime, in days.
    pub const MAX_DAYS: i64 = 90;

    /// Checks a lifetime in seconds chosen by an administrator.
    pub fn from_seconds(seconds: i64) -> Result<Self, ValidationError> {
        if (Self::MIN_SECONDS..=Self::MAX_DAYS * 86_400).contains(&seconds) {
            Ok(Self(TimeDelta::seconds(seconds)))
        } else {
            Err(ValidationError::InviteLifetime)
        }
    }

    /// The lifetime.
    pub fn get(&self) -> TimeDelta {
        self.0
    }
}

/// An invitation to register, stored under the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The invitation's identity.
    pub id: InviteId,
    /// Hash of the token handed to the invitee.
    pub token_hash: TokenHash,
    /// The administrator who created it (`None`: the server's console).
    pub created_by: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// After this instant it admits nobody.
    pub expires_at: DateTime<Utc>,
    /// Registrations it still admits.
    pub uses_left: u32,
}

impl Invite {
    /// Whether it still admits a registration at `now`.
    pub fn admits_at(&self, now: DateTime<Utc>) -> bool {
        self.uses_left > 0 && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_in_any_case() {
        assert_eq!(
            RegistrationMode::parse("Invite"),
            Some(RegistrationMode::Invite)
        );
        assert_eq!(
            RegistrationMode::parse(" closed "),
            Some(RegistrationMode::Closed)
        );
        assert_eq!(
            RegistrationMode::parse("open"),
            Some(RegistrationMode::Open)
        );
        assert_eq!(RegistrationMode::parse("sometimes"), None);
    }

    #[test]
    fn uses_and_lifetimes_are_bounded() {
        assert!(InviteUses::new(1).is_ok() && InviteUses::new(1000).is_ok());
        for bad in [0, -1, 1001, i64::MAX] {
            assert_eq!(InviteUses::new(bad), Err(ValidationError::InviteUses));
        }
        assert!(InviteLifetime::from_seconds(60).is_ok());
        assert!(InviteLifetime::from_seconds(90 * 86_400).is_ok());
        for bad in [59, 0, -60, 90 * 86_400 + 1] {
            assert_eq!(
                InviteLifetime::from_seconds(bad),
                Err(ValidationError::InviteLifetime)
            );
        }
    }

    #[test]
    fn an_invite_admits_while_it_has_uses_and_time() {
        let now = Utc::now();
        let invite = Invite {
            id: InviteId::new(),
            token_hash: TokenHash::of("t"),
            created_by: Some(UserId::new()),
            created_at: now,
            expires_at: now + TimeDelta::hours(1),
            uses_left: 1,
        };
        assert!(invite.admits_at(now));
        assert!(!invite.admits_at(now + TimeDelta::hours(1)));
        assert!(
            !Invite {
                uses_left: 0,
                ..invite
            }
            .admits_at(now)
        );
    }
}
