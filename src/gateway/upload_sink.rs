//! Where an upload's WRITEs go: appended to the object in offset order, parts that arrive
//! early held in a bounded buffer until the gap before them fills, and every size rule
//! (the server's largest upload, the folder's processing limit, quotas, the disk's reserve)
//! checked on the way. One failed WRITE fails the upload whole: its CLOSE reports the error
//! and nothing is kept. Each WRITE carries a token (its request id and budget, for the SFTP
//! edge) that comes back with its outcome.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::storage::{ObjectStore, ObjectWriter, StagedObject};

use super::reasons::{Conflict, Unsupported};
use super::{GatewayError, Quota};

/// Out-of-order WRITE data an upload may hold while waiting for the gap to fill.
pub const MAX_PENDING_WRITE_BYTES: usize = 32 * 1024 * 1024;

/// Free space is checked again each time an upload has written this much more: uploads side
/// by side must not fill the disk past its reserve.
const SPACE_CHECK_BYTES: u64 = 8 * 1024 * 1024;

/// The most bytes an upload may write, and what its sender is told when it writes more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    pub bytes: u64,
    pub reason: SizeLimitReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimitReason {
    /// The folder's files are processed, and processing refuses larger files.
    Processed,
    /// What is left of the organisation's storage quota (`quota.organisation_bytes`).
    OrganisationQuota,
    /// What is left of the user's upload volume today (`quota.user_daily_bytes`).
    UserDailyQuota,
}

impl SizeLimit {
    /// The refusal of a WRITE that passes the limit.
    pub fn error(&self) -> GatewayError {
        match self.reason {
            SizeLimitReason::Processed => GatewayError::TooLarge { limit: self.bytes },
            SizeLimitReason::OrganisationQuota => {
                GatewayError::Quota { quota: Quota::Organisation, remaining: self.bytes }
            }
            SizeLimitReason::UserDailyQuota => GatewayError::Quota { quota: Quota::UserDaily, remaining: self.bytes },
        }
    }

    /// The tighter of two limits.
    pub(super) fn min(self, other: Self) -> Self {
        if other.bytes < self.bytes {
            other
        } else {
            self
        }
    }
}

/// What became of one WRITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// The upload failed (this WRITE or an earlier one): [`UploadSink::failure`] says why.
    Failed,
}

/// The receiving end of one upload.
pub struct UploadSink<T> {
    storage: ObjectStore,
    writer: ObjectWriter,
    limit: Option<SizeLimit>,
    max_upload_bytes: u64,
    /// WRITEs that arrived before the bytes that precede them, by offset.
    pending: BTreeMap<u64, (T, Bytes)>,
    pending_bytes: usize,
    failure: Option<GatewayError>,
    next_space_check: u64,
}

impl<T> std::fmt::Debug for UploadSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSink")
            .field("written", &self.writer.len())
            .field("pending_bytes", &self.pending_bytes)
            .field("failed", &self.failure.is_some())
            .finish()
    }
}

impl<T> UploadSink<T> {
    pub fn new(storage: ObjectStore, writer: ObjectWriter, limit: Option<SizeLimit>, max_upload_bytes: u64) -> Self {
        Self {
            storage,
            writer,
            limit,
            max_upload_bytes,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            failure: None,
            next_space_check: SPACE_CHECK_BYTES,
        }
    }

    /// Bytes appended so far, in order.
    pub fn written(&self) -> u64 {
        self.writer.len()
    }

    /// Why the upload failed, once it has.
    pub fn failure(&self) -> Option<&GatewayError> {
        self.failure.as_ref()
    }

    /// Takes one WRITE. Returns the WRITEs it settles, in order: itself, and the early parts
    /// that now follow without a gap. A WRITE that waits for an earlier part is settled by the
    /// WRITE that fills the gap, or by [`UploadSink::finish`].
    pub async fn write(&mut self, token: T, offset: u64, data: Bytes) -> Vec<(T, Written)> {
        let end = offset.saturating_add(data.len() as u64);
        if self.failure.is_some() {
            return vec![(token, Written::Failed)];
        }
        if end > self.max_upload_bytes {
            return self.fail(token, GatewayError::Conflict(Conflict::LargerThanAnUpload));
        }
        if let Some(limit) = self.limit.filter(|l| end > l.bytes) {
            return self.fail(token, limit.error());
        }
        let next = self.writer.len();
        if offset == next {
            let mut settled = Vec::new();
            let mut ready = Some((token, data));
            while let Some((token, data)) = ready.take() {
                let outcome = self.append(data).await;
                settled.push((token, outcome));
                if let Some((token, data)) = self.pending.remove(&self.writer.len()) {
                    self.pending_bytes -= data.len();
                    ready = Some((token, data));
                }
            }
            return settled;
        }
        if offset > next
            && self.pending_bytes + data.len() <= MAX_PENDING_WRITE_BYTES
            && !self.pending.contains_key(&offset)
        {
            self.pending_bytes += data.len();
            self.pending.insert(offset, (token, data));
            return Vec::new();
        }
        // Rewriting earlier bytes, the same part twice, or too much ahead of the gap.
        self.fail(token, GatewayError::Unsupported(Unsupported::WriteInOrder))
    }

    /// The file is closed: parts still waiting for a gap fail the upload and come back to be
    /// answered; otherwise the object is finished.
    pub async fn finish(mut self) -> (Result<StagedObject, GatewayError>, Vec<T>) {
        let waiting: Vec<T> = std::mem::take(&mut self.pending).into_values().map(|(token, _)| token).collect();
        if !waiting.is_empty() {
            self.failure.get_or_insert(GatewayError::Conflict(Conflict::UploadGap));
        }
        let result = match self.failure {
            Some(error) => Err(error),
            None => self.writer.finish().await.map_err(GatewayError::Storage),
        };
        (result, waiting)
    }

    fn fail(&mut self, token: T, error: GatewayError) -> Vec<(T, Written)> {
        self.failure = Some(error);
        vec![(token, Written::Failed)]
    }

    async fn append(&mut self, data: Bytes) -> Written {
        if self.failure.is_some() {
            return Written::Failed;
        }
        if let Err(error) = self.writer.append(data).await {
            self.failure = Some(GatewayError::Storage(error));
            return Written::Failed;
        }
        if self.writer.len() >= self.next_space_check {
            if self.out_of_space() {
                self.failure = Some(GatewayError::StorageFull);
                return Written::Failed;
            }
            self.next_space_check = self.writer.len() + SPACE_CHECK_BYTES;
        }
        Written::Ok
    }

    fn out_of_space(&self) -> bool {
        match self.storage.short_of_space() {
            Ok(short) => short.is_some(),
            Err(error) => {
                tracing::warn!(error = ?error, "cannot read the free space of the storage volume");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContractNumber, KindName};
    use crate::storage::{BackendSettings, EncryptionSettings, ObjectKey, StorageSettings};

    async fn sink(dir: &std::path::Path, max: u64, limit: Option<SizeLimit>) -> (ObjectStore, UploadSink<u32>) {
        let settings = StorageSettings {
            backend: BackendSettings::LocalDisk { path: dir.join("objects"), fsync: false },
            encryption: EncryptionSettings {
                enabled: true,
                identity_files: vec![dir.join("age-identity.txt")],
                recipients: Vec::new(),
            },
            reserve_free_bytes: 0,
        };
        let store = ObjectStore::open(&settings).await.unwrap();
        let key = ObjectKey::for_upload(&ContractNumber::parse("GP-1").unwrap(), &KindName::parse("exits").unwrap());
        let writer = store.create(key).await.unwrap();
        (store.clone(), UploadSink::new(store, writer, limit, max))
    }

    async fn contents(store: &ObjectStore, staged: StagedObject) -> Vec<u8> {
        let stored = staged.commit().await.unwrap();
        store.read_verified(&stored.key, &stored.sha256).await.unwrap().to_vec()
    }

    fn part(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn parts_that_arrive_early_wait_for_the_gap_and_are_settled_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut sink) = sink(dir.path(), 1 << 20, None).await;
        assert!(sink.write(3, 8, part("cccc")).await.is_empty());
        assert!(sink.write(2, 4, part("bbbb")).await.is_empty());
        let settled = sink.write(1, 0, part("aaaa")).await;
        assert_eq!(settled, vec![(1, Written::Ok), (2, Written::Ok), (3, Written::Ok)]);
        assert_eq!(sink.written(), 12);
        let (staged, waiting) = sink.finish().await;
        assert!(waiting.is_empty());
        assert_eq!(contents(&store, staged.unwrap()).await, b"aaaabbbbcccc");
    }

    #[tokio::test]
    async fn a_gap_left_at_close_fails_the_upload_and_returns_the_waiting_parts() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut sink) = sink(dir.path(), 1 << 20, None).await;
        assert_eq!(sink.write(1, 0, part("aaaa")).await, vec![(1, Written::Ok)]);
        assert!(sink.write(2, 8, part("cccc")).await.is_empty());
        let (result, waiting) = sink.finish().await;
        assert!(matches!(result, Err(GatewayError::Conflict(Conflict::UploadGap))));
        assert_eq!(waiting, vec![2]);
    }

    #[tokio::test]
    async fn rewriting_earlier_bytes_fails_the_upload_and_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut sink) = sink(dir.path(), 1 << 20, None).await;
        assert_eq!(sink.write(1, 0, part("aaaa")).await, vec![(1, Written::Ok)]);
        assert_eq!(sink.write(2, 0, part("AAAA")).await, vec![(2, Written::Failed)]);
        assert!(matches!(sink.failure(), Some(GatewayError::Unsupported(Unsupported::WriteInOrder))));
        assert_eq!(sink.write(3, 4, part("bbbb")).await, vec![(3, Written::Failed)]);
        assert!(sink.finish().await.0.is_err());
    }

    #[tokio::test]
    async fn the_same_early_part_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut sink) = sink(dir.path(), 1 << 20, None).await;
        assert!(sink.write(1, 4, part("bbbb")).await.is_empty());
        assert_eq!(sink.write(2, 4, part("bbbb")).await, vec![(2, Written::Failed)]);
    }

    #[tokio::test]
    async fn a_write_past_the_largest_upload_or_the_quota_fails_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut sink) = sink(dir.path(), 6, None).await;
        assert_eq!(sink.write(1, 4, part("bbbb")).await, vec![(1, Written::Failed)]);
        assert!(matches!(sink.failure(), Some(GatewayError::Conflict(Conflict::LargerThanAnUpload))));

        let quota = SizeLimit { bytes: 5, reason: SizeLimitReason::UserDailyQuota };
        let (_, mut sink) = super::tests::sink(dir.path(), 1 << 20, Some(quota)).await;
        assert_eq!(sink.write(1, 0, part("aaaa")).await, vec![(1, Written::Ok)]);
        assert_eq!(sink.write(2, 4, part("bb")).await, vec![(2, Written::Failed)]);
        assert!(matches!(sink.failure(), Some(GatewayError::Quota { quota: Quota::UserDaily, remaining: 5 })));
        assert!(sink.finish().await.0.is_err(), "nothing is kept of a failed upload");
    }

    #[tokio::test]
    async fn early_parts_beyond_the_buffer_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut sink) = sink(dir.path(), u64::MAX, None).await;
        let big = Bytes::from(vec![0u8; MAX_PENDING_WRITE_BYTES / 2]);
        assert!(sink.write(1, 1, big.clone()).await.is_empty());
        assert!(sink.write(2, 1 + big.len() as u64, big.clone()).await.is_empty());
        assert_eq!(sink.write(3, 1 + 2 * big.len() as u64, part("x")).await, vec![(3, Written::Failed)]);
    }
}
