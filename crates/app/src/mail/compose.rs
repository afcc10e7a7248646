//! The texts of the mails and their assembly into RFC 5322 messages, always
//! through lettre's `Message::builder()`: headers are typed and encoded by
//! lettre, never put together from strings, so no value can add a header.

use chrono::TimeDelta;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use p_chat_domain::mail::{Mail, MailContent};

use crate::config::PublicUrl;

/// The query parameter of a verification link (the web client reads it).
pub(super) const VERIFY_PARAMETER: &str = "verifyToken";

/// The query parameter of a password-reset link (the web client reads it).
pub(super) const RESET_PARAMETER: &str = "resetToken";

/// Why a mail could not be turned into a message.
#[derive(Debug, thiserror::Error)]
pub(super) enum ComposeError {
    /// The recipient is not an address lettre accepts.
    #[error("the recipient is not a valid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    /// The message could not be built.
    #[error("the message cannot be built: {0}")]
    Message(#[from] lettre::error::Error),
}

/// Who mails come from and where their links point.
#[derive(Debug, Clone)]
pub(super) struct Letterhead {
    /// `SMTP_FROM`.
    pub(super) from: Mailbox,
    /// `PUBLIC_URL`.
    pub(super) public_url: PublicUrl,
}

impl Letterhead {
    /// The message for `mail`: plain text, with its one link.
    pub(super) fn compose(&self, mail: &Mail) -> Result<Message, ComposeError> {
        let base = self.public_url.as_str();
        let (subject, text) = match &mail.content {
            MailContent::Verification { token, valid_for } => (
                "Confirm your email address for p-chat",
                format!(
                    "Hello,\n\n\
                     someone, hopefully you, registered a p-chat account with this email \
                     address at {base}\n\n\
                     To confirm the address and sign in, open this link:\n\n\
                     {link}\n\n\
                     The link works once, for {validity}. If you did not register, ignore \
                     this mail: the account stays unverified.\n\n\
                     -- p-chat\n",
                    link = self.public_url.with_query(VERIFY_PARAMETER, token.expose()),
                    validity = duration_in_words(*valid_for),
                ),
            ),
            MailContent::PasswordReset { token, valid_for } => (
                "Reset your p-chat password",
                format!(
                    "Hello,\n\n\
                     someone, hopefully you, asked to reset the password of the p-chat \
                     account with this email address at {base}\n\n\
                     To choose a new password, open this link:\n\n\
                     {link}\n\n\
                     The link works once, for {validity}. If you did not ask for this, \
                     ignore this mail: your password stays as it is.\n\n\
                     -- p-chat\n",
                    link = self.public_url.with_query(RESET_PARAMETER, token.expose()),
                    validity = duration_in_words(*valid_for),
                ),
            ),
        };
        let to = Mailbox::new(None, mail.to.as_str().parse()?);
        let message_id = format!("<{}@{}>", mail.id, self.public_url.host());
        message(&self.from, to, subject, message_id, text)
    }
}

/// One plain-text message from `from` to `to`.
fn message(
    from: &Mailbox,
    to: Mailbox,
    subject: &str,
    message_id: String,
    text: String,
) -> Result<Message, ComposeError> {
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .body(text)?)
}

/// "24 hours", "1 hour", "30 minutes": how long a link works.
fn duration_in_words(duration: TimeDelta) -> String {
    let plural = |amount: i64, unit: &str| {
        if amount == 1 {
            format!("1 {unit}")
        } else {
            format!("{amount} {unit}s")
        }
    };
    let minutes = duration.num_minutes();
    if minutes >= 60 && minutes % 60 == 0 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes, "minute")
    }
}

#[cfg(test)]
mod tests {
    use p_chat_domain::token::OpaqueToken;
    use p_chat_domain::user::Email;

    use super::*;

    fn letterhead() -> Letterhead {
        Letterhead {
            from: "p-chat <noreply@example.org>".parse().unwrap(),
            public_url: PublicUrl::parse("https://chat.example.org").unwrap(),
        }
    }

    /// The formatted message of `content` to ada@example.com, its body
    /// decoded from quoted-printable (lettre's choice for lines over 76
    /// characters, as the link is; the texts are ASCII, so only soft line
    /// breaks and `=` are escaped).
    fn formatted(content: MailContent) -> String {
        let mail = Mail::new(Email::parse("ada@example.com").unwrap(), content);
        let message = letterhead().compose(&mail).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            raw.contains("Content-Transfer-Encoding: quoted-printable"),
            "{raw}"
        );
        raw.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The header lines of a formatted message (up to the first empty line).
    fn headers(formatted: &str) -> Vec<&str> {
        formatted
            .split("\r\n")
            .take_while(|line| !line.is_empty())
            .collect()
    }

    #[test]
    fn a_verification_mail_links_to_the_web_client_with_its_token_and_says_how_long() {
        let token = OpaqueToken::generate().unwrap();
        let text = formatted(MailContent::Verification {
            token: token.clone(),
            valid_for: TimeDelta::hours(24),
        });
        let link = format!("https://chat.example.org/?verifyToken={}", token.expose());
        assert!(text.contains(&link), "{text}");
        assert!(text.contains("for 24 hours"), "{text}");
        let headers = headers(&text);
        assert!(headers.contains(&"Subject: Confirm your email address for p-chat"));
        assert!(headers.contains(&"To: ada@example.com"), "{headers:?}");
        assert!(
            headers.contains(&"From: p-chat <noreply@example.org>"),
            "{headers:?}"
        );
        assert!(headers.contains(&"Content-Type: text/plain; charset=utf-8"));
        assert!(headers.iter().any(|line| line.starts_with("Date: ")));
        assert!(
            headers
                .iter()
                .any(|line| line.starts_with("Message-ID: <")
                    && line.ends_with("@chat.example.org>"))
        );
    }

    #[test]
    fn a_reset_mail_links_to_the_reset_screen_and_says_how_long() {
        let token = OpaqueToken::generate().unwrap();
        let text = formatted(MailContent::PasswordReset {
            token: token.clone(),
            valid_for: TimeDelta::minutes(30),
        });
        let link = format!("https://chat.example.org/?resetToken={}", token.expose());
        assert!(text.contains(&link), "{text}");
        assert!(text.contains("for 30 minutes"), "{text}");
        assert!(headers(&text).contains(&"Subject: Reset your p-chat password"));
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration_in_words(TimeDelta::hours(1)), "1 hour");
        assert_eq!(duration_in_words(TimeDelta::hours(48)), "48 hours");
        assert_eq!(duration_in_words(TimeDelta::minutes(90)), "90 minutes");
        assert_eq!(duration_in_words(TimeDelta::minutes(1)), "1 minute");
    }

    #[test]
    fn a_recipient_with_a_line_break_is_refused() {
        for to in [
            "ada@example.com\r\nBcc: eve@example.org",
            "ada@example.com\nBcc: eve@example.org",
            "ada@example.com, eve@example.org",
        ] {
            let parsed = to.parse::<lettre::Address>();
            assert!(parsed.is_err(), "{to:?} was accepted as an address");
        }
    }

    #[test]
    fn a_subject_with_a_line_break_cannot_add_a_header() {
        let message = message(
            &letterhead().from,
            "ada@example.com".parse().unwrap(),
            "Hello\r\nBcc: eve@example.org\r\nX-Injected: yes",
            "<1@chat.example.org>".to_owned(),
            "text".to_owned(),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        let headers = headers(&text);
        assert!(
            headers
                .iter()
                .all(|line| !line.starts_with("Bcc:") && !line.starts_with("X-Injected:")),
            "{headers:?}"
        );
        assert!(
            !message
                .envelope()
                .to()
                .iter()
                .any(|to| to.to_string().contains("eve"))
        );
    }

    #[test]
    fn a_message_is_addressed_to_the_one_recipient_only() {
        let mail = Mail::new(
            Email::parse("ada@example.com").unwrap(),
            MailContent::Verification {
                token: OpaqueToken::generate().unwrap(),
                valid_for: TimeDelta::hours(1),
            },
        );
        let message = letterhead().compose(&mail).unwrap();
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(to, ["ada@example.com"]);
    }
}
