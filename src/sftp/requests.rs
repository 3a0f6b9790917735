//! One function per SFTP request kind handled in order (everything but READ and WRITE), and
//! the task that feeds an upload's WRITEs to its `gateway::UploadSink`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use russh_sftp::extensions::{HardlinkExtension, LimitsExtension};
use russh_sftp::protocol::{Attrs, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Version};
use tokio::sync::{mpsc, oneshot};

use crate::access::{decide, Operation, Principal};
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

pub async fn handle_ordered(session: &Arc<Session>, packet: Packet, held: &mut HeldUploads) {
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
