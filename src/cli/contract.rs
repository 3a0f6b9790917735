//! `contract`: contracts and their categories.

use super::prelude::*;

#[derive(Subcommand)]
pub enum ContractCommand {
    Add {
        /// Enterprise number of the organisation.
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        number: ContractNumber,
        #[arg(long, default_value = "")]
        title: String,
        /// Personnel categories, separated by commas (EMPLOYES,OUVRIERS).
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
    },
    Modify {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        number: ContractNumber,
        /// Personnel categories, separated by commas; replaces the current ones.
        #[arg(long, value_delimiter = ',', required = true)]
        categories: Vec<String>,
    },
    List {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: Option<EnterpriseNumber>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: ContractCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        ContractCommand::Add { org, number, title, categories } => {
            let admin = admin(&settings).await?;
            let record = admin.add_contract(&org, &number, &title).await?;
            if !categories.is_empty() {
                admin.set_categories(&number, &categories).await?;
            }
            println!("contract {} added to organisation {org}", record.number);
        }
        ContractCommand::Modify { number, categories } => {
            admin(&settings).await?.set_categories(&number, &categories).await?;
            println!("contract {number}: categories {}", categories.join(","));
        }
        ContractCommand::List { org, json } => {
            let list = admin(&settings).await?.contracts(org.as_ref()).await?;
            if json {
                print_json(list.iter().map(contract_json).collect());
            } else {
                for c in &list {
                    println!("{}  {}", c.number, c.title);
                }
            }
        }
    }
    Ok(())
}
