use crate::mail::Mail;

/// Sends mail to users (verification links, password resets).
///
/// Contract: [`Mailer::send`] only *enqueues*. It returns at once, never
/// fails and never waits on the network, so a use case calls it after its
/// change is committed and answers its caller whatever the mail server does.
/// Delivery happens later, in the adapter: a failed attempt is logged and
/// retried a bounded number of times with backoff, then the mail is dropped
/// with a log line. Nothing is durable: queued mail may be lost when the
/// process stops. Adapters never log a mail's token or the recipient's full
/// address (the mail id and the recipient's domain are enough).
#[cfg_attr(test, mockall::automock)]
pub trait Mailer: Send + Sync {
    /// Queues `mail` for delivery (or drops it, see [`Mailer::delivers`]).
    fn send(&self, mail: Mail);

    /// Whether mail sent here can reach the user. When it cannot, a use
    /// case that mails a secret hands it to its caller instead (the seed's
    /// register response carries the verification token): then verification
    /// proves nothing about the address.
    fn delivers(&self) -> bool;
}

/// The mailer of a server without a mail transport configured: every mail
/// is dropped and [`Mailer::delivers`] is `false`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMailer;

impl Mailer for NoMailer {
    fn send(&self, mail: Mail) {
        tracing::debug!(
            mail_id = %mail.id,
            kind = mail.content.kind(),
            "no mail transport configured: mail dropped"
        );
    }

    fn delivers(&self) -> bool {
        false
    }
}
