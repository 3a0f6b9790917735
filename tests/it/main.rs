//! The integration suite: the real gateway on port 0, driven by real clients (OpenSSH `sftp`
//! and `ssh`, and the russh-sftp client), on SQLite and on PostgreSQL.

// A failed expectation in a test is meant to panic with its cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod access_lifecycle;
mod audit_trail;
mod authentication;
mod clients;
mod command_line;
mod deployment;
mod edge;
mod first_steps;
mod fleet;
mod folders;
mod fuzz_reader;
mod hostile_files;
mod ingestion;
mod notifications;
mod once_per_fleet;
mod operations;
mod quotas;
mod server;
mod sftp_in_process;
mod status_page;
mod storage;
mod transfers;
