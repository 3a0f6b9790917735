//! `keys rotate`: re-seals every stored object to the current recipients.
//!
//! Each object is rewritten under its own key and replaces the old version atomically, so it
//! is readable at every moment (by the old identity before, the new one after; keep both
//! configured until the rotation ends). Progress is written to a state file after every
//! object: a rotation that stops (crash, Ctrl-C, storage down) resumes where it was.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ObjectKey, ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("new objects are not sealed (storage.encryption.enabled is off): nothing to rotate to")]
    NotSealing,
    #[error("cannot use the rotation state file {path}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Passes over the store at most: each one re-seals what the previous listing did not have.
const MAX_PASSES: usize = 5;

/// What a rotation did.
#[derive(Debug, Default)]
pub struct RotationSummary {
    pub resealed: usize,
    /// Done by an earlier, interrupted run with the same recipients.
    pub already_done: usize,
    pub failed: Vec<(ObjectKey, String)>,
}

/// Which recipients a state file belongs to: a rotation to other keys starts over.
fn recipients_fingerprint(store: &ObjectStore) -> String {
    let mut recipients = store.keys().recipient_strings();
    recipients.sort();
    hex::encode(Sha256::digest(recipients.join("\n").as_bytes()))
}

fn read_state(path: &Path, fingerprint: &str) -> Result<BTreeSet<String>, RotationError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(source) => return Err(RotationError::State { path: path.to_path_buf(), source }),
    };
    let mut lines = text.lines();
    if lines.next() != Some(&format!("recipients {fingerprint}")) {
        return Ok(BTreeSet::new());
    }
    Ok(lines.map(str::to_string).collect())
}

/// Re-seals every object not yet done; `progress(done, total)` after each.
pub async fn rotate(
    store: &ObjectStore,
    state_file: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<RotationSummary, RotationError> {
    if !store.keys().seals_new_objects() {
        return Err(RotationError::NotSealing);
    }
    let state_error = |source| RotationError::State { path: state_file.to_path_buf(), source };
    let fingerprint = recipients_fingerprint(store);
    let done = read_state(state_file, &fingerprint)?;
    let mut state = if done.is_empty() {
        let mut file = std::fs::File::create(state_file).map_err(state_error)?;
        writeln!(file, "recipients {fingerprint}").map_err(state_error)?;
        file
    } else {
        std::fs::OpenOptions::new().append(true).open(state_file).map_err(state_error)?
    };
    // Objects stored while the rotation runs are listed by the next pass: the passes end when
    // one finds nothing new (a server still sealing to old keys must be restarted first).
    let mut done = done;
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut summary = RotationSummary { already_done: done.len(), ..RotationSummary::default() };
    for _ in 0..MAX_PASSES {
        let objects: Vec<_> = store
            .list()
            .await?
            .into_iter()
            .filter(|key| !done.contains(key.as_str()) && !failed.contains(key.as_str()))
            .collect();
        if objects.is_empty() {
            break;
        }
        let total = objects.len();
        for (index, key) in objects.into_iter().enumerate() {
            match store.reseal(&key).await {
                Ok(_) => {
                    writeln!(state, "{key}").and_then(|()| state.flush()).map_err(state_error)?;
                    summary.resealed += 1;
                }
                // Deleted since it was listed (a withdrawn upload): nothing left to rotate.
                Err(StorageError::NotFound(_)) => {}
                Err(error) if error.is_transient() => return Err(error.into()),
                Err(error) => {
                    failed.insert(key.to_string());
                    summary.failed.push((key.clone(), error.to_string()));
                }
            }
            done.insert(key.to_string());
            progress(index + 1, total);
        }
    }
    if summary.failed.is_empty() {
        std::fs::remove_file(state_file).map_err(state_error)?;
    }
    Ok(summary)
}
