//! `template`: annual-adjustment templates.

use super::prelude::*;

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// The annual-adjustment workbook of a contract: one row per active affiliate.
    AnnualAdjustment {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        contract: ContractNumber,
        /// The adjustment date (usually 1 January).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        date: Date,
        /// Publish it in the contract's documents/annual-adjustment/ folder.
        #[arg(long)]
        publish: bool,
        /// Also write it to this file.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(command: TemplateCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        TemplateCommand::AnnualAdjustment { contract, date, publish, output } => {
            let (name, workbook) = admin(&settings).await?.annual_adjustment_template(&contract, date, publish).await?;
            if let Some(path) = &output {
                std::fs::write(path, &workbook).with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("{name}{}", if publish { " published in documents/annual-adjustment/" } else { "" });
        }
    }
    Ok(())
}
