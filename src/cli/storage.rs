//! `storage`: checking every recorded object.

use super::prelude::*;

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Read every recorded object whole and check its size and SHA-256; exit 1 if any is
    /// missing, unreadable or altered.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub async fn verify_storage(settings: &Settings, json: bool) -> Result<(), Failure> {
    let (registry, storage) = startup::open_state(settings).await.context("cannot open the gateway's state")?;
    let report = pension_gateway::storage::verify::verify(&registry, &storage, progress_line("checked"))
        .await
        .context("the check could not finish")?;
    if json {
        let problems = report
            .problems
            .iter()
            .map(|(object, problem)| {
                serde_json::json!({"object": object.owner, "key": object.object_key, "problem": problem.to_string()})
            })
            .collect::<Vec<_>>();
        let unrecorded = report.unrecorded.iter().map(ToString::to_string).collect::<Vec<_>>();
        print_json(serde_json::json!({
            "checked": report.checked, "problems": problems, "unrecorded": unrecorded,
        }));
    } else {
        for (object, problem) in &report.problems {
            println!("{}  {}: {problem}", object.object_key, object.owner);
        }
        for key in &report.unrecorded {
            println!("{key}  not recorded in the registry (left by an interrupted write; harmless)");
        }
        println!("{} object(s) checked, {} problem(s)", report.checked, report.problems.len());
    }
    if !report.problems.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("{} object(s) missing, unreadable or altered", report.problems.len()),
        });
    }
    Ok(())
}

pub async fn run(command: StorageCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        StorageCommand::Verify { json } => verify_storage(&settings, json).await?,
    }
    Ok(())
}
