//! `quota`: what an organisation uses of its quotas.

use super::prelude::*;

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Stored inbox bytes against quota.organisation_bytes, and each user's uploads today
    /// against quota.user_daily_bytes.
    Show {
        #[arg(long, value_name = "ENTERPRISE_NUMBER", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: QuotaCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        QuotaCommand::Show { org, json } => {
            let usage = admin(&settings).await?.quota_usage(&org, settings.quota).await?;
            let left = |limit: u64, used: u64| limit.saturating_sub(used);
            if json {
                let users: Vec<_> = usage
                    .users
                    .iter()
                    .map(|(login, today)| {
                        json!({ "login": login.as_str(), "uploaded_today": today,
                                "left_today": left(usage.limits.user_daily_bytes, *today) })
                    })
                    .collect();
                print_json(json!({
                    "organisation": usage.organisation.enterprise_number.to_string(),
                    "stored": usage.stored,
                    "organisation_limit": usage.limits.organisation_bytes,
                    "organisation_left": left(usage.limits.organisation_bytes, usage.stored),
                    "user_daily_limit": usage.limits.user_daily_bytes,
                    "users": users,
                }));
            } else {
                let human = pension_gateway::gateway::human_bytes;
                println!("{} {}", usage.organisation.enterprise_number, usage.organisation.name);
                println!(
                    "stored in inboxes: {} of {} ({} left)",
                    human(usage.stored),
                    human(usage.limits.organisation_bytes),
                    human(left(usage.limits.organisation_bytes, usage.stored))
                );
                println!("uploaded today (UTC), per user, of {} each:", human(usage.limits.user_daily_bytes));
                for (login, today) in &usage.users {
                    let remaining = human(left(usage.limits.user_daily_bytes, *today));
                    println!("  {:<24} {:>10}  ({remaining} left)", login.as_str(), human(*today));
                }
            }
        }
    }
    Ok(())
}
