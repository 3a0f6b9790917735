//! Objects in an S3 bucket (AWS S3, Garage, MinIO, Ceph): `<prefix><key>`.
//!
//! A write is held in memory up to one part; a larger object becomes a multipart upload whose
//! parts are sent while the client is still sending, and is completed only at commit. A write
//! that is dropped aborts its multipart upload, so nothing half-written is ever visible.
//! Reads are ranged GETs through windows that grow while the reader goes forward, the next one
//! fetched while the current one is read.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

use super::S3Settings;
use super::{ObjectKey, StorageError};

/// What kind of S3 failure happened; the details go to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Failure {
    Unreachable,
    TimedOut,
    AccessDenied,
    NoSuchBucket,
    NotFound,
    /// The object changed between the first and a later ranged read.
    Replaced,
    Rejected,
}

impl std::fmt::Display for S3Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "the S3 endpoint cannot be reached",
            Self::TimedOut => "the S3 endpoint did not answer in time",
            Self::AccessDenied => "access denied: check the credentials and the bucket policy",
            Self::NoSuchBucket => "the bucket does not exist",
            Self::NotFound => "no such object",
            Self::Replaced => "the object was replaced while it was being read",
            Self::Rejected => "the S3 server refused the request",
        })
    }
}

fn failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    target: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let kind = match (&error, error.code(), status) {
        (SdkError::TimeoutError(_), _, _) => S3Failure::TimedOut,
        (SdkError::DispatchFailure(d), _, _) if d.is_timeout() => S3Failure::TimedOut,
        (SdkError::DispatchFailure(_), _, _) => S3Failure::Unreachable,
        (_, Some("NoSuchBucket"), _) => S3Failure::NoSuchBucket,
        (_, Some("NoSuchKey" | "NotFound"), _) | (_, _, Some(404)) => S3Failure::NotFound,
        (_, Some("PreconditionFailed"), _) | (_, _, Some(412)) => S3Failure::Replaced,
        (_, Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) | (_, _, Some(403)) => {
            S3Failure::AccessDenied
        }
        _ => S3Failure::Rejected,
    };
    if kind != S3Failure::NotFound {
        let metrics = crate::telemetry::metrics::metrics();
        crate::telemetry::metrics::Metrics::count(&metrics.storage_errors, "operation", operation, 1);
    }
    StorageError::S3 { operation, target: target.to_string(), kind, detail: DisplayErrorContext(&error).to_string() }
}

/// A request sent from a task of its own that never reported back (cancelled or panicked).
fn task_lost(operation: &'static str, target: &str, error: &tokio::task::JoinError) -> StorageError {
    StorageError::S3 { operation, target: target.to_string(), kind: S3Failure::Rejected, detail: error.to_string() }
}

#[derive(Debug)]
struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    prefix: String,
    endpoint: String,
    part_size: usize,
}

#[derive(Debug, Clone)]
pub struct S3Store {
    bucket: Arc<Bucket>,
}

/// Read windows: small for a jump, growing up to this while reads go forward.
const FIRST_WINDOW: u64 = 256 * 1024;
const LARGEST_WINDOW: u64 = 4 * 1024 * 1024;

impl S3Store {
    /// Builds the client from the standard AWS chain (environment, profile files) and checks
    /// that the bucket is there and these credentials may use it.
    pub async fn open(settings: &S3Settings) -> Result<Self, StorageError> {
        use aws_config::retry::RetryConfig;
        use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
        use aws_config::timeout::TimeoutConfig;
        let retry = RetryConfig::standard()
            .with_max_attempts(settings.max_attempts)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5));
        // A stalled server is seen by the attempt that waits on it: no answer begun, or a body
        // that stops moving, for `stall` fails the attempt; the request with its retries is
        // bounded by `request_timeout`, so an upload is refused in that time, not after every
        // attempt has waited its own full timeout.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.stall.min(Duration::from_secs(5)))
            .read_timeout(settings.stall)
            .operation_timeout(settings.request_timeout)
            .build();
        let stalls = StalledStreamProtectionConfig::enabled().grace_period(settings.stall).build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts)
            .stalled_stream_protection(stalls)
            .region(aws_config::Region::new(settings.region.clone()));
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.force_path_style).build();
        let store = Self {
            bucket: Arc::new(Bucket {
                client: aws_sdk_s3::Client::from_conf(config),
                name: settings.bucket.clone(),
                prefix: settings.prefix.clone(),
                endpoint: settings.endpoint.clone().unwrap_or_else(|| format!("AWS S3 ({})", settings.region)),
                part_size: settings.part_size,
            }),
        };
        store.check_bucket().await?;
        Ok(store)
    }

    pub(super) async fn check_bucket(&self) -> Result<(), StorageError> {
        let b = &self.bucket;
        match b.client.head_bucket().bucket(&b.name).send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let mut error = failure("HeadBucket", &b.name, error);
                if let StorageError::S3 { kind: kind @ S3Failure::NotFound, .. } = &mut error {
                    *kind = S3Failure::NoSuchBucket;
                }
                if let StorageError::S3 { kind, .. } = &error {
                    return Err(StorageError::BucketUnusable {
                        bucket: b.name.clone(),
                        endpoint: b.endpoint.clone(),
                        kind: *kind,
                        detail: error.to_string(),
                    });
                }
                Err(error)
            }
        }
    }

    pub(super) fn describe(&self) -> String {
        format!("bucket {} at {}", self.bucket.name, self.bucket.endpoint)
    }

    fn object_name(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.bucket.prefix, key.as_str())
    }

    pub(super) fn create(&self, key: ObjectKey) -> S3Writer {
        S3Writer {
            bucket: Arc::clone(&self.bucket),
            name: self.object_name(&key),
            buffer: BytesMut::new(),
            upload: None,
            in_flight: Default::default(),
            parts_sent: 0,
        }
    }

    pub(super) async fn open_reader(&self, key: &ObjectKey) -> Result<S3Reader, StorageError> {
        let b = &self.bucket;
        let name = self.object_name(key);
        let head = match b.client.head_object().bucket(&b.name).key(&name).send().await {
            Ok(head) => head,
            Err(error) => {
                let error = failure("HeadObject", &name, error);
                if let StorageError::S3 { kind: S3Failure::NotFound, .. } = error {
                    return Err(StorageError::NotFound(key.clone()));
                }
                return Err(error);
            }
        };
        Ok(S3Reader::new(
            Arc::clone(&self.bucket),
            name,
            u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
            head.e_tag().map(str::to_string),
        ))
    }

    pub(super) async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let b = &self.bucket;
        let name = self.object_name(key);
        b.client
            .delete_object()
            .bucket(&b.name)
            .key(&name)
            .send()
            .await
            .map_err(|e| failure("DeleteObject", &name, e))?;
        Ok(())
    }

    /// The name of every object under the prefix.
    pub(super) async fn list(&self) -> Result<Vec<String>, StorageError> {
        let b = &self.bucket;
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = b
                .client
                .list_objects_v2()
                .bucket(&b.name)
                .prefix(&b.prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| failure("ListObjectsV2", &b.name, e))?;
            for object in page.contents() {
                if let Some(name) = object.key().and_then(|k| k.strip_prefix(b.prefix.as_str())) {
                    found.push(name.to_string());
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Aborts multipart uploads started more than a day ago: their writer is gone (a crash).
    /// Younger ones may belong to a command still running beside the server.
    pub(super) async fn abort_stale_uploads(&self) -> Result<usize, StorageError> {
        let b = &self.bucket;
        let listing = b
            .client
            .list_multipart_uploads()
            .bucket(&b.name)
            .prefix(&b.prefix)
            .send()
            .await
            .map_err(|e| failure("ListMultipartUploads", &b.name, e))?;
        let cutoff = crate::clock::system_time_ago(Duration::from_secs(24 * 3600));
        let mut aborted = 0;
        for upload in listing.uploads() {
            let started = upload.initiated().and_then(|t| std::time::SystemTime::try_from(*t).ok());
            if started.is_some_and(|t| t > cutoff) {
                continue;
            }
            if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                b.client
                    .abort_multipart_upload()
                    .bucket(&b.name)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| failure("AbortMultipartUpload", key, e))?;
                aborted += 1;
            }
        }
        Ok(aborted)
    }
}

struct MultipartUpload {
    id: String,
    parts: Vec<CompletedPart>,
}

type PartInFlight = JoinHandle<Result<CompletedPart, StorageError>>;

pub(super) struct S3Writer {
    bucket: Arc<Bucket>,
    name: String,
    /// Bytes not yet sent: less than one part.
    buffer: BytesMut,
    upload: Option<MultipartUpload>,
    /// Parts being sent while the next one fills, oldest first: at most `PARTS_IN_FLIGHT`, so
    /// an upload holds at most `PARTS_IN_FLIGHT + 1` parts in memory.
    in_flight: std::collections::VecDeque<PartInFlight>,
    /// Parts handed out so far (the next part's number is one more).
    parts_sent: i32,
}

/// Parts of one upload on their way to S3 at the same time.
const PARTS_IN_FLIGHT: usize = 2;

impl S3Writer {
    pub(super) async fn append(&mut self, data: Bytes) -> Result<(), StorageError> {
        self.buffer.extend_from_slice(&data);
        while self.buffer.len() >= self.bucket.part_size {
            let part = self.buffer.split_to(self.bucket.part_size).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    /// Waits for the oldest part in flight and records it.
    async fn settle_oldest(&mut self) -> Result<(), StorageError> {
        if let Some(task) = self.in_flight.pop_front() {
            let part = task.await.map_err(|e| task_lost("UploadPart", &self.name, &e))??;
            if let Some(upload) = &mut self.upload {
                upload.parts.push(part);
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), StorageError> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_oldest().await?;
        }
        let b = Arc::clone(&self.bucket);
        if self.upload.is_none() {
            let created = b
                .client
                .create_multipart_upload()
                .bucket(&b.name)
                .key(&self.name)
                .send()
                .await
                .map_err(|e| failure("CreateMultipartUpload", &self.name, e))?;
            let id = created.upload_id().unwrap_or_default().to_string();
            self.upload = Some(MultipartUpload { id, parts: Vec::new() });
        }
        let Some(upload) = &self.upload else { return Ok(()) };
        self.parts_sent += 1;
        let number = self.parts_sent;
        let id = upload.id.clone();
        let name = self.name.clone();
        self.in_flight.push_back(tokio::spawn(async move {
            let sent = b
                .client
                .upload_part()
                .bucket(&b.name)
                .key(&name)
                .upload_id(id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| failure("UploadPart", &name, e))?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag().map(str::to_string)).build())
        }));
        Ok(())
    }

    /// Sends what is left; the object becomes visible only at [`S3Staged::commit`].
    pub(super) async fn finish(mut self) -> Result<S3Staged, StorageError> {
        let rest = std::mem::take(&mut self.buffer).freeze();
        if self.upload.is_some() {
            if !rest.is_empty() {
                self.send_part(rest).await?;
            }
            while !self.in_flight.is_empty() {
                self.settle_oldest().await?;
            }
            let upload = self.upload.take();
            Ok(S3Staged {
                bucket: Arc::clone(&self.bucket),
                name: std::mem::take(&mut self.name),
                content: upload.map(Staged::Multipart),
            })
        } else {
            Ok(S3Staged {
                bucket: Arc::clone(&self.bucket),
                name: std::mem::take(&mut self.name),
                content: Some(Staged::Small(rest)),
            })
        }
    }
}

/// Aborts a multipart upload nobody will complete, in the background. The S3 server may be
/// what failed: it is asked again for about a minute, then left to the start-up sweep.
fn abort_in_background(bucket: &Arc<Bucket>, name: &str, upload: MultipartUpload) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let bucket = Arc::clone(bucket);
    let name = name.to_string();
    runtime.spawn(async move {
        let mut pause = Duration::from_millis(500);
        for attempt in 1..=7 {
            let result =
                bucket.client.abort_multipart_upload().bucket(&bucket.name).key(&name).upload_id(&upload.id).send().await;
            match result {
                Ok(_) => return,
                Err(error) if attempt == 7 => {
                    tracing::warn!(error = %DisplayErrorContext(&error), "could not abort an unfinished multipart upload; the start-up sweep removes it after a day");
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    });
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        for task in self.in_flight.drain(..) {
            task.abort();
        }
        if let Some(upload) = self.upload.take() {
            abort_in_background(&self.bucket, &self.name, upload);
        }
    }
}

enum Staged {
    Small(Bytes),
    Multipart(MultipartUpload),
}

pub(super) struct S3Staged {
    bucket: Arc<Bucket>,
    name: String,
    content: Option<Staged>,
}

impl S3Staged {
    /// Bytes held in memory until commit (an object smaller than one part).
    pub(super) fn in_memory(&self) -> u64 {
        match &self.content {
            Some(Staged::Small(bytes)) => bytes.len() as u64,
            _ => 0,
        }
    }

    pub(super) async fn commit(mut self) -> Result<(), StorageError> {
        let b = Arc::clone(&self.bucket);
        match self.content.take() {
            Some(Staged::Small(bytes)) => {
                b.client
                    .put_object()
                    .bucket(&b.name)
                    .key(&self.name)
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| failure("PutObject", &self.name, e))?;
            }
            Some(Staged::Multipart(upload)) => {
                let parts = CompletedMultipartUpload::builder().set_parts(Some(upload.parts.clone())).build();
                let completed = b
                    .client
                    .complete_multipart_upload()
                    .bucket(&b.name)
                    .key(&self.name)
                    .upload_id(&upload.id)
                    .multipart_upload(parts)
                    .send()
                    .await;
                if let Err(error) = completed {
                    abort_in_background(&b, &self.name, upload);
                    return Err(failure("CompleteMultipartUpload", &self.name, error));
                }
            }
            None => {}
        }
        Ok(())
    }
}

impl Drop for S3Staged {
    fn drop(&mut self) {
        if let Some(Staged::Multipart(upload)) = self.content.take() {
            abort_in_background(&self.bucket, &self.name, upload);
        }
    }
}

struct Window {
    start: u64,
    bytes: Bytes,
}

impl Window {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    fn slice(&self, offset: u64, end: u64) -> Option<Bytes> {
        (offset >= self.start && end <= self.end()).then(|| {
            let from = usize::try_from(offset - self.start).unwrap_or(0);
            let to = usize::try_from(end - self.start).unwrap_or(0);
            self.bytes.slice(from..to)
        })
    }
}

type Fetch = JoinHandle<Result<Bytes, StorageError>>;

/// What a reader holds: the last windows read (SFTP clients send their reads a little out of
/// order) and the next windows, fetched ahead while the current one is read.
struct ReadAhead {
    windows: std::collections::VecDeque<Window>,
    next_size: u64,
    /// In order, each starting where the one before ends.
    ahead: std::collections::VecDeque<(u64, u64, Fetch)>,
}

impl Drop for ReadAhead {
    /// A download that ends early leaves no GET running for it.
    fn drop(&mut self) {
        for (_, _, fetch) in self.ahead.drain(..) {
            fetch.abort();
        }
    }
}

/// Windows fetched ahead at once: one GET's round trip to the store is hidden behind the other.
const FETCHES_AHEAD: usize = 2;

/// Windows kept per reader besides those fetched ahead: memory stays under
/// (WINDOWS_KEPT + FETCHES_AHEAD) x LARGEST_WINDOW per open download.
const WINDOWS_KEPT: usize = 2;

#[derive(Clone)]
pub(super) struct S3Reader {
    bucket: Arc<Bucket>,
    name: Arc<String>,
    size: u64,
    /// The version read: a ranged GET of a replaced object fails instead of mixing versions.
    etag: Option<String>,
    state: Arc<tokio::sync::Mutex<ReadAhead>>,
}

impl std::fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Reader").field("name", &self.name).field("size", &self.size).finish()
    }
}

/// One ranged GET of `[start, end)`.
async fn fetch_range(
    bucket: Arc<Bucket>,
    name: Arc<String>,
    etag: Option<String>,
    start: u64,
    end: u64,
) -> Result<Bytes, StorageError> {
    let request = bucket
        .client
        .get_object()
        .bucket(&bucket.name)
        .key(name.as_str())
        .range(format!("bytes={}-{}", start, end.saturating_sub(1)))
        .set_if_match(etag);
    let response = request.send().await.map_err(|e| failure("GetObject", &name, e))?;
    let body = response.body.collect().await.map_err(|e| StorageError::S3 {
        operation: "GetObject",
        target: name.to_string(),
        kind: S3Failure::Unreachable,
        detail: e.to_string(),
    })?;
    Ok(body.into_bytes())
}

impl S3Reader {
    fn new(bucket: Arc<Bucket>, name: String, size: u64, etag: Option<String>) -> Self {
        let state = ReadAhead { windows: Default::default(), next_size: FIRST_WINDOW, ahead: Default::default() };
        Self { bucket, name: Arc::new(name), size, etag, state: Arc::new(tokio::sync::Mutex::new(state)) }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    fn spawn_fetch(&self, start: u64, end: u64) -> Fetch {
        tokio::spawn(fetch_range(Arc::clone(&self.bucket), Arc::clone(&self.name), self.etag.clone(), start, end))
    }

    fn keep(&self, state: &mut ReadAhead, window: Window) {
        state.windows.push_back(window);
        while state.windows.len() > WINDOWS_KEPT {
            state.windows.pop_front();
        }
    }

    /// Starts fetching the windows after the last one, once the reader is in the last one.
    fn read_ahead(&self, state: &mut ReadAhead) {
        let Some(mut last_end) = state.windows.back().map(Window::end) else { return };
        if let Some((_, end, _)) = state.ahead.back() {
            last_end = *end;
        }
        while state.ahead.len() < FETCHES_AHEAD && last_end < self.size {
            let end = last_end.saturating_add(state.next_size).min(self.size);
            state.ahead.push_back((last_end, end, self.spawn_fetch(last_end, end)));
            last_end = end;
        }
    }

    pub(super) async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        if offset >= self.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = offset.saturating_add(len as u64).min(self.size);
        let mut state = self.state.lock().await;
        // A read may straddle two windows: it is put together from both.
        let first = self.piece_at(&mut state, offset, end).await?;
        if offset + first.len() as u64 >= end {
            return Ok(first);
        }
        let mut joined = BytesMut::from(&first[..]);
        while (offset + joined.len() as u64) < end {
            let piece = self.piece_at(&mut state, offset + joined.len() as u64, end).await?;
            joined.extend_from_slice(&piece);
        }
        Ok(joined.freeze())
    }

    /// The bytes from `position` up to `end` or the end of the window holding `position`,
    /// fetching that window if no window holds it.
    async fn piece_at(&self, state: &mut ReadAhead, position: u64, end: u64) -> Result<Bytes, StorageError> {
        let piece = |window: &Window| window.slice(position, end.min(window.end()));
        let latest = state.windows.len().saturating_sub(1);
        let held = state.windows.iter().enumerate().find(|(_, w)| position >= w.start && position < w.end());
        if let Some((index, window)) = held {
            let bytes = piece(window).unwrap_or_default();
            if index == latest {
                self.read_ahead(state);
            }
            return Ok(bytes);
        }
        if let Some((start, ahead_end, task)) = state.ahead.pop_front() {
            if position >= start && position < ahead_end {
                let bytes = task.await.map_err(|e| task_lost("GetObject", &self.name, &e))??;
                let window = Window { start, bytes };
                let found = piece(&window);
                self.keep(state, window);
                state.next_size = (state.next_size * 2).min(LARGEST_WINDOW);
                self.read_ahead(state);
                if let Some(bytes) = found.filter(|b| !b.is_empty()) {
                    return Ok(bytes);
                }
            } else {
                task.abort();
                for (_, _, later) in state.ahead.drain(..) {
                    later.abort();
                }
            }
        }
        // A read just past the last window goes on from its end, in a larger window; any
        // other read is a jump and starts small.
        let (start, size) = match state.windows.back().map(Window::end) {
            Some(last_end) if position >= last_end && position < last_end + LARGEST_WINDOW => {
                (last_end, (state.next_size * 2).min(LARGEST_WINDOW))
            }
            _ => (position, FIRST_WINDOW),
        };
        state.next_size = size;
        let fetch_end = start.saturating_add(size).max(position + 1).min(self.size);
        let bytes =
            fetch_range(Arc::clone(&self.bucket), Arc::clone(&self.name), self.etag.clone(), start, fetch_end).await?;
        let window = Window { start, bytes };
        let found = piece(&window);
        self.keep(state, window);
        self.read_ahead(state);
        found.filter(|b| !b.is_empty()).ok_or_else(|| StorageError::S3 {
            operation: "GetObject",
            target: self.name.to_string(),
            kind: S3Failure::Rejected,
            detail: "the server returned fewer bytes than asked".into(),
        })
    }
}
