//! `org`: organisations and their conventions.

use super::prelude::*;

#[derive(Subcommand)]
pub enum OrgCommand {
    Add {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        enterprise_number: EnterpriseNumber,
        #[arg(long)]
        name: String,
        /// The convention's notification address (a distribution list is advised).
        #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
        notify_email: EmailAddress,
        /// The language of the mail sent to that address: fr, nl or en.
        #[arg(long, default_value = "fr")]
        language: Language,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Record a newly signed convention: every earlier access of the organisation is revoked.
    Convention {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        signed: Date,
        #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
        notify_email: EmailAddress,
    },
}

pub async fn run(command: OrgCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        OrgCommand::Add { enterprise_number, name, notify_email, language } => {
            let record = admin(&settings)
                .await?
                .add_organisation_with_language(&enterprise_number, &name, &notify_email, language)
                .await?;
            println!("organisation {} ({}) added", record.enterprise_number, record.name);
        }
        OrgCommand::List { json } => {
            let list = admin(&settings).await?.organisations().await?;
            if json {
                print_json(list.iter().map(organisation_json).collect());
            } else {
                for o in &list {
                    println!("{}  {:<8} {}", o.enterprise_number, o.status.as_str(), o.name);
                }
            }
        }
        OrgCommand::Convention { org, signed, notify_email } => {
            let revoked = admin(&settings).await?.record_convention(&org, signed, &notify_email).await?;
            println!(
                "convention of {signed} recorded for {org}: {revoked} earlier accesses revoked; grant the new ones"
            );
        }
    }
    Ok(())
}
