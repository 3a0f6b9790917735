//! Where and how objects are stored: read from `[storage]` by `config`.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub backend: BackendSettings,
    pub encryption: EncryptionSettings,
    /// Local backend: uploads are refused while the volume has less free space than this.
    pub reserve_free_bytes: u64,
}

#[derive(Debug, Clone)]
pub enum BackendSettings {
    LocalDisk {
        path: PathBuf,
        /// Sync every object to disk before its upload is acknowledged.
        fsync: bool,
    },
    S3(S3Settings),
}

/// Where the objects go in S3. Credentials come from the standard AWS chain, never from here.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// `None`: AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub force_path_style: bool,
    /// Empty, or ending with `/`.
    pub prefix: String,
    pub part_size: usize,
    /// A request, its retries included, is given up after this.
    pub request_timeout: Duration,
    /// No progress for this long (no answer begun, a body that stops moving) fails an attempt.
    pub stall: Duration,
    pub max_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct EncryptionSettings {
    /// Seal new objects; existing sealed objects are opened either way.
    pub enabled: bool,
    /// The first one is the current identity (created on first start when missing).
    pub identity_files: Vec<PathBuf>,
    /// `age1...` keys new objects are sealed to besides the first identity file's own.
    pub recipients: Vec<String>,
}

impl EncryptionSettings {
    /// No sealing and no identity files.
    pub fn disabled(&self) -> Self {
        Self { enabled: false, identity_files: Vec::new(), recipients: Vec::new() }
    }
}
