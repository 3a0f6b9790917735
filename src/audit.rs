//! The audit log of the gateway: who did what, when, from where, with which outcome.
//!
//! Sessions hand events to an [`AuditLog`] without waiting; one writer task appends them in
//! batches to the hash-chained `audit_events` table, off the transfer path, within 20 ms of
//! the first event of a batch (at once on a flush or at shutdown). A download's receipt rides
//! on its close event and is written in the same transaction. Paths and reasons
//! pass through [`mask_personal_numbers`] first: a file name may hold a national number.

use tokio::sync::{mpsc, oneshot};

use crate::domain::Niss;
use crate::registry::{AuditKey, NewAuditEvent, Registry, GENESIS_HASH};
use crate::storage::{ObjectKey, ObjectStore};

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

/// How long the writer waits for more events before it writes a batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Events per transaction at most.
const BATCH_EVENTS: usize = 500;

async fn write_events(registry: Registry, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<NewAuditEvent> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut closing = false;
    let mut senders_gone = false;
    while let Some(first) = receiver.recv().await {
        // Events that come within LINGER of the first share its transaction: a session
        // fetching small files sends two per file, and a transaction each cost more than
        // the files. A flush or a shutdown writes at once.
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => waiting.push(done),
                Message::Close => closing = true,
            }
            if batch.len() >= BATCH_EVENTS {
                break;
            }
            next = match receiver.try_recv() {
                Ok(message) => Some(message),
                Err(_) if closing || !waiting.is_empty() => None,
                Err(_) => match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(message)) => Some(message),
                    Ok(None) => {
                        senders_gone = true;
                        None
                    }
                    Err(_) => None,
                },
            };
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
        if senders_gone {
            return;
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

/// Why the audit key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("cannot read the audit key {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit key {path} is readable by group or others: run chmod 600 on it")]
    Exposed { path: std::path::PathBuf },
    #[error("the audit key {path} is not 64 hexadecimal characters")]
    Malformed { path: std::path::PathBuf },
    #[error("cannot write the audit key {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads the key of the audit chain (64 hex characters, mode 0600), creating it on first
/// start. It lives beside the host key, outside the database: whoever can rewrite the
/// database cannot recompute the chain without it.
pub fn load_or_create_key(path: &std::path::Path) -> Result<AuditKey, AuditKeyError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let read_error = |source| AuditKeyError::Read { path: path.to_path_buf(), source };
    match std::fs::metadata(path) {
        Ok(metadata) => {
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(AuditKeyError::Exposed { path: path.to_path_buf() });
            }
            let text = std::fs::read_to_string(path).map_err(read_error)?;
            let bytes = hex::decode(text.trim()).map_err(|_| AuditKeyError::Malformed { path: path.to_path_buf() })?;
            let bytes: [u8; 32] =
                bytes.try_into().map_err(|_| AuditKeyError::Malformed { path: path.to_path_buf() })?;
            Ok(AuditKey::new(bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            let write_error = |source| AuditKeyError::Write { path: path.to_path_buf(), source };
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(write_error)?;
            file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes()).map_err(write_error)?;
            file.sync_all().map_err(write_error)?;
            tracing::info!(path = %path.display(), "audit key created: back it up with the host key");
            Ok(AuditKey::new(bytes))
        }
        Err(error) => Err(read_error(error)),
    }
}

/// The chain's head at one moment, signed with the audit key and kept outside the database:
/// events cut from the end of the chain are missed against it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The id of the last event then.
    pub sequence: i64,
    pub head: String,
    pub at_ms: i64,
    pub mac: String,
}

impl Checkpoint {
    fn mac(key: &AuditKey, sequence: i64, head: &str, at_ms: i64) -> String {
        key.mac(&["pension-gateway audit checkpoint", &sequence.to_string(), head, &at_ms.to_string()])
    }

    fn signed_by(&self, key: &AuditKey) -> bool {
        Self::mac(key, self.sequence, &self.head, self.at_ms) == self.mac
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("cannot store or read the audit checkpoint")]
    Storage(#[from] crate::storage::StorageError),
    #[error("the audit checkpoint is not readable JSON")]
    Unreadable(#[source] serde_json::Error),
}

/// Writes a checkpoint of the chain's current head into the object store; `None` while the
/// chain is empty.
pub async fn write_checkpoint(
    registry: &Registry,
    storage: &ObjectStore,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let key = registry.audit_key().ok_or(crate::registry::RegistryError::NoAuditKey)?;
    let Some((sequence, head)) = registry.audit_head().await? else {
        return Ok(None);
    };
    let at_ms = crate::clock::now_millis();
    let checkpoint = Checkpoint { sequence, mac: Checkpoint::mac(key, sequence, &head, at_ms), head, at_ms };
    let json = serde_json::to_vec_pretty(&checkpoint).map_err(CheckpointError::Unreadable)?;
    let mut writer = storage.create(ObjectKey::for_audit_checkpoint()).await?;
    writer.append(bytes::Bytes::from(json)).await?;
    writer.finish().await?.commit().await?;
    Ok(Some(checkpoint))
}

/// The latest checkpoint, if one was ever written.
pub async fn read_checkpoint(storage: &ObjectStore) -> Result<Option<Checkpoint>, CheckpointError> {
    let reader = match storage.open_reader(&ObjectKey::for_audit_checkpoint()).await {
        Ok(reader) => reader,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let bytes = reader.read_at(0, usize::try_from(reader.size()).unwrap_or(usize::MAX)).await?;
    serde_json::from_slice(&bytes).map(Some).map_err(CheckpointError::Unreadable)
}

/// What is wrong with the audit trail, precisely enough to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainProblem {
    #[error("event #{id} was altered: its content does not match its hash")]
    Altered { id: i64 },
    #[error("the event before #{id} was removed or altered: #{id} does not follow the event before it")]
    Unlinked { id: i64 },
    #[error(
        "event #{id} is chained without the key although keyed events precede it: the chain was recomputed from there"
    )]
    Rechained { id: i64 },
    #[error("keyed events cannot be checked: the audit key is not loaded")]
    NoKey,
    #[error("the latest checkpoint is not signed with this gateway's audit key: it was forged or the key changed")]
    CheckpointForged,
    #[error("events were cut from the end: the checkpoint of {at} saw event #{sequence}, the trail ends at {}", last.map(|id| format!("#{id}")).unwrap_or_else(|| "no event".into()))]
    Cut { sequence: i64, at: String, last: Option<i64> },
    #[error("event #{sequence} differs from the checkpoint of {at}: the chain was rewritten")]
    Diverged { sequence: i64, at: String },
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub events: usize,
    /// Events chained with plain SHA-256, from before the key existed.
    pub plain_events: usize,
    /// The latest checkpoint, when one was found and matched.
    pub checkpoint: Option<Checkpoint>,
    pub problem: Option<ChainProblem>,
}

/// Checks the whole chain, then the latest checkpoint in the object store and `copies` (kept
/// outside it) against the chain.
pub async fn verify(
    registry: &Registry,
    storage: &ObjectStore,
    copies: &[Checkpoint],
) -> Result<ChainReport, CheckpointError> {
    let records = registry.audit_events(i64::MIN).await?;
    let key = registry.audit_key();
    let mut report = ChainReport { events: records.len(), plain_events: 0, checkpoint: None, problem: None };
    let mut prev = GENESIS_HASH.to_string();
    let mut keyed_seen = false;
    for record in &records {
        if record.prev_hash != prev {
            report.problem = Some(ChainProblem::Unlinked { id: record.id });
            return Ok(report);
        }
        let expected = match (record.keyed, key) {
            (true, Some(key)) => record.event.chained_hash(&prev, Some(key)),
            (true, None) => {
                report.problem = Some(ChainProblem::NoKey);
                return Ok(report);
            }
            (false, _) if keyed_seen => {
                report.problem = Some(ChainProblem::Rechained { id: record.id });
                return Ok(report);
            }
            (false, _) => {
                report.plain_events += 1;
                record.event.chained_hash(&prev, None)
            }
        };
        if expected != record.hash {
            report.problem = Some(ChainProblem::Altered { id: record.id });
            return Ok(report);
        }
        keyed_seen |= record.keyed;
        prev = record.hash.clone();
    }
    // The stored checkpoint, and any copy kept elsewhere (a mailed one): an attacker who
    // reaches the object store may have replaced the stored one with an older, genuine one.
    let mut checkpoints: Vec<Checkpoint> = read_checkpoint(storage).await?.into_iter().collect();
    checkpoints.extend(copies.iter().cloned());
    checkpoints.sort_by_key(|c| c.sequence);
    for checkpoint in checkpoints {
        match checkpoint_problem(&records, key, &checkpoint) {
            Some(problem) => {
                report.problem = Some(problem);
                return Ok(report);
            }
            None => report.checkpoint = Some(checkpoint),
        }
    }
    Ok(report)
}

/// What is wrong with the chain as `checkpoint` saw it, if anything.
fn checkpoint_problem(
    records: &[crate::registry::AuditRecord],
    key: Option<&AuditKey>,
    checkpoint: &Checkpoint,
) -> Option<ChainProblem> {
    let at = crate::clock::format_millis(checkpoint.at_ms);
    if !key.is_some_and(|key| checkpoint.signed_by(key)) {
        return Some(ChainProblem::CheckpointForged);
    }
    match records.iter().find(|r| r.id == checkpoint.sequence) {
        Some(record) if record.hash == checkpoint.head => None,
        Some(_) => Some(ChainProblem::Diverged { sequence: checkpoint.sequence, at }),
        None => Some(ChainProblem::Cut { sequence: checkpoint.sequence, at, last: records.last().map(|r| r.id) }),
    }
}

/// A checkpoint kept outside the object store: its JSON alone, or a saved mail that carries it.
pub fn parse_checkpoint_copy(text: &str) -> Result<Checkpoint, CheckpointError> {
    let json = match (text.find('{'), text.rfind('}')) {
        (Some(start), Some(end)) if start < end => &text[start..=end],
        _ => text,
    };
    serde_json::from_str(json).map_err(CheckpointError::Unreadable)
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
