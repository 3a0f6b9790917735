//! `outbox`: the queue of mail.

use super::prelude::*;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Messages, newest first (never their content).
    List {
        /// Only messages in this state: pending, failed or sent.
        #[arg(long, value_parser = ["pending", "failed", "sent"])]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Try now every message that is due (serve does this on its own).
    Deliver,
}

pub async fn run(command: OutboxCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        OutboxCommand::List { status, limit, json } => {
            let (registry, _) = startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let messages = registry.outbox(status.as_deref(), limit.max(1)).await.context("cannot read the outbox")?;
            if json {
                print_json(serde_json::Value::Array(
                    messages
                        .iter()
                        .map(|m| {
                            serde_json::json!({
                                "id": m.id, "status": m.status, "purpose": m.purpose, "recipient": m.recipient,
                                "subject": m.subject, "attempts": m.attempts, "last_error": m.last_error,
                                "created_at": format_time(m.created_at),
                                "next_attempt_at": (m.status == "pending").then(|| format_time(m.next_attempt_at)),
                                "sent_at": m.sent_at.map(format_time),
                            })
                        })
                        .collect(),
                ));
            } else {
                for m in &messages {
                    let when = match m.status.as_str() {
                        "sent" => format!("sent {}", m.sent_at.map(format_time).unwrap_or_default()),
                        "pending" => format!("next attempt {}", format_time(m.next_attempt_at)),
                        _ => "given up".to_string(),
                    };
                    println!(
                        "#{:<6} {:<8} {:<20} {:<32} attempts {}  {when}{}",
                        m.id,
                        m.status,
                        m.purpose,
                        m.recipient,
                        m.attempts,
                        m.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default()
                    );
                }
            }
        }
        OutboxCommand::Deliver => {
            let (registry, _) = startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let outbox = mail_outbox(&settings, registry)?;
            let round = outbox.deliver_due(false).await.context("cannot read the outbox")?;
            println!("{} sent, {} to retry later, {} failed", round.sent, round.deferred, round.failed);
        }
    }
    Ok(())
}
