//! Ingestion of returned spreadsheets: a schema per upload kind (`schema`), reading the file
//! (`read`), validating every row and cell (`validate`) with messages in the uploader's
//! language (`messages`), writing the reports (`report`), and the workers that apply accepted
//! files to the registry (`worker`).

pub mod blank_templates;
pub mod finding_code;
pub mod headers;
pub mod messages;
pub mod read;
pub mod reader_process;
#[cfg(test)]
mod real_world_headers;
pub mod report;
pub mod schema;
pub mod templates;
pub mod validate;
pub mod worker;
