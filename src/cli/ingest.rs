//! `ingest`: processing uploads again.

use super::prelude::*;

#[derive(Subcommand)]
pub enum IngestCommand {
    /// Process an upload again (after a failure).
    Retry { upload_id: i64 },
}

pub async fn run(command: IngestCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        IngestCommand::Retry { upload_id } => {
            admin(&settings).await?.retry_ingestion(upload_id).await?;
            println!("upload {upload_id} queued again");
        }
    }
    Ok(())
}
