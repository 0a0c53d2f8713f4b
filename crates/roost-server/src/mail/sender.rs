//! The background sender: claims due mail from the outbox, sends it over SMTP (or writes it to the
//! log when no `smtp_url` is set), and retries failures with a growing delay. Requests never wait
//! for it: they queue mail in their transaction and [`Mailer::wake`] it after commit.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use roost_store::OutboxMail;
use tokio::sync::Notify;

use crate::{AppState, Settings};

/// Attempts before a mail is given up for good (about a day of retries).
pub const MAX_ATTEMPTS: u32 = 12;
/// The delay before the first retry; each later one doubles, up to [`MAX_RETRY_DELAY_MS`].
pub const FIRST_RETRY_DELAY_MS: i64 = 30_000;
/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY_MS: i64 = 3_600_000;
/// How long a claimed mail stays hidden from other senders (longer than an SMTP exchange may take).
const LEASE_MS: i64 = 5 * 60_000;
/// Mails claimed at once.
const BATCH: u32 = 20;

/// The mail sender's handle: how requests wake it, and how it reaches the SMTP server.
pub struct Mailer {
    wake: Notify,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("smtp", &self.transport.is_some()).field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A mailer for `settings` (validated: `mail_from` parses, `smtp_url` has a known scheme).
    pub fn new(settings: &Settings) -> anyhow::Result<Arc<Self>> {
        let from: Mailbox = settings.mail_from.parse().map_err(|e| anyhow::anyhow!("mail_from: {e}"))?;
        let transport = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("smtp_url {}: {e}", roost_store::redact(url)))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => None,
        };
        Ok(Arc::new(Self { wake: Notify::new(), transport, from }))
    }

    /// Tells the sender that mail was queued (call after the queueing transaction committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The delay before retrying a mail that has failed `attempts` times (1 or more).
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY_DELAY_MS << doublings).min(MAX_RETRY_DELAY_MS)
}

/// Runs until aborted: queues the mails of new alert events, delivers what is due, then sleeps
/// until woken or `mail_poll_ms` passed.
pub async fn run(st: AppState) {
    let every = Duration::from_millis(st.settings.mail_poll_ms);
    loop {
        // Alert events written since the last round become mails first, then everything due goes.
        if let Err(e) = super::alerts::queue_new(&st).await {
            tracing::warn!(error = %e, "alert mails could not be queued; retrying next round");
        }
        if let Err(e) = deliver_due(&st).await {
            tracing::warn!(error = %e, "mail sender failed; retrying next round");
        }
        tokio::select! {
            () = st.mailer.wake.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Sends every mail that is due now; returns how many were delivered.
pub async fn deliver_due(st: &AppState) -> Result<usize, roost_store::StoreError> {
    let mut delivered = 0;
    loop {
        let now = st.clock.now_ms();
        let batch = st.store.claim_mail(now, now + LEASE_MS, BATCH).await?;
        if batch.is_empty() {
            return Ok(delivered);
        }
        for mail in batch {
            match send(&st.mailer, &mail).await {
                Ok(()) => {
                    st.store.mail_sent(&mail.id, st.clock.now_ms()).await?;
                    delivered += 1;
                }
                Err(Failure { error, permanent }) => {
                    let attempts = mail.attempts + 1;
                    let retry =
                        (!permanent && attempts < MAX_ATTEMPTS).then(|| st.clock.now_ms() + retry_delay_ms(attempts));
                    tracing::warn!(mail = %mail.id, kind = %mail.kind, attempts, permanent, %error, "mail not sent");
                    st.store.mail_failed(&mail.id, &error, retry).await?;
                }
            }
        }
    }
}

/// Why one attempt failed, and whether trying again could help.
struct Failure {
    error: String,
    permanent: bool,
}

async fn send(mailer: &Mailer, mail: &OutboxMail) -> Result<(), Failure> {
    let permanent = |e: &dyn std::fmt::Display| Failure { error: e.to_string(), permanent: true };
    let to: Mailbox = mail.to.parse().map_err(|e| permanent(&e))?;
    let Some(transport) = &mailer.transport else {
        // No SMTP server configured: the operator reads mail in the log.
        tracing::info!(mail = %mail.id, kind = %mail.kind, to = %mail.to, subject = %mail.subject, body = %mail.text, "mail (no smtp_url set: logged, not sent)");
        return Ok(());
    };
    let message = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
        .map_err(|e| permanent(&e))?;
    transport.send(message).await.map(|_| ()).map_err(|e| Failure { error: e.to_string(), permanent: e.is_permanent() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_an_hour() {
        assert_eq!(retry_delay_ms(1), 30_000);
        assert_eq!(retry_delay_ms(2), 60_000);
        assert_eq!(retry_delay_ms(3), 120_000);
        assert_eq!(retry_delay_ms(8), MAX_RETRY_DELAY_MS);
        assert_eq!(retry_delay_ms(40), MAX_RETRY_DELAY_MS);
    }
}
