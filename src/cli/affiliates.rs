//! `affiliates`: who is affiliated to a contract.

use super::prelude::*;

#[derive(Subcommand)]
pub enum AffiliatesCommand {
    List {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        contract: ContractNumber,
        /// Show national numbers in full (recorded in the audit trail).
        #[arg(long)]
        reveal: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AffiliatesCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        AffiliatesCommand::List { contract, reveal, json } => {
            let list = admin(&settings).await?.affiliates(&contract, reveal).await?;
            let niss = |a: &pension_gateway::registry::AffiliateRecord| {
                if reveal {
                    a.niss.reveal().to_string()
                } else {
                    a.niss.masked()
                }
            };
            if json {
                print_json(
                    list.iter()
                        .map(|a| {
                            json!({
                                "niss": niss(a), "last_name": a.last_name, "first_name": a.first_name,
                                "birth_date": a.birth_date, "category": a.category,
                                "affiliation_date": a.affiliation_date, "exit_date": a.exit_date,
                                "salary_fte_cents": a.salary_fte_cents, "occupation_rate": a.occupation_rate,
                            })
                        })
                        .collect(),
                );
            } else {
                for a in &list {
                    println!(
                        "{:<16} {:<20} {:<16} {:<10} since {}{}",
                        niss(a),
                        a.last_name,
                        a.first_name,
                        a.category,
                        a.affiliation_date,
                        a.exit_date.as_ref().map(|d| format!(" left {d}")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
