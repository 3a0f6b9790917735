//! Figures of the whole registry for operators (`/metrics`, the status page): counts only,
//! nothing personal.

use sqlx::Row;

use super::{Registry, RegistryError};

/// Counts by the values of one or two columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationsFigures {
    /// (kind, status, count)
    pub uploads: Vec<(String, String, i64)>,
    /// Ingestion jobs queued or running.
    pub ingestion_queue: i64,
    /// (status, count)
    pub outbox: Vec<(String, i64)>,
    /// (subject kind, count) of bans running now.
    pub active_bans: Vec<(String, i64)>,
}

impl Registry {
    pub async fn operations_figures(&self, now: i64) -> Result<OperationsFigures, RegistryError> {
        let mut figures = OperationsFigures::default();
        for row in sqlx::query(
            "SELECT kind, status, CAST(COUNT(*) AS BIGINT) AS n FROM uploads GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await?
        {
            figures.uploads.push((row.try_get("kind")?, row.try_get("status")?, row.try_get("n")?));
        }
        figures.ingestion_queue =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ingest_jobs WHERE status IN ('queued', 'running')")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        for row in
            sqlx::query("SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?
        {
            figures.outbox.push((row.try_get("status")?, row.try_get("n")?));
        }
        for row in sqlx::query(
            "SELECT subject_kind, CAST(COUNT(*) AS BIGINT) AS n FROM defender_bans WHERE banned_until > $1
             GROUP BY subject_kind ORDER BY subject_kind",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        {
            figures.active_bans.push((row.try_get("subject_kind")?, row.try_get("n")?));
        }
        Ok(figures)
    }
}
