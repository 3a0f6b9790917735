//! Uploads as staff see them: listings, one upload, queuing its processing again.

use crate::domain::{AuditAction, ContractNumber};
use crate::registry::UploadRecord;

use super::error::AdminError;
use super::Admin;

impl Admin {
    pub async fn uploads(&self, contract: Option<&ContractNumber>) -> Result<Vec<UploadRecord>, AdminError> {
        let id = match contract {
            Some(number) => Some(self.registry.contract(number).await?.id),
            None => None,
        };
        Ok(self.registry.uploads(id).await?)
    }

    pub async fn upload(&self, id: i64) -> Result<UploadRecord, AdminError> {
        Ok(self.registry.upload(id).await?)
    }

    /// Queues an upload's processing again.
    pub async fn retry_ingestion(&self, upload_id: i64) -> Result<(), AdminError> {
        self.registry.retry_ingestion(upload_id).await?;
        self.audit(AuditAction::IngestRetry, None, format!("upload #{upload_id}")).await
    }
}
