//! `keys`: the age identities objects are sealed to.

use super::prelude::*;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Write a new age identity (mode 0600) and print its public key, to rotate to it.
    Generate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Re-seal every stored object to the current recipients (resumable; keep the old identity
    /// in storage.encryption.identity_files until it ends).
    Rotate,
}

pub async fn rotate_keys(settings: &Settings) -> Result<(), Failure> {
    let (_, storage) = startup::open_state(settings).await.context("cannot open the gateway's state")?;
    let state_file = settings.data_dir.join("keys-rotation.state");
    let summary = pension_gateway::storage::rotation::rotate(&storage, &state_file, progress_line("re-sealed"))
        .await
        .context("the rotation stopped; run it again to resume")?;
    println!(
        "{} object(s) re-sealed to {}, {} done by an earlier run, {} failed",
        summary.resealed,
        storage.keys().recipient_strings().join(", "),
        summary.already_done,
        summary.failed.len()
    );
    for (key, error) in &summary.failed {
        eprintln!("{key}: {error}");
    }
    if !summary.failed.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("some objects could not be re-sealed; keep the old identity configured"),
        });
    }
    println!(
        "every object is sealed to the current recipients: older identities may be removed from the configuration"
    );
    Ok(())
}

pub async fn run(command: KeysCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        KeysCommand::Generate { file } => {
            let recipient = pension_gateway::storage::sealing::generate_identity_file(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            println!("identity written to {} (mode 0600)", file.display());
            println!("public key: {recipient}");
            println!("to rotate: list it first in storage.encryption.identity_files, keep the old one after it, restart serve (so that new objects are sealed to it), then run `pension-gateway keys rotate`");
        }
        KeysCommand::Rotate => rotate_keys(&settings).await?,
    }
    Ok(())
}
