//! One function per SFTP request kind handled in order (everything but READ and WRITE), and
//! the task that feeds an upload's WRITEs to its `gateway::UploadSink`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use russh_sftp::extensions::{HardlinkExtension, LimitsExtension};
use russh_sftp::protocol::{Attrs, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Version};
use tokio::sync::{mpsc, oneshot};

use crate::access::{decide, Operation};
use crate::domain::{AuditAction, AuditOutcome, RemotePath};
use crate::gateway::{
    Conflict, Entry, EntryAttributes, GatewayError, HeldUploads, Unsupported, UploadDestination, UploadSink, Written,
};
use crate::vfs::Node;

use super::budget::Reservation;
use super::open_handles::{OpenHandle, UploadCommand};
use super::session::Session;
use super::status::{EdgeRefusal, ProtocolAnswer};
use super::wire::{MAX_DATA_LEN, MAX_PACKET_LEN};

/// NAME messages carry at most this many entries (OpenSSH refuses messages over 256 KiB).
const ENTRIES_PER_NAME: usize = 100;

/// The upload task: hands WRITEs to the sink in the order the client sent them and answers
/// each as the sink settles it.
async fn run_upload(
    session: Arc<Session>,
    mut sink: UploadSink<(u32, Reservation)>,
    written: Arc<AtomicU64>,
    mut commands: mpsc::UnboundedReceiver<UploadCommand>,
) {
    while let Some(command) = commands.recv().await {
        match command {
            UploadCommand::Write { id, offset, data, reservation } => {
                for ((id, _reservation), outcome) in sink.write((id, reservation), offset, data).await {
                    match (outcome, sink.failure()) {
                        (Written::Ok, _) => session.send_ok(id),
                        (Written::Failed, Some(error)) => session.send_error(id, error),
                        (Written::Failed, None) => {
                            session.send_error(id, &GatewayError::Conflict(Conflict::Interrupted))
                        }
                    }
                }
                written.store(sink.written(), Ordering::Release);
            }
            UploadCommand::Finish(reply) => {
                let (result, waiting) = sink.finish().await;
                for (id, _reservation) in waiting {
                    session.answer(id, ProtocolAnswer::ClosedBeforeWritten);
                }
                let _ = reply.send(result);
                // WRITEs that raced the CLOSE arrive after it: answer them.
                commands.close();
                while let Some(late) = commands.recv().await {
                    if let UploadCommand::Write { id, .. } = late {
                        session.answer(id, ProtocolAnswer::WriteAfterClose);
                    }
                }
                return;
            }
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

/// Answers one request of the ordered queue.
pub async fn handle_ordered(session: &Arc<Session>, packet: Packet, held: &mut HeldUploads) {
    match packet {
        Packet::Init(_) => init(session),
        Packet::RealPath(request) => real_path(session, request.id, &request.path),
        Packet::Stat(request) => stat(session, request.id, &request.path, held).await,
        Packet::Lstat(request) => stat(session, request.id, &request.path, held).await,
        Packet::Fstat(request) => fstat(session, request.id, &request.handle),
        Packet::OpenDir(request) => open_dir(session, request.id, &request.path, held).await,
        Packet::ReadDir(request) => read_dir(session, request.id, &request.handle),
        Packet::Open(request) => open(session, request.id, &request.filename, request.pflags).await,
        Packet::Close(request) => close(session, request.id, &request.handle, held).await,
        Packet::Remove(request) => remove(session, request.id, &request.filename, held).await,
        Packet::Rename(request) => rename(session, request.id, &request.oldpath, &request.newpath, held).await,
        Packet::SetStat(request) => set_stat(session, request.id, &request.path, &request.attrs, held).await,
        Packet::FSetStat(request) => fset_stat(session, request.id, &request.handle, &request.attrs),
        Packet::MkDir(request) => change_folders(session, request.id, AuditAction::Mkdir, &request.path),
        Packet::RmDir(request) => change_folders(session, request.id, AuditAction::Rmdir, &request.path),
        Packet::ReadLink(request) => session.send_refusal(request.id, EdgeRefusal::LinksUnsupported),
        Packet::Symlink(request) => symlink(session, request.id),
        Packet::Extended(request) => extended(session, request.id, &request.request, request.data, held).await,
        Packet::Read(_) | Packet::Write(_) => {
            // Routed by the dispatcher; never queued here.
        }
        Packet::Version(_)
        | Packet::Status(_)
        | Packet::Handle(_)
        | Packet::Data(_)
        | Packet::Name(_)
        | Packet::Attrs(_)
        | Packet::ExtendedReply(_) => session.answer(0, ProtocolAnswer::ReplyIsNotARequest),
    }
}

fn init(session: &Session) {
    let mut extensions = HashMap::new();
    extensions.insert("limits@openssh.com".to_string(), "1".to_string());
    extensions.insert("posix-rename@openssh.com".to_string(), "1".to_string());
    session.send(Packet::Version(Version { version: russh_sftp::protocol::VERSION, extensions }));
}

fn real_path(session: &Session, id: u32, raw: &str) {
    match session.resolve(AuditAction::Realpath, raw) {
        Ok(path) => session.send(Packet::Name(Name { id, files: vec![File::dummy(path.to_string())] })),
        Err(error) => session.send_error(id, &error),
    }
}

fn fstat(session: &Session, id: u32, handle: &str) {
    let now = crate::registry::now_seconds();
    let found = match session.handles().get(handle) {
        Some(OpenHandle::Download { download, .. }) => {
            Some(EntryAttributes { folder: false, size: download.reader.size(), mtime: now, writable: false })
        }
        Some(OpenHandle::Upload { written, .. }) => {
            Some(EntryAttributes { folder: false, size: written.load(Ordering::Acquire), mtime: now, writable: true })
        }
        Some(OpenHandle::Folder { .. }) => Some(EntryAttributes { folder: true, size: 0, mtime: now, writable: false }),
        None => None,
    };
    match found {
        Some(entry) => session.send(Packet::Attrs(Attrs { id, attrs: attributes(&entry) })),
        None => session.answer(id, ProtocolAnswer::UnknownHandle),
    }
}

async fn open_dir(session: &Arc<Session>, id: u32, raw: &str, held: &HeldUploads) {
    if session.draining.load(Ordering::Acquire) {
        return session.send_refusal(id, EdgeRefusal::ShuttingDown);
    }
    let result = match session.resolve(AuditAction::List, raw) {
        Ok(path) => session.gateway.list(&session.principal(), &path, held).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(entries) => {
            let inserted = session.handles().insert(OpenHandle::Folder { entries: VecDeque::from(entries) });
            match inserted {
                Ok(handle) => session.send(Packet::Handle(Handle { id, handle })),
                Err(_) => session.send_refusal(id, EdgeRefusal::TooManyOpenFiles),
            }
        }
        Err(error) => session.send_error(id, &error),
    }
}

fn read_dir(session: &Session, id: u32, handle: &str) {
    let batch: Option<Vec<Entry>> = match session.handles().get_mut(handle) {
        Some(OpenHandle::Folder { entries }) => {
            let take = entries.len().min(ENTRIES_PER_NAME);
            Some(entries.drain(..take).collect())
        }
        _ => None,
    };
    match batch {
        None => session.answer(id, ProtocolAnswer::UnknownFolderHandle),
        Some(batch) if batch.is_empty() => session.answer(id, ProtocolAnswer::EndOfFolder),
        Some(batch) => {
            let files = batch.iter().map(|e| File::new(e.name.clone(), attributes(&e.attributes))).collect();
            session.send(Packet::Name(Name { id, files }));
        }
    }
}

async fn remove(session: &Arc<Session>, id: u32, raw: &str, held: &mut HeldUploads) {
    let result = match session.resolve(AuditAction::Remove, raw) {
        Ok(path) => session.gateway.remove(&session.principal(), &path, &session.context, held).await,
        Err(error) => Err(error),
    };
    reply_unit(session, id, result);
}

async fn set_stat(session: &Arc<Session>, id: u32, raw: &str, attrs: &FileAttributes, held: &mut HeldUploads) {
    let result = match session.resolve(AuditAction::Setstat, raw) {
        Ok(_) if attrs.size.is_some() => Err(GatewayError::Unsupported(Unsupported::NoResize)),
        Ok(path) => session.gateway.set_times(&session.principal(), &path, attrs.mtime.map(i64::from), held).await,
        Err(error) => Err(error),
    };
    reply_unit(session, id, result);
}

fn fset_stat(session: &Session, id: u32, handle: &str, attrs: &FileAttributes) {
    let result = match session.handles().get(handle) {
        Some(OpenHandle::Upload { .. }) if attrs.size.is_some() => {
            Err(GatewayError::Unsupported(Unsupported::NoResize))
        }
        Some(OpenHandle::Upload { .. }) => Ok(()),
        Some(_) => Err(GatewayError::Refused(crate::access::Refusal::Denied(crate::access::Denial::ReadOnly))),
        None => Err(GatewayError::NotFound),
    };
    reply_unit(session, id, result);
}

fn symlink(session: &Session, id: u32) {
    session.gateway.audit_event(
        Some(&*session.principal()),
        &session.context,
        AuditAction::Symlink,
        None,
        AuditOutcome::Refused,
        Some("links are not supported".into()),
    );
    session.send_refusal(id, EdgeRefusal::LinksUnsupported)
}

async fn extended(session: &Arc<Session>, id: u32, name: &str, data: Vec<u8>, held: &mut HeldUploads) {
    match name {
        "limits@openssh.com" => {
            let limits = LimitsExtension {
                max_packet_len: u64::from(MAX_PACKET_LEN),
                max_read_len: u64::from(MAX_DATA_LEN),
                max_write_len: u64::from(MAX_DATA_LEN),
                max_open_handles: session.handles().len_limit() as u64,
            };
            match russh_sftp::ser::to_bytes(&limits) {
                Ok(data) => session.send(Packet::ExtendedReply(ExtendedReply { id, data: data.to_vec() })),
                Err(_) => session.answer(id, ProtocolAnswer::LimitsNotEncoded),
            }
        }
        "posix-rename@openssh.com" => {
            let mut data = Bytes::from(data);
            match russh_sftp::de::from_bytes::<HardlinkExtension>(&mut data) {
                Ok(paths) => rename(session, id, &paths.oldpath, &paths.newpath, held).await,
                Err(_) => session.answer(id, ProtocolAnswer::MalformedRename),
            }
        }
        _ => session.answer(id, ProtocolAnswer::ExtensionUnsupported),
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
                let (path, sink, destination) = upload.into_parts(session.max_upload_bytes);
                let (commands, queue) = mpsc::unbounded_channel();
                let written = Arc::new(AtomicU64::new(0));
                tokio::spawn(run_upload(Arc::clone(session), sink, Arc::clone(&written), queue));
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
