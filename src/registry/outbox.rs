//! The outbox: messages waiting for delivery, delivered ones (without their body) and the
//! ones given up on.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_seconds, Registry, RegistryError};

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub recipient: String,
    pub purpose: &'static str,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct OutboxRecord {
    pub id: i64,
    pub recipient: String,
    pub purpose: String,
    pub subject: String,
    /// Empty once delivered.
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const SELECT: &str = "SELECT id, recipient, purpose, subject, body, status, attempts, next_attempt_at, last_error,
        created_at, sent_at FROM outbox";

fn from_row(row: &AnyRow) -> Result<OutboxRecord, RegistryError> {
    Ok(OutboxRecord {
        id: row.try_get("id")?,
        recipient: row.try_get("recipient")?,
        purpose: row.try_get("purpose")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
    })
}

/// Queues a message inside a caller's transaction, so that it exists if and only if what it
/// tells about happened.
pub(crate) async fn queue_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    message: &NewMessage,
) -> Result<i64, RegistryError> {
    let now = now_seconds();
    let row = sqlx::query(
        "INSERT INTO outbox (recipient, purpose, subject, body, status, attempts, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
    )
    .bind(&message.recipient)
    .bind(message.purpose)
    .bind(&message.subject)
    .bind(&message.body)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

impl Registry {
    /// Queues messages in one transaction.
    pub async fn queue_messages(&self, messages: &[NewMessage]) -> Result<Vec<i64>, RegistryError> {
        let mut tx = self.begin_write().await?;
        let mut ids = Vec::with_capacity(messages.len());
        for message in messages {
            ids.push(queue_in(&mut tx, message).await?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Pending messages whose next attempt is due, oldest first.
    pub async fn due_messages(&self, now: i64, limit: i64) -> Result<Vec<OutboxRecord>, RegistryError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Claims a due message for one attempt: its next attempt moves to `retry_at` first, so a
    /// second deliverer (another process) does not send it too while this one is trying.
    pub async fn claim_message(&self, id: i64, now: i64, retry_at: i64) -> Result<bool, RegistryError> {
        let claimed = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
             WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3",
        )
        .bind(retry_at)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Marks a message delivered and erases its body.
    pub async fn message_sent(&self, id: i64) -> Result<(), RegistryError> {
        sqlx::query("UPDATE outbox SET status = 'sent', sent_at = $1, body = '', last_error = NULL WHERE id = $2")
            .bind(now_seconds())
            .bind(id)
            .execute(&self.pool)
            .await?;
        super::forget_erased(self).await
    }

    /// Records why an attempt failed; `give_up` marks the message failed (its body is kept
    /// for an operator to resend, except credentials, which are erased).
    pub async fn message_attempt_failed(&self, id: i64, error: &str, give_up: bool) -> Result<(), RegistryError> {
        let error: String = error.chars().take(500).collect();
        if give_up {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', last_error = $1,
                        body = CASE WHEN purpose = 'credentials' THEN '' ELSE body END
                 WHERE id = $2",
            )
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
            super::forget_erased(self).await?;
        } else {
            sqlx::query("UPDATE outbox SET last_error = $1 WHERE id = $2")
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Messages by status ("pending", "failed", "sent"), or all, newest first.
    pub async fn outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRecord>, RegistryError> {
        let rows = match status {
            Some(status) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE status = $1 ORDER BY id DESC LIMIT $2")))
                    .bind(status.to_string())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY id DESC LIMIT $1")))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(from_row).collect()
    }
}
