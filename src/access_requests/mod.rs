//! Access requests: the user sheets (DOMAIN.md §5) a master user drops into
//! `/access/requests/` or staff apply with `user apply`. A sheet is read in the reading child,
//! validated against the `user-sheet` schema, then checked against the organisation's facts
//! ([`rows`]: its contracts, its users, the logins in use, its last master user). The SQL is in
//! `registry/access_requests.rs`; staff decide in `admin/access_requests.rs`.

pub mod rows;

use serde_json::json;

use crate::domain::{AccessRequestStatus, Language};
use crate::ingest::read::ReadLimits;
use crate::ingest::reader_process::{ReaderError, ReaderProcess};
use crate::ingest::schema::Schemas;
use crate::ingest::validate::{validate, Finding, RegistryFacts, Severity};
use crate::registry::{Registry, RegistryError};
use rows::{check, KnownUser, OrganisationFacts, SheetRow};

/// Sheets larger than this are refused: a user sheet has a few rows.
pub const MAX_SHEET_BYTES: u64 = 5 * 1024 * 1024;

/// The rows of a sheet and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct CheckedSheet {
    pub rows: Vec<SheetRow>,
    pub findings: Vec<Finding>,
}

impl CheckedSheet {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    /// One line per error: row, column key, message.
    pub fn problems(&self, language: Language) -> Vec<(Option<u32>, Option<String>, String)> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.row, f.column.clone(), crate::ingest::messages::render(f.code, language, &f.params)))
            .collect()
    }

    /// The report shown next to the sheet in `/access/requests/`.
    pub fn report_json(&self, file_name: &str, status: AccessRequestStatus, language: Language) -> Vec<u8> {
        let problems: Vec<_> = self
            .problems(language)
            .into_iter()
            .map(|(row, column, message)| json!({ "row": row, "column": column, "message": message }))
            .collect();
        let value =
            json!({ "file_name": file_name, "status": status.as_str(), "rows": self.rows.len(), "errors": problems });
        serde_json::to_vec_pretty(&value).unwrap_or_default()
    }
}

/// Why a sheet could not be checked (not the sheet's fault).
#[derive(Debug, thiserror::Error)]
pub enum SheetCheckError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error("no user-sheet schema is configured")]
    NoSchema,
}

/// Reads (in a child process) and checks a sheet for an organisation.
pub async fn check_sheet(
    registry: &Registry,
    schemas: &Schemas,
    reader: &ReaderProcess,
    organisation_id: i64,
    file_name: &str,
    bytes: bytes::Bytes,
    today: time::Date,
) -> Result<CheckedSheet, SheetCheckError> {
    let Some(schema) = schemas.for_kind("user-sheet") else {
        return Err(SheetCheckError::NoSchema);
    };
    let limits = ReadLimits { max_file_bytes: MAX_SHEET_BYTES, max_rows: 1_000, ..ReadLimits::default() };
    let sheet = match reader.read(file_name, bytes, &schema.formats, &limits, false).await? {
        Ok(contents) => contents.sheet,
        Err(error) => {
            return Ok(CheckedSheet { rows: Vec::new(), findings: vec![crate::ingest::worker::file_finding(&error)] })
        }
    };
    let organisation = registry.organisation(organisation_id).await?;
    let contracts = registry.contracts(Some(organisation_id)).await?;
    // The user-sheet schema has no contract or affiliate rules: these facts are not read.
    let facts = RegistryFacts {
        folder_contract: None,
        employer: organisation.enterprise_number.clone(),
        categories: Default::default(),
        active: Default::default(),
        today,
    };
    let validation = validate(schema, &sheet, &facts);
    let organisation_facts = OrganisationFacts {
        contracts: contracts.iter().map(|c| c.number.clone()).collect(),
        users: registry
            .users(Some(organisation_id))
            .await?
            .into_iter()
            .map(|u| {
                let active = u.status == crate::domain::AccountStatus::Active;
                (u.login, KnownUser { master: u.master, active })
            })
            .collect(),
        taken_logins: registry.all_logins().await?.into_iter().collect(),
    };
    let (rows, mut findings) = check(&validation.rows, &organisation_facts);
    findings.extend(validation.findings);
    findings.sort_by_key(|f| f.row.unwrap_or(0));
    Ok(CheckedSheet { rows, findings })
}
