//! Publishing documents from the command line (files, templates made in memory) and the
//! digest mail that tells organisations new documents are waiting.

use std::path::Path;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::domain::{AuditAction, ContractNumber, FileName, KindName, Year};
use crate::publishing::{DocumentPlace, PublishOutcome};
use crate::storage::ObjectKey;

use super::error::{AdminError, Refusal};
use super::Admin;

impl Admin {
    /// Publishes one file as a document of a contract.
    pub async fn publish(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        period: Option<Year>,
        file: &Path,
    ) -> Result<PublishOutcome, AdminError> {
        let document_kind = self.layout.document_kind(kind.as_str()).ok_or_else(|| {
            let known = self.layout.document_kinds.iter().map(|k| k.name.to_string()).collect();
            Refusal::UnknownDocumentKind { kind: kind.clone(), known }
        })?;
        let year = match (document_kind.per_year, period) {
            (true, None) => {
                return Err(Refusal::PeriodNeeded(kind.clone()).into());
            }
            (true, Some(year)) => Some(year),
            (false, Some(_)) => {
                return Err(Refusal::NotFiledByYear(kind.clone()).into());
            }
            (false, None) => None,
        };
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Refusal::FileNameNotUtf8 { path: file.to_path_buf() })?;
        let file_name = FileName::parse(file_name)?;
        let source =
            tokio::fs::File::open(file).await.map_err(|source| AdminError::Io { path: file.to_path_buf(), source })?;
        self.publish_from(contract, kind, year, file_name, source, file).await
    }

    /// Publishes bytes made in memory (a template) as a document.
    pub async fn publish_bytes(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        period: Option<Year>,
        file_name: &FileName,
        bytes: &[u8],
    ) -> Result<PublishOutcome, AdminError> {
        self.publish_from(contract, kind, period, file_name.clone(), bytes, Path::new(file_name.as_str())).await
    }

    async fn publish_from<R: tokio::io::AsyncRead + Unpin>(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        year: Option<Year>,
        file_name: FileName,
        mut source: R,
        origin: &Path,
    ) -> Result<PublishOutcome, AdminError> {
        if file_name.as_str() == crate::vfs::CHECKSUMS_FILE {
            return Err(Refusal::ReservedFileName { path: origin.to_path_buf() }.into());
        }
        let contract_record = self.registry.contract(contract).await?;
        let io_error = |source| AdminError::Io { path: origin.to_path_buf(), source };
        let mut writer = self.storage.create(ObjectKey::for_document(contract, kind)).await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = source.read(&mut buffer).await.map_err(io_error)?;
            if read == 0 {
                break;
            }
            writer.append(Bytes::copy_from_slice(&buffer[..read])).await?;
        }
        let object = self.storage.commit_provisionally(writer.finish().await?).await?;
        let stored = object.object().clone();
        let place = DocumentPlace {
            contract_id: contract_record.id,
            contract: contract.clone(),
            kind: kind.clone(),
            year,
            file_name: file_name.clone(),
            published_by: self.actor.clone(),
        };
        let outcome = crate::publishing::publish(&self.registry, &place, object).await?;
        let detail = format!("{contract}/{kind}/{file_name} sha256 {} {:?}", stored.sha256, outcome);
        self.audit(AuditAction::Publish, Some(contract_record.organisation_id), detail).await?;
        Ok(outcome)
    }

    /// Tells each organisation, once per publishing run, that new documents are waiting: kinds
    /// and counts per contract, nothing personal, to the convention's notification address.
    /// One digest per organisation concerned by a publishing run; returns how many.
    pub async fn send_publication_digests(&self, published: &crate::notify::Published) -> Result<usize, AdminError> {
        let count = self.outbox.queue_digests(published).await?;
        self.deliver_queued_mail().await;
        Ok(count)
    }
}
