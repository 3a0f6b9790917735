//! `audit`: verifying, checkpointing and exporting the audit trail.

use super::prelude::*;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check that no event was altered, removed or cut from the end (against the latest
    /// signed checkpoint in the object store, and the copies given).
    Verify {
        /// A copy of a checkpoint kept outside the gateway: its JSON, or the mail that carried
        /// it (notify.audit_checkpoint_to), saved as a file. May be repeated.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
    },
    /// Write a signed checkpoint of the chain's head into the object store now, and mail a
    /// copy if notify.audit_checkpoint_to is set (serve does both every hour and at shutdown).
    Checkpoint,
    /// Print events, oldest first, with what proves them (prev_hash, hash, keyed, and the
    /// latest checkpoint with --json).
    Export {
        /// From this date on (YYYY-MM-DD).
        #[arg(long, alias = "since", value_parser = parse_date)]
        from: Option<Date>,
        /// Up to and including this date (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        to: Option<Date>,
        #[arg(long)]
        json: bool,
    },
}

fn day_start_ms(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

pub async fn run(command: AuditCommand, settings: Settings) -> Result<(), Failure> {
    if let AuditCommand::Checkpoint = command {
        match super::admin(&settings).await?.checkpoint().await.context("cannot write the audit checkpoint")? {
            Some(checkpoint) => println!("checkpoint written: event #{} ({})", checkpoint.sequence, checkpoint.head),
            None => println!("the audit trail is empty: no checkpoint written"),
        }
        return Ok(());
    }
    let (registry, storage) = startup::open_state(&settings).await.context("cannot open the gateway's state")?;
    match command {
        AuditCommand::Verify { checkpoints } => {
            let mut copies = Vec::with_capacity(checkpoints.len());
            for file in &checkpoints {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))
                    .map_err(|error| Failure { code: 2, error })?;
                let copy = audit::parse_checkpoint_copy(&text)
                    .with_context(|| format!("{} holds no audit checkpoint", file.display()))
                    .map_err(|error| Failure { code: 2, error })?;
                copies.push(copy);
            }
            let report = audit::verify(&registry, &storage, &copies).await.context("cannot read the audit trail")?;
            if let Some(problem) = report.problem {
                return Err(Failure { code: 1, error: anyhow::anyhow!("the audit trail is not intact: {problem}") });
            }
            println!("audit trail intact: {} events", report.events);
            if report.plain_events > 0 {
                println!(
                    "  {} early events are chained without the key (written before it existed)",
                    report.plain_events
                );
            }
            match report.checkpoint {
                Some(checkpoint) => println!(
                    "  the latest checkpoint ({}) saw event #{}: nothing was cut before it",
                    pension_gateway::clock::format_millis(checkpoint.at_ms),
                    checkpoint.sequence
                ),
                None => println!("  no checkpoint yet: a cut of the last events could not be seen"),
            }
        }
        AuditCommand::Checkpoint => {}
        AuditCommand::Export { from, to, json } => {
            let from_ms = from.map(day_start_ms).unwrap_or(i64::MIN);
            let to_ms = to.and_then(|d| d.next_day()).map(day_start_ms).unwrap_or(i64::MAX);
            let events: Vec<_> = registry
                .audit_events(from_ms)
                .await
                .context("cannot read the audit trail")?
                .into_iter()
                .filter(|r| r.event.at_ms < to_ms)
                .collect();
            if json {
                let rows: Vec<serde_json::Value> = events
                    .iter()
                    .map(|r| {
                        let e = &r.event;
                        json!({
                            "id": r.id, "at_ms": e.at_ms, "actor": e.actor, "organisation_id": e.organisation_id,
                            "action": e.action.as_str(), "path": e.path, "outcome": e.outcome.as_str(),
                            "reason": e.reason, "remote_addr": e.remote_addr, "session_id": e.session_id,
                            "bytes": e.bytes, "sha256": e.sha256, "prev_hash": r.prev_hash, "hash": r.hash,
                            "keyed": r.keyed,
                        })
                    })
                    .collect();
                let checkpoint = audit::read_checkpoint(&storage).await.context("cannot read the audit checkpoint")?;
                print_json(json!({ "events": rows, "checkpoint": checkpoint }));
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
