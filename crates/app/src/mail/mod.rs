//! The outbound mail adapter: the domain's [`Mailer`] port over SMTP
//! (lettre on tokio with rustls), chosen from the configuration.
//!
//! - `compose`: the texts, built into messages with lettre's builder.
//! - `transport`: the SMTP connection as configured.
//! - `outbox`: the bounded queue, the delivery task with its retries, and
//!   the drain at shutdown.

mod compose;
mod outbox;
mod transport;

use std::sync::Arc;

use p_chat_domain::ports::{Mailer, NoMailer};

pub use outbox::{Outbox, QUEUE_CAPACITY, RETRY_BACKOFF, SmtpMailer};

use crate::config::{MailSettings, SmtpServer, SmtpTls};

/// Why the mail transport could not be set up (a configuration lettre refuses).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the SMTP transport: {0}")]
pub struct MailSetupError(#[from] lettre::transport::smtp::Error);

/// The mailer for `settings`, and the outbox shutdown drains. Without
/// settings: [`NoMailer`], and a warning that verification proves nothing.
/// Must be called on the runtime the delivery task is to run on.
pub fn start(settings: Option<&MailSettings>) -> Result<(Arc<dyn Mailer>, Outbox), MailSetupError> {
    let Some(settings) = settings else {
        tracing::warn!(
            "SMTP is not configured (SMTP_URL or SMTP_HOST): no mail is sent, and the register \
             response hands the verification token to whoever registers, so EMAIL VERIFICATION \
             PROVES NOTHING about the address"
        );
        return Ok((Arc::new(NoMailer), Outbox::none()));
    };
    let transport = transport::build(&settings.server, &settings.public_url)?;
    match &settings.server {
        SmtpServer::Url(url) => tracing::info!(
            host = url.host_str().unwrap_or_default(),
            port = url.port(),
            "sending mail through SMTP_URL"
        ),
        SmtpServer::Host {
            host, port, tls, ..
        } => {
            tracing::info!(%host, port, ?tls, "sending mail through SMTP_HOST");
            if *tls == SmtpTls::None {
                tracing::warn!(
                    "SMTP_TLS=none: mail, its links and any SMTP password travel unencrypted; \
                     use it only for a test server on this machine"
                );
            }
        }
    }
    let post = outbox::PostOffice {
        transport,
        letterhead: compose::Letterhead {
            from: settings.from.clone(),
            public_url: settings.public_url.clone(),
        },
        backoff: RETRY_BACKOFF.to_vec(),
    };
    let (mailer, outbox) = outbox::start(post, QUEUE_CAPACITY);
    Ok((Arc::new(mailer), outbox))
}
