//! Uploads received in the inboxes.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_seconds, Registry, RegistryError};
use crate::domain::{ContractNumber, FileName, KindName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStatus {
    /// Stored and recorded; not yet processed. The uploader may still withdraw it.
    Received,
    Processing,
    Accepted,
    Rejected,
    Duplicate,
    /// Could not be processed after several attempts (storage or registry failures).
    Failed,
    /// Removed by its uploader before processing.
    Withdrawn,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Received => "received",
            UploadStatus::Processing => "processing",
            UploadStatus::Accepted => "accepted",
            UploadStatus::Rejected => "rejected",
            UploadStatus::Duplicate => "duplicate",
            UploadStatus::Failed => "failed",
            UploadStatus::Withdrawn => "withdrawn",
        }
    }
}

impl FromStr for UploadStatus {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "received" => UploadStatus::Received,
            "processing" => UploadStatus::Processing,
            "accepted" => UploadStatus::Accepted,
            "rejected" => UploadStatus::Rejected,
            "duplicate" => UploadStatus::Duplicate,
            "failed" => UploadStatus::Failed,
            "withdrawn" => UploadStatus::Withdrawn,
            other => {
                return Err(RegistryError::Corrupt {
                    column: "uploads.status",
                    source: Box::new(super::UnexpectedValue(other.to_string())),
                })
            }
        })
    }
}

impl fmt::Display for UploadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct NewUpload {
    pub contract_id: i64,
    pub kind: KindName,
    pub uploader_user_id: i64,
    pub file_name: FileName,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    /// Sent into the test folder: checked and reported, applied to nothing.
    pub test: bool,
}

#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub id: i64,
    pub contract: ContractNumber,
    pub kind: KindName,
    pub uploader_user_id: i64,
    pub uploader: String,
    pub file_name: FileName,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub status: UploadStatus,
    pub received_at: i64,
    /// Modification time a client set after the upload (setstat), if any.
    pub client_mtime: Option<i64>,
    /// Filled in when the upload is processed.
    pub data_rows: Option<i64>,
    pub error_count: Option<i64>,
    pub warning_count: Option<i64>,
    pub processed_at: Option<i64>,
    /// When its stored file was deleted (retention, or its uploader for a rejected one).
    pub file_removed_at: Option<i64>,
    /// Sent into the test folder: checked and reported, applied to nothing.
    pub test: bool,
}

/// Which quota an upload runs into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// The inbox files an organisation keeps stored.
    Organisation,
    /// What one user uploads per (UTC) day.
    UserDaily,
}

/// The quotas an upload is recorded under, checked in the recording transaction.
#[derive(Debug, Clone, Copy)]
pub struct UploadQuota {
    pub organisation_id: i64,
    pub organisation_bytes: u64,
    pub user_daily_bytes: u64,
    /// Start of the current day (Unix seconds, UTC).
    pub day_start: i64,
}

const UPLOAD_SELECT: &str = "SELECT u.id, c.number AS contract, u.kind, u.uploader_user_id, us.login AS uploader,
        u.file_name, u.size, u.sha256, u.object_key, u.status, u.received_at, u.client_mtime,
        u.data_rows, u.error_count, u.warning_count, u.processed_at, u.file_removed_at, u.is_test
     FROM uploads u JOIN contracts c ON c.id = u.contract_id JOIN users us ON us.id = u.uploader_user_id";

fn upload_from_row(row: &AnyRow) -> Result<UploadRecord, RegistryError> {
    Ok(UploadRecord {
        id: row.try_get("id")?,
        contract: ContractNumber::parse(&row.try_get::<String, _>("contract")?)
            .map_err(super::corrupt("contracts.number"))?,
        kind: KindName::parse(&row.try_get::<String, _>("kind")?).map_err(super::corrupt("uploads.kind"))?,
        uploader_user_id: row.try_get("uploader_user_id")?,
        uploader: row.try_get("uploader")?,
        file_name: FileName::parse(&row.try_get::<String, _>("file_name")?)
            .map_err(super::corrupt("uploads.file_name"))?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        sha256: row.try_get("sha256")?,
        object_key: row.try_get("object_key")?,
        status: row.try_get::<String, _>("status")?.parse()?,
        received_at: row.try_get("received_at")?,
        client_mtime: row.try_get("client_mtime")?,
        data_rows: row.try_get("data_rows")?,
        error_count: row.try_get("error_count")?,
        warning_count: row.try_get("warning_count")?,
        processed_at: row.try_get("processed_at")?,
        file_removed_at: row.try_get("file_removed_at")?,
        test: row.try_get::<i64, _>("is_test")? != 0,
    })
}

/// The sums behind the quotas, on the pool or inside the transaction that records an upload.
async fn stored_inbox_bytes<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    organisation_id: i64,
) -> Result<u64, RegistryError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(u.size), 0) AS BIGINT) FROM uploads u JOIN contracts c ON c.id = u.contract_id
         WHERE c.organisation_id = $1 AND u.status <> 'withdrawn' AND u.file_removed_at IS NULL",
    )
    .bind(organisation_id)
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0))
}

async fn uploaded_bytes_since<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: i64,
    since: i64,
) -> Result<u64, RegistryError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE uploader_user_id = $1 AND received_at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0))
}

fn sql(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{UPLOAD_SELECT} {tail}"))
}

impl Registry {
    /// Records an upload and, when `queue_ingestion`, queues its ingestion in the same
    /// transaction: a recorded upload is never forgotten by the workers.
    ///
    /// With `quota`, the upload is refused unless it fits, counted in the same transaction
    /// (the organisation's row is locked on PostgreSQL, SQLite writes one at a time): uploads
    /// that were written side by side cannot together pass a quota.
    pub async fn record_upload(
        &self,
        upload: &NewUpload,
        queue_ingestion: bool,
        quota: Option<&UploadQuota>,
    ) -> Result<UploadRecord, RegistryError> {
        let mut tx = self.begin_write().await?;
        if let Some(quota) = quota {
            if self.dialect == super::Dialect::Postgres {
                sqlx::query("SELECT id FROM organisations WHERE id = $1 FOR UPDATE")
                    .bind(quota.organisation_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let stored = stored_inbox_bytes(&mut *tx, quota.organisation_id).await?;
            let today = uploaded_bytes_since(&mut *tx, upload.uploader_user_id, quota.day_start).await?;
            for (kind, limit, used) in [
                (Quota::Organisation, quota.organisation_bytes, stored),
                (Quota::UserDaily, quota.user_daily_bytes, today),
            ] {
                if used.saturating_add(upload.size) > limit {
                    return Err(RegistryError::OverQuota { quota: kind, remaining: limit.saturating_sub(used) });
                }
            }
        }
        let row = sqlx::query(
            "INSERT INTO uploads (contract_id, kind, uploader_user_id, file_name, size, sha256, object_key,
                                  status, received_at, is_test)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'received', $8, $9) RETURNING id",
        )
        .bind(upload.contract_id)
        .bind(upload.kind.as_str())
        .bind(upload.uploader_user_id)
        .bind(upload.file_name.as_str())
        .bind(i64::try_from(upload.size).unwrap_or(i64::MAX))
        .bind(&upload.sha256)
        .bind(&upload.object_key)
        .bind(now_seconds())
        .bind(i64::from(upload.test))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        if queue_ingestion {
            sqlx::query("INSERT INTO ingest_jobs (upload_id, status, created_at) VALUES ($1, 'queued', $2)")
                .bind(id)
                .bind(now_seconds())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.upload(id).await
    }

    pub async fn upload(&self, id: i64) -> Result<UploadRecord, RegistryError> {
        let row = sqlx::query(sql("WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(super::Entity::Upload(id)))?;
        upload_from_row(&row)
    }

    /// The newest visible upload of each name in one inbox folder (or test folder), by name.
    pub async fn uploads_in_folder(
        &self,
        contract_id: i64,
        kind: &KindName,
        test: bool,
    ) -> Result<Vec<UploadRecord>, RegistryError> {
        let rows = sqlx::query(sql(
            "WHERE u.id IN (SELECT MAX(id) FROM uploads WHERE contract_id = $1 AND kind = $2 AND status <> 'withdrawn'
                              AND file_removed_at IS NULL AND is_test = $3
                            GROUP BY file_name)
             ORDER BY u.file_name",
        ))
        .bind(contract_id)
        .bind(kind.as_str())
        .bind(i64::from(test))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_from_row).collect()
    }

    /// The newest visible upload with this name in an inbox folder (or test folder).
    pub async fn upload_by_name(
        &self,
        contract_id: i64,
        kind: &KindName,
        name: &FileName,
        test: bool,
    ) -> Result<Option<UploadRecord>, RegistryError> {
        let row = sqlx::query(sql(
            "WHERE u.contract_id = $1 AND u.kind = $2 AND u.file_name = $3 AND u.status <> 'withdrawn'
               AND u.file_removed_at IS NULL AND u.is_test = $4
             ORDER BY u.id DESC LIMIT 1",
        ))
        .bind(contract_id)
        .bind(kind.as_str())
        .bind(name.as_str())
        .bind(i64::from(test))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    /// All uploads, newest first, optionally of one contract.
    pub async fn uploads(&self, contract_id: Option<i64>) -> Result<Vec<UploadRecord>, RegistryError> {
        let rows = match contract_id {
            Some(id) => {
                sqlx::query(sql("WHERE u.contract_id = $1 ORDER BY u.id DESC")).bind(id).fetch_all(&self.pool).await?
            }
            None => sqlx::query(sql("ORDER BY u.id DESC")).fetch_all(&self.pool).await?,
        };
        rows.iter().map(upload_from_row).collect()
    }

    /// Marks an upload withdrawn if it is still unprocessed, and ends its queued job in the
    /// same transaction; false when it was already taken.
    pub async fn withdraw_upload(&self, id: i64) -> Result<bool, RegistryError> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("UPDATE uploads SET status = 'withdrawn' WHERE id = $1 AND status = 'received'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let withdrawn = result.rows_affected() == 1;
        if withdrawn {
            sqlx::query(
                "UPDATE ingest_jobs SET status = 'done', finished_at = $1, lease_until = NULL, last_error = 'withdrawn'
                 WHERE upload_id = $2 AND status = 'queued'",
            )
            .bind(now_seconds())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// Renames an unprocessed upload; false when it was already taken.
    pub async fn rename_upload(&self, id: i64, name: &FileName) -> Result<bool, RegistryError> {
        let result = sqlx::query("UPDATE uploads SET file_name = $1 WHERE id = $2 AND status = 'received'")
            .bind(name.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn set_upload_client_mtime(&self, id: i64, mtime: i64) -> Result<(), RegistryError> {
        sqlx::query("UPDATE uploads SET client_mtime = $1 WHERE id = $2")
            .bind(mtime)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Bytes of inbox files an organisation keeps stored: its uploads not withdrawn and not
    /// yet removed.
    pub async fn stored_inbox_bytes(&self, organisation_id: i64) -> Result<u64, RegistryError> {
        stored_inbox_bytes(&self.pool, organisation_id).await
    }

    /// Bytes a user uploaded since `since` (Unix seconds), whatever became of them.
    pub async fn uploaded_bytes_since(&self, user_id: i64, since: i64) -> Result<u64, RegistryError> {
        uploaded_bytes_since(&self.pool, user_id, since).await
    }

    /// Processed uploads whose file is still stored although their retention ended: rejected
    /// and failed ones processed before `rejected_before`, accepted and duplicate ones before
    /// `accepted_before`.
    pub async fn uploads_past_retention(
        &self,
        rejected_before: i64,
        accepted_before: i64,
    ) -> Result<Vec<UploadRecord>, RegistryError> {
        let rows = sqlx::query(sql("WHERE u.file_removed_at IS NULL AND u.processed_at IS NOT NULL
               AND ((u.status IN ('rejected', 'failed') AND u.processed_at < $1)
                 OR (u.status IN ('accepted', 'duplicate') AND u.processed_at < $2))
             ORDER BY u.id"))
        .bind(rejected_before)
        .bind(accepted_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_from_row).collect()
    }

    /// Records that an upload's stored file is being deleted, if it is still there and its
    /// status is one of `statuses`; false otherwise (someone else removed it, or it changed).
    pub async fn mark_upload_file_removed(&self, id: i64, statuses: &[UploadStatus]) -> Result<bool, RegistryError> {
        let upload = self.upload(id).await?;
        if !statuses.contains(&upload.status) {
            return Ok(false);
        }
        let result = sqlx::query(
            "UPDATE uploads SET file_removed_at = $1 WHERE id = $2 AND status = $3 AND file_removed_at IS NULL",
        )
        .bind(now_seconds())
        .bind(id)
        .bind(upload.status.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
