//! The audit trail: append-only, each event chained to the previous one by SHA-256 so that a
//! removed or altered event is detected (`audit verify`).

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{corrupt, Dialect, Registry, RegistryError};
use crate::domain::{AuditAction, AuditOutcome};

/// An event to append. Never carries a password, a key or a national number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at_ms: i64,
    pub actor: String,
    pub organisation_id: Option<i64>,
    pub action: AuditAction,
    pub path: Option<String>,
    pub outcome: AuditOutcome,
    pub reason: Option<String>,
    pub remote_addr: Option<String>,
    pub session_id: Option<String>,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub event: NewAuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of the first event's predecessor.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl NewAuditEvent {
    /// An event with nothing but its action and outcome; the time is set when recorded.
    pub fn new(action: AuditAction, outcome: AuditOutcome) -> Self {
        Self {
            at_ms: 0,
            actor: String::new(),
            organisation_id: None,
            action,
            path: None,
            outcome,
            reason: None,
            remote_addr: None,
            session_id: None,
            bytes: None,
            sha256: None,
        }
    }

    /// SHA-256 over the previous hash and every field, unambiguously separated.
    pub fn chained_hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        let optional_number = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
        let fields: [&str; 12] = [
            prev_hash,
            &self.at_ms.to_string(),
            &self.actor,
            &optional_number(self.organisation_id),
            self.action.as_str(),
            self.path.as_deref().unwrap_or(""),
            self.outcome.as_str(),
            self.reason.as_deref().unwrap_or(""),
            self.remote_addr.as_deref().unwrap_or(""),
            self.session_id.as_deref().unwrap_or(""),
            &optional_number(self.bytes),
            self.sha256.as_deref().unwrap_or(""),
        ];
        for field in fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

impl Registry {
    /// Appends events in order, in one transaction that holds the chain's tail.
    pub async fn append_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), RegistryError> {
        if events.is_empty() {
            return Ok(());
        }
        // The write lock is held from the start, so two processes cannot fork the chain.
        let mut tx = self.begin_write().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("LOCK TABLE audit_events IN EXCLUSIVE MODE").execute(&mut *tx).await?;
        }
        let last =
            sqlx::query("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetch_optional(&mut *tx).await?;
        let mut prev_hash = match last {
            Some(row) => row.try_get::<String, _>(0)?,
            None => GENESIS_HASH.to_string(),
        };
        for event in events {
            let hash = event.chained_hash(&prev_hash);
            sqlx::query(
                "INSERT INTO audit_events (at_ms, actor, organisation_id, action, path, outcome, reason,
                                           remote_addr, session_id, bytes, sha256, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(event.at_ms)
            .bind(&event.actor)
            .bind(event.organisation_id)
            .bind(event.action.as_str())
            .bind(event.path.as_deref())
            .bind(event.outcome.as_str())
            .bind(event.reason.as_deref())
            .bind(event.remote_addr.as_deref())
            .bind(event.session_id.as_deref())
            .bind(event.bytes)
            .bind(event.sha256.as_deref())
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            prev_hash = hash;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events in order, from `since_ms` on.
    pub async fn audit_events(&self, since_ms: i64) -> Result<Vec<AuditRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, organisation_id, action, path, outcome, reason, remote_addr, session_id,
                    bytes, sha256, prev_hash, hash
             FROM audit_events WHERE at_ms >= $1 ORDER BY id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    event: NewAuditEvent {
                        at_ms: r.try_get("at_ms")?,
                        actor: r.try_get("actor")?,
                        organisation_id: r.try_get("organisation_id")?,
                        action: r.try_get::<String, _>("action")?.parse().map_err(corrupt("audit_events.action"))?,
                        path: r.try_get("path")?,
                        outcome: r.try_get::<String, _>("outcome")?.parse().map_err(corrupt("audit_events.outcome"))?,
                        reason: r.try_get("reason")?,
                        remote_addr: r.try_get("remote_addr")?,
                        session_id: r.try_get("session_id")?,
                        bytes: r.try_get("bytes")?,
                        sha256: r.try_get("sha256")?,
                    },
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }
}
