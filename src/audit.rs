//! The audit log of the gateway: who did what, when, from where, with which outcome.
//!
//! Sessions hand events to an [`AuditLog`] without waiting; one writer task appends them in
//! batches to the hash-chained `audit_events` table, off the transfer path. Paths and reasons
//! pass through [`mask_personal_numbers`] first: a file name may hold a national number.

use tokio::sync::{mpsc, oneshot};

use crate::domain::Niss;
use crate::registry::{NewAuditEvent, Registry, GENESIS_HASH};

enum Message {
    Event(Box<NewAuditEvent>),
    Flush(oneshot::Sender<()>),
    Close,
}

/// Sends events to the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl AuditLog {
    /// Starts the writer task. It ends when every `AuditLog` clone is dropped, after writing
    /// what it received.
    pub fn start(registry: Registry) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_events(registry, receiver));
        (Self { sender }, writer)
    }

    /// Queues an event; never waits. Text fields are masked here.
    pub fn record(&self, mut event: NewAuditEvent) {
        if event.at_ms == 0 {
            event.at_ms = crate::clock::now_millis();
        }
        event.actor = mask_personal_numbers(&event.actor);
        event.path = event.path.map(|p| mask_personal_numbers(&p));
        event.reason = event.reason.map(|r| mask_personal_numbers(&r));
        if self.sender.send(Message::Event(Box::new(event))).is_err() {
            tracing::error!("audit writer stopped: an audit event was not recorded");
        }
    }

    /// Asks the writer to stop once everything queued before is written; await its handle.
    pub fn close(&self) {
        let _ = self.sender.send(Message::Close);
    }

    /// Waits until every event queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_events(registry: Registry, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<NewAuditEvent> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut closing = false;
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => waiting.push(done),
                Message::Close => closing = true,
            }
            if batch.len() < 500 {
                next = receiver.try_recv().ok();
            }
        }
        let mut attempt = 0u32;
        while !batch.is_empty() {
            match registry.append_audit_events(&batch).await {
                Ok(()) => batch.clear(),
                Err(error) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %error, attempt, "audit write failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(error) => {
                    tracing::error!(error = %error, lost = batch.len(), "audit events could not be written");
                    batch.clear();
                }
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
        if closing {
            receiver.close();
            while let Ok(late) = receiver.try_recv() {
                if let Message::Event(_) = late {
                    tracing::error!("an audit event arrived after shutdown and was not recorded");
                }
            }
            return;
        }
    }
}

/// Replaces national numbers in `text` by their masked form `85.07.30-***.**` (see
/// [`Niss::mask_in_text`]).
pub fn mask_personal_numbers(text: &str) -> String {
    Niss::mask_in_text(text)
}

/// Checks the chain of the whole log; returns the number of events, or the id of the first
/// event whose chain is broken.
pub async fn verify_chain(registry: &Registry) -> Result<Result<usize, i64>, crate::registry::RegistryError> {
    let records = registry.audit_events(i64::MIN).await?;
    let mut prev = GENESIS_HASH.to_string();
    for record in &records {
        if record.prev_hash != prev || record.event.chained_hash(&prev) != record.hash {
            return Ok(Err(record.id));
        }
        prev = record.hash.clone();
    }
    Ok(Ok(records.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_in_paths_are_masked() {
        assert_eq!(
            mask_personal_numbers("/GP-1001/inbox/affiliations/85073003328.xlsx"),
            "/GP-1001/inbox/affiliations/85.07.30-***.**.xlsx"
        );
        assert_eq!(mask_personal_numbers("sheet 85.07.30-033.28 final"), "sheet 85.07.30-***.** final");
        assert_eq!(mask_personal_numbers("/GP-1001/invoices/2026-01.pdf"), "/GP-1001/invoices/2026-01.pdf");
        assert_eq!(mask_personal_numbers("12345678901"), "12345678901");
        assert_eq!(mask_personal_numbers("85073003328-2026.xlsx"), "****************.xlsx");
        assert_eq!(mask_personal_numbers("sheet 85 07 30 033 28.pdf"), "sheet 85.07.30-***.**.pdf");
        assert_eq!(mask_personal_numbers("2026.01.85073003328.pdf"), "*******************.pdf");
    }
}
