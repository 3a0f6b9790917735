//! The protocol edge: the only module that touches russh and russh-sftp.
//!
//! `ssh_server` accepts connections, authenticates and refuses everything but the `sftp`
//! subsystem; `sftp_session` decodes SFTP packets and calls the [`crate::gateway`] services;
//! `open_handles` holds a session's open files and folders; `status` maps every gateway error
//! to an SFTP status once. No decision is taken here.

mod open_handles;
mod sftp_session;
mod ssh_server;
mod status;

pub use sftp_session::{SessionEnd, SessionLimits};
pub use ssh_server::{load_or_create_host_key, HostKeyError, ServerSettings, SshServer};
