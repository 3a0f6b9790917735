//! The one path by which a document becomes published, for the CLI (`publish`, templates) and
//! for staff uploads over SFTP alike: the object is committed first, then the registry row;
//! a row that is refused, or a document identical to the current version, leaves no object
//! behind.

use crate::domain::{ContractNumber, FileName, KindName, Year};
use crate::registry::{NewDocument, Publication, Registry, RegistryError};
use crate::storage::Provisional;

/// Where and by whom a document is published.
#[derive(Debug, Clone)]
pub struct DocumentPlace {
    pub contract_id: i64,
    pub contract: ContractNumber,
    pub kind: KindName,
    /// For the kinds filed by year.
    pub year: Option<Year>,
    pub file_name: FileName,
    pub published_by: String,
}

/// What publishing one file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// A new document, or a new version replacing the current one of the same name.
    Published { replaced: bool },
    /// The same content was already the current version: nothing changed.
    Unchanged,
}

/// Records `object` as the document at `place`. The object is kept only when it became the
/// current version.
pub async fn publish(
    registry: &Registry,
    place: &DocumentPlace,
    object: Provisional,
) -> Result<PublishOutcome, RegistryError> {
    let stored = object.object();
    let recorded = registry
        .record_document(&NewDocument {
            contract_id: place.contract_id,
            kind: place.kind.clone(),
            year: place.year,
            file_name: place.file_name.clone(),
            size: stored.size,
            sha256: stored.sha256.clone(),
            object_key: stored.key.to_string(),
            published_by: place.published_by.clone(),
        })
        .await?;
    match recorded {
        Publication::Published { replaced, .. } => {
            object.keep();
            Ok(PublishOutcome::Published { replaced: replaced.is_some() })
        }
        Publication::Unchanged(_) => {
            if let Err(error) = object.discard().await {
                tracing::warn!(error = ?error, "cannot remove the copy of an unchanged document");
            }
            Ok(PublishOutcome::Unchanged)
        }
    }
}
