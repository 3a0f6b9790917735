//! `defender`: the bans of the brute-force defender, shared by every instance.

use super::prelude::*;

#[derive(Subcommand)]
pub enum DefenderCommand {
    /// Addresses banned and logins whose password logins are suspended, now.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Lift the ban of an address, or the suspension of a login.
    Unban {
        /// An IP address or a login.
        subject: String,
    },
}

pub async fn run(command: DefenderCommand, settings: Settings) -> Result<(), Failure> {
    let admin = admin(&settings).await?;
    match command {
        DefenderCommand::List { json } => {
            let bans = admin.bans().await?;
            if json {
                print_json(
                    bans.iter()
                        .map(|b| {
                            json!({
                                "kind": b.subject_kind, "subject": b.subject, "reason": b.reason,
                                "banned_at": format_time(b.banned_at), "banned_until": format_time(b.banned_until),
                                "ban_count": b.ban_count,
                            })
                        })
                        .collect(),
                );
            } else if bans.is_empty() {
                println!("no ban now");
            } else {
                for b in &bans {
                    println!(
                        "{} {} until {} (ban {}, {})",
                        b.subject_kind,
                        b.subject,
                        format_time(b.banned_until),
                        b.ban_count,
                        b.reason
                    );
                }
            }
        }
        DefenderCommand::Unban { subject } => {
            admin.unban(&subject).await?;
            println!("{subject}: ban lifted");
        }
    }
    Ok(())
}
