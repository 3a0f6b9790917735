//! `uploads`: what was uploaded and how it ended.

use super::prelude::*;

#[derive(Subcommand)]
pub enum UploadsCommand {
    List {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        contract: Option<ContractNumber>,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: UploadsCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        UploadsCommand::List { contract, json } => {
            let list = admin(&settings).await?.uploads(contract.as_ref()).await?;
            if json {
                print_json(list.iter().map(upload_json).collect());
            } else {
                for u in &list {
                    let counts = match (u.error_count, u.warning_count) {
                        (Some(e), Some(w)) => format!("{e} errors, {w} warnings"),
                        _ => String::new(),
                    };
                    println!(
                        "{:>6}  {:<10} {:<12} {:<18} {:>10}  {}  {}  {}",
                        u.id,
                        u.status.as_str(),
                        u.contract,
                        u.kind,
                        u.size,
                        format_time(u.received_at),
                        audit::mask_personal_numbers(u.file_name.as_str()),
                        counts
                    );
                }
            }
        }
        UploadsCommand::Show { id, json } => {
            let upload = admin(&settings).await?.upload(id).await?;
            if json {
                print_json(upload_json(&upload));
            } else {
                for (key, value) in upload_json(&upload).as_object().into_iter().flatten() {
                    println!("{key:<12} {}", value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()));
                }
            }
        }
    }
    Ok(())
}
