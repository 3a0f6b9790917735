//! The registry side of ingestion: contract categories, affiliates and their periods and
//! salaries, the job queue, and the reports shown in `results/`. Applying an accepted file,
//! recording its reports and closing its job happen in one transaction.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::Row;
use time::Date;

use super::accounts::format_date;
use super::uploads::UploadRecord;
use super::{now_seconds, placeholders, Dialect, Registry, RegistryError};
use crate::domain::Niss;

/// An affiliate active in a contract (its last period has no exit date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAffiliateRecord {
    pub niss: String,
    pub last_name: String,
    pub first_name: String,
    pub affiliation_date: Date,
}

/// An affiliate with its current or last period, for listings.
#[derive(Debug, Clone)]
pub struct AffiliateRecord {
    pub niss: Niss,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: String,
    pub category: String,
    pub affiliation_date: String,
    pub exit_date: Option<String>,
    pub salary_fte_cents: Option<i64>,
    pub occupation_rate: Option<i64>,
}

/// A change an accepted row makes.
#[derive(Debug, Clone)]
pub enum RegistryChange {
    Affiliate {
        niss: String,
        last_name: String,
        first_name: String,
        birth_date: Date,
        gender: Option<String>,
        language: String,
        employer_reference: Option<String>,
        category: String,
        worker_status: String,
        hire_date: Date,
        affiliation_date: Date,
        salary_fte_cents: i64,
        salary_frequency: String,
        occupation_rate: i64,
    },
    Exit {
        niss: String,
        exit_date: Date,
        exit_reason: String,
        date_of_death: Option<Date>,
    },
    /// A new salary and occupation rate from an annual adjustment.
    Salary {
        affiliate_id: i64,
        effective_date: Date,
        salary_fte_cents: i64,
        salary_frequency: String,
        occupation_rate: i64,
    },
}

/// What an annual-adjustment template carries for one active affiliate.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub affiliate_id: i64,
    pub niss: String,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: String,
    pub category: String,
    pub occupation_rate: i64,
    pub salary_fte_cents: i64,
    pub salary_frequency: String,
}

/// A recorded template.
#[derive(Debug, Clone)]
pub struct TemplateRecord {
    pub id: String,
    pub contract_id: i64,
    pub adjustment_date: String,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct IngestJob {
    pub job_id: i64,
    pub attempts: i64,
    pub upload: UploadRecord,
}

/// A report object to record with the outcome.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
}

#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub id: i64,
    pub upload_id: i64,
    pub file_name: String,
    pub size: u64,
    pub object_key: String,
    pub created_at: i64,
}

/// The outcome of processing one upload.
#[derive(Debug, Clone)]
pub struct Completion {
    pub job_id: i64,
    pub upload_id: i64,
    pub contract_id: i64,
    /// "accepted", "rejected", "duplicate", or "failed" (the file could not be processed).
    pub status: &'static str,
    pub data_rows: i64,
    pub errors: i64,
    pub warnings: i64,
    /// How many errors of each finding code the report holds.
    pub error_codes: Vec<(&'static str, i64)>,
    pub changes: Vec<RegistryChange>,
    pub reports: Vec<NewReport>,
    /// The mail telling the uploader how it ended, queued in the same transaction.
    pub notice: Option<super::NewMessage>,
}

fn report_from_row(row: &AnyRow) -> Result<ReportRecord, RegistryError> {
    Ok(ReportRecord {
        id: row.try_get("id")?,
        upload_id: row.try_get("upload_id")?,
        file_name: row.try_get("file_name")?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        object_key: row.try_get("object_key")?,
        created_at: row.try_get("created_at")?,
    })
}

fn stored_date(text: &str) -> Result<Date, RegistryError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(super::corrupt("date"))
}

/// The endings of report names after the upload's file name, the longest first.
const REPORT_SUFFIXES: [&str; 4] = [".test.report.json", ".test.report.xlsx", ".report.json", ".report.xlsx"];

/// A new report takes its name (`affiliations.xlsx.report.json`): the earlier reports of that
/// name, from earlier uploads of a file of the same name, keep their place under a name with
/// their upload's id (`affiliations.xlsx.165.report.json`). A bureau that sends
/// `affiliations.xlsx` every month keeps every month's report.
async fn keep_earlier_reports(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    contract_id: i64,
    upload_id: i64,
    name: &str,
) -> Result<(), RegistryError> {
    let Some(suffix) = REPORT_SUFFIXES.iter().find(|suffix| name.ends_with(*suffix)) else {
        return Ok(());
    };
    let stem = &name[..name.len() - suffix.len()];
    // A report of the same upload (processed again) is superseded, not kept beside.
    let earlier =
        sqlx::query("SELECT id, upload_id FROM reports WHERE contract_id = $1 AND file_name = $2 AND upload_id <> $3")
            .bind(contract_id)
            .bind(name)
            .bind(upload_id)
            .fetch_all(&mut **tx)
            .await?;
    for row in earlier {
        let (id, upload_id): (i64, i64) = (row.try_get("id")?, row.try_get("upload_id")?);
        sqlx::query("UPDATE reports SET file_name = $1 WHERE id = $2")
            .bind(format!("{stem}.{upload_id}{suffix}"))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Registry {
    /// Replaces the personnel categories of a contract.
    pub async fn set_contract_categories(
        &self,
        contract_id: i64,
        codes: &BTreeSet<String>,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM contract_categories WHERE contract_id = $1")
            .bind(contract_id)
            .execute(&mut *tx)
            .await?;
        for code in codes {
            sqlx::query("INSERT INTO contract_categories (contract_id, code) VALUES ($1, $2)")
                .bind(contract_id)
                .bind(code)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn contract_categories(&self, contract_id: i64) -> Result<BTreeSet<String>, RegistryError> {
        let rows = sqlx::query("SELECT code FROM contract_categories WHERE contract_id = $1")
            .bind(contract_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    pub async fn active_affiliates(&self, contract_id: i64) -> Result<Vec<ActiveAffiliateRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT a.niss, a.last_name, a.first_name, p.affiliation_date
             FROM affiliates a JOIN affiliation_periods p ON p.affiliate_id = a.id AND p.exit_date IS NULL
             WHERE a.contract_id = $1",
        )
        .bind(contract_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActiveAffiliateRecord {
                    niss: r.try_get("niss")?,
                    last_name: r.try_get("last_name")?,
                    first_name: r.try_get("first_name")?,
                    affiliation_date: stored_date(&r.try_get::<String, _>("affiliation_date")?)?,
                })
            })
            .collect()
    }

    /// Affiliates of a contract with their latest period, by name.
    pub async fn affiliates(&self, contract_id: i64) -> Result<Vec<AffiliateRecord>, RegistryError> {
        let rows = sqlx::query(
            "WITH last_period AS (SELECT affiliate_id, MAX(id) AS id FROM affiliation_periods GROUP BY affiliate_id),
                  last_salary AS (SELECT affiliate_id, MAX(id) AS id FROM salary_history GROUP BY affiliate_id)
             SELECT a.niss, a.last_name, a.first_name, a.birth_date, p.category, p.affiliation_date, p.exit_date,
                    s.salary_fte_cents, s.occupation_rate
             FROM affiliates a
             JOIN last_period lp ON lp.affiliate_id = a.id
             JOIN affiliation_periods p ON p.id = lp.id
             LEFT JOIN last_salary ls ON ls.affiliate_id = a.id
             LEFT JOIN salary_history s ON s.id = ls.id
             WHERE a.contract_id = $1 ORDER BY a.last_name, a.first_name, a.id",
        )
        .bind(contract_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AffiliateRecord {
                    niss: Niss::parse(&r.try_get::<String, _>("niss")?).map_err(super::corrupt("affiliates.niss"))?,
                    last_name: r.try_get("last_name")?,
                    first_name: r.try_get("first_name")?,
                    birth_date: r.try_get("birth_date")?,
                    category: r.try_get("category")?,
                    affiliation_date: r.try_get("affiliation_date")?,
                    exit_date: r.try_get("exit_date")?,
                    salary_fte_cents: r.try_get("salary_fte_cents")?,
                    occupation_rate: r.try_get("occupation_rate")?,
                })
            })
            .collect()
    }

    /// Claims the oldest queued job, or one whose worker's lease ran out (a crashed worker),
    /// that has attempts left. Every claim counts an attempt.
    pub async fn claim_ingest_job(
        &self,
        worker: &str,
        now: i64,
        lease_seconds: i64,
        max_attempts: i64,
    ) -> Result<Option<IngestJob>, RegistryError> {
        self.claim_job_where(worker, now, lease_seconds, "attempts + 1", "attempts < $4", max_attempts).await
    }

    /// Claims a job that has used all its attempts without ending — each claim's worker died
    /// or gave up — so that it is marked failed; the claim adds no attempt.
    pub async fn claim_exhausted_ingest_job(
        &self,
        worker: &str,
        now: i64,
        lease_seconds: i64,
        max_attempts: i64,
    ) -> Result<Option<IngestJob>, RegistryError> {
        self.claim_job_where(worker, now, lease_seconds, "attempts", "attempts >= $4", max_attempts).await
    }

    async fn claim_job_where(
        &self,
        worker: &str,
        now: i64,
        lease_seconds: i64,
        attempts_after: &'static str,
        attempts_condition: &'static str,
        max_attempts: i64,
    ) -> Result<Option<IngestJob>, RegistryError> {
        let mut tx = self.begin_write().await?;
        // BEGIN IMMEDIATE already serialises claimers on SQLite.
        let lock = match self.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let statement = format!(
            "UPDATE ingest_jobs SET status = 'running', claimed_by = $1, lease_until = $2, attempts = {attempts_after}
             WHERE id = (SELECT id FROM ingest_jobs
                         WHERE (status = 'queued' OR (status = 'running' AND lease_until < $3)) AND {attempts_condition}
                           AND upload_id IN (SELECT id FROM uploads WHERE status IN ('received', 'processing'))
                         ORDER BY id LIMIT 1 {lock})
             RETURNING id, upload_id, attempts"
        );
        // Only fixed fragments above: no text from outside enters the statement.
        let claimed = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(worker)
            .bind(now + lease_seconds)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = claimed else {
            tx.commit().await?;
            return Ok(None);
        };
        let (job_id, upload_id, attempts): (i64, i64, i64) =
            (row.try_get("id")?, row.try_get("upload_id")?, row.try_get("attempts")?);
        sqlx::query("UPDATE uploads SET status = 'processing' WHERE id = $1 AND status IN ('received', 'processing')")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let upload = self.upload(upload_id).await?;
        Ok(Some(IngestJob { job_id, attempts, upload }))
    }

    /// Extends the lease of a job this worker still holds; false when it lost it.
    pub async fn extend_ingest_lease(&self, job_id: i64, worker: &str, until: i64) -> Result<bool, RegistryError> {
        let result = sqlx::query(
            "UPDATE ingest_jobs SET lease_until = $1 WHERE id = $2 AND status = 'running' AND claimed_by = $3",
        )
        .bind(until)
        .bind(job_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Puts a job back in the queue after a failure, if this worker still holds it (a worker
    /// whose lease ran out while another took the job over changes nothing).
    pub async fn release_ingest_job(&self, job: &IngestJob, worker: &str, error: &str) -> Result<(), RegistryError> {
        let mut tx = self.begin_write().await?;
        let released = sqlx::query(
            "UPDATE ingest_jobs SET status = 'queued', lease_until = NULL, last_error = $1
             WHERE id = $2 AND status = 'running' AND claimed_by = $3",
        )
        .bind(error)
        .bind(job.job_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if released.rows_affected() == 1 {
            sqlx::query("UPDATE uploads SET status = 'received' WHERE id = $1")
                .bind(job.upload.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues an upload's ingestion again (after a failure, or to redo it).
    pub async fn retry_ingestion(&self, upload_id: i64) -> Result<(), RegistryError> {
        let upload = self.upload(upload_id).await?;
        if upload.status.as_str() == "accepted" {
            return Err(RegistryError::State(super::StateConflict::AlreadyAccepted(upload_id)));
        }
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE ingest_jobs SET status = 'queued', attempts = 0, lease_until = NULL, last_error = NULL WHERE upload_id = $1",
        )
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(RegistryError::NotFound(super::Entity::IngestJobOf(upload_id)));
        }
        sqlx::query("UPDATE uploads SET status = 'received' WHERE id = $1").bind(upload_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An earlier accepted upload with the same content for the same contract and kind.
    pub async fn accepted_duplicate_of(&self, upload: &UploadRecord) -> Result<Option<UploadRecord>, RegistryError> {
        // A test is always checked in full, and never stands for a real upload.
        if upload.test {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT u.id FROM uploads u JOIN contracts c ON c.id = u.contract_id
             WHERE c.number = $1 AND u.kind = $2 AND u.sha256 = $3 AND u.status = 'accepted' AND u.id <> $4
               AND u.is_test = 0
             ORDER BY u.id LIMIT 1",
        )
        .bind(upload.contract.as_str())
        .bind(upload.kind.as_str())
        .bind(&upload.sha256)
        .bind(upload.id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(self.upload(row.try_get(0)?).await?)),
            None => Ok(None),
        }
    }

    /// Applies an outcome in one transaction: the registry changes of an accepted file, its
    /// reports, the upload's status and the job's end. Nothing is applied twice: a job that
    /// is no longer running (another worker took over) changes nothing.
    pub async fn complete_ingestion(&self, completion: &Completion, worker: &str) -> Result<(), RegistryError> {
        let mut tx = self.begin_write().await?;
        // Completions are applied one contract at a time, the contract locked first: two uploads
        // of the same name that end together on PostgreSQL must not both take the plain report
        // name, and the affiliates' key-share locks on the contract taken before a later lock
        // deadlocked two workers (SQLite writes one at a time).
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM contracts WHERE id = $1 FOR UPDATE")
                .bind(completion.contract_id)
                .execute(&mut *tx)
                .await?;
        }
        let closed = sqlx::query(
            "UPDATE ingest_jobs SET status = $4, finished_at = $1, lease_until = NULL
             WHERE id = $2 AND status = 'running' AND claimed_by = $3",
        )
        .bind(now_seconds())
        .bind(completion.job_id)
        .bind(worker)
        .bind(if completion.status == "failed" { "failed" } else { "done" })
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() != 1 {
            return Err(RegistryError::LeaseLost { job_id: completion.job_id });
        }
        let (joins, exits): (Vec<&RegistryChange>, Vec<&RegistryChange>) =
            completion.changes.iter().partition(|c| matches!(c, RegistryChange::Affiliate { .. }));
        for batch in joins.chunks(AFFILIATE_BATCH) {
            apply_affiliations(&mut tx, self.dialect, completion.contract_id, completion.upload_id, batch).await?;
        }
        for change in exits {
            apply_change(&mut tx, completion.contract_id, completion.upload_id, change).await?;
        }
        for report in &completion.reports {
            keep_earlier_reports(&mut tx, completion.contract_id, completion.upload_id, &report.file_name).await?;
            sqlx::query(
                "INSERT INTO reports (upload_id, contract_id, file_name, size, sha256, object_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(completion.upload_id)
            .bind(completion.contract_id)
            .bind(&report.file_name)
            .bind(i64::try_from(report.size).unwrap_or(i64::MAX))
            .bind(&report.sha256)
            .bind(&report.object_key)
            .bind(now_seconds())
            .execute(&mut *tx)
            .await?;
        }
        for (code, count) in &completion.error_codes {
            sqlx::query("INSERT INTO upload_error_codes (upload_id, code, count) VALUES ($1, $2, $3)")
                .bind(completion.upload_id)
                .bind(*code)
                .bind(*count)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE uploads SET status = $1, data_rows = $2, error_count = $3, warning_count = $4, processed_at = $5
             WHERE id = $6",
        )
        .bind(completion.status)
        .bind(completion.data_rows)
        .bind(completion.errors)
        .bind(completion.warnings)
        .bind(now_seconds())
        .bind(completion.upload_id)
        .execute(&mut *tx)
        .await?;
        if let Some(notice) = &completion.notice {
            super::queue_message_in(&mut tx, notice).await?;
        }
        tx.commit().await?;
        // Planner statistics of freshly filled tables are empty until autovacuum runs: without
        // them PostgreSQL picks nested loops and the next lookups of a large contract crawl.
        if completion.changes.len() >= 1000 && self.dialect == Dialect::Postgres {
            sqlx::query("ANALYZE affiliates, affiliation_periods, salary_history").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The newest report of each name in a contract's results folder.
    pub async fn reports_in_folder(&self, contract_id: i64) -> Result<Vec<ReportRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, upload_id, file_name, size, object_key, created_at FROM reports
             WHERE id IN (SELECT MAX(id) FROM reports WHERE contract_id = $1 GROUP BY file_name)
             ORDER BY file_name",
        )
        .bind(contract_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report_from_row).collect()
    }

    pub async fn report(&self, contract_id: i64, file_name: &str) -> Result<Option<ReportRecord>, RegistryError> {
        let row = sqlx::query(
            "SELECT id, upload_id, file_name, size, object_key, created_at FROM reports
             WHERE contract_id = $1 AND file_name = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(contract_id)
        .bind(file_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// The active affiliates of a contract with their latest salary, for a template.
    pub async fn template_rows(&self, contract_id: i64) -> Result<Vec<TemplateRow>, RegistryError> {
        let rows = sqlx::query(
            "WITH last_salary AS (SELECT affiliate_id, MAX(id) AS id FROM salary_history GROUP BY affiliate_id)
             SELECT a.id, a.niss, a.last_name, a.first_name, a.birth_date, p.category,
                    s.occupation_rate, s.salary_fte_cents, s.salary_frequency
             FROM affiliates a
             JOIN affiliation_periods p ON p.affiliate_id = a.id AND p.exit_date IS NULL
             JOIN last_salary ls ON ls.affiliate_id = a.id
             JOIN salary_history s ON s.id = ls.id
             WHERE a.contract_id = $1 ORDER BY a.last_name, a.first_name, a.id",
        )
        .bind(contract_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TemplateRow {
                    affiliate_id: r.try_get("id")?,
                    niss: r.try_get("niss")?,
                    last_name: r.try_get("last_name")?,
                    first_name: r.try_get("first_name")?,
                    birth_date: r.try_get("birth_date")?,
                    category: r.try_get("category")?,
                    occupation_rate: r.try_get("occupation_rate")?,
                    salary_fte_cents: r.try_get("salary_fte_cents")?,
                    salary_frequency: r.try_get("salary_frequency")?,
                })
            })
            .collect()
    }

    pub async fn record_template(
        &self,
        id: &str,
        contract_id: i64,
        adjustment_date: Date,
        rows: usize,
    ) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO templates (id, contract_id, adjustment_date, rows, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(contract_id)
        .bind(format_date(adjustment_date))
        .bind(rows as i64)
        .bind(now_seconds())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn template(&self, id: &str) -> Result<Option<TemplateRecord>, RegistryError> {
        let row = sqlx::query("SELECT id, contract_id, adjustment_date FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(TemplateRecord {
                id: r.try_get("id")?,
                contract_id: r.try_get("contract_id")?,
                adjustment_date: r.try_get("adjustment_date")?,
            })
        })
        .transpose()
    }
}

/// Rows per multi-row INSERT: 8 parameters each stays far below SQLite's and PostgreSQL's limits.
const AFFILIATE_BATCH: usize = 500;

/// New affiliations in three multi-row statements: affiliates (created or refreshed), their
/// periods, their salaries. One round trip per statement instead of three per row.
async fn apply_affiliations(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    contract_id: i64,
    upload_id: i64,
    batch: &[&RegistryChange],
) -> Result<(), RegistryError> {
    let rows: Vec<_> = batch
        .iter()
        .filter_map(|change| match change {
            RegistryChange::Affiliate { .. } => Some(*change),
            RegistryChange::Exit { .. } | RegistryChange::Salary { .. } => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO affiliates (contract_id, niss, last_name, first_name, birth_date, gender, language,
                                 employer_reference)
         VALUES {}
         ON CONFLICT (contract_id, niss) DO UPDATE SET last_name = excluded.last_name,
            first_name = excluded.first_name, birth_date = excluded.birth_date, gender = excluded.gender,
            language = excluded.language, employer_reference = excluded.employer_reference
         RETURNING id, niss",
        placeholders(dialect, rows.len(), 8)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for change in &rows {
        if let RegistryChange::Affiliate {
            niss,
            last_name,
            first_name,
            birth_date,
            gender,
            language,
            employer_reference,
            ..
        } = change
        {
            query = query
                .bind(contract_id)
                .bind(niss.clone())
                .bind(last_name.clone())
                .bind(first_name.clone())
                .bind(format_date(*birth_date))
                .bind(gender.clone())
                .bind(language.clone())
                .bind(employer_reference.clone());
        }
    }
    let returned = query.fetch_all(&mut **tx).await?;
    let mut ids = std::collections::HashMap::with_capacity(returned.len());
    for row in &returned {
        ids.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
    }
    let id_of = |niss: &str| {
        ids.get(niss).copied().ok_or_else(|| RegistryError::Corrupt {
            column: "affiliates.id",
            source: Box::new(super::UnexpectedValue("an inserted affiliate has no id".into())),
        })
    };

    let sql = format!(
        "INSERT INTO affiliation_periods (affiliate_id, category, worker_status, hire_date, affiliation_date, upload_id)
         VALUES {}",
        placeholders(dialect, rows.len(), 6)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for change in &rows {
        if let RegistryChange::Affiliate { niss, category, worker_status, hire_date, affiliation_date, .. } = change {
            query = query
                .bind(id_of(niss)?)
                .bind(category.clone())
                .bind(worker_status.clone())
                .bind(format_date(*hire_date))
                .bind(format_date(*affiliation_date))
                .bind(upload_id);
        }
    }
    query.execute(&mut **tx).await.map_err(super::unique_or(super::Entity::ActiveAffiliation))?;

    let sql = format!(
        "INSERT INTO salary_history (affiliate_id, effective_date, salary_fte_cents, salary_frequency,
                                     occupation_rate, upload_id)
         VALUES {}",
        placeholders(dialect, rows.len(), 6)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for change in &rows {
        if let RegistryChange::Affiliate {
            niss,
            affiliation_date,
            salary_fte_cents,
            salary_frequency,
            occupation_rate,
            ..
        } = change
        {
            query = query
                .bind(id_of(niss)?)
                .bind(format_date(*affiliation_date))
                .bind(*salary_fte_cents)
                .bind(salary_frequency.clone())
                .bind(*occupation_rate)
                .bind(upload_id);
        }
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn apply_change(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    contract_id: i64,
    upload_id: i64,
    change: &RegistryChange,
) -> Result<(), RegistryError> {
    match change {
        // Affiliations go in batches through apply_affiliations.
        RegistryChange::Affiliate { .. } => {}
        RegistryChange::Salary {
            affiliate_id,
            effective_date,
            salary_fte_cents,
            salary_frequency,
            occupation_rate,
        } => {
            sqlx::query(
                "INSERT INTO salary_history (affiliate_id, effective_date, salary_fte_cents, salary_frequency,
                                             occupation_rate, upload_id)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM affiliates WHERE id = $1 AND contract_id = $7)",
            )
            .bind(*affiliate_id)
            .bind(format_date(*effective_date))
            .bind(*salary_fte_cents)
            .bind(salary_frequency)
            .bind(*occupation_rate)
            .bind(upload_id)
            .bind(contract_id)
            .execute(&mut **tx)
            .await?;
        }
        RegistryChange::Exit { niss, exit_date, exit_reason, date_of_death } => {
            let updated = sqlx::query(
                "UPDATE affiliation_periods SET exit_date = $1, exit_reason = $2, date_of_death = $3, exit_upload_id = $4
                 WHERE exit_date IS NULL
                   AND affiliate_id = (SELECT id FROM affiliates WHERE contract_id = $5 AND niss = $6)",
            )
            .bind(format_date(*exit_date))
            .bind(exit_reason)
            .bind(date_of_death.map(format_date))
            .bind(upload_id)
            .bind(contract_id)
            .bind(niss)
            .execute(&mut **tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(RegistryError::State(super::StateConflict::ExitOfInactive));
            }
        }
    }
    Ok(())
}
