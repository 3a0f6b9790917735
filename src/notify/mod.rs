//! Outgoing e-mail through an outbox: every message is first a row of the registry, then a
//! deliverer hands it to the transport (spool or SMTP) and retries with backoff. A mail server
//! that is down delays mail; it never blocks publishing, ingestion or an SFTP session.

pub mod messages;
pub mod reminders;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

pub use messages::Message;
pub use transport::{
    parse_credentials, DeliveryError, SmtpSettings, TlsMode, Transport, TransportError, TransportSettings,
};

use crate::domain::{ContractNumber, EmailAddress};
use crate::registry::{now_seconds, NewMessage, Registry, RegistryError};

#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub transport: TransportSettings,
    pub from: EmailAddress,
    /// Where copies of the audit checkpoints go, if anywhere.
    pub audit_checkpoint_to: Option<EmailAddress>,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// Wait before the second attempt; it doubles after each failure, up to an hour.
    pub first_retry: Duration,
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
pub fn retry_delay(first_retry: Duration, attempts: u32) -> Duration {
    let doubled = first_retry.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    doubled.min(Duration::from_secs(3600))
}

/// Documents published in one run (a CLI command, an SFTP session), by contract and kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published(std::collections::BTreeMap<ContractNumber, std::collections::BTreeMap<String, usize>>);

impl Published {
    pub fn add(&mut self, contract: &ContractNumber, kind: &str) {
        *self.0.entry(contract.clone()).or_default().entry(kind.to_string()).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many documents in all.
    pub fn total(&self) -> usize {
        self.0.values().flat_map(|kinds| kinds.values()).sum()
    }
}

/// What one delivery round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryRound {
    pub sent: usize,
    /// Failed this time, to be tried again later.
    pub deferred: usize,
    /// Given up on (permanent refusal or too many attempts).
    pub failed: usize,
}

/// The queue and its deliverer.
#[derive(Clone)]
pub struct Outbox {
    registry: Registry,
    transport: Arc<Transport>,
    settings: Arc<NotifySettings>,
    wakeup: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("transport", &self.transport).finish()
    }
}

/// Messages taken per round: a large backlog is sent in several rounds.
const ROUND_SIZE: i64 = 200;

impl Outbox {
    pub fn new(registry: Registry, settings: &NotifySettings) -> Result<Self, TransportError> {
        Ok(Self {
            registry,
            transport: Arc::new(Transport::new(&settings.transport)?),
            settings: Arc::new(settings.clone()),
            wakeup: Arc::new(Notify::new()),
        })
    }

    /// Queues messages (in one transaction) and wakes the deliverer.
    pub async fn queue(&self, messages: Vec<(EmailAddress, Message)>) -> Result<(), RegistryError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.registry.queue_messages(&new_messages(messages)).await?;
        self.wakeup.notify_one();
        Ok(())
    }

    /// Queues the reminders of one external user's end date, unless that date was already
    /// reminded of (by this instance or another): whether they were queued.
    pub async fn queue_reminder_once(
        &self,
        user_id: i64,
        expires_on: time::Date,
        messages: Vec<(EmailAddress, Message)>,
    ) -> Result<bool, RegistryError> {
        let queued = self.registry.remind_once(user_id, expires_on, &new_messages(messages)).await?;
        if queued {
            self.wakeup.notify_one();
        }
        Ok(queued)
    }

    /// Queues one "new documents" digest per organisation concerned by a publishing run, to
    /// its convention's address, in its language: kinds and counts only. Returns how many.
    pub async fn queue_digests(&self, published: &Published) -> Result<usize, RegistryError> {
        let mut lines: std::collections::BTreeMap<i64, Vec<String>> = std::collections::BTreeMap::new();
        for (contract, kinds) in &published.0 {
            let record = self.registry.contract(contract).await?;
            for (kind, count) in kinds {
                lines.entry(record.organisation_id).or_default().push(format!("{contract} {kind}: {count}"));
            }
        }
        let mut mail = Vec::with_capacity(lines.len());
        for (organisation_id, lines) in &lines {
            let organisation = self.registry.organisation(*organisation_id).await?;
            mail.push((organisation.notify_email, messages::documents_available(organisation.language, lines)));
        }
        let count = mail.len();
        self.queue(mail).await?;
        Ok(count)
    }

    /// Where copies of the audit checkpoints are mailed, if anywhere.
    pub fn audit_checkpoint_to(&self) -> Option<&EmailAddress> {
        self.settings.audit_checkpoint_to.as_ref()
    }

    /// The handle that makes the deliverer look at the queue now.
    pub fn wakeup(&self) -> Arc<Notify> {
        Arc::clone(&self.wakeup)
    }

    fn message_id(&self, id: i64, created_at: i64) -> String {
        let domain = self.settings.from.as_str().split_once('@').map(|(_, d)| d).unwrap_or("localhost");
        format!("{created_at}-{id}@{domain}")
    }

    /// Delivers the messages that are due. With `stop_on_trouble`, the round ends at the first
    /// transient failure (the mail server is away: the others would wait as long, for nothing).
    pub async fn deliver_due(&self, stop_on_trouble: bool) -> Result<DeliveryRound, RegistryError> {
        let mut round = DeliveryRound::default();
        loop {
            let now = now_seconds();
            let due = self.registry.due_messages(now, ROUND_SIZE).await?;
            let full = due.len() as i64 == ROUND_SIZE;
            for message in due {
                let attempt = u32::try_from(message.attempts).unwrap_or(u32::MAX).saturating_add(1);
                let wait = retry_delay(self.settings.first_retry, attempt);
                let retry_at = now + i64::try_from(wait.as_secs()).unwrap_or(3600).max(1);
                if !self.registry.claim_message(message.id, now, retry_at).await? {
                    continue;
                }
                let sent = self
                    .transport
                    .send(
                        &self.settings.from,
                        &message.recipient,
                        &message.subject,
                        &message.body,
                        &self.message_id(message.id, message.created_at),
                    )
                    .await;
                match sent {
                    Ok(()) => {
                        self.registry.message_sent(message.id).await?;
                        round.sent += 1;
                    }
                    Err(error) => {
                        let give_up = error.permanent || attempt >= self.settings.max_attempts;
                        self.registry.message_attempt_failed(message.id, &error.reason, give_up).await?;
                        tracing::warn!(
                            message = message.id,
                            purpose = %message.purpose,
                            attempt,
                            give_up,
                            error = %error.reason,
                            "mail delivery failed"
                        );
                        if give_up {
                            round.failed += 1;
                        } else {
                            round.deferred += 1;
                            if stop_on_trouble {
                                return Ok(round);
                            }
                        }
                    }
                }
            }
            if !full {
                return Ok(round);
            }
        }
    }

    /// The deliverer of `serve`: a round whenever mail is queued, and every few seconds for
    /// retries that came due, until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            // A round against a mail server that swallows packets can take a while: shutdown
            // does not wait for it (a message being sent stays pending and is sent again).
            tokio::select! {
                delivered = self.deliver_due(false) => {
                    if let Err(error) = delivered {
                        tracing::warn!(%error, "the outbox cannot be read; trying again shortly");
                    }
                }
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

fn new_messages(messages: Vec<(EmailAddress, Message)>) -> Vec<NewMessage> {
    messages
        .into_iter()
        .map(|(to, m)| NewMessage {
            recipient: to.as_str().to_string(),
            purpose: m.purpose,
            subject: m.subject,
            body: m.body,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let first = Duration::from_secs(30);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(30));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(60));
        assert_eq!(retry_delay(first, 4), Duration::from_secs(240));
        assert_eq!(retry_delay(first, 8), Duration::from_secs(3600));
        assert_eq!(retry_delay(first, 60), Duration::from_secs(3600));
    }
}
