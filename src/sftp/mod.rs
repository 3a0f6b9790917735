//! The protocol edge: the only module that touches russh and russh-sftp.
//!
//! `ssh_server` accepts connections, authenticates and refuses everything but the `sftp`
//! subsystem. An SFTP session is `sftp_session` (the dispatcher: reads packets, routes READ
//! and WRITE at once, queues the rest), `requests` (one function per request kind, calling the
//! [`crate::gateway`] services), `session` (its state and the only ways to answer), `wire`
//! (framing), `budget` (bytes in flight, given back on drop) and `open_handles` (its open
//! files and folders); `status` maps every error and answer to an SFTP status once. No
//! decision is taken here, and no byte of storage is touched: uploads go to a
//! `gateway::UploadSink`.

mod budget;
mod open_handles;
pub mod proxy_header;
mod requests;
mod session;
mod sftp_session;
mod ssh_server;
mod status;
mod wire;

pub use sftp_session::{serve, SessionEnd, SessionLimits};
pub use ssh_server::{load_or_create_host_key, HostKeyError, ServerSettings, SshServer};
