//! The defender's scores and bans, shared by every instance on this registry.

use sqlx::Row;

use super::{Registry, RegistryError};

/// A ban (an address) or a suspension of password logins (a login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// `address` or `login`.
    pub subject_kind: String,
    pub subject: String,
    pub banned_at: i64,
    pub banned_until: i64,
    /// How many times this subject was banned, this ban included.
    pub ban_count: i64,
    pub reason: String,
}

/// A counted failure: its subject's score within the window, and the ban it led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    /// Zero again once the subject is banned.
    pub score: i64,
    pub ban: Option<BanRecord>,
}

/// How a scored failure is turned into a ban (the rules are `auth::defender`'s).
#[derive(Debug, Clone, Copy)]
pub struct Scoring {
    pub weight: i64,
    pub window_seconds: i64,
    pub threshold: i64,
    /// The length of a ban, in seconds, for a subject banned `n` times before (`n` past the
    /// end: the last).
    pub ban_seconds: [i64; 17],
}

fn ban_from_row(row: &sqlx::any::AnyRow) -> Result<BanRecord, RegistryError> {
    Ok(BanRecord {
        subject_kind: row.try_get("subject_kind")?,
        subject: row.try_get("subject")?,
        banned_at: row.try_get("banned_at")?,
        banned_until: row.try_get("banned_until")?,
        ban_count: row.try_get("ban_count")?,
        reason: row.try_get("reason")?,
    })
}

impl Registry {
    /// Counts a failure of `subject`; returns its score within the window and the ban it leads
    /// to, if the score reaches the threshold. The scores of a banned subject start again from
    /// zero.
    pub async fn score_failure(
        &self,
        kind: &str,
        subject: &str,
        now: i64,
        scoring: Scoring,
        reason: &str,
    ) -> Result<Scored, RegistryError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM defender_events WHERE at < $1")
            .bind(now - scoring.window_seconds)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO defender_events (subject_kind, subject, at, weight) VALUES ($1, $2, $3, $4)")
            .bind(kind)
            .bind(subject)
            .bind(now)
            .bind(scoring.weight)
            .execute(&mut *tx)
            .await?;
        let score = sqlx::query(
            "SELECT CAST(COALESCE(SUM(weight), 0) AS BIGINT) AS score FROM defender_events
             WHERE subject_kind = $1 AND subject = $2",
        )
        .bind(kind)
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>("score")?;
        if score < scoring.threshold {
            tx.commit().await?;
            return Ok(Scored { score, ban: None });
        }
        let earlier = sqlx::query("SELECT ban_count FROM defender_bans WHERE subject_kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("ban_count"))
            .transpose()?
            .unwrap_or(0);
        let index = usize::try_from(earlier).unwrap_or(usize::MAX).min(scoring.ban_seconds.len() - 1);
        let until = now + scoring.ban_seconds[index];
        sqlx::query("DELETE FROM defender_bans WHERE subject_kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO defender_bans (subject_kind, subject, banned_until, ban_count, reason, banned_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(kind)
        .bind(subject)
        .bind(until)
        .bind(earlier + 1)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM defender_events WHERE subject_kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let ban = BanRecord {
            subject_kind: kind.to_string(),
            subject: subject.to_string(),
            banned_at: now,
            banned_until: until,
            ban_count: earlier + 1,
            reason: reason.to_string(),
        };
        Ok(Scored { score: 0, ban: Some(ban) })
    }

    /// The ban of `subject` still running at `now`.
    pub async fn active_ban(&self, kind: &str, subject: &str, now: i64) -> Result<Option<BanRecord>, RegistryError> {
        let row = sqlx::query(
            "SELECT subject_kind, subject, banned_at, banned_until, ban_count, reason FROM defender_bans
             WHERE subject_kind = $1 AND subject = $2 AND banned_until > $3",
        )
        .bind(kind)
        .bind(subject)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ban_from_row).transpose()
    }

    /// Bans still running at `now`, newest first.
    pub async fn active_bans(&self, now: i64) -> Result<Vec<BanRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT subject_kind, subject, banned_at, banned_until, ban_count, reason FROM defender_bans
             WHERE banned_until > $1 ORDER BY banned_at DESC",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ban_from_row).collect()
    }

    /// Ends a running ban now (its count stays: a return is banned longer); false when none ran.
    pub async fn lift_ban(&self, kind: &str, subject: &str, now: i64) -> Result<bool, RegistryError> {
        let lifted = sqlx::query(
            "UPDATE defender_bans SET banned_until = $1 WHERE subject_kind = $2 AND subject = $3 AND banned_until > $1",
        )
        .bind(now)
        .bind(kind)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM defender_events WHERE subject_kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(lifted.rows_affected() > 0)
    }
}
