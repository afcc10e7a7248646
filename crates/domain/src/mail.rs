//! Mail the server sends: what it says, to whom. How it is sent is the
//! [`Mailer`](crate::ports::Mailer) port's business.

use chrono::TimeDelta;

use crate::token::OpaqueToken;
use crate::user::Email;

/// One mail to one account.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The recipient.
    pub to: Email,
    /// What it says.
    pub content: MailContent,
}

/// The mails there are.
#[derive(Debug, Clone)]
pub enum MailContent {
    /// The link that verifies the address.
    Verification {
        /// The one-time verification token.
        token: OpaqueToken,
    },
    /// The link that sets a new password.
    PasswordReset {
        /// The one-time reset token.
        token: OpaqueToken,
        /// How long the link works.
        valid_for: TimeDelta,
    },
}
