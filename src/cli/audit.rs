//! `audit`: verifying and exporting the audit trail.

use super::prelude::*;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check that no event was altered or removed.
    Verify,
    /// Print events, oldest first.
    Export {
        /// From this date on (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        since: Option<Date>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AuditCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify => {
            let admin = admin(&settings).await?;
            match audit::verify_chain(admin.registry()).await.context("cannot read the audit trail")? {
                Ok(count) => println!("audit trail intact: {count} events"),
                Err(id) => {
                    return Err(Failure {
                        code: 1,
                        error: anyhow::anyhow!("the audit trail is broken at event {id}: it was altered or removed"),
                    })
                }
            }
        }
        AuditCommand::Export { since, json } => {
            let admin = admin(&settings).await?;
            let since_ms = since.map(|d| d.midnight().assume_utc().unix_timestamp() * 1000).unwrap_or(i64::MIN);
            let events = admin.registry().audit_events(since_ms).await.context("cannot read the audit trail")?;
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|r| {
                    let e = &r.event;
                    json!({
                        "id": r.id, "at_ms": e.at_ms, "actor": e.actor, "organisation_id": e.organisation_id,
                        "action": e.action.as_str(), "path": e.path, "outcome": e.outcome.as_str(), "reason": e.reason,
                        "remote_addr": e.remote_addr, "session_id": e.session_id, "bytes": e.bytes,
                        "sha256": e.sha256, "hash": r.hash,
                    })
                })
                .collect();
            if json {
                print_json(rows.into());
            } else {
                for r in &events {
                    let e = &r.event;
                    println!(
                        "{} {} {} {} {} {}",
                        format_time(e.at_ms / 1000),
                        e.actor,
                        e.action,
                        e.outcome,
                        e.path.as_deref().unwrap_or("-"),
                        e.reason.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}
