//! Ingestion of returned spreadsheets: a schema per upload kind (`schema`), reading the file
//! (`read`), validating every row and cell (`validate`) with messages in the uploader's
//! language (`messages`).

pub mod messages;
pub mod read;
pub mod schema;
pub mod validate;
