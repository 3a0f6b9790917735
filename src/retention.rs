//! Retention of uploaded files: once an upload is processed, its stored file is kept for
//! `retention.rejected_days` (rejected or failed) or `retention.accepted_days` (accepted or
//! duplicate), then deleted. The upload's row, its reports and what it brought into the
//! registry stay; every deletion is audited. `serve` runs a pass every hour; `pension-gateway
//! retention run` runs one at once.

use crate::audit::AuditLog;
use crate::domain::{AuditAction, AuditOutcome};
use crate::layout::Layout;
use crate::registry::{NewAuditEvent, Registry, RegistryError};
use crate::storage::{ObjectKey, ObjectStore};

/// How long the stored files of processed uploads are kept.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    pub rejected_days: u32,
    pub accepted_days: u32,
}

const DAY_SECONDS: i64 = 86_400;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPass {
    /// Files deleted.
    pub removed: usize,
    /// Files recorded as removed whose deletion failed (`storage verify` lists what remains).
    pub failed: usize,
}

/// Deletes the stored files whose retention ended before `now` (Unix seconds).
pub async fn run_pass(
    registry: &Registry,
    storage: &ObjectStore,
    audit: &AuditLog,
    layout: &Layout,
    settings: RetentionSettings,
    now: i64,
) -> Result<RetentionPass, RegistryError> {
    let rejected_before = now - i64::from(settings.rejected_days) * DAY_SECONDS;
    let accepted_before = now - i64::from(settings.accepted_days) * DAY_SECONDS;
    let mut pass = RetentionPass::default();
    for upload in registry.uploads_past_retention(rejected_before, accepted_before).await? {
        // The row is marked first: the file stops counting and being listed, and a deletion
        // that fails leaves an object `storage verify` reports as unrecorded, never a row
        // pointing at nothing.
        if !registry.mark_upload_file_removed(upload.id, &[upload.status]).await? {
            continue;
        }
        let deleted = match ObjectKey::from_stored(&upload.object_key) {
            Ok(key) => storage.delete(&key).await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let days = (now - upload.processed_at.unwrap_or(now)) / DAY_SECONDS;
        let outcome = match &deleted {
            Ok(()) => {
                pass.removed += 1;
                AuditOutcome::Ok
            }
            Err(error) => {
                tracing::error!(upload = upload.id, error = %error, "retention could not delete an upload's file");
                pass.failed += 1;
                AuditOutcome::Failed
            }
        };
        audit.record(NewAuditEvent {
            actor: "retention".into(),
            path: Some(layout.upload_path(
                &upload.contract,
                upload.kind.as_str(),
                upload.file_name.as_str(),
                upload.test,
            )),
            reason: Some(format!("{} upload #{} processed {days} days ago", upload.status.as_str(), upload.id)),
            bytes: Some(i64::try_from(upload.size).unwrap_or(i64::MAX)),
            sha256: Some(upload.sha256.clone()),
            ..NewAuditEvent::new(AuditAction::RetentionDelete, outcome)
        });
    }
    Ok(pass)
}
