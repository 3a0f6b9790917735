//! Documents the insurer published, with their history: a new version under an existing
//! name supersedes the old one, which stays recorded.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_seconds, Registry, RegistryError};
use crate::domain::{ContractNumber, FileName, KindName, Year};

#[derive(Debug, Clone)]
pub struct NewDocument {
    pub contract_id: i64,
    pub kind: KindName,
    pub year: Option<Year>,
    pub file_name: FileName,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub published_by: String,
}

#[derive(Debug, Clone)]
pub struct DocumentRecord {
    pub id: i64,
    pub contract: ContractNumber,
    pub kind: KindName,
    pub year: Option<Year>,
    pub file_name: FileName,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub published_by: String,
    pub published_at: i64,
}

/// What recording a document did.
#[derive(Debug, Clone)]
pub enum Publication {
    /// A new document, possibly replacing an older version under the same name.
    Published { document: DocumentRecord, replaced: Option<i64> },
    /// The same content was already the current version: nothing changed.
    Unchanged(DocumentRecord),
}

const DOCUMENT_SELECT: &str = "SELECT d.id, c.number AS contract, d.kind, d.year, d.file_name, d.size, d.sha256,
        d.object_key, d.published_by, d.published_at
     FROM documents d JOIN contracts c ON c.id = d.contract_id";

fn sql(tail: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{DOCUMENT_SELECT} {tail}"))
}

fn document_from_row(row: &AnyRow) -> Result<DocumentRecord, RegistryError> {
    Ok(DocumentRecord {
        id: row.try_get("id")?,
        contract: ContractNumber::parse(&row.try_get::<String, _>("contract")?)
            .map_err(super::corrupt("contracts.number"))?,
        kind: KindName::parse(&row.try_get::<String, _>("kind")?).map_err(super::corrupt("documents.kind"))?,
        year: row
            .try_get::<Option<i64>, _>("year")?
            .map(Year::from_number)
            .transpose()
            .map_err(super::corrupt("documents.year"))?,
        file_name: FileName::parse(&row.try_get::<String, _>("file_name")?)
            .map_err(super::corrupt("documents.file_name"))?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        sha256: row.try_get("sha256")?,
        object_key: row.try_get("object_key")?,
        published_by: row.try_get("published_by")?,
        published_at: row.try_get("published_at")?,
    })
}

/// `year` is NULL for kinds without year folders; 0 stands for it in comparisons.
fn year_key(year: Option<Year>) -> i64 {
    year.map(|y| i64::from(y.get())).unwrap_or(0)
}

impl Registry {
    /// Records a published document. Identical content under the same name is a no-op.
    pub async fn record_document(&self, document: &NewDocument) -> Result<Publication, RegistryError> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(sql(
            "WHERE d.contract_id = $1 AND d.kind = $2 AND COALESCE(d.year, 0) = $3 AND d.file_name = $4
               AND d.superseded_at IS NULL",
        ))
        .bind(document.contract_id)
        .bind(document.kind.as_str())
        .bind(year_key(document.year))
        .bind(document.file_name.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let current = current.as_ref().map(document_from_row).transpose()?;
        if let Some(existing) = current.as_ref().filter(|d| d.sha256 == document.sha256) {
            return Ok(Publication::Unchanged(existing.clone()));
        }
        let now = now_seconds();
        if let Some(old) = &current {
            sqlx::query("UPDATE documents SET superseded_at = $1 WHERE id = $2")
                .bind(now)
                .bind(old.id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO documents (contract_id, kind, year, file_name, size, sha256, object_key, published_by,
                                    published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(document.contract_id)
        .bind(document.kind.as_str())
        .bind(document.year.map(|y| i64::from(y.get())))
        .bind(document.file_name.as_str())
        .bind(i64::try_from(document.size).unwrap_or(i64::MAX))
        .bind(&document.sha256)
        .bind(&document.object_key)
        .bind(&document.published_by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(super::unique_or(super::Entity::DocumentVersion))?;
        let id: i64 = row.try_get(0)?;
        // Read back inside the transaction: one round trip less than a fresh connection.
        let row = sqlx::query(sql("WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| RegistryError::NotFound(super::Entity::Document(id)))?;
        let document = document_from_row(&row)?;
        tx.commit().await?;
        Ok(Publication::Published { document, replaced: current.map(|d| d.id) })
    }

    pub async fn document_by_id(&self, id: i64) -> Result<DocumentRecord, RegistryError> {
        let row = sqlx::query(sql("WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(super::Entity::Document(id)))?;
        document_from_row(&row)
    }

    /// The current version of a document, found by its contract's number in the same query:
    /// every small download looks one up twice (stat, then open).
    pub async fn document(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        year: Option<Year>,
        name: &FileName,
    ) -> Result<Option<DocumentRecord>, RegistryError> {
        let row =
            sqlx::query(sql("WHERE c.number = $1 AND d.kind = $2 AND COALESCE(d.year, 0) = $3 AND d.file_name = $4
               AND d.superseded_at IS NULL"))
            .bind(contract.as_str())
            .bind(kind.as_str())
            .bind(year_key(year))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(document_from_row).transpose()
    }

    /// Current documents of one folder, by name.
    pub async fn documents_in_folder(
        &self,
        contract_id: i64,
        kind: &KindName,
        year: Option<Year>,
    ) -> Result<Vec<DocumentRecord>, RegistryError> {
        let rows = sqlx::query(sql(
            "WHERE d.contract_id = $1 AND d.kind = $2 AND COALESCE(d.year, 0) = $3 AND d.superseded_at IS NULL
             ORDER BY d.file_name",
        ))
        .bind(contract_id)
        .bind(kind.as_str())
        .bind(year_key(year))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(document_from_row).collect()
    }

    /// The year folders of a kind published per year, with the newest publication time in each.
    pub async fn document_years(&self, contract_id: i64, kind: &KindName) -> Result<Vec<(Year, i64)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT year, MAX(published_at) FROM documents
             WHERE contract_id = $1 AND kind = $2 AND year IS NOT NULL AND superseded_at IS NULL
             GROUP BY year ORDER BY year",
        )
        .bind(contract_id)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let year: i64 = r.try_get(0)?;
                let year = Year::from_number(year).map_err(super::corrupt("documents.year"))?;
                Ok((year, r.try_get(1)?))
            })
            .collect()
    }

    /// Current documents of a contract with who downloaded each, and when first.
    pub async fn documents_with_receipts(
        &self,
        contract_id: i64,
    ) -> Result<Vec<(DocumentRecord, Vec<(String, i64)>)>, RegistryError> {
        let rows = sqlx::query(sql(
            "WHERE d.contract_id = $1 AND d.superseded_at IS NULL ORDER BY d.kind, d.year, d.file_name",
        ))
        .bind(contract_id)
        .fetch_all(&self.pool)
        .await?;
        let mut documents = Vec::with_capacity(rows.len());
        for row in &rows {
            let document = document_from_row(row)?;
            let receipts = sqlx::query(
                "SELECT u.login, r.first_at FROM document_downloads r JOIN users u ON u.id = r.user_id
                 WHERE r.document_id = $1 ORDER BY r.first_at, u.login",
            )
            .bind(document.id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect::<Result<Vec<_>, RegistryError>>()?;
            documents.push((document, receipts));
        }
        Ok(documents)
    }
}

/// An object the registry points at, with what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedObject {
    /// What the object is, e.g. "upload #12" (no names, no personal data).
    pub owner: String,
    pub object_key: String,
    pub size: u64,
    /// Hex SHA-256 of the plaintext; reports of access requests have none recorded.
    pub sha256: Option<String>,
}

impl Registry {
    /// Every object the registry points at: uploads not withdrawn whose file retention has not
    /// removed, documents (all versions),
    /// ingestion reports, user sheets and their reports.
    pub async fn recorded_objects(&self) -> Result<Vec<RecordedObject>, RegistryError> {
        let rows = sqlx::query(
            "SELECT 'upload #' || id AS owner, object_key, size, sha256 FROM uploads
             WHERE status <> 'withdrawn' AND file_removed_at IS NULL
             UNION ALL SELECT 'document #' || id, object_key, size, sha256 FROM documents
             UNION ALL SELECT 'report #' || id, object_key, size, sha256 FROM reports
             UNION ALL SELECT 'access request #' || id, object_key, size, sha256 FROM access_requests
             UNION ALL SELECT 'access request report #' || id, report_key, report_size, NULL FROM access_requests
             ORDER BY 2",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RecordedObject {
                    owner: row.try_get("owner")?,
                    object_key: row.try_get("object_key")?,
                    size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
                    sha256: row.try_get("sha256")?,
                })
            })
            .collect()
    }
}
