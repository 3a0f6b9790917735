//! pension-gateway: the SFTP gateway of the Extranet Pension Complémentaire.
//!
//! Employers and payroll bureaus log in over SSH, see the contracts they were granted as
//! folders, download what the insurer published and upload spreadsheets into their inboxes.
//! The protocol edge (`sftp`) is thin; decisions live in pure modules (`domain`, `vfs`,
//! `access`); state lives in `registry` (SQLite or PostgreSQL) and `storage` (objects).
//! `startup` wires the concrete pieces together. See ARCHITECTURE.md for the map.

pub mod access;
pub mod access_requests;
pub mod admin;
#[cfg(test)]
mod architecture_rules;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod ingest;
pub mod layout;
pub mod notify;
pub mod publishing;
pub mod registry;
pub mod retention;
pub mod sftp;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod vfs;
