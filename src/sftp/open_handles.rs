//! The files and folders a session has open, bounded in number.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::domain::RemotePath;

use super::budget::Reservation;
use crate::gateway::{Download, Entry, GatewayError, UploadDestination};
use crate::storage::StagedObject;

/// Messages to an upload's task, in the order the client sent them.
pub enum UploadCommand {
    /// A WRITE and the budget its data holds until it is written.
    Write {
        id: u32,
        offset: u64,
        data: Bytes,
        reservation: Reservation,
    },
    Finish(oneshot::Sender<Result<StagedObject, GatewayError>>),
}

pub enum OpenHandle {
    Download {
        download: Arc<Download>,
        bytes_read: Arc<AtomicU64>,
    },
    Upload {
        commands: mpsc::UnboundedSender<UploadCommand>,
        path: RemotePath,
        destination: UploadDestination,
        written: Arc<AtomicU64>,
    },
    Folder {
        entries: VecDeque<Entry>,
    },
}

pub struct OpenHandles {
    handles: HashMap<String, OpenHandle>,
    next_id: u64,
    max: usize,
}

/// The session already has as many open handles as allowed.
#[derive(Debug)]
pub struct TooManyHandles;

impl OpenHandles {
    pub fn new(max: usize) -> Self {
        Self { handles: HashMap::new(), next_id: 1, max }
    }

    pub fn insert(&mut self, handle: OpenHandle) -> Result<String, TooManyHandles> {
        if self.handles.len() >= self.max {
            return Err(TooManyHandles);
        }
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.handles.insert(id.clone(), handle);
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<&OpenHandle> {
        self.handles.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut OpenHandle> {
        self.handles.get_mut(id)
    }

    pub fn remove(&mut self, id: &str) -> Option<OpenHandle> {
        self.handles.remove(id)
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.handles.len() >= self.max
    }

    /// Empties the table, handing back what was open.
    pub fn drain(&mut self) -> Vec<OpenHandle> {
        self.handles.drain().map(|(_, h)| h).collect()
    }
}

impl OpenHandles {
    /// The most handles this session may hold.
    pub fn len_limit(&self) -> usize {
        self.max
    }
}
