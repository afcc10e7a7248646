use async_trait::async_trait;

use crate::mail::Mail;

/// Sends mail to users. Sending only enqueues: it never fails or blocks the
/// caller (mail goes out after the change is committed, and a failed
/// delivery is the adapter's to log and retry).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Whether mail really reaches users (SMTP is configured).
    fn delivers(&self) -> bool;

    /// Enqueues `mail`.
    async fn send(&self, mail: Mail);
}

/// No mail configured: every mail is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMailer;

#[async_trait]
impl Mailer for NoMailer {
    fn delivers(&self) -> bool {
        false
    }

    async fn send(&self, _mail: Mail) {}
}
