//! Login sessions and the rules of the tokens that carry them.
//!
//! One successful login (or email verification) opens one [`LoginSession`].
//! The session owns a chain of refresh tokens of which only the newest is
//! valid: refreshing rotates it, and presenting an older one is taken as a sign
//! of theft that ends the whole session (RFC 9700, section 4.14). Access tokens
//! name their session, so ending it refuses them too.

use std::fmt;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use crate::token::TokenHash;
use crate::user::UserId;

crate::id::uuid_id! {
    /// The identity of one login session (one refresh-token family).
    SessionId
}

/// How long tokens live. Set from `ACCESS_TOKEN_SESSION_MINUTES` and
/// `REFRESH_TOKEN_SESSION_HOURS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Lifetime of an access token.
    pub access_ttl: TimeDelta,
    /// Lifetime of a refresh token; each rotation starts it again.
    pub refresh_ttl: TimeDelta,
}

impl SessionPolicy {
    /// How much longer than its kind's TTL a presented token may have been
    /// issued for: clock rounding to whole seconds, nothing more.
    pub const LIFETIME_SLACK: TimeDelta = TimeDelta::seconds(2);

    /// The lifetime this policy gives tokens of `kind`.
    pub fn ttl(&self, kind: TokenKind) -> TimeDelta {
        match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        }
    }

    /// Whether a presented token's claims may be honoured at `now`: inside
    /// their validity window ([`TokenClaims::is_expired_at`]) and not issued
    /// for longer than this policy issues tokens of their kind (plus
    /// [`Self::LIFETIME_SLACK`]). A token that claims a longer life was not
    /// minted under this policy, whatever its signature says. Shortening a
    /// TTL therefore also refuses the longer tokens issued before.
    pub fn admits(&self, claims: &TokenClaims, now: DateTime<Utc>) -> bool {
        !claims.is_expired_at(now)
            && claims.expires_at - claims.issued_at <= self.ttl(claims.kind) + Self::LIFETIME_SLACK
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            access_ttl: TimeDelta::minutes(15),
            refresh_ttl: TimeDelta::hours(1),
        }
    }
}

/// Which of the two kinds a token is. Each is refused where the other is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Short-lived bearer token for API calls.
    Access,
    /// Longer-lived token accepted only by the refresh endpoint.
    Refresh,
}

/// What a signed token states. Built here when a token is minted, and handed
/// back by the token issuer once a presented token's signature checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The user the token speaks for (`sub`).
    pub user_id: UserId,
    /// The login session the token belongs to.
    pub session_id: SessionId,
    /// A unique id for this one token (`jti`), so no two tokens are equal.
    pub token_id: Uuid,
    /// When the token was minted (`iat`), in whole seconds.
    pub issued_at: DateTime<Utc>,
    /// When the token starts being valid (`nbf`, RFC 7519 4.1.5), in whole
    /// seconds; minted tokens start at once (`issued_at`).
    pub not_before: DateTime<Utc>,
    /// When the token stops being valid (`exp`), in whole seconds.
    pub expires_at: DateTime<Utc>,
}

impl TokenClaims {
    /// Claims for a new token of `kind`, valid for `ttl` from `now`. Times are
    /// cut to whole seconds, the precision of JWT's numeric dates, so the
    /// `valid_to` a client is told equals the token's own `exp`.
    pub fn mint(
        kind: TokenKind,
        user_id: UserId,
        session_id: SessionId,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Self {
        let issued_at = now.trunc_subsecs(0);
        Self {
            kind,
            user_id,
            session_id,
            token_id: Uuid::new_v4(),
            issued_at,
            not_before: issued_at,
            expires_at: issued_at + ttl,
        }
    }

    /// Whether the token is outside its validity window at `now`: at or past
    /// its `exp`, before its `nbf`, or issued in the future.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at || now < self.issued_at || now < self.not_before
    }
}

/// The four values a successful login, verification or refresh hands back.
/// Debug output is redacted: the tokens are bearer secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The signed access token.
    pub access_token: String,
    /// The signed refresh token.
    pub refresh_token: String,
    /// The access token's expiry.
    pub access_token_valid_to: DateTime<Utc>,
    /// The refresh token's expiry.
    pub refresh_token_valid_to: DateTime<Utc>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token_valid_to", &self.access_token_valid_to)
            .field("refresh_token_valid_to", &self.refresh_token_valid_to)
            .finish_non_exhaustive()
    }
}

/// The `User-Agent` a login came from, shown in the user's session list so
/// they can tell their devices apart. Taken from a header, so it is cleaned
/// rather than refused: control characters dropped, cut to [`Self::MAX_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(String);

impl UserAgent {
    /// The longest user agent kept, in characters.
    pub const MAX_CHARS: usize = 256;

    /// The cleaned header value; `None` when nothing printable is left.
    pub fn from_header(raw: &str) -> Option<Self> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_CHARS)
            .collect();
        let trimmed = cleaned.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// The user agent as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a login comes from, recorded with its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginContext {
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<UserAgent>,
}

/// One login: the family of refresh tokens it has issued, of which only the
/// newest (stored as its hash) is still valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The session's identity, named by every token it issues.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// Hash of the one refresh token that may still be used.
    pub refresh_token_hash: TokenHash,
    /// When the user logged in.
    pub created_at: DateTime<Utc>,
    /// When the current refresh token expires; the session ends with it.
    pub expires_at: DateTime<Utc>,
    /// When the session was ended by logout or reuse detection, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the session last issued tokens (its login or latest refresh).
    pub last_used_at: DateTime<Utc>,
    /// The device it was opened from.
    pub user_agent: Option<UserAgent>,
}

/// What presenting a refresh token to a session means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshCheck {
    /// The newest token of a live session: rotate it.
    Current,
    /// An older token of a live session: it was stolen or replayed, so the
    /// whole session must end.
    Reused,
    /// The session is revoked or expired: refuse, nothing more to do.
    Ended,
}

impl LoginSession {
    /// Whether tokens of this session are still honoured at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Applies the rotation rule to a presented refresh token's hash.
    pub fn check_refresh(&self, presented: &TokenHash, now: DateTime<Utc>) -> RefreshCheck {
        if !self.is_active_at(now) {
            RefreshCheck::Ended
        } else if *presented == self.refresh_token_hash {
            RefreshCheck::Current
        } else {
            RefreshCheck::Reused
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn session() -> LoginSession {
        LoginSession {
            id: SessionId::new(),
            user_id: UserId::new(),
            refresh_token_hash: TokenHash::of("current"),
            created_at: at(0),
            expires_at: at(3600),
            revoked_at: None,
            last_used_at: at(0),
            user_agent: None,
        }
    }

    #[test]
    fn minted_claims_use_whole_seconds_and_the_ttl() {
        let now = at(10) + TimeDelta::milliseconds(999);
        let claims = TokenClaims::mint(
            TokenKind::Access,
            UserId::new(),
            SessionId::new(),
            now,
            TimeDelta::minutes(15),
        );
        assert_eq!(claims.issued_at, at(10));
        assert_eq!(claims.expires_at, at(10 + 900));
    }

    #[test]
    fn claims_expire_exactly_at_exp_and_are_not_valid_before_iat() {
        let claims = TokenClaims::mint(
            TokenKind::Refresh,
            UserId::new(),
            SessionId::new(),
            at(0),
            TimeDelta::seconds(60),
        );
        assert!(!claims.is_expired_at(at(59)));
        assert!(claims.is_expired_at(at(60)));
        assert!(claims.is_expired_at(at(-1)));
    }

    #[test]
    fn claims_are_not_valid_before_their_nbf() {
        let mut claims = TokenClaims::mint(
            TokenKind::Access,
            UserId::new(),
            SessionId::new(),
            at(0),
            TimeDelta::seconds(60),
        );
        assert_eq!(claims.not_before, at(0));
        claims.not_before = at(30);
        assert!(claims.is_expired_at(at(29)));
        assert!(!claims.is_expired_at(at(30)));
    }

    #[test]
    fn the_policy_refuses_tokens_issued_for_longer_than_their_kind_lives() {
        let policy = SessionPolicy::default();
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let ttl = policy.ttl(kind);
            let mint = |lifetime| {
                TokenClaims::mint(kind, UserId::new(), SessionId::new(), at(0), lifetime)
            };
            assert!(policy.admits(&mint(ttl), at(1)), "{kind:?}");
            assert!(
                policy.admits(&mint(ttl + SessionPolicy::LIFETIME_SLACK), at(1)),
                "{kind:?}: the slack"
            );
            assert!(
                !policy.admits(
                    &mint(ttl + SessionPolicy::LIFETIME_SLACK + TimeDelta::seconds(1)),
                    at(1)
                ),
                "{kind:?}: past the slack"
            );
            assert!(
                !policy.admits(&mint(TimeDelta::days(365)), at(1)),
                "{kind:?}"
            );
            assert!(!policy.admits(&mint(ttl), at(0) + ttl), "{kind:?}: expired");
        }
    }

    #[test]
    fn every_minted_token_has_its_own_id() {
        let (user, session) = (UserId::new(), SessionId::new());
        let first = TokenClaims::mint(
            TokenKind::Refresh,
            user,
            session,
            at(0),
            TimeDelta::hours(1),
        );
        let second = TokenClaims::mint(
            TokenKind::Refresh,
            user,
            session,
            at(0),
            TimeDelta::hours(1),
        );
        assert_ne!(first.token_id, second.token_id);
    }

    #[test]
    fn the_current_refresh_token_rotates() {
        assert_eq!(
            session().check_refresh(&TokenHash::of("current"), at(1)),
            RefreshCheck::Current
        );
    }

    #[test]
    fn an_older_refresh_token_is_reuse() {
        assert_eq!(
            session().check_refresh(&TokenHash::of("rotated-away"), at(1)),
            RefreshCheck::Reused
        );
    }

    #[test]
    fn a_revoked_or_expired_session_takes_no_refresh() {
        let revoked = LoginSession {
            revoked_at: Some(at(5)),
            ..session()
        };
        assert_eq!(
            revoked.check_refresh(&TokenHash::of("current"), at(6)),
            RefreshCheck::Ended
        );
        assert_eq!(
            session().check_refresh(&TokenHash::of("current"), at(3600)),
            RefreshCheck::Ended
        );
        assert!(!session().is_active_at(at(3600)));
        assert!(session().is_active_at(at(3599)));
    }

    #[test]
    fn user_agents_are_cleaned_and_cut() {
        assert_eq!(
            UserAgent::from_header(" Firefox\u{0}/1\n ")
                .unwrap()
                .as_str(),
            "Firefox/1"
        );
        assert_eq!(
            UserAgent::from_header(&"x".repeat(300))
                .unwrap()
                .as_str()
                .len(),
            UserAgent::MAX_CHARS
        );
        assert_eq!(UserAgent::from_header("\u{1}\t "), None);
    }

    #[test]
    fn token_set_debug_hides_the_tokens() {
        let set = TokenSet {
            access_token: "access-secret".into(),
            refresh_token: "refresh-secret".into(),
            access_token_valid_to: at(0),
            refresh_token_valid_to: at(0),
        };
        let shown = format!("{set:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
