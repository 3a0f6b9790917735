//! Object storage: where the bytes of uploads and documents live. The registry records which
//! object belongs to what; this module only stores, reads and deletes bytes under keys built
//! from validated identifiers, never from client text.
//!
//! Writes are two-phase: an [`ObjectWriter`] streams into a staging area and hashes as it
//! goes; [`ObjectWriter::finish`] gives a [`StagedObject`] (complete, not yet visible), and
//! [`StagedObject::commit`] makes it readable under its key. Anything dropped before commit
//! is removed, so an interrupted upload leaves nothing behind.

mod local_disk;
pub mod rotation;
mod s3;
pub mod sealing;
mod settings;
pub mod verify;

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::domain::{ContractNumber, KindName};
pub use settings::{BackendSettings, EncryptionSettings, S3Settings, StorageSettings};

pub use local_disk::LocalDisk;
pub use s3::{S3Failure, S3Store};
pub use sealing::{KeyError, KeyRing};

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
    #[error("S3 {operation} on {target} failed: {kind}")]
    S3 { operation: &'static str, target: String, kind: S3Failure, detail: String },
    #[error("bucket {bucket:?} at {endpoint} cannot be used: {kind} ({detail})")]
    BucketUnusable { bucket: String, endpoint: String, kind: S3Failure, detail: String },
    #[error("object {key} cannot be read: {reason}")]
    Unreadable { key: ObjectKey, reason: String },
    #[error("object {key} was altered: its content no longer has the SHA-256 recorded when it was stored")]
    Altered { key: ObjectKey },
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("the identity file {path} is missing while the store already holds objects: restore it (a new identity would not open them)")]
    IdentityMissing { path: PathBuf },
}

impl StorageError {
    /// Whether trying again later may succeed (the backend was unreachable or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::S3 { kind: S3Failure::Unreachable | S3Failure::TimedOut, .. })
    }

    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::S3 { kind: S3Failure::NotFound, .. })
    }
}

const AUDIT_CHECKPOINT_KEY: &str = "audit/checkpoint";

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

    /// `audit/checkpoint`: the latest signed checkpoint of the audit chain, kept outside the
    /// database (overwritten by the next one).
    pub fn for_audit_checkpoint() -> Self {
        Self(AUDIT_CHECKPOINT_KEY.to_string())
    }

    /// Whether this is an object the gateway keeps for itself, not one the registry records.
    pub fn is_own(&self) -> bool {
        self.0 == AUDIT_CHECKPOINT_KEY
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

/// The configured backend and the keys that seal what it stores.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    backend: Backend,
    keys: KeyRing,
    reserve_free_bytes: u64,
}

/// An enum, not a trait: the set of backends is closed.
#[derive(Debug, Clone)]
enum Backend {
    LocalDisk(LocalDisk),
    S3(S3Store),
}

impl ObjectStore {
    /// Opens the backend and the keys. When encryption is on and the first identity file does
    /// not exist yet, it is created, but only while the store is still empty.
    pub async fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        let backend = match &settings.backend {
            BackendSettings::LocalDisk { path, fsync } => {
                Backend::LocalDisk(LocalDisk::open(path.clone(), *fsync).await?)
            }
            BackendSettings::S3(s3) => Backend::S3(S3Store::open(s3).await?),
        };
        let encryption = &settings.encryption;
        if let Some(first) = encryption.identity_files.first() {
            if encryption.enabled && !first.exists() {
                let store =
                    Self { backend: backend.clone(), keys: KeyRing::load(&[], &[], false)?, reserve_free_bytes: 0 };
                if store.holds_sealed_objects().await? {
                    return Err(StorageError::IdentityMissing { path: first.clone() });
                }
                let recipient = sealing::generate_identity_file(first)?;
                tracing::info!(path = %first.display(), %recipient, "created the storage identity: back it up, objects cannot be read without it");
            }
        }
        // With sealing off, identities only open what was sealed before: absent ones are skipped.
        let identity_files: Vec<PathBuf> = if encryption.enabled {
            encryption.identity_files.clone()
        } else {
            encryption.identity_files.iter().filter(|path| path.exists()).cloned().collect()
        };
        let keys = KeyRing::load(&identity_files, &encryption.recipients, encryption.enabled)?;
        Ok(Self { backend, keys, reserve_free_bytes: settings.reserve_free_bytes })
    }

    /// Whether the backend answers now (`/readyz`): the bucket on S3, the folder on disk.
    pub async fn probe(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::LocalDisk(disk) => disk.free_bytes().map(|_| ()),
            Backend::S3(s3) => s3.check_bucket().await,
        }
    }

    /// On the local backend, the free space when it is below `storage.reserve_free_mib`
    /// (uploads are then refused); `None` when there is room, and always on S3.
    pub fn short_of_space(&self) -> Result<Option<u64>, StorageError> {
        match &self.backend {
            Backend::LocalDisk(disk) => {
                let free = disk.free_bytes()?;
                Ok((free < self.reserve_free_bytes).then_some(free))
            }
            Backend::S3(_) => Ok(None),
        }
    }

    /// Whether any stored object is sealed: then a missing identity is lost, not new. Reads the
    /// first bytes of objects until one is sealed (a store from before encryption has none).
    async fn holds_sealed_objects(&self) -> Result<bool, StorageError> {
        for key in self.list().await? {
            let start = self.open_raw(&key).await?.read_at(0, sealing::SEAL_MAGIC_LEN).await?;
            if sealing::is_sealed(&start) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A store with keys given directly (tests, benchmarks).
    pub async fn with_keys(settings: &StorageSettings, keys: KeyRing) -> Result<Self, StorageError> {
        let mut store =
            Self::open(&StorageSettings { encryption: settings.encryption.disabled(), ..settings.clone() }).await?;
        store.keys = keys;
        Ok(store)
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Where the objects are, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::LocalDisk(disk) => disk.describe(),
            Backend::S3(s3) => s3.describe(),
        }
    }

    /// Starts writing a new object under `key`, sealed when encryption is on.
    pub async fn create(&self, key: ObjectKey) -> Result<ObjectWriter, StorageError> {
        let sealer =
            self.keys.sealer().map_err(|e| StorageError::Unreadable { key: key.clone(), reason: e.to_string() })?;
        let raw = match &self.backend {
            Backend::LocalDisk(disk) => RawWriter::LocalDisk(disk.create(key.clone()).await?),
            Backend::S3(s3) => RawWriter::S3(s3.create(key.clone())),
        };
        Ok(ObjectWriter { raw, sealer, hasher: Sha256::new(), len: 0, key })
    }

    async fn open_raw(&self, key: &ObjectKey) -> Result<RawReader, StorageError> {
        Ok(match &self.backend {
            Backend::LocalDisk(disk) => RawReader::LocalDisk(disk.open_reader(key).await?),
            Backend::S3(s3) => RawReader::S3(s3.open_reader(key).await?),
        })
    }

    /// Opens an object for random-offset reads of its plaintext.
    pub async fn open_reader(&self, key: &ObjectKey) -> Result<ObjectReader, StorageError> {
        let raw = self.open_raw(key).await?;
        let start = raw.read_at(0, sealing::SEAL_MAGIC_LEN).await?;
        if !sealing::is_sealed(&start) {
            return Ok(ObjectReader { inner: ReaderInner::Plain(raw) });
        }
        let keys = self.keys.clone();
        let source = BlockingSource { raw, position: 0, runtime: tokio::runtime::Handle::current() };
        let key_for_error = key.clone();
        let opened = tokio::task::spawn_blocking(move || keys.open(source))
            .await
            .map_err(std::io::Error::other)
            .and_then(|opened| opened)
            .map_err(|e| StorageError::Unreadable { key: key_for_error, reason: e.to_string() })?;
        let size = opened.size();
        Ok(ObjectReader {
            inner: ReaderInner::Sealed(Arc::new(SealedReader {
                key: key.clone(),
                size,
                opened: Arc::new(tokio::sync::Mutex::new(opened)),
            })),
        })
    }

    /// Reads a whole object and checks it against the SHA-256 recorded when it was stored.
    pub async fn read_verified(&self, key: &ObjectKey, sha256: &str) -> Result<Bytes, StorageError> {
        let reader = self.open_reader(key).await?;
        let mut data = Vec::with_capacity(usize::try_from(reader.size()).unwrap_or(0));
        let (_, digest) = read_through(&reader, |chunk| data.extend_from_slice(chunk)).await?;
        if !digest.eq_ignore_ascii_case(sha256) {
            return Err(StorageError::Altered { key: key.clone() });
        }
        Ok(Bytes::from(data))
    }

    /// Streams a whole object and returns its plaintext size and SHA-256, in constant memory.
    pub async fn digest(&self, key: &ObjectKey) -> Result<(u64, String), StorageError> {
        read_through(&self.open_reader(key).await?, |_| {}).await
    }

    /// Rewrites an object with the current keys, replacing it atomically under the same key.
    /// Returns the plaintext's size and SHA-256.
    pub async fn reseal(&self, key: &ObjectKey) -> Result<StoredObject, StorageError> {
        let reader = self.open_reader(key).await?;
        let mut writer = self.create(key.clone()).await?;
        let mut pieces = Pieces { reader: &reader, offset: 0 };
        while let Some(piece) = pieces.next().await? {
            writer.append(piece).await?;
        }
        if pieces.offset != reader.size() {
            return Err(StorageError::Unreadable { key: key.clone(), reason: "shorter than its size".into() });
        }
        writer.finish().await?.commit().await
    }

    /// Every object in the store, staging excluded; names that are not keys are skipped.
    pub async fn list(&self) -> Result<Vec<ObjectKey>, StorageError> {
        let names = match &self.backend {
            Backend::LocalDisk(disk) => disk.list().await?,
            Backend::S3(s3) => s3.list().await?,
        };
        Ok(names.iter().filter_map(|name| ObjectKey::from_stored(name).ok()).collect())
    }

    /// Removes what processes that are gone left half-written. Call at server start-up only.
    pub async fn remove_stale_staging(&self) -> Result<usize, StorageError> {
        match &self.backend {
            Backend::LocalDisk(disk) => disk.remove_stale_staging().await,
            Backend::S3(s3) => s3.abort_stale_uploads().await,
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match &self.backend {
            Backend::LocalDisk(disk) => disk.delete(key).await,
            Backend::S3(s3) => s3.delete(key).await,
        }
    }

    /// Commits a staged object that the registry does not point at yet: it is deleted again
    /// unless [`Provisional::keep`] is called once its row is written.
    pub async fn commit_provisionally(&self, staged: StagedObject) -> Result<Provisional, StorageError> {
        let object = staged.commit().await?;
        Ok(Provisional { store: self.clone(), object, kept: false })
    }
}

/// A committed object waiting for the registry row that points at it. Dropped without
/// [`Provisional::keep`] (an error on the way, a row refused), it is deleted: no object is
/// left that nothing records.
#[must_use = "a provisional object is deleted when dropped; keep() it once it is recorded"]
pub struct Provisional {
    store: ObjectStore,
    object: StoredObject,
    kept: bool,
}

impl Provisional {
    pub fn object(&self) -> &StoredObject {
        &self.object
    }

    /// The registry now records the object: it stays.
    pub fn keep(mut self) -> StoredObject {
        self.kept = true;
        self.object.clone()
    }

    /// Deletes the object now and says whether that worked (a drop deletes it in the
    /// background and only logs a failure).
    pub async fn discard(mut self) -> Result<(), StorageError> {
        self.kept = true;
        self.store.delete(&self.object.key).await
    }
}

impl Drop for Provisional {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let store = self.store.clone();
        let key = self.object.key.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = store.delete(&key).await {
                        tracing::error!(key = %key, error = ?error, "cannot remove an unrecorded object");
                    }
                });
            }
            Err(_) => tracing::error!(key = %key, "an unrecorded object is left: no runtime to delete it"),
        }
    }
}

/// An object read from start to end in 1 MiB pieces.
struct Pieces<'a> {
    reader: &'a ObjectReader,
    /// Bytes read so far.
    offset: u64,
}

impl Pieces<'_> {
    async fn next(&mut self) -> Result<Option<Bytes>, StorageError> {
        if self.offset >= self.reader.size() {
            return Ok(None);
        }
        let piece = self.reader.read_at(self.offset, 1 << 20).await?;
        self.offset += piece.len() as u64;
        Ok((!piece.is_empty()).then_some(piece))
    }
}

/// Reads a whole object, handing each piece to `take`; returns the size read and its SHA-256.
async fn read_through(reader: &ObjectReader, mut take: impl FnMut(&[u8])) -> Result<(u64, String), StorageError> {
    let mut hasher = Sha256::new();
    let mut pieces = Pieces { reader, offset: 0 };
    while let Some(piece) = pieces.next().await? {
        hasher.update(&piece);
        take(&piece);
    }
    Ok((pieces.offset, hex::encode(hasher.finalize())))
}

/// An object being written. Dropping it discards what was written.
pub struct ObjectWriter {
    raw: RawWriter,
    sealer: Option<sealing::Sealer>,
    /// Of the plaintext: what the registry records and what verification checks.
    hasher: Sha256,
    len: u64,
    key: ObjectKey,
}

enum RawWriter {
    LocalDisk(local_disk::DiskWriter),
    S3(s3::S3Writer),
}

impl RawWriter {
    async fn append(&mut self, data: Bytes) -> Result<(), StorageError> {
        match self {
            Self::LocalDisk(w) => w.append(data).await,
            Self::S3(w) => w.append(data).await,
        }
    }
}

impl ObjectWriter {
    fn seal_error(&self, error: std::io::Error) -> StorageError {
        StorageError::Unreadable { key: self.key.clone(), reason: format!("sealing failed: {error}") }
    }

    /// Appends bytes at the end of the object.
    pub async fn append(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.hasher.update(&data);
        self.len += data.len() as u64;
        let stored = match &mut self.sealer {
            Some(sealer) => match sealer.seal(&data) {
                Ok(sealed) => sealed,
                Err(e) => return Err(self.seal_error(e)),
            },
            None => data,
        };
        if stored.is_empty() {
            return Ok(());
        }
        self.raw.append(stored).await
    }

    /// Plaintext bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the written bytes durable; the object is complete but not yet visible.
    pub async fn finish(mut self) -> Result<StagedObject, StorageError> {
        if let Some(sealer) = self.sealer.take() {
            let tail = sealer.finish().map_err(|e| self.seal_error(e))?;
            self.raw.append(tail).await?;
        }
        let raw = match self.raw {
            RawWriter::LocalDisk(w) => RawStaged::LocalDisk(w.finish().await?),
            RawWriter::S3(w) => RawStaged::S3(w.finish().await?),
        };
        Ok(StagedObject { raw, key: self.key, size: self.len, sha256: hex::encode(self.hasher.finalize()) })
    }
}

/// A complete object waiting to be committed. Dropping it discards it.
pub struct StagedObject {
    raw: RawStaged,
    key: ObjectKey,
    size: u64,
    sha256: String,
}

enum RawStaged {
    LocalDisk(local_disk::DiskStaged),
    S3(s3::S3Staged),
}

/// A committed object's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: ObjectKey,
    /// Of the plaintext.
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
}

impl StagedObject {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Bytes this staged object keeps in memory until it is committed (on S3, an object
    /// smaller than one part); on disk, none.
    pub fn bytes_in_memory(&self) -> u64 {
        match &self.raw {
            RawStaged::LocalDisk(_) => 0,
            RawStaged::S3(s) => s.in_memory(),
        }
    }

    /// Makes the object readable under its key (replacing one of the same key atomically).
    pub async fn commit(self) -> Result<StoredObject, StorageError> {
        match self.raw {
            RawStaged::LocalDisk(s) => s.commit().await?,
            RawStaged::S3(s) => s.commit().await?,
        }
        Ok(StoredObject { key: self.key, size: self.size, sha256: self.sha256 })
    }
}

/// Random-offset access to a committed object's plaintext.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    inner: ReaderInner,
}

#[derive(Debug, Clone)]
enum RawReader {
    LocalDisk(local_disk::DiskReader),
    S3(s3::S3Reader),
}

impl RawReader {
    fn size(&self) -> u64 {
        match self {
            Self::LocalDisk(r) => r.size(),
            Self::S3(r) => r.size(),
        }
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        match self {
            Self::LocalDisk(r) => r.read_at(offset, len).await,
            Self::S3(r) => r.read_at(offset, len).await,
        }
    }
}

/// The stored bytes as `Read + Seek`, for age, on a blocking thread.
struct BlockingSource {
    raw: RawReader,
    position: u64,
    runtime: tokio::runtime::Handle,
}

impl Read for BlockingSource {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = match &self.raw {
            RawReader::LocalDisk(r) => r.read_into_blocking(self.position, buffer)?,
            RawReader::S3(r) => {
                let bytes =
                    self.runtime.block_on(r.read_at(self.position, buffer.len())).map_err(std::io::Error::other)?;
                buffer[..bytes.len()].copy_from_slice(&bytes);
                bytes.len()
            }
        };
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for BlockingSource {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.raw.size().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position =
            target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

struct SealedReader {
    key: ObjectKey,
    size: u64,
    /// A fair lock: pipelined reads are served in the order they came, so the stream goes
    /// forward instead of seeking back and forth.
    opened: Arc<tokio::sync::Mutex<sealing::Opened<BlockingSource>>>,
}

impl fmt::Debug for SealedReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedReader").field("key", &self.key).field("size", &self.size).finish()
    }
}

#[derive(Debug, Clone)]
enum ReaderInner {
    Plain(RawReader),
    Sealed(Arc<SealedReader>),
    /// Content made on demand (users.xlsx), served like a stored object.
    Memory(Bytes),
}

impl ObjectReader {
    /// Serves bytes made in memory.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self { inner: ReaderInner::Memory(bytes) }
    }

    /// Plaintext size.
    pub fn size(&self) -> u64 {
        match &self.inner {
            ReaderInner::Plain(r) => r.size(),
            ReaderInner::Sealed(r) => r.size,
            ReaderInner::Memory(b) => b.len() as u64,
        }
    }

    /// Up to `len` bytes from `offset`; empty at or past the end.
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        match &self.inner {
            ReaderInner::Plain(r) => r.read_at(offset, len).await,
            ReaderInner::Sealed(sealed) => {
                let key = sealed.key.clone();
                let mut opened = Arc::clone(&sealed.opened).lock_owned().await;
                if let Some(bytes) = opened.buffered(offset, len) {
                    return Ok(bytes);
                }
                tokio::task::spawn_blocking(move || opened.read_at(offset, len))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|read| read)
                    .map_err(|e| StorageError::Unreadable { key, reason: e.to_string() })
            }
            ReaderInner::Memory(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                let end = start.saturating_add(len).min(bytes.len());
                Ok(bytes.slice(start..end))
            }
        }
    }
}
