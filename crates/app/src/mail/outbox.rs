//! The queue between the services and the SMTP server: [`SmtpMailer`]
//! enqueues without waiting, one background task delivers, retrying a failed
//! attempt with backoff, and [`Outbox::drain`] lets shutdown finish what is
//! queued for a bounded time. The queue is in memory only: mail still in it
//! when the process ends is lost.

use std::sync::Arc;
use std::time::Duration;

use lettre::AsyncTransport;
use p_chat_domain::mail::Mail;
use p_chat_domain::ports::Mailer;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::compose::Letterhead;
use super::transport::Transport;

/// Mails waiting for delivery; past this, new mail is dropped (with a
/// warning) rather than making a request wait.
pub const QUEUE_CAPACITY: usize = 1_000;

/// The waits before the second, third and fourth attempts; after the last
/// one fails, the mail is given up.
pub const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(25),
];

/// Deliveries in flight at once (each holds one SMTP connection).
const MAX_CONCURRENT_DELIVERIES: usize = 4;

/// How long one attempt may take in all, however slowly the server answers.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The [`Mailer`] of a server with SMTP configured: queues each mail for the
/// delivery task.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    queue: mpsc::Sender<Mail>,
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: Mail) {
        let (id, kind) = (mail.id, mail.content.kind());
        match self.queue.try_send(mail) {
            Ok(()) => tracing::debug!(mail_id = %id, kind, "mail queued"),
            Err(TrySendError::Full(mail)) => tracing::warn!(
                mail_id = %id,
                kind,
                domain = mail.recipient_domain(),
                capacity = QUEUE_CAPACITY,
                "mail queue full: mail dropped"
            ),
            Err(TrySendError::Closed(mail)) => tracing::warn!(
                mail_id = %id,
                kind,
                domain = mail.recipient_domain(),
                "mail queue closed (shutting down): mail dropped"
            ),
        }
    }

    fn delivers(&self) -> bool {
        true
    }
}

/// The handle shutdown uses to let queued mail go out first.
#[derive(Debug, Clone)]
pub struct Outbox {
    stop: Arc<watch::Sender<bool>>,
    done: watch::Receiver<bool>,
}

impl Outbox {
    /// The outbox of a server that sends no mail: always drained.
    pub fn none() -> Self {
        Self {
            stop: Arc::new(watch::channel(true).0),
            done: watch::channel(true).1,
        }
    }

    /// Stops taking mail, delivers what is queued or in flight (without
    /// further retries) and returns when that is done or `grace` is over,
    /// whichever is first. What is left then is lost.
    pub async fn drain(&self, grace: Duration) {
        self.stop.send_replace(true);
        let mut done = self.done.clone();
        if tokio::time::timeout(grace, done.wait_for(|done| *done))
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "shutting down with mail still undelivered: it is lost"
            );
        }
    }
}

/// How deliveries are made: where to, with which texts, how persistently.
pub(super) struct PostOffice {
    pub(super) transport: Transport,
    pub(super) letterhead: Letterhead,
    /// The waits between attempts ([`RETRY_BACKOFF`] in the server).
    pub(super) backoff: Vec<Duration>,
}

/// Starts the delivery task on the current runtime, with room for
/// `capacity` queued mails.
pub(super) fn start(post: PostOffice, capacity: usize) -> (SmtpMailer, Outbox) {
    let (queue, queued) = mpsc::channel(capacity);
    let (stop, stopping) = watch::channel(false);
    let (finished, done) = watch::channel(false);
    tokio::spawn(async move {
        Arc::new(post).run(queued, stopping).await;
        finished.send_replace(true);
    });
    (
        SmtpMailer { queue },
        Outbox {
            stop: Arc::new(stop),
            done,
        },
    )
}

impl PostOffice {
    /// Delivers queued mail until the queue is closed and empty: by
    /// [`Outbox::drain`], or when every [`SmtpMailer`] is gone.
    async fn run(
        self: Arc<Self>,
        mut queued: mpsc::Receiver<Mail>,
        mut stop: watch::Receiver<bool>,
    ) {
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES));
        let mut deliveries = JoinSet::new();
        let mut stopping = false;
        loop {
            let mail = tokio::select! {
                mail = queued.recv() => mail,
                _ = stop.wait_for(|stop| *stop), if !stopping => {
                    // Whatever is queued is still delivered; nothing new is taken.
                    stopping = true;
                    queued.close();
                    continue;
                }
            };
            let Some(mail) = mail else { break };
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            deliveries.spawn(self.clone().deliver(mail, permit, stop.clone()));
            while deliveries.try_join_next().is_some() {}
        }
        while deliveries.join_next().await.is_some() {}
    }

    /// Sends one mail, retrying after each [`PostOffice::backoff`] wait
    /// unless the server refused it for good or the server is stopping.
    async fn deliver(
        self: Arc<Self>,
        mail: Mail,
        _permit: OwnedSemaphorePermit,
        mut stop: watch::Receiver<bool>,
    ) {
        let (id, kind, domain) = (mail.id, mail.content.kind(), mail.recipient_domain());
        let message = match self.letterhead.compose(&mail) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(mail_id = %id, kind, domain, %error, "mail cannot be composed: dropped");
                return;
            }
        };
        let attempts = self.backoff.len() + 1;
        for attempt in 1..=attempts {
            let error =
                match tokio::time::timeout(ATTEMPT_TIMEOUT, self.transport.send(message.clone()))
                    .await
                {
                    Ok(Ok(_)) => {
                        tracing::info!(mail_id = %id, kind, domain, attempt, "mail sent");
                        return;
                    }
                    Ok(Err(error)) if error.is_permanent() => {
                        tracing::error!(
                            mail_id = %id, kind, domain, attempt,
                            error = %scrubbed(&error, &mail),
                            "mail refused by the SMTP server: not retried"
                        );
                        return;
                    }
                    Ok(Err(error)) => scrubbed(&error, &mail),
                    Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
                };
            let retry = self.backoff.get(attempt - 1).filter(|_| !*stop.borrow());
            let Some(&wait) = retry else {
                tracing::error!(
                    mail_id = %id, kind, domain, attempt, attempts, %error,
                    "mail delivery failed: given up"
                );
                return;
            };
            tracing::warn!(
                mail_id = %id, kind, domain, attempt, attempts, retry_in = ?wait, %error,
                "mail delivery failed: will retry"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => {
                    tracing::error!(
                        mail_id = %id, kind, domain, attempt,
                        "shutting down: mail given up"
                    );
                    return;
                }
            }
        }
    }
}

/// The error as it may be logged: an SMTP server may quote the recipient's
/// address, which the log must not hold.
fn scrubbed(error: &lettre::transport::smtp::Error, mail: &Mail) -> String {
    error.to_string().replace(mail.to.as_str(), "<recipient>")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::TimeDelta;
    use p_chat_domain::mail::MailContent;
    use p_chat_domain::token::OpaqueToken;
    use p_chat_domain::user::Email;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::{PublicUrl, SmtpServer, SmtpTls};
    use crate::mail::transport;

    fn mail() -> Mail {
        Mail::new(
            Email::parse("ada@example.com").unwrap(),
            MailContent::Verification {
                token: OpaqueToken::generate().unwrap(),
                valid_for: TimeDelta::hours(1),
            },
        )
    }

    /// An SMTP server on localhost that greets every connection with
    /// `greeting` and hangs up; returns its port and how many connections
    /// (delivery attempts) it has taken.
    async fn refusing_server(greeting: &'static str) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.write_all(greeting.as_bytes()).await;
            }
        });
        (port, attempts)
    }

    fn post_office(port: u16, backoff: Vec<Duration>) -> PostOffice {
        let public_url = PublicUrl::parse("http://chat.example.org").unwrap();
        let server = SmtpServer::Host {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            credentials: None,
        };
        PostOffice {
            transport: transport::build(&server, &public_url).unwrap(),
            letterhead: Letterhead {
                from: "noreply@example.org".parse().unwrap(),
                public_url,
            },
            backoff,
        }
    }

    /// Waits until the delivery task has ended (every mailer dropped and
    /// every delivery finished or given up).
    async fn finished(outbox: &Outbox) {
        let mut done = outbox.done.clone();
        tokio::time::timeout(Duration::from_secs(10), done.wait_for(|done| *done))
            .await
            .expect("the delivery task ends")
            .unwrap();
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_once_per_backoff_step_then_given_up() {
        let (port, attempts) = refusing_server("421 try again later\r\n").await;
        let backoff = vec![Duration::from_millis(10), Duration::from_millis(20)];
        let (mailer, outbox) = start(post_office(port, backoff), 8);
        mailer.send(mail());
        drop(mailer);

        finished(&outbox).await;

        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_not_retried() {
        let (port, attempts) = refusing_server("554 no service here\r\n").await;
        let (mailer, outbox) = start(post_office(port, vec![Duration::from_millis(10)]), 8);
        mailer.send(mail());
        drop(mailer);

        finished(&outbox).await;

        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn draining_cuts_a_retry_wait_short_and_takes_no_new_mail() {
        let (port, attempts) = refusing_server("421 try again later\r\n").await;
        let (mailer, outbox) = start(post_office(port, vec![Duration::from_secs(3600)]), 8);
        mailer.send(mail());
        while attempts.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // Far shorter than the hour-long retry wait: the drain ends it.
        tokio::time::timeout(
            Duration::from_secs(30),
            outbox.drain(Duration::from_secs(60)),
        )
        .await
        .expect("the drain does not wait for the retry");

        assert!(*outbox.done.borrow(), "the delivery task has ended");
        mailer.send(mail()); // dropped with a warning, never delivered
        assert!(mailer.queue.is_closed());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_full_queue_drops_the_new_mail_without_waiting() {
        let (queue, mut queued) = mpsc::channel(1);
        let mailer = SmtpMailer { queue };
        let (first, second) = (mail(), mail());
        let first_id = first.id;

        mailer.send(first);
        mailer.send(second);

        assert_eq!(queued.try_recv().unwrap().id, first_id);
        assert!(queued.try_recv().is_err(), "the second mail was dropped");
        assert!(mailer.delivers());
    }
}
