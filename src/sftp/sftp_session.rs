//! One SFTP session: a dispatcher that never stops reading the channel.
//!
//! russh-sftp's own server loop handles one request at a time; here the reader always drains
//! the channel, READs run concurrently (answers may come out of order, as the protocol
//! allows), WRITEs go in order to their upload's task, and every other request runs in order
//! on one worker that owns the session's state. One writer task sends the answers. Memory is
//! bounded by a byte budget for requests in flight; a client that exceeds it is disconnected.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use russh_sftp::extensions::{HardlinkExtension, LimitsExtension};
use russh_sftp::protocol::{
    Attrs, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::access::{decide, Operation, Principal};
use crate::domain::{AuditAction, AuditOutcome, RemotePath};
use crate::gateway::{
    Conflict, Entry, EntryAttributes, Gateway, GatewayError, HeldUploads, SessionContext, SizeLimit, Unsupported,
    UploadDestination,
};
use crate::storage::ObjectWriter;
use crate::vfs::Node;

use super::open_handles::UploadCommand;
use super::open_handles::{OpenHandle, OpenHandles};
use super::status::{status_of, EdgeRefusal, ProtocolAnswer};

/// Largest READ or WRITE payload, as advertised in `limits@openssh.com`.
pub const MAX_DATA_LEN: u32 = 255 * 1024;
/// Largest packet accepted from a client: a maximal WRITE plus its header.
pub const MAX_PACKET_LEN: u32 = 256 * 1024 + 1024;
/// How often an open session checks that its account may still be used.
const ACCESS_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// NAME messages carry at most this many entries (OpenSSH refuses messages over 256 KiB).
const ENTRIES_PER_NAME: usize = 100;
/// Out-of-order WRITE data an upload may hold while waiting for the gap to fill.
const MAX_PENDING_WRITE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_open_handles: usize,
    pub max_bytes_in_flight: usize,
    /// Largest file one upload may write.
    pub max_upload_bytes: u64,
    /// A session without any request for this long is closed. (russh's own inactivity timer
    /// is reset by the answers to its keepalives, so it never fires on a live client.)
    pub idle_timeout: std::time::Duration,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client closed the channel.
    ClientClosed,
    /// The server is shutting down and the session had nothing open any more.
    Drained,
    /// No request arrived within the idle timeout.
    Idle,
    /// The account was revoked, expired, or lost its organisation's access.
    AccessEnded,
    /// The client broke the protocol or a limit; the connection should be closed.
    Violation(&'static str),
}

/// Work for the ordered worker: a request, or the answer to a request that could not be
/// decoded (answered in turn, so that it cannot overtake the requests before it).
enum Ordered {
    /// A request and the budget its body holds.
    Request(Packet, usize),
    Malformed {
        id: u32,
    },
}

struct Session {
    gateway: Arc<Gateway>,
    /// Who the session acts for, refreshed from the registry before requests that open,
    /// close or change files, and on a timer: a revoked, expired or changed account takes
    /// effect on open sessions.
    principal: std::sync::RwLock<Arc<Principal>>,
    /// Set when the account may no longer be used: the session ends.
    access_ended: AtomicBool,
    context: SessionContext,
    handles: Mutex<OpenHandles>,
    /// Bytes of requests and of answers not yet written to the channel.
    bytes_in_flight: Arc<AtomicUsize>,
    max_bytes_in_flight: usize,
    max_upload_bytes: u64,
    responses: mpsc::UnboundedSender<Outgoing>,
    request_done: Notify,
    /// The server is shutting down: no new files are opened.
    draining: AtomicBool,
    /// The session has ended: queued requests are dropped unanswered.
    closing: AtomicBool,
    /// Temporary-named uploads waiting for their rename (owned by the ordered worker).
    held_uploads: AtomicUsize,
}

/// An encoded answer, with the budget it holds until it is written.
struct Outgoing {
    bytes: Bytes,
    reserved: usize,
}

impl Session {
    fn principal(&self) -> Arc<Principal> {
        Arc::clone(&self.principal.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Records an upload that ends without being recorded.
    fn audit_lost_upload(&self, path: &RemotePath, reason: &str) {
        let principal = self.principal();
        let path = Some(path.to_string());
        self.gateway.audit_event(
            Some(&principal),
            &self.context,
            AuditAction::CloseWrite,
            path,
            AuditOutcome::Failed,
            Some(reason.into()),
        );
    }

    /// Reloads the principal; false when the account may no longer be used.
    async fn refresh_principal(&self) -> bool {
        let current = self.principal();
        match self.gateway.current_principal(&current, &self.context).await {
            Ok(fresh) => {
                *self.principal.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
                true
            }
            Err(_) => {
                self.access_ended.store(true, Ordering::Release);
                false
            }
        }
    }

    fn handles(&self) -> MutexGuard<'_, OpenHandles> {
        // A panic while holding the lock cannot leave the table half-updated: take it anyway.
        self.handles.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, packet: Packet) {
        match Bytes::try_from(packet) {
            Ok(bytes) => {
                let _ = self.responses.send(Outgoing { bytes, reserved: 0 });
            }
            Err(error) => {
                tracing::error!(session = %self.context.session_id, error = %error, "cannot encode a response")
            }
        }
    }

    fn send_status(&self, id: u32, code: StatusCode, message: &str) {
        self.send(Packet::Status(Status {
            id,
            status_code: code,
            error_message: message.to_string(),
            language_tag: "en".to_string(),
        }));
    }

    fn send_ok(&self, id: u32) {
        self.answer(id, ProtocolAnswer::Ok);
    }

    fn answer(&self, id: u32, answer: ProtocolAnswer) {
        let (code, message) = answer.status();
        self.send_status(id, code, message);
    }

    fn send_error(&self, id: u32, error: &GatewayError) {
        let (code, message) = status_of(error, self.principal().language);
        self.send_status(id, code, &message);
    }

    fn send_refusal(&self, id: u32, refusal: EdgeRefusal) {
        let (code, message) = refusal.status(self.principal().language);
        self.send_status(id, code, message);
    }

    /// DATA is the hot path: encoded by hand with a single copy of the payload. `reserved`
    /// budget is released once the answer is written to the channel.
    fn send_data(&self, id: u32, data: &[u8], reserved: usize) {
        let mut buffer = BytesMut::with_capacity(13 + data.len());
        buffer.put_u32(9 + data.len() as u32);
        buffer.put_u8(103);
        buffer.put_u32(id);
        buffer.put_u32(data.len() as u32);
        buffer.put_slice(data);
        if self.responses.send(Outgoing { bytes: buffer.freeze(), reserved }).is_err() {
            self.release(reserved);
        }
    }

    /// Takes `len` bytes from the in-flight budget; false when the budget is exceeded.
    fn reserve(&self, len: usize) -> bool {
        let previous = self.bytes_in_flight.fetch_add(len, Ordering::AcqRel);
        previous + len <= self.max_bytes_in_flight
    }

    fn release(&self, len: usize) {
        self.bytes_in_flight.fetch_sub(len, Ordering::AcqRel);
    }

    /// Resolves a client path, auditing refused ones (`..` escapes, NUL bytes).
    fn resolve(&self, action: AuditAction, raw: &str) -> Result<RemotePath, GatewayError> {
        RemotePath::resolve(raw).map_err(|error| {
            let shown: String = raw.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
            self.gateway.audit_event(
                Some(&*self.principal()),
                &self.context,
                action,
                Some(shown),
                AuditOutcome::Refused,
                Some(error.to_string()),
            );
            GatewayError::InvalidPath(error)
        })
    }
}

/// Serves one SFTP session on `stream` until the client closes it, the server drains it for
/// shutdown, or the client breaks the protocol.
pub async fn serve<S>(
    stream: S,
    gateway: Arc<Gateway>,
    principal: Principal,
    context: SessionContext,
    limits: SessionLimits,
    mut shutdown: watch::Receiver<bool>,
) -> SessionEnd
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let bytes_in_flight = Arc::new(AtomicUsize::new(0));
    let (responses, response_queue) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(write_responses(writer, response_queue, Arc::clone(&bytes_in_flight)));
    let session = Arc::new(Session {
        gateway,
        principal: std::sync::RwLock::new(Arc::new(principal)),
        access_ended: AtomicBool::new(false),
        context,
        handles: Mutex::new(OpenHandles::new(limits.max_open_handles)),
        bytes_in_flight,
        max_bytes_in_flight: limits.max_bytes_in_flight,
        max_upload_bytes: limits.max_upload_bytes,
        responses,
        request_done: Notify::new(),
        draining: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        held_uploads: AtomicUsize::new(0),
    });
    let (ordered, ordered_queue) = mpsc::unbounded_channel();
    let worker = tokio::spawn(run_ordered(Arc::clone(&session), ordered_queue));
    // Reading a packet is not cancel-safe: it runs in its own task, which hands over whole
    // packets (the dispatcher below takes each at once, so the queue stays short).
    let (packets, mut incoming) = mpsc::unbounded_channel();
    let reader_task = tokio::spawn(async move {
        loop {
            let packet = read_packet(&mut reader).await;
            let last = !matches!(packet, Ok(Some(_)));
            if packets.send(packet).is_err() || last {
                break;
            }
        }
    });

    let mut draining = *shutdown.borrow();
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let mut access_check = tokio::time::interval(ACCESS_CHECK_INTERVAL);
    access_check.reset();
    let end = loop {
        if session.access_ended.load(Ordering::Acquire) {
            break SessionEnd::AccessEnded;
        }
        session.draining.store(draining, Ordering::Release);
        if draining && session.handles().is_empty() && session.held_uploads.load(Ordering::Acquire) == 0 {
            break SessionEnd::Drained;
        }
        tokio::select! {
            packet = incoming.recv() => match packet {
                Some(Ok(Some(body))) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                    if let Err(violation) = dispatch(&session, &ordered, body) {
                        break SessionEnd::Violation(violation);
                    }
                }
                Some(Ok(None)) | None => break SessionEnd::ClientClosed,
                Some(Err(violation)) => break SessionEnd::Violation(violation),
            },
            changed = shutdown.changed(), if !draining => {
                draining = changed.is_err() || *shutdown.borrow();
            }
            _ = session.request_done.notified() => {}
            _ = &mut idle => break SessionEnd::Idle,
            _ = access_check.tick() => {
                if !session.refresh_principal().await {
                    break SessionEnd::AccessEnded;
                }
            }
        }
    };
    session.closing.store(true, Ordering::Release);
    reader_task.abort();
    if let SessionEnd::Violation(reason) = end {
        tracing::warn!(session = %session.context.session_id, reason, "session ended: protocol violation");
        session.gateway.audit_event(
            Some(&*session.principal()),
            &session.context,
            AuditAction::SessionEnd,
            None,
            AuditOutcome::Refused,
            Some(reason.into()),
        );
    }
    drop(ordered);
    let _ = worker.await;
    // Whatever is still open was interrupted: uploads are discarded, downloads recorded.
    let leftovers = session.handles().drain();
    for handle in leftovers {
        match handle {
            OpenHandle::Upload { path, .. } => {
                session.audit_lost_upload(&path, "upload interrupted: nothing was recorded")
            }
            OpenHandle::Download { download, bytes_read } => {
                let principal = session.principal();
                let bytes = bytes_read.load(Ordering::Acquire);
                session.gateway.close_download(&principal, &download, bytes, &session.context).await;
            }
            OpenHandle::Folder { .. } => {}
        }
    }
    drop(session);
    let _ = writer_task.await;
    end
}

/// Reads one packet body (without its length); `None` at a clean end of stream.
async fn read_packet<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Bytes>, &'static str> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(_) => return Err("connection error"),
    }
    let length = u32::from_be_bytes(length);
    if length == 0 || length > MAX_PACKET_LEN {
        // The body cannot be skipped safely: the stream would lose its framing.
        return Err("packet length out of bounds");
    }
    let mut body = BytesMut::zeroed(length as usize);
    reader.read_exact(&mut body).await.map_err(|_| "connection closed inside a packet")?;
    Ok(Some(body.freeze()))
}

async fn write_responses<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    bytes_in_flight: Arc<AtomicUsize>,
) {
    let mut broken = false;
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            if !broken && writer.write_all(&outgoing.bytes).await.is_err() {
                broken = true;
            }
            bytes_in_flight.fetch_sub(outgoing.reserved, Ordering::AcqRel);
            next = queue.try_recv().ok();
        }
        if !broken && writer.flush().await.is_err() {
            broken = true;
        }
    }
}

/// Routes one packet without waiting: READ and WRITE go straight to their handle, the rest
/// to the ordered worker.
fn dispatch(
    session: &Arc<Session>,
    ordered: &mpsc::UnboundedSender<Ordered>,
    mut body: Bytes,
) -> Result<(), &'static str> {
    if let Some(write) = WriteRequest::decode(&body) {
        return dispatch_write(session, write);
    }
    let request_id = (body.len() >= 5).then(|| u32::from_be_bytes([body[1], body[2], body[3], body[4]]));
    let size = body.len();
    let packet = match Packet::try_from(&mut body) {
        Ok(packet) => packet,
        Err(_) => {
            let id = request_id.unwrap_or(0);
            return ordered.send(Ordered::Malformed { id }).map_err(|_| "session worker stopped");
        }
    };
    match packet {
        Packet::Read(read) => {
            let len = read.len.min(MAX_DATA_LEN) as usize;
            let download = match session.handles().get(&read.handle) {
                Some(OpenHandle::Download { download, bytes_read }) => {
                    Some((Arc::clone(download), Arc::clone(bytes_read)))
                }
                Some(_) => None,
                None => {
                    session.answer(read.id, ProtocolAnswer::UnknownHandle);
                    return Ok(());
                }
            };
            let Some((download, bytes_read)) = download else {
                session.answer(read.id, ProtocolAnswer::NotOpenForReading);
                return Ok(());
            };
            if !session.reserve(len) {
                session.release(len);
                return Err("too many bytes requested at once");
            }
            let session = Arc::clone(session);
            tokio::spawn(async move {
                match download.reader.read_at(read.offset, len).await {
                    Ok(data) if data.is_empty() => {
                        session.release(len);
                        session.answer(read.id, ProtocolAnswer::EndOfFile);
                    }
                    Ok(data) => {
                        bytes_read.fetch_add(data.len() as u64, Ordering::AcqRel);
                        session.send_data(read.id, &data, len);
                    }
                    Err(error) => {
                        session.release(len);
                        tracing::error!(session = %session.context.session_id, error = ?error, "read failed");
                        session.send_error(read.id, &GatewayError::Storage(error));
                    }
                }
            });
        }
        Packet::Write(write) => {
            let data = Bytes::from(write.data);
            return dispatch_write(
                session,
                WriteRequest { id: write.id, handle: write.handle, offset: write.offset, data },
            );
        }
        other => {
            // Every queued request holds its size of the budget until it is handled.
            if !session.reserve(size) {
                session.release(size);
                return Err("too many requests queued at once");
            }
            if ordered.send(Ordered::Request(other, size)).is_err() {
                session.release(size);
                return Err("session worker stopped");
            }
        }
    }
    Ok(())
}

/// A WRITE request, decoded without copying its data.
struct WriteRequest {
    id: u32,
    handle: String,
    offset: u64,
    data: Bytes,
}

impl WriteRequest {
    /// `[6][id][handle string][offset][data string]`; `None` for any other or malformed packet,
    /// which the generic decoder then answers.
    fn decode(body: &Bytes) -> Option<Self> {
        let mut cursor = body.clone();
        if cursor.len() < 9 || cursor.get_u8() != 6 {
            return None;
        }
        let id = cursor.get_u32();
        let handle_len = cursor.get_u32() as usize;
        if cursor.len() < handle_len + 12 {
            return None;
        }
        let handle = String::from_utf8(cursor.split_to(handle_len).to_vec()).ok()?;
        let offset = cursor.get_u64();
        let data_len = cursor.get_u32() as usize;
        if cursor.len() != data_len {
            return None;
        }
        Some(Self { id, handle, offset, data: cursor })
    }
}

fn dispatch_write(session: &Arc<Session>, write: WriteRequest) -> Result<(), &'static str> {
    let commands = match session.handles().get(&write.handle) {
        Some(OpenHandle::Upload { commands, .. }) => Some(commands.clone()),
        Some(_) => None,
        None => {
            session.answer(write.id, ProtocolAnswer::UnknownHandle);
            return Ok(());
        }
    };
    let Some(commands) = commands else {
        session.answer(write.id, ProtocolAnswer::NotOpenForWriting);
        return Ok(());
    };
    if write.data.len() > MAX_DATA_LEN as usize {
        session.answer(write.id, ProtocolAnswer::WriteOverLimit);
        return Ok(());
    }
    let len = write.data.len();
    if !session.reserve(len) {
        session.release(len);
        return Err("too many bytes sent at once");
    }
    if commands.send(UploadCommand::Write { id: write.id, offset: write.offset, data: write.data }).is_err() {
        session.release(len);
        session.answer(write.id, ProtocolAnswer::UploadAlreadyClosed);
    }
    Ok(())
}

/// Free space is checked again each time an upload has written this much more: uploads side
/// by side must not fill the disk past its reserve.
const SPACE_CHECK_BYTES: u64 = 8 * 1024 * 1024;

fn out_of_space(session: &Session) -> bool {
    match session.gateway.storage().short_of_space() {
        Ok(short) => short.is_some(),
        Err(error) => {
            tracing::warn!(error = ?error, "cannot read the free space of the storage volume");
            false
        }
    }
}

/// The upload task: appends WRITEs in offset order to the object being written.
async fn run_upload(
    session: Arc<Session>,
    mut writer: ObjectWriter,
    limit: Option<SizeLimit>,
    written: Arc<AtomicU64>,
    mut commands: mpsc::UnboundedReceiver<UploadCommand>,
) {
    let mut pending: BTreeMap<u64, (u32, Bytes)> = BTreeMap::new();
    let mut pending_bytes = 0usize;
    let mut failure: Option<GatewayError> = None;
    let mut next_space_check = SPACE_CHECK_BYTES;
    while let Some(command) = commands.recv().await {
        match command {
            UploadCommand::Write { id, offset, data } => {
                let len = data.len();
                let next = writer.len();
                if let Some(error) = &failure {
                    session.send_error(id, error);
                    session.release(len);
                } else if offset.saturating_add(len as u64) > session.max_upload_bytes {
                    let error = GatewayError::Conflict(Conflict::LargerThanAnUpload);
                    session.send_error(id, &error);
                    session.release(len);
                    failure = Some(error);
                } else if let Some(limit) = limit.filter(|l| offset.saturating_add(len as u64) > l.bytes) {
                    // The upload fails whole: its CLOSE reports the error and nothing is kept.
                    let error = limit.error();
                    session.send_error(id, &error);
                    session.release(len);
                    failure = Some(error);
                } else if offset == next {
                    let mut ready = vec![(id, data)];
                    while let Some((id, data)) = pending.remove(&(writer.len() + ready_len(&ready))) {
                        pending_bytes -= data.len();
                        ready.push((id, data));
                    }
                    for (id, data) in ready {
                        let len = data.len();
                        match &failure {
                            Some(error) => session.send_error(id, error),
                            None => match writer.append(data).await {
                                Ok(()) if writer.len() >= next_space_check && out_of_space(&session) => {
                                    let error = GatewayError::StorageFull;
                                    session.send_error(id, &error);
                                    failure = Some(error);
                                }
                                Ok(()) => {
                                    if writer.len() >= next_space_check {
                                        next_space_check = writer.len() + SPACE_CHECK_BYTES;
                                    }
                                    written.store(writer.len(), Ordering::Release);
                                    session.send_ok(id);
                                }
                                Err(error) => {
                                    let error = GatewayError::Storage(error);
                                    session.send_error(id, &error);
                                    failure = Some(error);
                                }
                            },
                        }
                        session.release(len);
                    }
                } else if offset > next
                    && pending_bytes + len <= MAX_PENDING_WRITE_BYTES
                    && !pending.contains_key(&offset)
                {
                    pending_bytes += len;
                    pending.insert(offset, (id, data));
                } else {
                    let error = GatewayError::Unsupported(Unsupported::WriteInOrder);
                    session.send_error(id, &error);
                    session.release(len);
                    failure = Some(error);
                }
            }
            UploadCommand::Finish(reply) => {
                for (_, (id, data)) in std::mem::take(&mut pending) {
                    session.answer(id, ProtocolAnswer::ClosedBeforeWritten);
                    session.release(data.len());
                    failure.get_or_insert(GatewayError::Conflict(Conflict::UploadGap));
                }
                let result = match failure {
                    Some(error) => Err(error),
                    None => writer.finish().await.map_err(GatewayError::Storage),
                };
                let _ = reply.send(result);
                // WRITEs that raced the CLOSE arrive after it: answer and release them.
                commands.close();
                while let Some(late) = commands.recv().await {
                    if let UploadCommand::Write { id, data, .. } = late {
                        session.answer(id, ProtocolAnswer::WriteAfterClose);
                        session.release(data.len());
                    }
                }
                return;
            }
        }
    }
    for (_, (_, data)) in pending {
        session.release(data.len());
    }
}

fn ready_len(ready: &[(u32, Bytes)]) -> u64 {
    // The first entry is appended first; later ones follow it without a gap.
    ready.iter().map(|(_, d)| d.len() as u64).sum()
}

/// The ordered worker: every request but READ and WRITE, one after the other.
async fn run_ordered(session: Arc<Session>, mut queue: mpsc::UnboundedReceiver<Ordered>) {
    let mut held = HeldUploads::default();
    while let Some(work) = queue.recv().await {
        let closing = session.closing.load(Ordering::Acquire);
        match work {
            // Once the session is over, what is still queued has no one to answer.
            Ordered::Request(_, size) if closing => session.release(size),
            Ordered::Request(packet, size) => {
                let id = packet.get_request_id();
                let acts_on_files = !matches!(
                    packet,
                    Packet::Init(_)
                        | Packet::ReadDir(_)
                        | Packet::RealPath(_)
                        | Packet::Fstat(_)
                        | Packet::Stat(_)
                        | Packet::Lstat(_)
                );
                if acts_on_files && !session.refresh_principal().await {
                    session.send_refusal(id, EdgeRefusal::AccessEnded);
                } else {
                    handle_ordered(&session, packet, &mut held).await;
                }
                session.release(size);
            }
            Ordered::Malformed { .. } if closing => {}
            Ordered::Malformed { id } => session.answer(id, ProtocolAnswer::MalformedRequest),
        }
        session.held_uploads.store(held.len(), Ordering::Release);
        session.request_done.notify_one();
    }
    for path in held.discard() {
        session
            .audit_lost_upload(&path, "the session ended before the temporary file was renamed: nothing was recorded");
    }
    let published = held.take_published();
    if !published.is_empty() {
        if let Err(error) = session.gateway.outbox().queue_digests(&published).await {
            tracing::error!(%error, documents = published.total(), "cannot queue the digest of the documents this session published");
        }
    }
}

fn attributes(entry: &EntryAttributes) -> FileAttributes {
    let mode = match (entry.folder, entry.writable) {
        (true, true) => 0o040_755,
        (true, false) => 0o040_555,
        (false, true) => 0o100_644,
        (false, false) => 0o100_444,
    };
    let mtime = u32::try_from(entry.mtime.max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        size: Some(entry.size),
        permissions: Some(mode),
        atime: Some(mtime),
        mtime: Some(mtime),
        ..FileAttributes::default()
    }
}

async fn handle_ordered(session: &Arc<Session>, packet: Packet, held: &mut HeldUploads) {
    let gateway = &session.gateway;
    let current = session.principal();
    let principal: &Principal = &current;
    let context = &session.context;
    match packet {
        Packet::Init(_) => {
            let mut extensions = HashMap::new();
            extensions.insert("limits@openssh.com".to_string(), "1".to_string());
            extensions.insert("posix-rename@openssh.com".to_string(), "1".to_string());
            session.send(Packet::Version(Version { version: russh_sftp::protocol::VERSION, extensions }));
        }
        Packet::RealPath(request) => match session.resolve(AuditAction::Realpath, &request.path) {
            Ok(path) => {
                let shown = path.to_string();
                session.send(Packet::Name(Name { id: request.id, files: vec![File::dummy(shown)] }));
            }
            Err(error) => session.send_error(request.id, &error),
        },
        Packet::Stat(request) => stat(session, request.id, &request.path, held).await,
        Packet::Lstat(request) => stat(session, request.id, &request.path, held).await,
        Packet::Fstat(request) => {
            let found = match session.handles().get(&request.handle) {
                Some(OpenHandle::Download { download, .. }) => Some(EntryAttributes {
                    folder: false,
                    size: download.reader.size(),
                    mtime: crate::registry::now_seconds(),
                    writable: false,
                }),
                Some(OpenHandle::Upload { written, .. }) => Some(EntryAttributes {
                    folder: false,
                    size: written.load(Ordering::Acquire),
                    mtime: crate::registry::now_seconds(),
                    writable: true,
                }),
                Some(OpenHandle::Folder { .. }) => Some(EntryAttributes {
                    folder: true,
                    size: 0,
                    mtime: crate::registry::now_seconds(),
                    writable: false,
                }),
                None => None,
            };
            match found {
                Some(entry) => session.send(Packet::Attrs(Attrs { id: request.id, attrs: attributes(&entry) })),
                None => session.answer(request.id, ProtocolAnswer::UnknownHandle),
            }
        }
        Packet::OpenDir(request) if session.draining.load(Ordering::Acquire) => {
            session.send_refusal(request.id, EdgeRefusal::ShuttingDown)
        }
        Packet::OpenDir(request) => {
            let result = match session.resolve(AuditAction::List, &request.path) {
                Ok(path) => gateway.list(principal, &path, held).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(entries) => {
                    let inserted = session.handles().insert(OpenHandle::Folder { entries: VecDeque::from(entries) });
                    match inserted {
                        Ok(handle) => session.send(Packet::Handle(Handle { id: request.id, handle })),
                        Err(_) => session.send_refusal(request.id, EdgeRefusal::TooManyOpenFiles),
                    }
                }
                Err(error) => session.send_error(request.id, &error),
            }
        }
        Packet::ReadDir(request) => {
            let batch: Option<Vec<Entry>> = match session.handles().get_mut(&request.handle) {
                Some(OpenHandle::Folder { entries }) => {
                    let take = entries.len().min(ENTRIES_PER_NAME);
                    Some(entries.drain(..take).collect())
                }
                _ => None,
            };
            match batch {
                None => session.answer(request.id, ProtocolAnswer::UnknownFolderHandle),
                Some(batch) if batch.is_empty() => session.answer(request.id, ProtocolAnswer::EndOfFolder),
                Some(batch) => {
                    let files = batch.iter().map(|e| File::new(e.name.clone(), attributes(&e.attributes))).collect();
                    session.send(Packet::Name(Name { id: request.id, files }));
                }
            }
        }
        Packet::Open(request) => open(session, request.id, &request.filename, request.pflags).await,
        Packet::Close(request) => close(session, request.id, &request.handle, held).await,
        Packet::Remove(request) => {
            let result = match session.resolve(AuditAction::Remove, &request.filename) {
                Ok(path) => gateway.remove(principal, &path, context, held).await,
                Err(error) => Err(error),
            };
            reply_unit(session, request.id, result);
        }
        Packet::Rename(request) => rename(session, request.id, &request.oldpath, &request.newpath, held).await,
        Packet::SetStat(request) => {
            let result = match session.resolve(AuditAction::Setstat, &request.path) {
                Ok(_) if request.attrs.size.is_some() => Err(GatewayError::Unsupported(Unsupported::NoResize)),
                Ok(path) => gateway.set_times(principal, &path, request.attrs.mtime.map(i64::from), held).await,
                Err(error) => Err(error),
            };
            reply_unit(session, request.id, result);
        }
        Packet::FSetStat(request) => {
            let result = match session.handles().get(&request.handle) {
                Some(OpenHandle::Upload { .. }) if request.attrs.size.is_some() => {
                    Err(GatewayError::Unsupported(Unsupported::NoResize))
                }
                Some(OpenHandle::Upload { .. }) => Ok(()),
                Some(_) => Err(GatewayError::Refused(crate::access::Refusal::Denied(crate::access::Denial::ReadOnly))),
                None => Err(GatewayError::NotFound),
            };
            reply_unit(session, request.id, result);
        }
        Packet::MkDir(request) => change_folders(session, request.id, AuditAction::Mkdir, &request.path),
        Packet::RmDir(request) => change_folders(session, request.id, AuditAction::Rmdir, &request.path),
        Packet::ReadLink(request) => session.send_refusal(request.id, EdgeRefusal::LinksUnsupported),
        Packet::Symlink(request) => {
            session.gateway.audit_event(
                Some(principal),
                context,
                AuditAction::Symlink,
                None,
                AuditOutcome::Refused,
                Some("links are not supported".into()),
            );
            session.send_refusal(request.id, EdgeRefusal::LinksUnsupported)
        }
        Packet::Extended(request) => match request.request.as_str() {
            "limits@openssh.com" => {
                let limits = LimitsExtension {
                    max_packet_len: u64::from(MAX_PACKET_LEN),
                    max_read_len: u64::from(MAX_DATA_LEN),
                    max_write_len: u64::from(MAX_DATA_LEN),
                    max_open_handles: session.handles().len_limit() as u64,
                };
                match russh_sftp::ser::to_bytes(&limits) {
                    Ok(data) => {
                        session.send(Packet::ExtendedReply(ExtendedReply { id: request.id, data: data.to_vec() }))
                    }
                    Err(_) => session.answer(request.id, ProtocolAnswer::LimitsNotEncoded),
                }
            }
            "posix-rename@openssh.com" => {
                let mut data = Bytes::from(request.data);
                match russh_sftp::de::from_bytes::<HardlinkExtension>(&mut data) {
                    Ok(paths) => rename(session, request.id, &paths.oldpath, &paths.newpath, held).await,
                    Err(_) => session.answer(request.id, ProtocolAnswer::MalformedRename),
                }
            }
            _ => session.answer(request.id, ProtocolAnswer::ExtensionUnsupported),
        },
        Packet::Read(_) | Packet::Write(_) => {
            // Routed by the dispatcher; never queued here.
        }
        Packet::Version(_)
        | Packet::Status(_)
        | Packet::Handle(_)
        | Packet::Data(_)
        | Packet::Name(_)
        | Packet::Attrs(_)
        | Packet::ExtendedReply(_) => {
            session.answer(0, ProtocolAnswer::ReplyIsNotARequest);
        }
    }
}

fn reply_unit(session: &Session, id: u32, result: Result<(), GatewayError>) {
    match result {
        Ok(()) => session.send_ok(id),
        Err(error) => session.send_error(id, &error),
    }
}

async fn stat(session: &Arc<Session>, id: u32, raw: &str, held: &HeldUploads) {
    let result = match session.resolve(AuditAction::Stat, raw) {
        Ok(path) => session.gateway.stat(&session.principal(), &path, held).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(entry) => session.send(Packet::Attrs(Attrs { id, attrs: attributes(&entry) })),
        Err(error) => session.send_error(id, &error),
    }
}

fn change_folders(session: &Session, id: u32, action: AuditAction, raw: &str) {
    let result = session.resolve(action, raw).and_then(|path| {
        let node = Node::route(session.gateway.layout(), &path).map_err(|_| GatewayError::NotFound);
        let refusal = match node {
            Ok(node) => decide(&session.principal(), &node, Operation::ChangeFolders).err().map(GatewayError::from),
            Err(_) => Some(GatewayError::Refused(crate::access::Refusal::Denied(crate::access::Denial::FoldersFixed))),
        };
        let error = refusal.unwrap_or(GatewayError::Unsupported(Unsupported::FoldersFixed));
        session.gateway.audit_event(
            Some(&*session.principal()),
            &session.context,
            action,
            Some(path.to_string()),
            AuditOutcome::Refused,
            Some(error.to_string()),
        );
        Err(error)
    });
    reply_unit(session, id, result);
}

async fn open(session: &Arc<Session>, id: u32, raw: &str, flags: OpenFlags) {
    if session.draining.load(Ordering::Acquire) {
        return session.send_refusal(id, EdgeRefusal::ShuttingDown);
    }
    if session.handles().is_full() {
        return session.send_refusal(id, EdgeRefusal::TooManyOpenFiles);
    }
    let path = match session.resolve(AuditAction::Open, raw) {
        Ok(path) => path,
        Err(error) => return session.send_error(id, &error),
    };
    let gateway = &session.gateway;
    let handle = if flags.contains(OpenFlags::WRITE) || flags.contains(OpenFlags::APPEND) {
        if flags.contains(OpenFlags::APPEND) {
            return session.send_error(id, &GatewayError::Unsupported(Unsupported::NoAppend));
        }
        match gateway.begin_upload(&session.principal(), &path, &session.context).await {
            Ok(upload) => {
                let (path, writer, destination, limit) = upload.into_parts();
                let (commands, queue) = mpsc::unbounded_channel();
                let written = Arc::new(AtomicU64::new(0));
                tokio::spawn(run_upload(Arc::clone(session), writer, limit, Arc::clone(&written), queue));
                OpenHandle::Upload { commands, path, destination, written }
            }
            Err(error) => return session.send_error(id, &error),
        }
    } else {
        match gateway.open_download(&session.principal(), &path, &session.context).await {
            Ok(download) => {
                OpenHandle::Download { download: Arc::new(download), bytes_read: Arc::new(AtomicU64::new(0)) }
            }
            Err(error) => return session.send_error(id, &error),
        }
    };
    let inserted = session.handles().insert(handle);
    match inserted {
        Ok(handle) => session.send(Packet::Handle(Handle { id, handle })),
        Err(_) => session.send_refusal(id, EdgeRefusal::TooManyOpenFiles),
    }
}

async fn close(session: &Arc<Session>, id: u32, handle: &str, held: &mut HeldUploads) {
    let removed = session.handles().remove(handle);
    match removed {
        None => session.answer(id, ProtocolAnswer::UnknownHandle),
        Some(OpenHandle::Folder { .. }) => session.send_ok(id),
        Some(OpenHandle::Download { download, bytes_read }) => {
            let principal = session.principal();
            let bytes = bytes_read.load(Ordering::Acquire);
            session.gateway.close_download(&principal, &download, bytes, &session.context).await;
            session.send_ok(id);
        }
        Some(OpenHandle::Upload { commands, path, destination, .. }) => {
            let result = finish_upload(session, commands, path, destination, held).await;
            reply_unit(session, id, result);
        }
    }
}

async fn finish_upload(
    session: &Arc<Session>,
    commands: mpsc::UnboundedSender<UploadCommand>,
    path: RemotePath,
    destination: UploadDestination,
    held: &mut HeldUploads,
) -> Result<(), GatewayError> {
    let (reply, staged) = oneshot::channel();
    let storage_gone = || GatewayError::Conflict(Conflict::Interrupted);
    commands.send(UploadCommand::Finish(reply)).map_err(|_| storage_gone())?;
    let staged = staged.await.map_err(|_| storage_gone());
    let staged = match staged.and_then(|r| r) {
        Ok(staged) => staged,
        Err(error) => {
            session.gateway.audit_event(
                Some(&*session.principal()),
                &session.context,
                AuditAction::CloseWrite,
                Some(path.to_string()),
                AuditOutcome::Failed,
                Some(error.to_string()),
            );
            return Err(error);
        }
    };
    session
        .gateway
        .finish_upload(&session.principal(), path, destination, staged, &session.context, held)
        .await
        .map(|_| ())
}

async fn rename(session: &Arc<Session>, id: u32, from: &str, to: &str, held: &mut HeldUploads) {
    let result = match (session.resolve(AuditAction::Rename, from), session.resolve(AuditAction::Rename, to)) {
        (Ok(from), Ok(to)) => session.gateway.rename(&session.principal(), &from, &to, &session.context, held).await,
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    reply_unit(session, id, result);
}
