//! Users and the values that describe them. Every type here is parsed, not
//! validated: a value that exists is valid, so nothing downstream re-checks it.

use std::fmt;

use chrono::{DateTime, Utc};
use email_address::{EmailAddress, Options};

use crate::error::ValidationError;

crate::id::uuid_id! {
    /// The stable identity of a user.
    UserId
}

/// An email address in its normalized form: trimmed and lower-cased, so that
/// `" Alice@Example.COM "` and `"alice@example.com"` are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The longest address accepted (RFC 5321's path limit).
    pub const MAX_LEN: usize = 254;

    /// Normalizes and checks an address typed by a user.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let normalized = raw.trim().to_lowercase();
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        if normalized.chars().count() > Self::MAX_LEN
            || normalized.chars().any(invisible)
            || EmailAddress::parse_with_options(&normalized, options).is_err()
        {
            return Err(ValidationError::Email);
        }
        Ok(Self(normalized))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`: what logs may show of an address.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }

    /// The part before the `@`, used as a first display name.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

/// Whether `c` is a control or format character: nothing an address is
/// written with, and some (bidirectional overrides and isolates, zero-width
/// characters) make one address look like another in a list.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name other users see: 1 to 64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest display name accepted, in Unicode characters.
    pub const MAX_CHARS: usize = 64;

    /// Trims and checks a name chosen by a user.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValidationError::DisplayName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name a new account starts with: the local part of its email, cut to
    /// the maximum length (an email's local part is never empty once parsed).
    pub fn from_email(email: &Email) -> Self {
        Self(email.local_part().chars().take(Self::MAX_CHARS).collect())
    }

    /// The name as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Part of an email or display name that administrators search accounts
/// by: 1 to 100 characters after trimming, no control characters (a NUL
/// could never reach a text column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch(String);

impl UserSearch {
    /// The longest search accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Checks a search typed by an administrator; an empty one means "all",
    /// which is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValidationError::Search);
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    /// The search text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What clients send instead of a password: its SHA-256 as 64 hex characters,
/// normalized to lower case. Debug output is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordDigest(String);

impl PasswordDigest {
    /// Checks that `raw` is 64 hexadecimal characters and lower-cases it.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.len() != 64 || !raw.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(ValidationError::PasswordDigest);
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The digest a client sends for the password `plain` (its SHA-256), for
    /// tools that take a password themselves (`p-chat admin`).
    pub fn of_password(plain: &str) -> Self {
        use sha2::{Digest, Sha256};
        Self(hex::encode(Sha256::digest(plain.as_bytes())))
    }

    /// The lower-case hex digest, for the password hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordDigest(<redacted>)")
    }
}

/// A stored password hash (bcrypt, in its modular crypt format). Debug output
/// is redacted: a hash is still a secret worth protecting.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The stored "hash" of an account that must never log in again (a
    /// deleted one): no bcrypt hash has this form, so no password matches it.
    pub const UNUSABLE: &'static str = "!unusable";

    /// Wraps a hash produced by the password hasher or read from storage.
    pub fn new(hash: String) -> Self {
        Self(hash)
    }

    /// The hash string, for storage and verification only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user's standing in the whole instance, apart from any room role: an
/// instance administrator manages accounts and invitations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceRole {
    /// An ordinary account.
    #[default]
    Member,
    /// May list, disable and enable accounts, change instance roles and
    /// create invitations.
    Admin,
}

impl InstanceRole {
    /// The role as stored and shown (`"member"`, `"admin"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }

    /// Reads a role as stored or sent by a client.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            _ => Err(ValidationError::InstanceRole),
        }
    }
}

/// What remains of an account its owner deleted: it can never log in again,
/// its email is free for a new registration, and its messages stay in their
/// rooms (with their `seq`) under this name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymised {
    /// A unique placeholder address in the reserved `.invalid` domain.
    pub email: Email,
    /// The name its messages are shown under.
    pub display_name: DisplayName,
    /// When the account was deleted.
    pub deleted_at: DateTime<Utc>,
}

impl Anonymised {
    /// The name every deleted account is shown under.
    pub const DISPLAY_NAME: &'static str = "Deleted user";

    /// The anonymised form of the account `id`, deleted at `at`.
    pub fn of(id: UserId, at: DateTime<Utc>) -> Self {
        Self {
            email: Email(format!("deleted-{id}@deleted.invalid")),
            display_name: DisplayName(Self::DISPLAY_NAME.to_owned()),
            deleted_at: at,
        }
    }
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account's identity.
    pub id: UserId,
    /// The normalized email, unique among users.
    pub email: Email,
    /// The name other users see.
    pub display_name: DisplayName,
    /// The bcrypt hash of the password digest.
    pub password_hash: PasswordHash,
    /// When the email was verified; `None` until then, and no login before it.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was registered.
    pub created_at: DateTime<Utc>,
    /// The account's instance role.
    pub role: InstanceRole,
    /// When an administrator disabled the account (or its owner deleted
    /// it); `None` while it may log in.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When its owner deleted the account; it is then also disabled, for good.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl User {
    /// A new, unverified, enabled member account.
    pub fn new(email: Email, password_hash: PasswordHash, now: DateTime<Utc>) -> Self {
        Self {
            id: UserId::new(),
            display_name: DisplayName::from_email(&email),
            email,
            password_hash,
            email_verified_at: None,
            created_at: now,
            role: InstanceRole::Member,
            disabled_at: None,
            deleted_at: None,
        }
    }

    /// Whether the account's email is verified.
    pub fn is_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    /// Whether the account may log in, refresh and stay connected: verified
    /// and not disabled.
    pub fn may_log_in(&self) -> bool {
        self.is_verified() && self.disabled_at.is_none()
    }

    /// Whether the account administers the instance (and is enabled).
    pub fn is_admin(&self) -> bool {
        self.role == InstanceRole::Admin && self.disabled_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice@example.com");
        assert_eq!(email.local_part(), "alice");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "a b@example.com",
            "Alice <alice@example.com>",
            "alice@[127.0.0.1]",
        ] {
            assert_eq!(Email::parse(raw), Err(ValidationError::Email), "{raw:?}");
        }
    }

    #[test]
    fn emails_with_control_or_format_characters_are_refused() {
        let bidi = ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}');
        let others = [
            '\u{0}', '\u{7}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{AD}',
        ];
        for c in bidi.chain(others) {
            for raw in [
                format!("ali{c}ce@example.com"),
                format!("alice@exa{c}mple.com"),
            ] {
                assert_eq!(Email::parse(&raw), Err(ValidationError::Email), "{raw:?}");
            }
        }
        assert!(
            Email::parse("zoë@example.com").is_ok(),
            "letters stay allowed"
        );
    }

    #[test]
    fn email_length_is_capped_at_254() {
        let domain = format!(
            "{}.{}.{}.com",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63)
        );
        let fits = format!("{}@{domain}", "x".repeat(254 - domain.len() - 1));
        assert_eq!(fits.len(), 254);
        assert!(Email::parse(&fits).is_ok());
        let too_long = format!("{}@{domain}", "x".repeat(254 - domain.len()));
        assert_eq!(Email::parse(&too_long), Err(ValidationError::Email));
    }

    #[test]
    fn password_digest_accepts_hex_of_either_case_and_lowers_it() {
        let upper = "A".repeat(64);
        assert_eq!(
            PasswordDigest::parse(&upper).unwrap().expose(),
            "a".repeat(64)
        );
    }

    #[test]
    fn password_digest_refuses_wrong_length_or_non_hex() {
        for raw in [
            "",
            &"a".repeat(63),
            &"a".repeat(65),
            &"g".repeat(64),
            &"é".repeat(32),
        ] {
            assert_eq!(
                PasswordDigest::parse(raw),
                Err(ValidationError::PasswordDigest)
            );
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let digest = PasswordDigest::parse(&"ab".repeat(32)).unwrap();
        let hash = PasswordHash::new("$2b$04$secret".into());
        assert!(!format!("{digest:?}{hash:?}").contains("abab"));
        assert!(!format!("{hash:?}").contains("secret"));
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann  ").unwrap().as_str(), "Ann");
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        for raw in ["", "   ", &"x".repeat(65), "a\u{0}b", "line\nbreak"] {
            assert_eq!(
                DisplayName::parse(raw),
                Err(ValidationError::DisplayName),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn first_display_name_comes_from_the_email() {
        let email = Email::parse(&format!("{}@example.com", "n".repeat(64))).unwrap();
        assert_eq!(DisplayName::from_email(&email).as_str().len(), 64);
    }
}
