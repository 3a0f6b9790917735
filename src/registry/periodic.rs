//! Claims of periodic jobs: several instances run the same hourly loops, and for each hour the
//! first claim of a job wins; the others skip that hour.

use super::{Registry, RegistryError};

/// Claims older than this are forgotten (a claim only matters while its hour is current).
const KEPT_PERIODS: i64 = 24 * 31;

impl Registry {
    /// Whether this caller is the one that runs `job` for `period` (an hour number): true for
    /// exactly one caller per job and period, whichever instances ask.
    pub async fn claim_period(&self, job: &str, period: i64, now: i64, instance: &str) -> Result<bool, RegistryError> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO periodic_runs (job, period, claimed_at, claimed_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job, period) DO NOTHING",
        )
        .bind(job)
        .bind(period)
        .bind(now)
        .bind(instance)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            sqlx::query("DELETE FROM periodic_runs WHERE job = $1 AND period < $2")
                .bind(job)
                .bind(period - KEPT_PERIODS)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
