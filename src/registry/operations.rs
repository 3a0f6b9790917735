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
        figures.active_bans = self.active_bans_by_kind(now).await?;
        Ok(figures)
    }

    /// (subject kind, count) of bans running at `now`.
    async fn active_bans_by_kind(&self, now: i64) -> Result<Vec<(String, i64)>, RegistryError> {
        sqlx::query(
            "SELECT subject_kind, CAST(COUNT(*) AS BIGINT) AS n FROM defender_bans WHERE banned_until > $1
             GROUP BY subject_kind ORDER BY subject_kind",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("subject_kind")?, row.try_get("n")?)))
        .collect()
    }
}

/// What the staff's status page shows: counts, organisations by enterprise number and name,
/// finding codes. Nothing about a person (no national number, no affiliate, no login).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFigures {
    /// (status, count) of uploads received since the start of today (UTC).
    pub uploads_today: Vec<(String, i64)>,
    /// (status, count) since the start of this week (Monday, UTC).
    pub uploads_this_week: Vec<(String, i64)>,
    /// Organisations that uploaded in the last 30 days, the most rejected first.
    pub organisations: Vec<OrganisationFigures>,
    pub queue: QueueFigures,
    pub pending_access_requests: i64,
    pub mail: MailFigures,
    /// (subject kind, count) of bans running now.
    pub active_bans: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganisationFigures {
    pub enterprise_number: String,
    pub name: String,
    /// Uploads processed (accepted, rejected, duplicate or failed).
    pub processed: i64,
    pub rejected: i64,
    /// The most frequent error codes, (code, count), at most [`TOP_CODES`].
    pub top_codes: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFigures {
    pub queued: i64,
    pub running: i64,
    /// When the oldest queued job was queued (Unix seconds).
    pub oldest_queued_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFigures {
    pub pending: i64,
    pub failed: i64,
    pub oldest_pending_at: Option<i64>,
}

/// How many finding codes are shown per organisation.
pub const TOP_CODES: usize = 3;
/// The window of the per-organisation figures.
const ORGANISATION_WINDOW_SECONDS: i64 = 30 * 86_400;

/// The start of the ISO week (Monday 00:00 UTC) holding `now`.
pub fn utc_week_start(now: i64) -> i64 {
    let day = now.div_euclid(86_400);
    // 1970-01-01 was a Thursday: three days after a Monday.
    (day - (day + 3).rem_euclid(7)) * 86_400
}

impl Registry {
    pub async fn status_figures(&self, now: i64) -> Result<StatusFigures, RegistryError> {
        let mut figures = StatusFigures {
            uploads_today: self.uploads_since(crate::clock::utc_day_start(now)).await?,
            uploads_this_week: self.uploads_since(utc_week_start(now)).await?,
            ..StatusFigures::default()
        };
        let since = now - ORGANISATION_WINDOW_SECONDS;
        for row in sqlx::query(
            "SELECT o.id, o.enterprise_number, o.name,
                    CAST(SUM(CASE WHEN u.status IN ('accepted', 'rejected', 'duplicate', 'failed') THEN 1 ELSE 0 END) AS BIGINT) AS processed,
                    CAST(SUM(CASE WHEN u.status = 'rejected' THEN 1 ELSE 0 END) AS BIGINT) AS rejected
             FROM uploads u JOIN contracts c ON c.id = u.contract_id JOIN organisations o ON o.id = c.organisation_id
             WHERE u.received_at >= $1
             GROUP BY o.id, o.enterprise_number, o.name
             ORDER BY rejected DESC, processed DESC, o.enterprise_number",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        {
            let organisation_id: i64 = row.try_get("id")?;
            let top_codes = sqlx::query(
                "SELECT e.code, CAST(SUM(e.count) AS BIGINT) AS n
                 FROM upload_error_codes e JOIN uploads u ON u.id = e.upload_id JOIN contracts c ON c.id = u.contract_id
                 WHERE c.organisation_id = $1 AND u.received_at >= $2
                 GROUP BY e.code ORDER BY n DESC, e.code LIMIT $3",
            )
            .bind(organisation_id)
            .bind(since)
            .bind(TOP_CODES as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("code")?, r.try_get("n")?)))
            .collect::<Result<_, RegistryError>>()?;
            figures.organisations.push(OrganisationFigures {
                enterprise_number: row.try_get("enterprise_number")?,
                name: row.try_get("name")?,
                processed: row.try_get("processed")?,
                rejected: row.try_get("rejected")?,
                top_codes,
            });
        }
        let (queued, running, oldest_queued_at) = self.waiting_in("ingest_jobs", "queued", "running").await?;
        figures.queue = QueueFigures { queued, running, oldest_queued_at };
        figures.pending_access_requests =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM access_requests WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let (pending, failed, oldest_pending_at) = self.waiting_in("outbox", "pending", "failed").await?;
        figures.mail = MailFigures { pending, failed, oldest_pending_at };
        figures.active_bans = self.active_bans_by_kind(now).await?;
        Ok(figures)
    }

    /// Rows of `table` in status `waiting` and in status `other`, and when the oldest waiting
    /// one was created. The names are the registry's own constants, never input.
    async fn waiting_in(
        &self,
        table: &'static str,
        waiting: &'static str,
        other: &'static str,
    ) -> Result<(i64, i64, Option<i64>), RegistryError> {
        let statement = format!(
            "SELECT CAST(SUM(CASE WHEN status = '{waiting}' THEN 1 ELSE 0 END) AS BIGINT) AS waiting,
                    CAST(SUM(CASE WHEN status = '{other}' THEN 1 ELSE 0 END) AS BIGINT) AS other,
                    MIN(CASE WHEN status = '{waiting}' THEN created_at END) AS oldest
             FROM {table} WHERE status IN ('{waiting}', '{other}')"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_one(&self.pool).await?;
        Ok((
            row.try_get::<Option<i64>, _>("waiting")?.unwrap_or(0),
            row.try_get::<Option<i64>, _>("other")?.unwrap_or(0),
            row.try_get("oldest")?,
        ))
    }

    async fn uploads_since(&self, since: i64) -> Result<Vec<(String, i64)>, RegistryError> {
        sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM uploads WHERE received_at >= $1 GROUP BY status ORDER BY status",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::utc_week_start;

    #[test]
    fn the_week_starts_on_monday_at_midnight_utc() {
        // 2026-12-04 is a Friday; its week began on Monday 2026-11-30.
        let friday_noon = 1_796_342_400 + 12 * 3600;
        assert_eq!(utc_week_start(friday_noon), 1_795_996_800);
        assert_eq!(utc_week_start(1_795_996_800), 1_795_996_800, "Monday midnight is its own week's start");
        assert_eq!(utc_week_start(1_795_996_800 - 1), 1_795_996_800 - 7 * 86_400);
    }
}
