//! `retention`: deleting processed uploads' files when their time is up.

use super::prelude::*;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Delete now the stored files whose retention ended (serve does this every hour).
    Run,
}

pub async fn run(command: RetentionCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        RetentionCommand::Run => {
            let (registry, storage) =
                startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let (audit_log, writer) = audit::AuditLog::start(registry.clone());
            let now = pension_gateway::registry::now_seconds();
            let pass = pension_gateway::retention::run_pass(
                &registry,
                &storage,
                &audit_log,
                &settings.layout,
                settings.retention,
                now,
            )
            .await
            .context("the retention pass could not finish")?;
            audit_log.close();
            let _ = writer.await;
            println!("{} file(s) deleted, {} could not be deleted", pass.removed, pass.failed);
            if pass.failed > 0 {
                return Err(Failure {
                    code: 1,
                    error: anyhow::anyhow!("some files could not be deleted: see the log"),
                });
            }
        }
    }
    Ok(())
}
