//! Objects as files under a root folder: `<root>/<key>`, staged in `<root>/.staging/`.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use std::io::Write;

use super::{ObjectKey, StorageError};

#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
    /// This process's own staging folder, `<root>/.staging/<pid>-<random>`: another process
    /// (the server, a CLI command) never touches it.
    staging: PathBuf,
    fsync: bool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

impl LocalDisk {
    /// Opens (creating) the root folder and this process's staging folder.
    pub async fn open(root: PathBuf, fsync: bool) -> Result<Self, StorageError> {
        let suffix: u32 = rand::random();
        let staging = root.join(".staging").join(format!("{}-{suffix:08x}", std::process::id()));
        tokio::fs::create_dir_all(&staging).await.map_err(io_error(&staging))?;
        Ok(Self { root, staging, fsync })
    }

    /// Bytes free for this process on the volume that holds the objects.
    pub fn free_bytes(&self) -> Result<u64, StorageError> {
        let stats = rustix::fs::statvfs(&self.root)
            .map_err(|e| StorageError::Io { path: self.root.clone(), source: e.into() })?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    /// Removes the staging folders of processes that are gone: what they staged was never
    /// committed. Only the server calls this, at start-up.
    pub async fn remove_stale_staging(&self) -> Result<usize, StorageError> {
        let area = self.root.join(".staging");
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(&area).await.map_err(io_error(&area))?;
        while let Some(entry) = entries.next_entry().await.map_err(io_error(&area))? {
            let path = entry.path();
            if path == self.staging {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
            let alive = pid.is_some_and(|pid| pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let result = if path.is_dir() {
                    tokio::fs::remove_dir_all(&path).await
                } else {
                    tokio::fs::remove_file(&path).await
                };
                result.map_err(io_error(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(super) fn describe(&self) -> String {
        format!("folder {}", self.root.display())
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    pub(super) async fn create(&self, key: ObjectKey) -> Result<DiskWriter, StorageError> {
        let staging_path = self.staging.join(ObjectKey::random_id());
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging_path)
            .await
            .map_err(io_error(&staging_path))?;
        Ok(DiskWriter {
            file: Arc::new(file.into_std().await),
            staging: StagingFile(staging_path),
            final_path: self.path_of(&key),
            write_in_flight: None,
            flush_in_flight: None,
            unflushed: 0,
            fsync: self.fsync,
        })
    }

    pub(super) async fn open_reader(&self, key: &ObjectKey) -> Result<DiskReader, StorageError> {
        let path = self.path_of(key);
        let file = tokio::fs::File::open(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound(key.clone()),
            _ => StorageError::Io { path: path.clone(), source: e },
        })?;
        let size = file.metadata().await.map_err(io_error(&path))?.len();
        Ok(DiskReader { file: Arc::new(file.into_std().await), size, path: Arc::new(path) })
    }

    /// The name of every object under the root (staging excluded).
    pub(super) async fn list(&self) -> Result<Vec<String>, StorageError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut folders = vec![root.clone()];
            while let Some(folder) = folders.pop() {
                for entry in std::fs::read_dir(&folder).map_err(io_error(&folder))? {
                    let entry = entry.map_err(io_error(&folder))?;
                    let path = entry.path();
                    let kind = entry.file_type().map_err(io_error(&path))?;
                    if kind.is_dir() {
                        if path != root.join(".staging") {
                            folders.push(path);
                        }
                    } else if let Ok(relative) = path.strip_prefix(&root) {
                        found.push(relative.to_string_lossy().into_owned());
                    }
                }
            }
            found.sort();
            Ok(found)
        })
        .await
        .map_err(|e| StorageError::Io { path: self.root.clone(), source: std::io::Error::other(e) })?
    }

    pub(super) async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io { path, source: e }),
        }
    }
}

/// A staging file removed when dropped unless it was committed.
#[derive(Debug)]
struct StagingFile(PathBuf);

impl Drop for StagingFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Bytes written since the last background flush that trigger the next one. Flushing while
/// the upload goes on keeps the final sync short.
const FLUSH_EVERY: u64 = 64 * 1024 * 1024;

type Pending = tokio::task::JoinHandle<std::io::Result<()>>;

pub(super) struct DiskWriter {
    file: Arc<std::fs::File>,
    staging: StagingFile,
    final_path: PathBuf,
    /// The write in progress on a blocking thread: one at a time, overlapping the next receive.
    write_in_flight: Option<Pending>,
    flush_in_flight: Option<Pending>,
    unflushed: u64,
    fsync: bool,
}

async fn settle(pending: Option<Pending>) -> std::io::Result<()> {
    match pending {
        Some(task) => task.await.map_err(std::io::Error::other)?,
        None => Ok(()),
    }
}

impl DiskWriter {
    pub(super) async fn append(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.unflushed += data.len() as u64;
        settle(self.write_in_flight.take()).await.map_err(io_error(&self.staging.0))?;
        let file = Arc::clone(&self.file);
        self.write_in_flight = Some(tokio::task::spawn_blocking(move || (&*file).write_all(&data)));
        if self.fsync && self.unflushed >= FLUSH_EVERY && self.flush_in_flight.as_ref().is_none_or(|f| f.is_finished())
        {
            settle(self.flush_in_flight.take()).await.map_err(io_error(&self.staging.0))?;
            let file = Arc::clone(&self.file);
            self.flush_in_flight = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.unflushed = 0;
        }
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<DiskStaged, StorageError> {
        let path = self.staging.0.clone();
        settle(self.write_in_flight.take()).await.map_err(io_error(&path))?;
        settle(self.flush_in_flight.take()).await.map_err(io_error(&path))?;
        if self.fsync {
            let file = Arc::clone(&self.file);
            settle(Some(tokio::task::spawn_blocking(move || file.sync_all()))).await.map_err(io_error(&path))?;
        }
        let staging = std::mem::replace(&mut self.staging, StagingFile(PathBuf::new()));
        Ok(DiskStaged { staging, final_path: std::mem::take(&mut self.final_path), fsync_folder: self.fsync })
    }
}

pub(super) struct DiskStaged {
    staging: StagingFile,
    final_path: PathBuf,
    /// Sync the folder after the rename, so the new name survives a power cut.
    fsync_folder: bool,
}

impl DiskStaged {
    /// Renames the staged file into place, replacing an object of the same key atomically.
    pub(super) async fn commit(mut self) -> Result<(), StorageError> {
        if let Some(parent) = self.final_path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_error(parent))?;
        }
        tokio::fs::rename(&self.staging.0, &self.final_path).await.map_err(io_error(&self.final_path))?;
        self.staging.0 = PathBuf::new();
        if self.fsync_folder {
            if let Some(parent) = self.final_path.parent() {
                let parent = parent.to_path_buf();
                let synced =
                    tokio::task::spawn_blocking(move || std::fs::File::open(&parent).and_then(|d| d.sync_all()));
                settle(Some(synced)).await.map_err(io_error(&self.final_path))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(super) struct DiskReader {
    file: Arc<std::fs::File>,
    size: u64,
    path: Arc<PathBuf>,
}

impl DiskReader {
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes from `offset`, on the calling thread (a blocking one).
    pub(super) fn read_at_blocking(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        if offset >= self.size || len == 0 {
            return Ok(Vec::new());
        }
        let len = len.min(usize::try_from(self.size - offset).unwrap_or(usize::MAX));
        let mut buffer = vec![0u8; len];
        let filled = self.read_into_blocking(offset, &mut buffer)?;
        buffer.truncate(filled);
        Ok(buffer)
    }

    /// Fills `buffer` from `offset`, short only at the end of the file; how many bytes came.
    pub(super) fn read_into_blocking(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.file.read_at(&mut buffer[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    pub(super) async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        if offset >= self.size || len == 0 {
            return Ok(Bytes::new());
        }
        let reader = self.clone();
        tokio::task::spawn_blocking(move || reader.read_at_blocking(offset, len))
            .await
            .map_err(std::io::Error::other)
            .and_then(|read| read)
            .map(Bytes::from)
            .map_err(|source| StorageError::Io { path: self.path.to_path_buf(), source })
    }
}
