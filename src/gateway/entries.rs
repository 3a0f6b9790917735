//! What a listing or a stat shows of a file or folder.

use crate::clock::now_seconds;

/// Attributes shown for a file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryAttributes {
    pub folder: bool,
    pub size: u64,
    /// Unix seconds.
    pub mtime: i64,
    /// Whether the principal may write here (a file it may replace, a folder it may upload into).
    pub writable: bool,
}

impl EntryAttributes {
    pub(super) fn folder(writable: bool) -> Self {
        Self { folder: true, size: 0, mtime: now_seconds(), writable }
    }
}

/// One line of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub attributes: EntryAttributes,
}
