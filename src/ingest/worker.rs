//! The ingestion workers: each claims a queued upload, reads and validates it, writes its
//! reports, and applies an accepted file — reports, registry changes, upload status and job end
//! in one transaction. A worker that dies mid-way loses its lease and the job is taken over;
//! nothing is applied twice because the final transaction only commits for the job's holder.
//! Tests drive [`Ingestor::run_once`] step by step; `serve` runs [`Ingestor::run`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::domain::{AuditAction, AuditOutcome, KindName, Language};
use crate::layout::Layout;
use crate::notify::messages;
use crate::registry::{
    now_seconds, Completion, IngestJob, NewAuditEvent, NewMessage, NewReport, Registry, RegistryChange, RegistryError,
    UploadRecord,
};
use crate::storage::{ObjectKey, ObjectStore, Provisional, StorageError};

use super::finding_code::FindingCode;
use super::read::{LimitBreach, ReadError, ReadLimits, Sheet};
use super::reader_process::{ReaderError, ReaderProcess};
use super::report::{json_report, xlsx_report, Outcome, ReportInput};
use super::schema::{Action, Schema, Schemas};
use super::templates::{check_return, Meta};
use super::validate::{
    names_every_required_column, validate, ActiveAffiliate, Finding, RegistryFacts, ValidRow, Validation, Value,
};

/// A new salary more than this much above the previous one is flagged (DOMAIN.md §5).
const MAX_SALARY_INCREASE_PERCENT: i64 = 25;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the report")]
    Report(#[from] rust_xlsxwriter::XlsxError),
    #[error("no schema for uploads of kind {0}")]
    NoSchema(KindName),
    #[error(transparent)]
    Reader(#[from] ReaderError),
}

/// What a job ends with, before its reports are written.
struct Verdict<'a> {
    schema_version: Option<u32>,
    outcome: Outcome,
    validation: &'a Validation,
    sheet: Option<&'a Sheet>,
    duplicate_of: Option<&'a UploadRecord>,
    changes: Vec<RegistryChange>,
}

/// What one processed job ended as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub upload_id: i64,
    pub outcome: Outcome,
    pub errors: usize,
    pub warnings: usize,
}

#[derive(Debug, Clone)]
pub struct IngestSettingsView {
    pub limits: ReadLimits,
    pub parse_time_limit: Duration,
    pub max_attempts: u32,
    pub lease: Duration,
    /// The child processes that read the files.
    pub reader: ReaderProcess,
}

pub struct Ingestor {
    registry: Registry,
    storage: ObjectStore,
    layout: Layout,
    schemas: Schemas,
    settings: IngestSettingsView,
    clock: Clock,
    audit: AuditLog,
    worker_id: String,
    mail_wakeup: Option<Arc<Notify>>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ingestor({})", self.worker_id)
    }
}

/// The suffix of a report's name after the upload's: a test's reports say so in their name,
/// so that they never take the place of a real upload's of the same name.
fn report_suffix(upload: &UploadRecord, extension: &str) -> String {
    if upload.test {
        format!(".test.report.{extension}")
    } else {
        format!(".report.{extension}")
    }
}

/// The report line for a file that could not be read at all.
pub fn file_finding(error: &ReadError) -> Finding {
    match error {
        ReadError::FormatNotAllowed { extension, allowed } => Finding::error(None, None, FindingCode::FormatNotAllowed)
            .with("extension", extension.clone())
            .with("allowed", allowed.join(", ")),
        ReadError::TooLarge { limit } => Finding::error(None, None, FindingCode::FileTooLarge)
            .with("limit", format!("{} MiB", limit / (1024 * 1024))),
        ReadError::ArchiveSuspicious { detail } => {
            Finding::error(None, None, FindingCode::ArchiveSuspicious).with("detail", detail.clone())
        }
        ReadError::Unreadable { format, detail } => Finding::error(None, None, FindingCode::FileUnreadable)
            .with("format", format.to_string())
            .with("detail", detail.chars().take(200).collect::<String>()),
        ReadError::TooManyRows { limit } => {
            Finding::error(None, None, FindingCode::TooManyRows).with("limit", limit.to_string())
        }
        ReadError::OutsideLimits(LimitBreach::Memory { mib }) => {
            Finding::error(None, None, FindingCode::ReaderMemory).with("limit", mib.to_string())
        }
        ReadError::OutsideLimits(LimitBreach::Time { seconds }) => {
            Finding::error(None, None, FindingCode::ParseTimeout).with("limit", seconds.to_string())
        }
        ReadError::OutsideLimits(LimitBreach::Answer { mib }) => {
            Finding::error(None, None, FindingCode::ReaderAnswer).with("limit", mib.to_string())
        }
        ReadError::OutsideLimits(LimitBreach::Stopped { how }) => {
            Finding::error(None, None, FindingCode::ReaderStopped)
                .with("detail", how.chars().take(200).collect::<String>())
        }
    }
}

fn changes(schema: &Schema, rows: &[ValidRow]) -> Vec<RegistryChange> {
    let text = |row: &ValidRow, key: &str| row.text(key).unwrap_or_default().to_string();
    let optional = |row: &ValidRow, key: &str| row.text(key).map(str::to_string);
    rows.iter()
        .filter_map(|row| {
            let niss = row.niss("niss")?.reveal().to_string();
            match schema.action {
                Action::Affiliate => Some(RegistryChange::Affiliate {
                    niss,
                    last_name: text(row, "last_name"),
                    first_name: text(row, "first_name"),
                    birth_date: row.date("birth_date")?,
                    gender: optional(row, "gender"),
                    language: text(row, "language"),
                    employer_reference: optional(row, "employer_reference"),
                    category: text(row, "category"),
                    worker_status: text(row, "worker_status"),
                    hire_date: row.date("hire_date")?,
                    affiliation_date: row.date("affiliation_date")?,
                    salary_fte_cents: match row.get("salary_fte") {
                        Some(Value::Cents(c)) => *c,
                        _ => return None,
                    },
                    salary_frequency: text(row, "salary_frequency"),
                    occupation_rate: match row.get("occupation_rate") {
                        Some(Value::Rate(r)) => *r,
                        _ => return None,
                    },
                }),
                Action::Exit => Some(RegistryChange::Exit {
                    niss,
                    exit_date: row.date("exit_date")?,
                    exit_reason: text(row, "exit_reason"),
                    date_of_death: row.date("date_of_death"),
                }),
                // User sheets are applied by `user apply`; annual adjustments need their
                // template's rows (see `template_changes`).
                Action::UserSheet | Action::AnnualAdjustment => None,
            }
        })
        .collect()
}

impl Ingestor {
    pub fn new(
        registry: Registry,
        storage: ObjectStore,
        layout: Layout,
        schemas: Schemas,
        settings: IngestSettingsView,
        clock: Clock,
        audit: AuditLog,
    ) -> Self {
        let suffix: u32 = rand::random();
        let worker_id = format!("{}-{suffix:08x}", std::process::id());
        Self { registry, storage, layout, schemas, settings, clock, audit, worker_id, mail_wakeup: None }
    }

    /// Where the upload sits in the virtual tree: its inbox, or the test folder.
    fn upload_path(&self, upload: &UploadRecord) -> String {
        self.layout.upload_path(&upload.contract, upload.kind.as_str(), upload.file_name.as_str(), upload.test)
    }

    /// Wakes the mail deliverer when an upload's result is queued.
    pub fn with_mail_wakeup(mut self, wakeup: Arc<Notify>) -> Self {
        self.mail_wakeup = Some(wakeup);
        self
    }

    /// Works until `shutdown`: processes queued uploads, then waits to be woken (or polls, for
    /// jobs queued by other instances and leases that ran out).
    pub async fn run(self: Arc<Self>, wakeup: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => tracing::error!(error = ?error, "ingestion failed"),
            }
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims and processes one job; `None` when there is nothing to do.
    pub async fn run_once(&self) -> Result<Option<Processed>, IngestError> {
        self.run_once_at(now_seconds()).await
    }

    /// As [`Ingestor::run_once`], with the time used for leases (tests simulate a crashed
    /// worker's lease running out without waiting).
    pub async fn run_once_at(&self, now: i64) -> Result<Option<Processed>, IngestError> {
        let lease = self.settings.lease.as_secs() as i64;
        let max_attempts = i64::from(self.settings.max_attempts);
        // A job whose every attempt ended with its worker (a file that crashed or stalled it)
        // is failed first, and never claimed again.
        if let Some(job) = self.registry.claim_exhausted_ingest_job(&self.worker_id, now, lease, max_attempts).await? {
            tracing::error!(
                upload = job.upload.id,
                attempts = job.attempts,
                "an upload used every attempt: marked failed"
            );
            return self.fail(&job).await.inspect(|processed| record(&job, processed, None)).map(Some);
        }
        let Some(job) = self.registry.claim_ingest_job(&self.worker_id, now, lease, max_attempts).await? else {
            return Ok(None);
        };
        let claimed = std::time::Instant::now();
        let result = self.process_holding_lease(&job).await;
        let result = match result {
            Ok(processed) => Ok(Some(processed)),
            // Another worker holds the job now: nothing of this attempt was applied, and the
            // job is not put back (that would process the file twice).
            Err(IngestError::Registry(RegistryError::LeaseLost { job_id })) => {
                tracing::warn!(
                    upload = job.upload.id,
                    job = job_id,
                    "lease lost to another worker: this result is dropped"
                );
                Err(IngestError::Registry(RegistryError::LeaseLost { job_id }))
            }
            Err(error) if job.attempts >= max_attempts => {
                tracing::error!(upload = job.upload.id, error = ?error, "processing an upload failed on its last attempt");
                self.fail(&job).await.map(Some)
            }
            Err(error) => {
                tracing::error!(upload = job.upload.id, error = ?error, "processing an upload failed; it will be retried");
                self.registry.release_ingest_job(&job, &self.worker_id, &error.to_string()).await?;
                Err(error)
            }
        };
        if let Ok(Some(processed)) = &result {
            record(&job, processed, Some(claimed.elapsed()));
        }
        result
    }

    /// Processes a job while extending its lease every third of it: reading (which may wait
    /// for a reader slot) and validating each have their own time limit, so a slow file must
    /// not look like a dead worker.
    async fn process_holding_lease(&self, job: &IngestJob) -> Result<Processed, IngestError> {
        let lease = self.settings.lease;
        let work = self.process(job);
        tokio::pin!(work);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + lease / 3, lease / 3);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = beat.tick() => {
                    let until = now_seconds() + lease.as_secs() as i64;
                    match self.registry.extend_ingest_lease(job.job_id, &self.worker_id, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(upload = job.upload.id, "the job's lease was lost to another worker"),
                        Err(error) => tracing::warn!(upload = job.upload.id, error = ?error, "cannot extend a job's lease"),
                    }
                }
            }
        }
    }

    /// Claims a job and stops there, as a worker that crashes right after its claim would.
    pub async fn claim_and_abandon(&self, now: i64) -> Result<bool, IngestError> {
        let lease = self.settings.lease.as_secs() as i64;
        let max_attempts = i64::from(self.settings.max_attempts);
        Ok(self.registry.claim_ingest_job(&self.worker_id, now, lease, max_attempts).await?.is_some())
    }

    async fn facts(&self, upload: &UploadRecord) -> Result<RegistryFacts, IngestError> {
        let contract = self.registry.contract(&upload.contract).await?;
        let organisation = self.registry.organisation(contract.organisation_id).await?;
        let categories = self.registry.contract_categories(contract.id).await?;
        let active = self
            .registry
            .active_affiliates(contract.id)
            .await?
            .into_iter()
            .map(|a| {
                (
                    a.niss,
                    ActiveAffiliate {
                        last_name: a.last_name,
                        first_name: a.first_name,
                        affiliation_date: a.affiliation_date,
                    },
                )
            })
            .collect();
        Ok(RegistryFacts {
            folder_contract: Some(upload.contract.clone()),
            employer: organisation.enterprise_number,
            categories,
            active,
            today: self.clock.today(),
        })
    }

    async fn read_object(&self, upload: &UploadRecord) -> Result<Bytes, IngestError> {
        Ok(self.storage.read_verified(&ObjectKey::from_stored(&upload.object_key)?, &upload.sha256).await?)
    }

    /// Reads in a child process, then validates on a blocking thread, each within the time limit.
    async fn examine(
        &self,
        schema: &Schema,
        upload: &UploadRecord,
        facts: RegistryFacts,
    ) -> Result<(Option<Sheet>, Validation, Option<Meta>), IngestError> {
        let refused = |finding: Finding| (None, Validation { findings: vec![finding], ..Validation::default() }, None);
        if upload.size > self.settings.limits.max_file_bytes {
            return Ok(refused(file_finding(&ReadError::TooLarge { limit: self.settings.limits.max_file_bytes })));
        }
        let bytes = self.read_object(upload).await?;
        let template_meta = schema.action == Action::AnnualAdjustment;
        let read = self
            .settings
            .reader
            .read(upload.file_name.as_str(), bytes, &schema.formats, &self.settings.limits, template_meta)
            .await?;
        let (sheet, meta) = match read {
            Ok(contents) => (contents.sheet, contents.meta),
            Err(error) => {
                // The error's text may quote the file's content: only its finding code is logged.
                tracing::info!(
                    upload = upload.id,
                    finding = file_finding(&error).code.as_str(),
                    "an upload could not be read"
                );
                return Ok(refused(file_finding(&error)));
            }
        };
        let schema = schema.clone();
        // The other kinds an employer sends, to say so when the file is one of them.
        let others: Vec<Schema> = self
            .schemas
            .kinds()
            .filter(|kind| *kind != schema.kind.as_str())
            .filter_map(|kind| self.schemas.for_kind(kind))
            .filter(|other| matches!(other.action, Action::Affiliate | Action::Exit))
            .cloned()
            .collect();
        // A test is told where to try the file again; a real upload where to send it.
        let area = if upload.test { self.layout.test_folder.clone() } else { self.layout.inbox_folder.clone() };
        let work = tokio::task::spawn_blocking(move || {
            let mut validation = validate(&schema, &sheet, &facts);
            let columns_missing = validation
                .findings
                .iter()
                .any(|f| matches!(f.code, FindingCode::MissingColumn | FindingCode::HeaderNotFound));
            if columns_missing {
                if let Some(other) = others.iter().find(|other| names_every_required_column(other, &sheet)) {
                    let hint = Finding::warning(None, None, FindingCode::OtherKind)
                        .with("kind", other.kind.to_string())
                        .with("folder", format!("{area}/{}/", other.kind));
                    validation.findings.insert(0, hint);
                }
            }
            (sheet, validation)
        });
        match tokio::time::timeout(self.settings.parse_time_limit, work).await {
            Ok(Ok((sheet, validation))) => Ok((Some(sheet), validation, meta)),
            Ok(Err(join)) => {
                tracing::error!(upload = upload.id, error = %join, "validating the file failed");
                Ok(refused(file_finding(&ReadError::OutsideLimits(LimitBreach::Stopped {
                    how: "its validation failed".into(),
                }))))
            }
            Err(_) => Ok(refused(file_finding(&ReadError::OutsideLimits(LimitBreach::Time {
                seconds: self.settings.parse_time_limit.as_secs(),
            })))),
        }
    }

    async fn store(
        &self,
        upload: &UploadRecord,
        suffix: &str,
        data: Vec<u8>,
    ) -> Result<(NewReport, Provisional), IngestError> {
        let mut writer = self.storage.create(ObjectKey::for_report(&upload.contract)).await?;
        writer.append(Bytes::from(data)).await?;
        let object = self.storage.commit_provisionally(writer.finish().await?).await?;
        let stored = object.object();
        let report = NewReport {
            file_name: format!("{}{suffix}", upload.file_name),
            size: stored.size,
            sha256: stored.sha256.clone(),
            object_key: stored.key.to_string(),
        };
        Ok((report, object))
    }

    async fn process(&self, job: &IngestJob) -> Result<Processed, IngestError> {
        let upload = &job.upload;
        let schema =
            self.schemas.for_kind(upload.kind.as_str()).ok_or_else(|| IngestError::NoSchema(upload.kind.clone()))?;
        let uploader = self.registry.user_by_id(upload.uploader_user_id).await.ok();
        let language = uploader.as_ref().map(|user| user.language).unwrap_or(Language::Fr);
        let contract = self.registry.contract(&upload.contract).await?;
        let duplicate_of = self.registry.accepted_duplicate_of(upload).await?;
        let (sheet, mut validation, meta) = match &duplicate_of {
            Some(_) => (None, Validation::default(), None),
            None => self.examine(schema, upload, self.facts(upload).await?).await?,
        };
        let mut salary_changes = Vec::new();
        if schema.action == Action::AnnualAdjustment && duplicate_of.is_none() && sheet.is_some() {
            salary_changes =
                self.check_against_template(&contract, sheet.as_ref(), meta.as_ref(), &mut validation).await?;
        }
        let outcome = match (&duplicate_of, validation.errors()) {
            (Some(_), _) => Outcome::Duplicate,
            (None, 0) => Outcome::Accepted,
            (None, _) => Outcome::Rejected,
        };
        let changes = match outcome {
            // A test changes nothing: it only says what the real upload would do.
            _ if upload.test => Vec::new(),
            Outcome::Accepted if schema.action == Action::AnnualAdjustment => salary_changes,
            Outcome::Accepted => changes(schema, &validation.rows),
            Outcome::Rejected | Outcome::Duplicate | Outcome::Failed => Vec::new(),
        };
        let verdict = Verdict {
            schema_version: Some(schema.version),
            outcome,
            validation: &validation,
            sheet: sheet.as_ref(),
            duplicate_of: duplicate_of.as_ref(),
            changes,
        };
        self.conclude(job, &contract, uploader, language, verdict).await
    }

    /// Ends a job that could not be processed in `max_attempts` attempts: a report and a mail
    /// say so, the insurer sees it as failed (`uploads list`, the log, the audit trail).
    async fn fail(&self, job: &IngestJob) -> Result<Processed, IngestError> {
        let upload = &job.upload;
        let uploader = self.registry.user_by_id(upload.uploader_user_id).await.ok();
        let language = uploader.as_ref().map(|user| user.language).unwrap_or(Language::Fr);
        let contract = self.registry.contract(&upload.contract).await?;
        let finding =
            Finding::error(None, None, FindingCode::ProcessingFailed).with("attempts", job.attempts.to_string());
        let validation = Validation { findings: vec![finding], ..Validation::default() };
        let verdict = Verdict {
            schema_version: self.schemas.for_kind(upload.kind.as_str()).map(|schema| schema.version),
            outcome: Outcome::Failed,
            validation: &validation,
            sheet: None,
            duplicate_of: None,
            changes: Vec::new(),
        };
        self.conclude(job, &contract, uploader, language, verdict).await
    }

    /// Stores the reports, then closes the job in one transaction with the registry changes,
    /// the upload's status and the mail to its sender.
    async fn conclude(
        &self,
        job: &IngestJob,
        contract: &crate::registry::ContractRecord,
        uploader: Option<crate::registry::UserRecord>,
        language: Language,
        verdict: Verdict<'_>,
    ) -> Result<Processed, IngestError> {
        let upload = &job.upload;
        let Verdict { schema_version, outcome, validation, sheet, duplicate_of, changes } = verdict;
        let processed_at = crate::clock::now_rfc3339();
        let input = ReportInput {
            upload,
            schema_version,
            language,
            outcome,
            data_rows: validation.data_rows,
            findings: &validation.findings,
            sheet: match (sheet, validation.header_index) {
                (Some(sheet), Some(index)) => Some((sheet, index, &validation.positions)),
                _ => None,
            },
            duplicate_of,
            processed_at,
            schema: self.schemas.for_kind(upload.kind.as_str()),
        };
        let json = json_report(&input);
        let xlsx = xlsx_report(&input)?;
        // Each report object is removed again unless the completion below records it.
        let mut stored: Vec<Provisional> = Vec::new();
        let mut reports = Vec::new();
        for (suffix, data) in [(report_suffix(upload, "json"), json), (report_suffix(upload, "xlsx"), xlsx)] {
            let (report, object) = self.store(upload, &suffix, data).await?;
            reports.push(report);
            stored.push(object);
        }
        let completion = Completion {
            job_id: job.job_id,
            upload_id: upload.id,
            contract_id: contract.id,
            status: outcome.as_str(),
            data_rows: validation.data_rows as i64,
            errors: validation.errors() as i64,
            warnings: validation.warnings() as i64,
            error_codes: validation.error_codes(),
            changes,
            notice: uploader.map(|user| {
                let result = match outcome {
                    Outcome::Accepted => messages::UploadResult::Accepted,
                    Outcome::Rejected => messages::UploadResult::Rejected,
                    Outcome::Duplicate => messages::UploadResult::Duplicate,
                    Outcome::Failed => messages::UploadResult::Failed,
                };
                let message = messages::upload_processed(
                    user.language,
                    &self.upload_path(upload),
                    result,
                    (validation.data_rows as i64, validation.errors() as i64, validation.warnings() as i64),
                    &format!(
                        "/{}/{}/{}{}",
                        upload.contract,
                        self.layout.results_folder,
                        upload.file_name,
                        report_suffix(upload, "xlsx")
                    ),
                    upload.test,
                );
                NewMessage {
                    recipient: user.email.to_string(),
                    purpose: message.purpose,
                    subject: message.subject,
                    body: message.body,
                }
            }),
            reports,
        };
        self.registry.complete_ingestion(&completion, &self.worker_id).await?;
        stored.into_iter().for_each(|object| {
            object.keep();
        });
        if let Some(wakeup) = &self.mail_wakeup {
            wakeup.notify_one();
        }
        self.audit.record(NewAuditEvent {
            actor: "ingest".into(),
            path: Some(self.upload_path(upload)),
            reason: Some(format!(
                "{} rows {} errors {} warnings {}",
                outcome.as_str(),
                validation.data_rows,
                validation.errors(),
                validation.warnings()
            )),
            sha256: Some(upload.sha256.clone()),
            ..NewAuditEvent::new(
                AuditAction::Ingest,
                if outcome == Outcome::Failed { AuditOutcome::Failed } else { AuditOutcome::Ok },
            )
        });
        tracing::info!(upload = upload.id, outcome = outcome.as_str(), rows = validation.data_rows, "upload processed");
        Ok(Processed { upload_id: upload.id, outcome, errors: validation.errors(), warnings: validation.warnings() })
    }

    /// An annual-adjustment return must be the template sent to this contract, with every row
    /// and every locked cell as sent. Returns the salary changes of the rows still employed.
    async fn check_against_template(
        &self,
        contract: &crate::registry::ContractRecord,
        sheet: Option<&Sheet>,
        meta: Option<&Meta>,
        validation: &mut Validation,
    ) -> Result<Vec<RegistryChange>, IngestError> {
        let (Some(sheet), Some(header_index)) = (sheet, validation.header_index) else {
            return Ok(Vec::new());
        };
        let Some(meta) = meta else {
            validation.findings.push(Finding::error(None, None, FindingCode::TemplateRequired));
            return Ok(Vec::new());
        };
        let template = self.registry.template(&meta.template_id).await?;
        if template.as_ref().is_none_or(|t| t.contract_id != contract.id) || meta.contract != contract.number.as_str() {
            validation.findings.push(Finding::error(None, None, FindingCode::TemplateUnknown));
            return Ok(Vec::new());
        }
        let (findings, affiliates) = check_return(
            meta,
            sheet,
            header_index,
            &validation.positions,
            &validation.rows,
            MAX_SALARY_INCREASE_PERCENT,
        );
        validation.findings.extend(findings);
        let mut salary = Vec::new();
        for row in &validation.rows {
            let (Some(affiliate_id), Some("Y")) = (affiliates.get(&row.number), row.text("still_employed")) else {
                continue;
            };
            if let (Some(Value::Cents(cents)), Some(Value::Rate(rate)), Some(date)) =
                (row.get("new_salary_fte"), row.get("occupation_rate_at_date"), row.date("adjustment_date"))
            {
                salary.push(RegistryChange::Salary {
                    affiliate_id: *affiliate_id,
                    effective_date: date,
                    salary_fte_cents: *cents,
                    salary_frequency: row.text("salary_frequency").unwrap_or("MONTHLY").to_string(),
                    occupation_rate: *rate,
                });
            }
        }
        Ok(salary)
    }
}

/// Counts a finished job in the metrics, and its time from the claim when it was processed.
fn record(job: &IngestJob, processed: &Processed, took: Option<Duration>) {
    let metrics = crate::telemetry::metrics::metrics();
    metrics
        .ingestions
        .get_or_create(&[("kind", job.upload.kind.to_string()), ("outcome", processed.outcome.as_str().to_string())])
        .inc();
    if let Some(took) = took {
        metrics.ingestion_seconds.observe(took.as_secs_f64());
    }
}
