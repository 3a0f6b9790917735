//! The command line: one module per command group, `output` for how results print, one
//! `Failure` type with its exit code. `main.rs` only parses the arguments and runs.

mod access;
mod affiliates;
mod audit;
mod contract;
mod defender;
mod documents;
mod failure;
mod ingest;
mod keys;
mod org;
mod outbox;
mod output;
mod publish;
mod quota;
mod retention;
mod staff;
mod storage;
mod template;
mod uploads;
mod user;
mod values;

pub use failure::Failure;
use prelude::*;

/// What every command module uses.
mod prelude {
    pub use anyhow::Context;
    pub use clap::{Args, Parser, Subcommand};
    pub use pension_gateway::admin::{Admin, AdminError, PublishOutcome, SheetOutcome, UserRequest};
    pub use pension_gateway::config::Settings;
    pub use pension_gateway::domain::{
        ContractNumber, EmailAddress, EnterpriseNumber, KindName, Language, Login, Profile, Scope, Year,
    };
    pub use pension_gateway::registry::{ContractRecord, OrganisationRecord, UploadRecord, UserChanges, UserRecord};
    pub use pension_gateway::startup::{self, Application};
    pub use pension_gateway::{audit, demo};
    pub use serde_json::json;
    pub use std::io::{BufRead, IsTerminal};
    pub use std::path::{Path, PathBuf};
    pub use time::Date;

    pub use super::access::AccessCommand;
    pub use super::affiliates::AffiliatesCommand;
    pub use super::audit::AuditCommand;
    pub use super::contract::ContractCommand;
    pub use super::defender::DefenderCommand;
    pub use super::documents::DocumentsCommand;
    pub use super::failure::{invalid, Failure};
    pub use super::ingest::IngestCommand;
    pub use super::keys::KeysCommand;
    pub use super::org::OrgCommand;
    pub use super::outbox::OutboxCommand;
    pub use super::output::*;
    pub use super::publish::PublishArgs;
    pub use super::quota::QuotaCommand;
    pub use super::retention::RetentionCommand;
    pub use super::staff::StaffCommand;
    pub use super::storage::StorageCommand;
    pub use super::template::TemplateCommand;
    pub use super::uploads::UploadsCommand;
    pub use super::user::UserCommand;
    pub use super::values::*;
    pub use super::{admin, mail_outbox, read_password};
}

#[derive(Parser)]
#[command(name = "pension-gateway", version, about = "SFTP gateway of the Extranet Pension Complémentaire")]
pub struct Cli {
    /// Configuration file (keys not in it keep their embedded defaults).
    #[arg(long, global = true, env = "PENSION_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the data folder, host key and database schema (safe to run again).
    Init,
    /// Run the SFTP server until SIGTERM or Ctrl-C.
    Serve,
    /// Seed a demonstration organisation into a throw-away data folder and serve it.
    Demo,
    /// Organisations (employers).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Contracts of organisations.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Extranet users of organisations.
    #[command(subcommand)]
    User(UserCommand),
    /// The insurer's staff.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Publish files as documents of a contract.
    Publish(PublishArgs),
    /// Files received in the inboxes.
    #[command(subcommand)]
    Uploads(UploadsCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The brute-force defender's bans.
    #[command(subcommand)]
    Defender(DefenderCommand),
    /// Published documents and who downloaded them.
    #[command(subcommand)]
    Documents(DocumentsCommand),
    /// Affiliates recorded from accepted uploads.
    #[command(subcommand)]
    Affiliates(AffiliatesCommand),
    /// Processing of uploaded spreadsheets.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// User sheets dropped by master users into /access/requests/.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Pre-filled workbooks sent to contracts.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// The age keys that seal stored objects.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The stored objects themselves.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Outgoing mail: what is pending, sent or failed.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// What an organisation stores and uploads against its quotas.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Deleting the stored files of processed uploads whose retention ended.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Reads one uploaded spreadsheet from standard input, confined: the gateway runs this
    /// itself for every file it reads.
    #[command(name = "read-spreadsheet", hide = true)]
    ReadSpreadsheet {
        #[arg(long)]
        memory_mib: u64,
        #[arg(long)]
        cpu_seconds: u64,
    },
}

pub fn mail_outbox(
    settings: &Settings,
    registry: pension_gateway::registry::Registry,
) -> Result<pension_gateway::notify::Outbox, Failure> {
    Ok(pension_gateway::notify::Outbox::new(registry, &settings.notify).context("cannot set up the mail transport")?)
}

pub fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

pub async fn admin(settings: &Settings) -> Result<Admin, Failure> {
    Ok(startup::admin(settings, operator()).await.context("cannot open the gateway's state")?)
}

pub fn read_password(from_stdin: bool) -> Result<Option<String>, Failure> {
    if !from_stdin {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(invalid("--password-stdin: standard input held no password"));
    }
    Ok(Some(password))
}

/// Runs one command.
pub async fn run(command: Command, settings: Settings) -> Result<(), Failure> {
    match command {
        Command::Init => {
            let application = Application::build(&settings).await.context("initialisation failed")?;
            let address = application.local_addr();
            let store = application.gateway().storage().clone();
            drop(application);
            println!("data folder ready: {}", settings.data_dir.display());
            println!("host key: {}", settings.server.host_key.display());
            println!("objects: {}", store.describe());
            match settings.storage.encryption.identity_files.first() {
                Some(identity) if store.keys().seals_new_objects() => {
                    println!("objects are sealed with age; identity: {} (back it up)", identity.display());
                    for recipient in store.keys().recipient_strings() {
                        println!("  recipient: {recipient}");
                    }
                }
                _ => println!("objects are NOT encrypted (storage.encryption.enabled = false)"),
            }
            println!("listen address checked: {address}");
        }
        Command::Serve => {
            let application = Application::build(&settings).await.context("cannot start the gateway")?;
            tracing::info!(address = %application.local_addr(), "SFTP server listening");
            application.run_until(startup::termination_signal()).await;
        }
        Command::Demo => demo::run(settings).await.context("the demo could not start")?,
        Command::ReadSpreadsheet { .. } => return Err(invalid("read-spreadsheet is run by the gateway itself")),
        Command::Publish(args) => publish::publish(&settings, args).await?,
        Command::Quota(command) => quota::run(command, settings).await?,
        Command::Retention(command) => retention::run(command, settings).await?,
        Command::Outbox(command) => outbox::run(command, settings).await?,
        Command::Keys(command) => keys::run(command, settings).await?,
        Command::Storage(command) => storage::run(command, settings).await?,
        Command::Template(command) => template::run(command, settings).await?,
        Command::Access(command) => access::run(command, settings).await?,
        Command::Documents(command) => documents::run(command, settings).await?,
        Command::Affiliates(command) => affiliates::run(command, settings).await?,
        Command::Ingest(command) => ingest::run(command, settings).await?,
        Command::Org(command) => org::run(command, settings).await?,
        Command::Contract(command) => contract::run(command, settings).await?,
        Command::User(command) => user::run(command, settings).await?,
        Command::Staff(command) => staff::run(command, settings).await?,
        Command::Uploads(command) => uploads::run(command, settings).await?,
        Command::Audit(command) => audit::run(command, settings).await?,
        Command::Defender(command) => defender::run(command, settings).await?,
    }
    Ok(())
}
