//! `documents`: published documents and their receipts.

use super::prelude::*;

#[derive(Subcommand)]
pub enum DocumentsCommand {
    List {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        contract: ContractNumber,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: DocumentsCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        DocumentsCommand::List { contract, json } => {
            let list = admin(&settings).await?.documents(&contract).await?;
            if json {
                print_json(
                    list.iter()
                        .map(|(d, receipts)| {
                            json!({
                                "kind": d.kind, "year": d.year.map(|y| y.get()), "file_name": d.file_name, "size": d.size,
                                "sha256": d.sha256, "published_by": d.published_by,
                                "published_at": format_time(d.published_at),
                                "downloads": receipts.iter().map(|(login, at)| json!({ "login": login, "first_at": format_time(*at) })).collect::<Vec<_>>(),
                            })
                        })
                        .collect(),
                );
            } else {
                for (d, receipts) in &list {
                    let year = d.year.map(|y| format!("{y}/")).unwrap_or_default();
                    let who: Vec<String> =
                        receipts.iter().map(|(login, at)| format!("{login} {}", format_time(*at))).collect();
                    println!(
                        "{}/{year}{}  {} bytes  downloaded by: {}",
                        d.kind,
                        d.file_name,
                        d.size,
                        if who.is_empty() { "-".into() } else { who.join(", ") }
                    );
                }
            }
        }
    }
    Ok(())
}
