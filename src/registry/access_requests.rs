//! User sheets waiting for a decision, with the report of their check.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, now_seconds, Registry, RegistryError};
use crate::domain::AccessRequestStatus;

#[derive(Debug, Clone)]
pub struct NewAccessRequest {
    pub organisation_id: i64,
    pub uploader_user_id: i64,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub report_key: String,
    pub report_size: u64,
    /// Pending (checked, waiting for a decision) or invalid (problems found).
    pub status: AccessRequestStatus,
    pub problems: i64,
}

#[derive(Debug, Clone)]
pub struct AccessRequestRecord {
    pub id: i64,
    pub organisation_id: i64,
    pub uploader_user_id: i64,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub report_key: String,
    pub report_size: u64,
    pub status: AccessRequestStatus,
    pub problems: i64,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
}

const SELECT: &str = "SELECT id, organisation_id, uploader_user_id, file_name, size, sha256, object_key, report_key,
        report_size, status, problems, created_at, decided_by, reason FROM access_requests";

fn from_row(row: &AnyRow) -> Result<AccessRequestRecord, RegistryError> {
    Ok(AccessRequestRecord {
        id: row.try_get("id")?,
        organisation_id: row.try_get("organisation_id")?,
        uploader_user_id: row.try_get("uploader_user_id")?,
        file_name: row.try_get("file_name")?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        sha256: row.try_get("sha256")?,
        object_key: row.try_get("object_key")?,
        report_key: row.try_get("report_key")?,
        report_size: u64::try_from(row.try_get::<i64, _>("report_size")?).unwrap_or(0),
        status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("access_requests.status"))?,
        problems: row.try_get("problems")?,
        created_at: row.try_get("created_at")?,
        decided_by: row.try_get("decided_by")?,
        reason: row.try_get("reason")?,
    })
}

impl Registry {
    pub async fn record_access_request(&self, request: &NewAccessRequest) -> Result<i64, RegistryError> {
        let row = sqlx::query(
            "INSERT INTO access_requests (organisation_id, uploader_user_id, file_name, size, sha256, object_key,
                                          report_key, report_size, status, problems, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(request.organisation_id)
        .bind(request.uploader_user_id)
        .bind(&request.file_name)
        .bind(i64::try_from(request.size).unwrap_or(i64::MAX))
        .bind(&request.sha256)
        .bind(&request.object_key)
        .bind(&request.report_key)
        .bind(i64::try_from(request.report_size).unwrap_or(i64::MAX))
        .bind(request.status.as_str())
        .bind(request.problems)
        .bind(now_seconds())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn access_request(&self, id: i64) -> Result<AccessRequestRecord, RegistryError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(super::Entity::AccessRequest(id)))?;
        from_row(&row)
    }

    /// Requests of one organisation (newest of each name), or of all, newest first.
    pub async fn access_requests(
        &self,
        organisation_id: Option<i64>,
    ) -> Result<Vec<AccessRequestRecord>, RegistryError> {
        let rows = match organisation_id {
            Some(id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE id IN (SELECT MAX(id) FROM access_requests WHERE organisation_id = $1 GROUP BY file_name)
                     ORDER BY file_name"
                )))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY id DESC"))).fetch_all(&self.pool).await?,
        };
        rows.iter().map(from_row).collect()
    }

    /// Records the decision on a pending request; false when it was no longer pending.
    pub async fn decide_access_request(
        &self,
        id: i64,
        status: AccessRequestStatus,
        decided_by: &str,
        reason: Option<&str>,
    ) -> Result<bool, RegistryError> {
        let updated = sqlx::query(
            "UPDATE access_requests SET status = $1, decided_by = $2, decided_at = $3, reason = $4
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(decided_by)
        .bind(now_seconds())
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }
}
