//! `storage verify`: every object the registry points at is read whole and checked against
//! the size and SHA-256 recorded when it was stored.

use crate::registry::{RecordedObject, Registry, RegistryError};
use crate::storage::{ObjectKey, ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What is wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Unreadable(String),
    /// Its size or SHA-256 differs from what was recorded.
    Altered,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Unreadable(reason) => write!(f, "unreadable: {reason}"),
            Self::Altered => f.write_str("altered: its content differs from what was recorded"),
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub checked: usize,
    pub problems: Vec<(RecordedObject, Problem)>,
    /// Objects in the store that the registry does not point at (left by a crash between
    /// storing and recording): harmless, listed for the operator.
    pub unrecorded: Vec<ObjectKey>,
}

async fn check_one(storage: &ObjectStore, object: &RecordedObject) -> Result<Option<Problem>, StorageError> {
    let key = match ObjectKey::from_stored(&object.object_key) {
        Ok(key) => key,
        Err(error) => return Ok(Some(Problem::Unreadable(error.to_string()))),
    };
    match storage.digest(&key).await {
        Ok((size, sha256)) => {
            let sha_matches = object.sha256.as_ref().is_none_or(|recorded| recorded.eq_ignore_ascii_case(&sha256));
            Ok((size != object.size || !sha_matches).then_some(Problem::Altered))
        }
        Err(StorageError::NotFound(_)) => Ok(Some(Problem::Missing)),
        Err(error) if error.is_transient() => Err(error),
        Err(error) => Ok(Some(Problem::Unreadable(error.to_string()))),
    }
}

/// Checks every recorded object; `progress(done, total)` after each. A storage that cannot
/// be reached stops the check (it says nothing about the objects).
pub async fn verify(
    registry: &Registry,
    storage: &ObjectStore,
    mut progress: impl FnMut(usize, usize),
) -> Result<CheckReport, CheckError> {
    let recorded = registry.recorded_objects().await?;
    let mut report = CheckReport::default();
    let total = recorded.len();
    for (index, object) in recorded.iter().enumerate() {
        if let Some(problem) = check_one(storage, object).await? {
            report.problems.push((object.clone(), problem));
        }
        report.checked += 1;
        progress(index + 1, total);
    }
    let known: std::collections::BTreeSet<&str> = recorded.iter().map(|o| o.object_key.as_str()).collect();
    report.unrecorded =
        storage.list().await?.into_iter().filter(|key| !key.is_own() && !known.contains(key.as_str())).collect();
    Ok(report)
}
