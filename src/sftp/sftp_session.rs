//! One SFTP session: a dispatcher that never stops reading the channel.
//!
//! russh-sftp's own server loop handles one request at a time; here the reader always drains
//! the channel, READs run concurrently (answers may come out of order, as the protocol
//! allows), WRITEs go in order to their upload's task, and every other request runs in order
//! on one worker that owns the session's state. One writer task sends the answers. Memory is
//! bounded by a byte budget for requests in flight; a client that exceeds it is disconnected.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use russh_sftp::protocol::Packet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Notify};

use crate::access::Principal;
use crate::domain::{AuditAction, AuditOutcome};
use crate::gateway::{Gateway, GatewayError, HeldUploads, SessionContext};

use super::budget::{Budget, Reservation};
use super::open_handles::{OpenHandle, OpenHandles, UploadCommand};
use super::requests::handle_ordered;
use super::session::Session;
use super::status::{EdgeRefusal, ProtocolAnswer};
use super::wire::{read_packet, write_responses, WriteRequest, MAX_DATA_LEN};

/// How often an open session checks that its account may still be used.
const ACCESS_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// A request and the budget its body holds. Boxed: the queue reserves room for 32
    /// messages when the session starts, and a packet is 144 bytes, an idle session's
    /// largest allocation.
    Request(Box<(Packet, Reservation)>),
    Malformed {
        id: u32,
    },
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
    let (responses, response_queue) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(write_responses(writer, response_queue));
    let session = Arc::new(Session {
        gateway,
        principal: std::sync::RwLock::new(Arc::new(principal)),
        access_ended: AtomicBool::new(false),
        context,
        handles: Mutex::new(OpenHandles::new(limits.max_open_handles)),
        budget: Budget::new(limits.max_bytes_in_flight),
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
    // packets (the dispatcher below takes each at once, so the queue stays short). Boxed, as
    // the other queues: each reserves room for 32 messages from the start.
    let (packets, mut incoming) = mpsc::unbounded_channel();
    let reader_task = tokio::spawn(async move {
        loop {
            let packet = read_packet(&mut reader).await;
            let last = !matches!(packet, Ok(Some(_)));
            if packets.send(Box::new(packet)).is_err() || last {
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
            packet = incoming.recv() => match packet.map(|boxed| *boxed) {
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
                // Boxed, as the other rare awaits here: a task holds room for its largest
                // await for as long as it lives, and an idle session should cost little.
                if !Box::pin(session.refresh_principal()).await {
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
                Box::pin(session.gateway.close_download(&principal, &download, bytes, &session.context)).await;
            }
            OpenHandle::Folder { .. } => {}
        }
    }
    drop(session);
    let _ = writer_task.await;
    end
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
            let Some(reservation) = session.reserve(len) else {
                return Err("too many bytes requested at once");
            };
            let session = Arc::clone(session);
            tokio::spawn(async move {
                match download.reader.read_at(read.offset, len).await {
                    Ok(data) if data.is_empty() => session.answer(read.id, ProtocolAnswer::EndOfFile),
                    Ok(data) => {
                        bytes_read.fetch_add(data.len() as u64, Ordering::AcqRel);
                        session.send_data(read.id, &data, reservation);
                    }
                    Err(error) => {
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
            let Some(reservation) = session.reserve(size) else {
                return Err("too many requests queued at once");
            };
            if ordered.send(Ordered::Request(Box::new((other, reservation)))).is_err() {
                return Err("session worker stopped");
            }
        }
    }
    Ok(())
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
    let Some(reservation) = session.reserve(write.data.len()) else {
        return Err("too many bytes sent at once");
    };
    let command = UploadCommand::Write { id: write.id, offset: write.offset, data: write.data, reservation };
    if commands.send(command).is_err() {
        session.answer(write.id, ProtocolAnswer::UploadAlreadyClosed);
    }
    Ok(())
}

/// The ordered worker: every request but READ and WRITE, one after the other.
async fn run_ordered(session: Arc<Session>, mut queue: mpsc::UnboundedReceiver<Ordered>) {
    let mut held = HeldUploads::default();
    while let Some(work) = queue.recv().await {
        let closing = session.closing.load(Ordering::Acquire);
        match work {
            // Once the session is over, what is still queued has no one to answer.
            Ordered::Request(_) if closing => {}
            Ordered::Request(request) => {
                let (packet, reservation) = *request;
                let id = packet.get_request_id();
                // Closing a read or a folder handle grants nothing: only the requests that
                // open, write or change something check the account again first.
                let closes_a_reader = match &packet {
                    Packet::Close(close) => {
                        matches!(
                            session.handles().get(&close.handle),
                            Some(OpenHandle::Download { .. } | OpenHandle::Folder { .. })
                        )
                    }
                    _ => false,
                };
                let acts_on_files = !closes_a_reader
                    && !matches!(
                        packet,
                        Packet::Init(_)
                            | Packet::ReadDir(_)
                            | Packet::RealPath(_)
                            | Packet::Fstat(_)
                            | Packet::Stat(_)
                            | Packet::Lstat(_)
                    );
                // Boxed: the worker of an idle session keeps no room for a request's await.
                if acts_on_files && !Box::pin(session.refresh_principal()).await {
                    session.send_refusal(id, EdgeRefusal::AccessEnded);
                } else {
                    Box::pin(handle_ordered(&session, packet, &mut held)).await;
                }
                drop(reservation);
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
