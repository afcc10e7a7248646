//! Mail the server sends to a user: what it says, not how it travels. The
//! texts and the transport belong to the mail adapter behind
//! [`crate::ports::Mailer`].

use chrono::TimeDelta;

use crate::token::OpaqueToken;
use crate::user::Email;

crate::id::uuid_id! {
    /// Names one mail in logs, where neither the recipient's full address
    /// nor the token it carries may appear.
    MailId
}

/// One mail to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Identifies this mail in the adapter's log lines.
    pub id: MailId,
    /// Who receives it (a parsed address: it cannot carry CR, LF or a
    /// second address).
    pub to: Email,
    /// What it is about.
    pub content: MailContent,
}

impl Mail {
    /// A new mail with a fresh id.
    pub fn new(to: Email, content: MailContent) -> Self {
        Self {
            id: MailId::new(),
            to,
            content,
        }
    }

    /// The part of the recipient's address after the `@`: all of it that
    /// may be logged.
    pub fn recipient_domain(&self) -> &str {
        self.to
            .as_str()
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

/// What a mail is for. Each kind carries the one-time token its link holds
/// and how long that link works, so the text can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailContent {
    /// "Confirm your address": the link redeems an email verification.
    Verification {
        /// The verification token (its hash is what the store keeps).
        token: OpaqueToken,
        /// The verification's lifetime (`EMAIL_VERIFICATION_TTL_HOURS`).
        valid_for: TimeDelta,
    },
    /// "Choose a new password": the link opens the reset screen.
    PasswordReset {
        /// The reset token (its hash is what the store keeps).
        token: OpaqueToken,
        /// The reset token's lifetime.
        valid_for: TimeDelta,
    },
}

impl MailContent {
    /// A short name of the kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Verification { .. } => "verification",
            Self::PasswordReset { .. } => "password_reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verification() -> MailContent {
        MailContent::Verification {
            token: OpaqueToken::generate().unwrap(),
            valid_for: TimeDelta::hours(24),
        }
    }

    #[test]
    fn the_recipient_domain_is_what_follows_the_at_sign() {
        let mail = Mail::new(Email::parse("Ada@Example.ORG").unwrap(), verification());
        assert_eq!(mail.recipient_domain(), "example.org");
    }

    #[test]
    fn every_mail_gets_its_own_id() {
        let to = Email::parse("ada@example.org").unwrap();
        let first = Mail::new(to.clone(), verification());
        let second = Mail::new(to, verification());
        assert_ne!(first.id, second.id);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let content = verification();
        let MailContent::Verification { token, .. } = &content else {
            unreachable!()
        };
        let exposed = token.expose().to_owned();
        let mail = Mail::new(Email::parse("ada@example.org").unwrap(), content);
        assert!(!format!("{mail:?}").contains(&exposed));
    }
}
