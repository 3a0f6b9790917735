//! Checkpoints of the audit trail: written into the object store, and a copy mailed outside
//! the gateway (`notify.audit_checkpoint_to`) whenever the chain moved.

use crate::audit::{self, Checkpoint, CheckpointError};
use crate::notify::messages;

use super::error::AdminError;
use super::Admin;

impl Admin {
    /// Writes a checkpoint of the chain's head (`None` while the chain is empty) and mails a
    /// copy when the chain moved since the checkpoint before.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AdminError> {
        // An unreadable earlier checkpoint is replaced; `audit verify` reports the problem.
        let previous = audit::read_checkpoint(&self.storage).await.ok().flatten();
        let Some(checkpoint) = audit::write_checkpoint(&self.registry, &self.storage).await? else {
            return Ok(None);
        };
        let moved = previous.is_none_or(|previous| previous.sequence != checkpoint.sequence);
        if let (Some(to), true) = (self.outbox.audit_checkpoint_to(), moved) {
            let json = serde_json::to_string_pretty(&checkpoint).map_err(CheckpointError::Unreadable)?;
            let at = crate::clock::format_millis(checkpoint.at_ms);
            self.mail(vec![(to.clone(), messages::audit_checkpoint(checkpoint.sequence, &at, &json))]).await?;
        }
        Ok(Some(checkpoint))
    }
}
