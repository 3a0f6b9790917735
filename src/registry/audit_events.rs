//! The audit trail: append-only, each event chained to the previous one by an HMAC-SHA-256
//! with a key kept outside the database, so that a removed or altered event is detected
//! (`audit verify`) and recomputing the chain after an edit needs the key. Rows written
//! before the key existed keep a plain SHA-256 chain (`keyed = 0`).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{corrupt, placeholders, Dialect, Registry, RegistryError};
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
    /// A user's download of a published document, recorded as its receipt in the same
    /// transaction as the event. Not part of the chained fields; not read back.
    pub receipt: Option<DownloadReceipt>,
}

/// Who fetched which published document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadReceipt {
    pub document_id: i64,
    pub user_id: i64,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub event: NewAuditEvent,
    pub prev_hash: String,
    pub hash: String,
    /// Chained with the key (false: a plain SHA-256 row from before the key existed).
    pub keyed: bool,
}

/// The secret that keys the audit chain and signs its checkpoints. Never logged.
#[derive(Clone)]
pub struct AuditKey(Hmac<Sha256>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        // HMAC pads a key shorter than the hash's block with zeros: padding it here gives the
        // same MAC through the constructor that cannot fail.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&bytes);
        Self(<Hmac<Sha256> as KeyInit>::new(&block.into()))
    }

    /// HMAC-SHA-256 of `parts`, each preceded by its length, in hex.
    pub fn mac(&self, parts: &[&str]) -> String {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

/// 14 parameters per event stays far below SQLite's and PostgreSQL's limits.
const AUDIT_ROWS_PER_INSERT: usize = 200;

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
            receipt: None,
        }
    }

    /// The event's link in the chain: an HMAC with `key`, or (rows from before the key
    /// existed) a plain SHA-256, over the previous hash and every field.
    pub fn chained_hash(&self, prev_hash: &str, key: Option<&AuditKey>) -> String {
        let fields = self.chained_fields(prev_hash);
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        match key {
            Some(key) => key.mac(&fields),
            None => {
                let mut hasher = Sha256::new();
                for field in fields {
                    hasher.update((field.len() as u64).to_be_bytes());
                    hasher.update(field.as_bytes());
                }
                hex::encode(hasher.finalize())
            }
        }
    }

    fn chained_fields(&self, prev_hash: &str) -> [String; 12] {
        let optional_number = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
        let text = |s: Option<&String>| s.cloned().unwrap_or_default();
        [
            prev_hash.to_string(),
            self.at_ms.to_string(),
            self.actor.clone(),
            optional_number(self.organisation_id),
            self.action.as_str().to_string(),
            text(self.path.as_ref()),
            self.outcome.as_str().to_string(),
            text(self.reason.as_ref()),
            text(self.remote_addr.as_ref()),
            text(self.session_id.as_ref()),
            optional_number(self.bytes),
            text(self.sha256.as_ref()),
        ]
    }
}

impl Registry {
    /// The key of the audit chain, for `audit verify` and checkpoints.
    pub fn audit_key(&self) -> Option<&AuditKey> {
        self.audit_key.as_ref()
    }

    /// The last event of the chain: its id and hash.
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, RegistryError> {
        let row = sqlx::query("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("id")?, row.try_get("hash")?))).transpose()
    }

    /// Appends events in order, in one transaction that holds the chain's tail.
    pub async fn append_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), RegistryError> {
        if events.is_empty() {
            return Ok(());
        }
        let key = self.audit_key.as_ref().ok_or(RegistryError::NoAuditKey)?;
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
        let mut links = Vec::with_capacity(events.len());
        for event in events {
            let hash = event.chained_hash(&prev_hash, Some(key));
            links.push((event, std::mem::replace(&mut prev_hash, hash.clone()), hash));
        }
        // A statement per few hundred events, not one per event: each statement is a round
        // trip to the database.
        for chunk in links.chunks(AUDIT_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO audit_events (at_ms, actor, organisation_id, action, path, outcome, reason,
                                           remote_addr, session_id, bytes, sha256, prev_hash, hash, keyed)
                 VALUES {}",
                placeholders(self.dialect, chunk.len(), 14)
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (event, prev_hash, hash) in chunk {
                insert = insert
                    .bind(event.at_ms)
                    .bind(event.actor.as_str())
                    .bind(event.organisation_id)
                    .bind(event.action.as_str())
                    .bind(event.path.as_deref())
                    .bind(event.outcome.as_str())
                    .bind(event.reason.as_deref())
                    .bind(event.remote_addr.as_deref())
                    .bind(event.session_id.as_deref())
                    .bind(event.bytes)
                    .bind(event.sha256.as_deref())
                    .bind(prev_hash.as_str())
                    .bind(hash.as_str())
                    .bind(1i64);
            }
            insert.execute(&mut *tx).await?;
        }
        let receipts: Vec<(DownloadReceipt, i64)> =
            events.iter().filter_map(|e| e.receipt.map(|receipt| (receipt, e.at_ms.div_euclid(1000)))).collect();
        for chunk in receipts.chunks(AUDIT_ROWS_PER_INSERT) {
            // Guarded, so that a receipt can never make the events around it fail to be written.
            let sql = format!(
                "INSERT INTO document_downloads (document_id, user_id, first_at)
                 SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) AS v
                 WHERE EXISTS (SELECT 1 FROM documents d WHERE d.id = v.column1)
                   AND EXISTS (SELECT 1 FROM users u WHERE u.id = v.column2)
                 ON CONFLICT (document_id, user_id) DO NOTHING",
                placeholders(self.dialect, chunk.len(), 3)
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (receipt, first_at) in chunk {
                insert = insert.bind(receipt.document_id).bind(receipt.user_id).bind(*first_at);
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events in order, from `since_ms` on.
    pub async fn audit_events(&self, since_ms: i64) -> Result<Vec<AuditRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, organisation_id, action, path, outcome, reason, remote_addr, session_id,
                    bytes, sha256, prev_hash, hash, keyed
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
                        receipt: None,
                    },
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                    keyed: r.try_get::<i64, _>("keyed")? != 0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_macs_as_rfc_4231_says() {
        // RFC 4231 test case 2 keys HMAC with "Jefe"; a 32-byte key padded with zeros is the
        // same HMAC as that key given whole.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mut expected = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        expected.update(&(28u64).to_be_bytes());
        expected.update(b"what do ya want for nothing?");
        assert_eq!(
            AuditKey::new(key).mac(&["what do ya want for nothing?"]),
            hex::encode(expected.finalize().into_bytes())
        );
    }

    #[test]
    fn a_keyed_link_differs_from_a_plain_one_and_from_another_keys() {
        let event = NewAuditEvent::new(crate::domain::AuditAction::Login, crate::domain::AuditOutcome::Ok);
        let (one, other) = (AuditKey::new([1; 32]), AuditKey::new([2; 32]));
        let plain = event.chained_hash(GENESIS_HASH, None);
        assert_ne!(event.chained_hash(GENESIS_HASH, Some(&one)), plain);
        assert_ne!(event.chained_hash(GENESIS_HASH, Some(&one)), event.chained_hash(GENESIS_HASH, Some(&other)));
        assert_eq!(format!("{one:?}"), "AuditKey(..)", "never shown");
    }
}
