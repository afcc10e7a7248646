//! The SMTP connection, as configured: lettre over tokio and rustls.

use std::time::Duration;

use lettre::transport::smtp::Error;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::config::{PublicUrl, SmtpServer, SmtpTls};

/// The transport every mail goes through; each send opens its own
/// connection (no pool: mail is rare).
pub(super) type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// How long one network step (connect, one SMTP command) may take.
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport for `server`. Without an EHLO name of its own (an
/// `SMTP_URL` may give one as its path), this server greets with the host of
/// `PUBLIC_URL`, which is its public name, rather than lettre's `localhost`.
pub(super) fn build(server: &SmtpServer, public_url: &PublicUrl) -> Result<Transport, Error> {
    let hello = ClientId::Domain(public_url.host().to_owned());
    let builder = match server {
        SmtpServer::Url(url) => {
            let builder = Transport::from_url(url.as_str())?;
            if url.path().trim_matches('/').is_empty() {
                builder.hello_name(hello)
            } else {
                builder
            }
        }
        SmtpServer::Host {
            host,
            port,
            tls,
            credentials,
        } => {
            let builder = match tls {
                SmtpTls::StartTls => Transport::starttls_relay(host)?,
                SmtpTls::Tls => Transport::relay(host)?,
                SmtpTls::None => Transport::builder_dangerous(host),
            }
            .port(*port)
            .hello_name(hello);
            match credentials {
                Some((user, password)) => builder
                    .credentials(Credentials::new(user.clone(), password.expose().to_owned())),
                None => builder,
            }
        }
    };
    Ok(builder.timeout(Some(SMTP_COMMAND_TIMEOUT)).build())
}
