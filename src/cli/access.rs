//! `access`: user sheets waiting for the insurer's decision.

use super::prelude::*;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// List the requests, newest first.
    Requests {
        #[arg(long)]
        json: bool,
    },
    /// Apply a pending request's user sheet.
    Approve { id: i64 },
    /// Refuse a pending request; the master users are told why.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(command: AccessCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        AccessCommand::Requests { json } => {
            let list = admin(&settings).await?.access_requests().await?;
            if json {
                print_json(
                    list.iter()
                        .map(|r| {
                            json!({
                                "id": r.id, "organisation_id": r.organisation_id, "file_name": r.file_name,
                                "status": r.status.as_str(), "problems": r.problems, "created_at": format_time(r.created_at),
                                "decided_by": r.decided_by, "reason": r.reason,
                            })
                        })
                        .collect(),
                );
            } else {
                for r in &list {
                    println!(
                        "{:>5}  {:<9} {:>3} problem(s)  {}  {}",
                        r.id,
                        r.status,
                        r.problems,
                        format_time(r.created_at),
                        r.file_name
                    );
                }
            }
        }
        AccessCommand::Approve { id } => match admin(&settings).await?.approve_access_request(id).await? {
            SheetOutcome::Applied(changes) => {
                for change in &changes {
                    println!("{change}");
                }
                println!("access request {id} approved: {} change(s)", changes.len());
            }
            SheetOutcome::Rejected(problems) => {
                for (row, column, message) in &problems {
                    eprintln!(
                        "row {}, {}: {message}",
                        row.map(|r| r.to_string()).unwrap_or_default(),
                        column.clone().unwrap_or_default()
                    );
                }
                return Err(invalid(format!(
                    "access request {id} no longer passes its checks: marked invalid, nothing changed"
                )));
            }
        },
        AccessCommand::Reject { id, reason } => {
            admin(&settings).await?.reject_access_request(id, &reason).await?;
            println!("access request {id} rejected");
        }
    }
    Ok(())
}
