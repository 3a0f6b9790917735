//! The `pension-gateway` command: the server and its administration.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid input.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use time::Date;

use pension_gateway::admin::{Admin, AdminError, PublishOutcome, SheetOutcome, UserRequest};
use pension_gateway::config::Settings;
use pension_gateway::domain::{
    ContractNumber, EmailAddress, EnterpriseNumber, KindName, Language, Login, Profile, Scope,
};
use pension_gateway::registry::{ContractRecord, OrganisationRecord, UploadRecord, UserChanges, UserRecord};
use pension_gateway::startup::{self, Application};
use pension_gateway::{audit, demo, telemetry};

#[derive(Parser)]
#[command(name = "pension-gateway", version, about = "SFTP gateway of the Extranet Pension Complémentaire")]
struct Cli {
    /// Configuration file (keys not in it keep their embedded defaults).
    #[arg(long, global = true, env = "PENSION_GATEWAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

#[derive(Subcommand)]
enum QuotaCommand {
    /// Stored inbox bytes against quota.organisation_bytes, and each user's uploads today
    /// against quota.user_daily_bytes.
    Show {
        #[arg(long, value_name = "ENTERPRISE_NUMBER", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete now the stored files whose retention ended (serve does this every hour).
    Run,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Messages, newest first (never their content).
    List {
        /// Only messages in this state: pending, failed or sent.
        #[arg(long, value_parser = ["pending", "failed", "sent"])]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Try now every message that is due (serve does this on its own).
    Deliver,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new age identity (mode 0600) and print its public key, to rotate to it.
    Generate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Re-seal every stored object to the current recipients (resumable; keep the old identity
    /// in storage.encryption.identity_files until it ends).
    Rotate,
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Read every recorded object whole and check its size and SHA-256; exit 1 if any is
    /// missing, unreadable or altered.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
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

#[derive(Subcommand)]
enum AccessCommand {
    /// List the requests, newest first.
    Requests {
        #[arg(long)]
        json: bool,
    },
    /// Apply a pending request's user sheet.
    Approve { id: i64 },
    /// Refuse a pending request; the master users are told why.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum DocumentsCommand {
    List {
        #[arg(long, value_name = "C", value_parser = ContractNumber::parse)]
        contract: ContractNumber,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AffiliatesCommand {
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

#[derive(Subcommand)]
enum IngestCommand {
    /// Process an upload again (after a failure).
    Retry { upload_id: i64 },
}

#[derive(Subcommand)]
enum OrgCommand {
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

#[derive(Subcommand)]
enum ContractCommand {
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

#[derive(Args)]
struct UserFields {
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
    email: Option<EmailAddress>,
    #[arg(long, value_parser = parse_profile)]
    profile: Option<Profile>,
    /// `all`, or contract numbers separated by commas.
    #[arg(long, value_name = "all|C1,C2", value_parser = Scope::parse)]
    contracts: Option<Scope>,
    #[arg(long, value_parser = parse_language)]
    language: Option<Language>,
    /// A file of OpenSSH public keys (repeatable).
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    Add {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[command(flatten)]
        fields: UserFields,
        /// The organisation's master user.
        #[arg(long)]
        master: bool,
        /// Someone from outside the organisation: needs --expires.
        #[arg(long)]
        external: bool,
        /// Last day of access (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expires: Option<Date>,
    },
    Modify {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[command(flatten)]
        fields: UserFields,
        #[arg(long)]
        master: Option<bool>,
        #[arg(long)]
        external: Option<bool>,
        #[arg(long, value_parser = parse_date)]
        expires: Option<Date>,
    },
    Revoke {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
    },
    /// Apply a user sheet (ADD / MODIFY / REMOVE rows) for an organisation.
    Apply {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
    },
    /// Generate a new password and send it to the user's own address (never shown).
    ResetPassword {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
    },
    List {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: Option<EnterpriseNumber>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    Add {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
        email: EmailAddress,
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Args)]
struct PublishArgs {
    #[arg(long, value_name = "C", value_parser = ContractNumber::parse, required_unless_present = "manifest")]
    contract: Option<ContractNumber>,
    #[arg(long, value_parser = KindName::parse, required_unless_present = "manifest")]
    kind: Option<KindName>,
    /// The year, for kinds filed per year (pension sheets).
    #[arg(long, value_name = "YEAR", value_parser = parse_year)]
    period: Option<u16>,
    /// A CSV file with the columns file, contract, kind, period (for nightly runs); file paths
    /// are relative to the manifest's folder.
    #[arg(long, value_name = "FILE.csv", conflicts_with_all = ["contract", "kind", "period", "files"])]
    manifest: Option<PathBuf>,
    #[arg(value_name = "FILE", required_unless_present = "manifest")]
    files: Vec<PathBuf>,
}

/// One document to publish.
struct PublishItem {
    file: PathBuf,
    contract: ContractNumber,
    kind: KindName,
    period: Option<u16>,
}

/// Reads a publishing manifest; a line that does not parse is reported and skipped.
fn read_manifest(path: &Path) -> Result<(Vec<PublishItem>, Vec<String>), Failure> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: no header line", path.display()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(file_at), Some(contract_at), Some(kind_at)) = (column("file"), column("contract"), column("kind")) else {
        return Err(invalid(format!(
            "{}: the header must name the columns file, contract, kind (and period)",
            path.display()
        )));
    };
    let period_at = column("period");
    let (mut items, mut problems) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                problems.push(format!("line {line}: {error}"));
                continue;
            }
        };
        let field = |at: usize| record.get(at).unwrap_or("").to_string();
        let parsed = (|| -> Result<PublishItem, String> {
            let contract = ContractNumber::parse(&field(contract_at)).map_err(|e| e.to_string())?;
            let kind = KindName::parse(&field(kind_at)).map_err(|e| e.to_string())?;
            let period = match period_at.map(field).filter(|p| !p.is_empty()) {
                Some(p) => Some(parse_year(&p)?),
                None => None,
            };
            let file = field(file_at);
            if file.is_empty() {
                return Err("the file column is empty".into());
            }
            Ok(PublishItem { file: base.join(file), contract, kind, period })
        })();
        match parsed {
            Ok(item) => items.push(item),
            Err(message) => problems.push(format!("line {line}: {message}")),
        }
    }
    Ok((items, problems))
}

#[derive(Subcommand)]
enum UploadsCommand {
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

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no event was altered or removed.
    Verify,
    /// Print events, oldest first.
    Export {
        /// From this date on (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        since: Option<Date>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse().map_err(|e: pension_gateway::domain::InvalidIdentifier| e.to_string())
}

fn parse_language(text: &str) -> Result<Language, String> {
    text.parse().map_err(|e: pension_gateway::domain::InvalidIdentifier| e.to_string())
}

fn parse_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(|_| format!("{text:?} is not a date in the form YYYY-MM-DD"))
}

fn parse_year(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|y| (1900..=2999).contains(y) && text.len() == 4)
        .ok_or_else(|| format!("{text:?} is not a year such as 2026"))
}

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        Self { code: error.exit_code(), error: error.into() }
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure { code: 2, error: anyhow::anyhow!(message.into()) }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The reading child touches nothing but its standard input: no configuration, no log
    // set-up, no runtime.
    if let Command::ReadSpreadsheet { memory_mib, cpu_seconds } = cli.command {
        return ExitCode::from(pension_gateway::ingest::reader_process::run_child(memory_mib, cpu_seconds));
    }
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// `progress(done, total)` as a line redrawn on a terminal; nothing otherwise.
fn progress_line(verb: &'static str) -> impl FnMut(usize, usize) {
    let on_terminal = std::io::stderr().is_terminal();
    move |done, total| {
        if on_terminal && (done == total || done % 10 == 0) {
            eprint!("\r{verb} {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    }
}

async fn rotate_keys(settings: &Settings) -> Result<(), Failure> {
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

async fn verify_storage(settings: &Settings, json: bool) -> Result<(), Failure> {
    let (registry, storage) = startup::open_state(settings).await.context("cannot open the gateway's state")?;
    let report = pension_gateway::storage_check::verify(&registry, &storage, progress_line("checked"))
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

fn mail_outbox(
    settings: &Settings,
    registry: pension_gateway::registry::Registry,
) -> Result<pension_gateway::notify::Outbox, Failure> {
    Ok(pension_gateway::notify::Outbox::new(registry, &settings.notify).context("cannot set up the mail transport")?)
}

fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

async fn admin(settings: &Settings) -> Result<Admin, Failure> {
    let (registry, storage) = startup::open_state(settings).await.context("cannot open the gateway's state")?;
    let outbox = mail_outbox(settings, registry.clone())?;
    Ok(Admin::new(registry, storage, settings.layout.clone(), operator()).with_outbox(outbox).with_ingest(
        settings.ingest.schemas.clone(),
        pension_gateway::ingest::reader_process::ReaderProcess::new(settings.ingest.reader.clone()),
    ))
}

fn read_password(from_stdin: bool) -> Result<Option<String>, Failure> {
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

fn print_json(value: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
}

fn format_time(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn organisation_json(o: &OrganisationRecord) -> serde_json::Value {
    json!({
        "enterprise_number": o.enterprise_number.as_str(),
        "name": o.name,
        "notify_email": o.notify_email.as_str(),
        "status": o.status.as_str(),
        "created_at": format_time(o.created_at),
    })
}

fn contract_json(c: &ContractRecord) -> serde_json::Value {
    json!({ "number": c.number.as_str(), "title": c.title })
}

fn user_json(u: &UserRecord) -> serde_json::Value {
    json!({
        "login": u.login.as_str(),
        "name": u.name,
        "email": u.email.as_str(),
        "language": u.language.as_str(),
        "profile": u.profile.as_str(),
        "contracts": u.scope.to_string(),
        "master": u.master,
        "external": u.external,
        "expires_on": u.expires_on.map(|d| d.to_string()),
        "status": u.status.as_str(),
        "last_login_at": u.last_login_at.map(format_time),
    })
}

fn upload_json(u: &UploadRecord) -> serde_json::Value {
    json!({
        "id": u.id,
        "contract": u.contract.as_str(),
        "kind": u.kind,
        "file_name": u.file_name,
        "uploader": u.uploader,
        "size": u.size,
        "sha256": u.sha256,
        "status": u.status.as_str(),
        "received_at": format_time(u.received_at),
        "rows": u.data_rows,
        "errors": u.error_count,
        "warnings": u.warning_count,
        "processed_at": u.processed_at.map(format_time),
    })
}

async fn run(command: Command, settings: Settings) -> Result<(), Failure> {
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
        Command::Keys(KeysCommand::Generate { file }) => {
            let recipient = pension_gateway::storage::sealing::generate_identity_file(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            println!("identity written to {} (mode 0600)", file.display());
            println!("public key: {recipient}");
            println!("to rotate: list it first in storage.encryption.identity_files, keep the old one after it, restart serve (so that new objects are sealed to it), then run `pension-gateway keys rotate`");
        }
        Command::Keys(KeysCommand::Rotate) => rotate_keys(&settings).await?,
        Command::Storage(StorageCommand::Verify { json }) => verify_storage(&settings, json).await?,
        Command::Outbox(OutboxCommand::List { status, limit, json }) => {
            let (registry, _) = startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let messages = registry.outbox(status.as_deref(), limit.max(1)).await.context("cannot read the outbox")?;
            if json {
                print_json(serde_json::Value::Array(
                    messages
                        .iter()
                        .map(|m| {
                            serde_json::json!({
                                "id": m.id, "status": m.status, "purpose": m.purpose, "recipient": m.recipient,
                                "subject": m.subject, "attempts": m.attempts, "last_error": m.last_error,
                                "created_at": format_time(m.created_at),
                                "next_attempt_at": (m.status == "pending").then(|| format_time(m.next_attempt_at)),
                                "sent_at": m.sent_at.map(format_time),
                            })
                        })
                        .collect(),
                ));
            } else {
                for m in &messages {
                    let when = match m.status.as_str() {
                        "sent" => format!("sent {}", m.sent_at.map(format_time).unwrap_or_default()),
                        "pending" => format!("next attempt {}", format_time(m.next_attempt_at)),
                        _ => "given up".to_string(),
                    };
                    println!(
                        "#{:<6} {:<8} {:<20} {:<32} attempts {}  {when}{}",
                        m.id,
                        m.status,
                        m.purpose,
                        m.recipient,
                        m.attempts,
                        m.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default()
                    );
                }
            }
        }
        Command::Outbox(OutboxCommand::Deliver) => {
            let (registry, _) = startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let outbox = mail_outbox(&settings, registry)?;
            let round = outbox.deliver_due(false).await.context("cannot read the outbox")?;
            println!("{} sent, {} to retry later, {} failed", round.sent, round.deferred, round.failed);
        }
        Command::Serve => {
            let application = Application::build(&settings).await.context("cannot start the gateway")?;
            tracing::info!(address = %application.local_addr(), "SFTP server listening");
            application.run_until(startup::termination_signal()).await;
        }
        Command::Demo => demo::run(settings).await.context("the demo could not start")?,
        Command::Quota(QuotaCommand::Show { org, json }) => {
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
        Command::Retention(RetentionCommand::Run) => {
            let (registry, storage) =
                startup::open_state(&settings).await.context("cannot open the gateway's state")?;
            let (audit_log, writer) = audit::AuditLog::start(registry.clone());
            let now = pension_gateway::registry::now_seconds();
            let pass = pension_gateway::retention::run_pass(&registry, &storage, &audit_log, settings.retention, now)
                .await
                .context("the retention pass could not finish")?;
            audit_log.close();
            let _ = writer.await;
            println!("{} file(s) deleted, {} could not be deleted", pass.removed, pass.failed);
            if pass.failed > 0 {
                return Err(Failure {
                    code: 1,
                    error: anyhow::anyhow!("some files could not be deleted: see the log"),
                });
            }
        }
        Command::ReadSpreadsheet { .. } => return Err(invalid("read-spreadsheet is run by the gateway itself")),
        Command::Org(OrgCommand::Add { enterprise_number, name, notify_email, language }) => {
            let record = admin(&settings)
                .await?
                .add_organisation_with_language(&enterprise_number, &name, &notify_email, language)
                .await?;
            println!("organisation {} ({}) added", record.enterprise_number, record.name);
        }
        Command::Org(OrgCommand::List { json }) => {
            let list = admin(&settings).await?.organisations().await?;
            if json {
                print_json(list.iter().map(organisation_json).collect());
            } else {
                for o in &list {
                    println!("{}  {:<8} {}", o.enterprise_number, o.status.as_str(), o.name);
                }
            }
        }
        Command::Org(OrgCommand::Convention { org, signed, notify_email }) => {
            let revoked = admin(&settings).await?.record_convention(&org, signed, &notify_email).await?;
            println!(
                "convention of {signed} recorded for {org}: {revoked} earlier accesses revoked; grant the new ones"
            );
        }
        Command::User(UserCommand::Apply { file, org }) => {
            match admin(&settings).await?.apply_user_sheet(&org, &file).await? {
                SheetOutcome::Applied(changes) => {
                    for change in &changes {
                        println!("{change}");
                    }
                    println!("user sheet applied: {} change(s)", changes.len());
                }
                SheetOutcome::Rejected(problems) => {
                    for (row, column, message) in &problems {
                        let place = match (row, column) {
                            (Some(row), Some(column)) => format!("row {row}, {column}"),
                            (Some(row), None) => format!("row {row}"),
                            _ => "file".to_string(),
                        };
                        eprintln!("{place}: {message}");
                    }
                    return Err(invalid(format!(
                        "the user sheet was not applied: {} problem(s), nothing changed",
                        problems.len()
                    )));
                }
            }
        }
        Command::User(UserCommand::ResetPassword { login }) => {
            admin(&settings).await?.reset_password(&login).await?;
            println!("a new password for {login} was sent to the user's address");
        }
        Command::Contract(ContractCommand::Add { org, number, title, categories }) => {
            let admin = admin(&settings).await?;
            let record = admin.add_contract(&org, &number, &title).await?;
            if !categories.is_empty() {
                admin.set_categories(&number, &categories).await?;
            }
            println!("contract {} added to organisation {org}", record.number);
        }
        Command::Contract(ContractCommand::Modify { number, categories }) => {
            admin(&settings).await?.set_categories(&number, &categories).await?;
            println!("contract {number}: categories {}", categories.join(","));
        }
        Command::Affiliates(AffiliatesCommand::List { contract, reveal, json }) => {
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
        Command::Access(AccessCommand::Requests { json }) => {
            let list = admin(&settings).await?.access_requests().await?;
            if json {
                print_json(
                    list.iter()
                        .map(|r| {
                            json!({
                                "id": r.id, "organisation_id": r.organisation_id, "file_name": r.file_name,
                                "status": r.status, "problems": r.problems, "created_at": format_time(r.created_at),
                                "decided_by": r.decided_by, "reason": r.reason,
                            })
                        })
                        .collect(),
                );
            } else {
                for r in &list {
                    println!(
                        "{:>5}  {:<9} {:>3} problem(s)  {}  {}",
                        r.id,
                        r.status,
                        r.problems,
                        format_time(r.created_at),
                        r.file_name
                    );
                }
            }
        }
        Command::Access(AccessCommand::Approve { id }) => {
            match admin(&settings).await?.approve_access_request(id).await? {
                SheetOutcome::Applied(changes) => {
                    for change in &changes {
                        println!("{change}");
                    }
                    println!("access request {id} approved: {} change(s)", changes.len());
                }
                SheetOutcome::Rejected(problems) => {
                    for (row, column, message) in &problems {
                        eprintln!(
                            "row {}, {}: {message}",
                            row.map(|r| r.to_string()).unwrap_or_default(),
                            column.clone().unwrap_or_default()
                        );
                    }
                    return Err(invalid(format!(
                        "access request {id} no longer passes its checks: marked invalid, nothing changed"
                    )));
                }
            }
        }
        Command::Access(AccessCommand::Reject { id, reason }) => {
            admin(&settings).await?.reject_access_request(id, &reason).await?;
            println!("access request {id} rejected");
        }
        Command::Template(TemplateCommand::AnnualAdjustment { contract, date, publish, output }) => {
            let (name, workbook) = admin(&settings).await?.annual_adjustment_template(&contract, date, publish).await?;
            if let Some(path) = &output {
                std::fs::write(path, &workbook).with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("{name}{}", if publish { " published in documents/annual-adjustment/" } else { "" });
        }
        Command::Documents(DocumentsCommand::List { contract, json }) => {
            let list = admin(&settings).await?.documents(&contract).await?;
            if json {
                print_json(
                    list.iter()
                        .map(|(d, receipts)| {
                            json!({
                                "kind": d.kind, "year": d.year, "file_name": d.file_name, "size": d.size,
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
        Command::Ingest(IngestCommand::Retry { upload_id }) => {
            admin(&settings).await?.retry_ingestion(upload_id).await?;
            println!("upload {upload_id} queued again");
        }
        Command::Contract(ContractCommand::List { org, json }) => {
            let list = admin(&settings).await?.contracts(org.as_ref()).await?;
            if json {
                print_json(list.iter().map(contract_json).collect());
            } else {
                for c in &list {
                    println!("{}  {}", c.number, c.title);
                }
            }
        }
        Command::User(UserCommand::Add { org, login, fields, master, external, expires }) => {
            if external && expires.is_none() {
                return Err(invalid("an external user needs --expires YYYY-MM-DD (the end of the mission)"));
            }
            let missing = |what: &str| invalid(format!("user add needs --{what}"));
            let mut password = read_password(fields.password_stdin)?;
            let generated = password.is_none() && fields.public_keys.is_empty();
            if generated {
                password = Some(pension_gateway::passwords::generate_password());
            }
            let request = UserRequest {
                organisation: org,
                login,
                name: fields.name.ok_or_else(|| missing("name"))?,
                email: fields.email.ok_or_else(|| missing("email"))?,
                language: fields.language.unwrap_or(Language::Fr),
                profile: fields.profile.ok_or_else(|| missing("profile"))?,
                scope: fields.contracts.ok_or_else(|| missing("contracts"))?,
                master,
                external_until: if external { expires } else { None },
                public_key_files: fields.public_keys,
                public_key_lines: Vec::new(),
                password: password.clone(),
            };
            let admin = admin(&settings).await?;
            let user = admin.add_user(&request).await?;
            println!("user {} added ({}, contracts {})", user.login, user.profile, user.scope);
            if let (true, Some(password)) = (generated, password) {
                admin.send_credentials(&user.email, user.language, &user.login, &password).await?;
                println!("a generated password was mailed to the user's address");
            }
        }
        Command::User(UserCommand::Modify { login, fields, master, external, expires }) => {
            let external = match (external, expires) {
                (Some(true), None) => return Err(invalid("an external user needs --expires YYYY-MM-DD")),
                (Some(flag), expires) => Some((flag, if flag { expires } else { None })),
                (None, Some(date)) => Some((true, Some(date))),
                (None, None) => None,
            };
            let changes = UserChanges {
                name: fields.name,
                email: fields.email,
                language: fields.language,
                profile: fields.profile,
                scope: fields.contracts,
                master,
                external,
                password_hash: None,
            };
            let password = read_password(fields.password_stdin)?;
            let user =
                admin(&settings).await?.modify_user(&login, changes, password.as_deref(), &fields.public_keys).await?;
            println!("user {} changed ({}, contracts {})", user.login, user.profile, user.scope);
        }
        Command::User(UserCommand::Revoke { login }) => {
            let user = admin(&settings).await?.revoke_user(&login).await?;
            println!("user {} revoked", user.login);
        }
        Command::User(UserCommand::List { org, json }) => {
            let list = admin(&settings).await?.users(org.as_ref()).await?;
            if json {
                print_json(list.iter().map(user_json).collect());
            } else {
                for u in &list {
                    println!(
                        "{:<24} {:<8} {:<13} {}{}",
                        u.login.as_str(),
                        u.status.as_str(),
                        u.profile.as_str(),
                        u.scope,
                        u.expires_on.map(|d| format!(" until {d}")).unwrap_or_default()
                    );
                }
            }
        }
        Command::Staff(StaffCommand::Add { login, name, email, public_keys, password_stdin }) => {
            let mut password = read_password(password_stdin)?;
            let generated = password.is_none() && public_keys.is_empty();
            if generated {
                password = Some(pension_gateway::passwords::generate_password());
            }
            let staff =
                admin(&settings).await?.add_staff(&login, &name, &email, password.as_deref(), &public_keys).await?;
            println!("staff member {} added", staff.login);
            if let (true, Some(password)) = (generated, password) {
                println!("password (shown once): {password}");
            }
        }
        Command::Publish(args) => publish(&settings, args).await?,
        Command::Uploads(UploadsCommand::List { contract, json }) => {
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
                        audit::mask_personal_numbers(&u.file_name),
                        counts
                    );
                }
            }
        }
        Command::Uploads(UploadsCommand::Show { id, json }) => {
            let upload = admin(&settings).await?.upload(id).await?;
            if json {
                print_json(upload_json(&upload));
            } else {
                for (key, value) in upload_json(&upload).as_object().into_iter().flatten() {
                    println!("{key:<12} {}", value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()));
                }
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            let admin = admin(&settings).await?;
            match audit::verify_chain(admin.registry()).await.context("cannot read the audit trail")? {
                Ok(count) => println!("audit trail intact: {count} events"),
                Err(id) => {
                    return Err(Failure {
                        code: 1,
                        error: anyhow::anyhow!("the audit trail is broken at event {id}: it was altered or removed"),
                    })
                }
            }
        }
        Command::Audit(AuditCommand::Export { since, json }) => {
            let admin = admin(&settings).await?;
            let since_ms = since.map(|d| d.midnight().assume_utc().unix_timestamp() * 1000).unwrap_or(i64::MIN);
            let events = admin.registry().audit_events(since_ms).await.context("cannot read the audit trail")?;
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|r| {
                    let e = &r.event;
                    json!({
                        "id": r.id, "at_ms": e.at_ms, "actor": e.actor, "organisation_id": e.organisation_id,
                        "action": e.action, "path": e.path, "outcome": e.outcome, "reason": e.reason,
                        "remote_addr": e.remote_addr, "session_id": e.session_id, "bytes": e.bytes,
                        "sha256": e.sha256, "hash": r.hash,
                    })
                })
                .collect();
            if json {
                print_json(rows.into());
            } else {
                for r in &events {
                    let e = &r.event;
                    println!(
                        "{} {} {} {} {} {}",
                        format_time(e.at_ms / 1000),
                        e.actor,
                        e.action,
                        e.outcome,
                        e.path.as_deref().unwrap_or("-"),
                        e.reason.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}

async fn publish(settings: &Settings, args: PublishArgs) -> Result<(), Failure> {
    let admin = admin(settings).await?;
    let (items, problems) = match &args.manifest {
        Some(manifest) => read_manifest(manifest)?,
        None => {
            let (Some(contract), Some(kind)) = (args.contract.clone(), args.kind.clone()) else {
                return Err(invalid("publish needs --contract and --kind, or --manifest"));
            };
            let items = args
                .files
                .iter()
                .map(|file| PublishItem {
                    file: file.clone(),
                    contract: contract.clone(),
                    kind: kind.clone(),
                    period: args.period,
                })
                .collect();
            (items, Vec::new())
        }
    };
    for problem in &problems {
        eprintln!("{problem}");
    }
    let single = items.len() == 1 && problems.is_empty() && args.manifest.is_none();
    let show_progress = std::io::stderr().is_terminal() && items.len() > 1;
    let (mut published, mut unchanged, mut failed) = (0usize, 0usize, problems.len());
    let mut digest = pension_gateway::notify::Published::default();
    for (index, item) in items.iter().enumerate() {
        match admin.publish(&item.contract, &item.kind, item.period, &item.file).await {
            Ok(PublishOutcome::Published { replaced }) => {
                published += 1;
                digest.add(&item.contract, item.kind.as_str());
                if !show_progress {
                    println!(
                        "{}: published{}",
                        item.file.display(),
                        if replaced { " (replaces the previous version)" } else { "" }
                    );
                }
            }
            Ok(PublishOutcome::Unchanged) => {
                unchanged += 1;
                if !show_progress {
                    println!("{}: unchanged (same content already published)", item.file.display());
                }
            }
            Err(error) if error.exit_code() == 2 && single => return Err(error.into()),
            Err(error) => {
                failed += 1;
                eprintln!("{}: {error:#}", item.file.display());
            }
        }
        if show_progress {
            eprint!("\rpublished {}/{}", index + 1, items.len());
        }
    }
    if show_progress {
        eprintln!();
    }
    let notified = admin.send_publication_digests(&digest).await?;
    println!("{published} published, {unchanged} unchanged, {failed} failed; {notified} organisation(s) notified");
    if failed > 0 {
        return Err(Failure { code: 1, error: anyhow::anyhow!("{failed} file(s) could not be published") });
    }
    Ok(())
}
