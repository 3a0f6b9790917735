//! Object storage: where the bytes of uploads and documents live. The registry records which
//! object belongs to what; this module only stores, reads and deletes bytes under keys built
//! from validated identifiers, never from client text.
//!
//! Writes are two-phase: an [`ObjectWriter`] streams into a staging area and hashes as it
//! goes; [`ObjectWriter::finish`] gives a [`StagedObject`] (complete, not yet visible), and
//! [`StagedObject::commit`] makes it readable under its key. Anything dropped before commit
//! is removed, so an interrupted upload leaves nothing behind.

mod local_disk;

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;

use crate::config::StorageSettings;
use crate::domain::{ContractNumber, KindName};

pub use local_disk::LocalDisk;

/// What went wrong in storage, by kind; the cause is kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(ObjectKey),
    #[error("storage I/O failed on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the stored object key {0:?} is not valid")]
    InvalidKey(String),
}

/// A storage key: `/`-separated segments of `[A-Za-z0-9-]`, built from validated
/// identifiers and random ids only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    fn random_id() -> String {
        let bytes: [u8; 16] = rand::random();
        hex::encode(bytes)
    }

    /// `uploads/<contract>/<kind>/<random>`
    pub fn for_upload(contract: &ContractNumber, kind: &KindName) -> Self {
        Self(format!("uploads/{contract}/{kind}/{}", Self::random_id()))
    }

    /// `documents/<contract>/<kind>/<random>`
    pub fn for_document(contract: &ContractNumber, kind: &KindName) -> Self {
        Self(format!("documents/{contract}/{kind}/{}", Self::random_id()))
    }

    /// `reports/<contract>/<random>`
    pub fn for_report(contract: &ContractNumber) -> Self {
        Self(format!("reports/{contract}/{}", Self::random_id()))
    }

    /// `access-requests/<organisation id>/<random>`, for user sheets and their reports.
    pub fn for_access_request(organisation_id: i64) -> Self {
        Self(format!("access-requests/{organisation_id}/{}", Self::random_id()))
    }

    /// A key read back from the registry, checked again before it touches a path.
    pub fn from_stored(key: &str) -> Result<Self, StorageError> {
        let valid = !key.is_empty()
            && key.len() <= 512
            && key
                .split('/')
                .all(|segment| !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if valid {
            Ok(Self(key.to_string()))
        } else {
            Err(StorageError::InvalidKey(key.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The configured backend. An enum, not a trait: the set of backends is closed.
#[derive(Debug, Clone)]
pub enum ObjectStore {
    LocalDisk(LocalDisk),
}

impl ObjectStore {
    pub async fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        match settings {
            StorageSettings::LocalDisk { path, fsync } => {
                Ok(Self::LocalDisk(LocalDisk::open(path.clone(), *fsync).await?))
            }
        }
    }

    /// Starts writing a new object under `key`.
    pub async fn create(&self, key: ObjectKey) -> Result<ObjectWriter, StorageError> {
        match self {
            Self::LocalDisk(disk) => Ok(ObjectWriter { inner: WriterInner::LocalDisk(disk.create(key).await?) }),
        }
    }

    pub async fn open_reader(&self, key: &ObjectKey) -> Result<ObjectReader, StorageError> {
        match self {
            Self::LocalDisk(disk) => Ok(ObjectReader { inner: ReaderInner::LocalDisk(disk.open_reader(key).await?) }),
        }
    }

    /// Removes what processes that are gone left half-written. Call at server start-up only.
    pub async fn remove_stale_staging(&self) -> Result<usize, StorageError> {
        match self {
            Self::LocalDisk(disk) => disk.remove_stale_staging().await,
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self {
            Self::LocalDisk(disk) => disk.delete(key).await,
        }
    }
}

/// An object being written. Dropping it discards what was written.
pub struct ObjectWriter {
    inner: WriterInner,
}

enum WriterInner {
    LocalDisk(local_disk::DiskWriter),
}

impl ObjectWriter {
    /// Appends bytes at the end of the object.
    pub async fn append(&mut self, data: Bytes) -> Result<(), StorageError> {
        match &mut self.inner {
            WriterInner::LocalDisk(w) => w.append(data).await,
        }
    }

    pub fn len(&self) -> u64 {
        match &self.inner {
            WriterInner::LocalDisk(w) => w.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the written bytes durable; the object is complete but not yet visible.
    pub async fn finish(self) -> Result<StagedObject, StorageError> {
        match self.inner {
            WriterInner::LocalDisk(w) => Ok(StagedObject { inner: StagedInner::LocalDisk(w.finish().await?) }),
        }
    }
}

/// A complete object waiting to be committed. Dropping it discards it.
pub struct StagedObject {
    inner: StagedInner,
}

enum StagedInner {
    LocalDisk(local_disk::DiskStaged),
}

/// A committed object's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: ObjectKey,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl StagedObject {
    pub fn size(&self) -> u64 {
        match &self.inner {
            StagedInner::LocalDisk(s) => s.size,
        }
    }

    pub fn sha256(&self) -> &str {
        match &self.inner {
            StagedInner::LocalDisk(s) => &s.sha256,
        }
    }

    pub fn key(&self) -> &ObjectKey {
        match &self.inner {
            StagedInner::LocalDisk(s) => &s.key,
        }
    }

    /// Makes the object readable under its key.
    pub async fn commit(self) -> Result<StoredObject, StorageError> {
        match self.inner {
            StagedInner::LocalDisk(s) => s.commit().await,
        }
    }
}

/// Random-offset access to a committed object.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    inner: ReaderInner,
}

#[derive(Debug, Clone)]
enum ReaderInner {
    LocalDisk(local_disk::DiskReader),
    /// Content made on demand (users.xlsx), served like a stored object.
    Memory(Bytes),
}

impl ObjectReader {
    /// Serves bytes made in memory.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self { inner: ReaderInner::Memory(bytes) }
    }

    pub fn size(&self) -> u64 {
        match &self.inner {
            ReaderInner::LocalDisk(r) => r.size(),
            ReaderInner::Memory(b) => b.len() as u64,
        }
    }

    /// Up to `len` bytes from `offset`; empty at or past the end.
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        match &self.inner {
            ReaderInner::LocalDisk(r) => r.read_at(offset, len).await,
            ReaderInner::Memory(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                let end = start.saturating_add(len).min(bytes.len());
                Ok(bytes.slice(start..end))
            }
        }
    }
}
