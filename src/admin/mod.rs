//! The administration services behind the CLI, one file per aggregate: organisations,
//! contracts, accounts (users and staff), access requests (user sheets), publishing and
//! uploads. Inputs arrive already parsed into domain types; every change is written to the
//! audit log with the operator as actor. An [`Admin`] is built by `startup` only, with every
//! part it needs.

mod access_requests;
mod accounts;
mod audit_trail;
mod contracts;
mod defender;
pub mod error;
mod organisations;
mod publishing;
mod uploads;

use std::path::{Path, PathBuf};

use time::Date;

use crate::audit;
use crate::clock::Clock;
use crate::domain::{
    AuditAction, AuditOutcome, EmailAddress, EnterpriseNumber, Language, Login, Profile, Scope, SshPublicKey,
};
use crate::ingest::reader_process::ReaderProcess;
use crate::ingest::schema::Schemas;
use crate::layout::Layout;
use crate::notify::Outbox;
use crate::registry::{NewAuditEvent, OrganisationRecord, Registry};
use crate::storage::ObjectStore;

pub use crate::publishing::PublishOutcome;
pub use error::{AdminError, Refusal};

use error::Field;

/// An organisation's use of its quotas (`quota show`).
#[derive(Debug, Clone)]
pub struct QuotaUsage {
    pub organisation: OrganisationRecord,
    /// Bytes of inbox files stored.
    pub stored: u64,
    pub limits: crate::config::QuotaSettings,
    /// Bytes each user uploaded today (UTC).
    pub users: Vec<(Login, u64)>,
}

/// A user to create, as the operator described it.
#[derive(Debug, Clone)]
pub struct UserRequest {
    pub organisation: EnterpriseNumber,
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub profile: Profile,
    pub scope: Scope,
    pub master: bool,
    pub external_until: Option<Date>,
    pub public_key_files: Vec<PathBuf>,
    /// OpenSSH public key lines (from a user sheet).
    pub public_key_lines: Vec<String>,
    pub password: Option<String>,
}

/// An account just added, and whether a generated password went to its owner by mail.
#[derive(Debug, Clone)]
pub struct NewAccount<R> {
    pub record: R,
    pub password_mailed: bool,
}

/// What applying a user sheet did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetOutcome {
    /// Nothing was changed; one line per problem: row, column, message.
    Rejected(Vec<(Option<u32>, Option<String>, String)>),
    /// The changes made, one line each.
    Applied(Vec<String>),
}

/// Administration of one gateway, on behalf of one operator.
#[derive(Debug, Clone)]
pub struct Admin {
    registry: Registry,
    storage: ObjectStore,
    layout: Layout,
    outbox: Outbox,
    schemas: Schemas,
    /// Reads user sheets in a confined child process.
    reader: ReaderProcess,
    clock: Clock,
    actor: String,
}

/// The parts an [`Admin`] works with, as `startup` assembles them.
#[derive(Debug, Clone)]
pub struct AdminParts {
    pub registry: Registry,
    pub storage: ObjectStore,
    pub layout: Layout,
    pub outbox: Outbox,
    pub schemas: Schemas,
    pub reader: ReaderProcess,
    pub clock: Clock,
}

impl Admin {
    pub fn new(parts: AdminParts, actor: impl Into<String>) -> Self {
        let AdminParts { registry, storage, layout, outbox, schemas, reader, clock } = parts;
        Self { registry, storage, layout, outbox, schemas, reader, clock, actor: actor.into() }
    }
}

fn non_empty(what: Field, value: &str) -> Result<String, AdminError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Refusal::Empty(what).into());
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Refusal::ControlCharacters(what).into());
    }
    Ok(trimmed.to_string())
}

/// Reads OpenSSH public keys (one per line, `#` comments allowed) from a file.
pub fn read_public_keys(path: &Path) -> Result<Vec<SshPublicKey>, AdminError> {
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::Io { path: path.to_path_buf(), source })?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = SshPublicKey::parse(line).map_err(|source| AdminError::PublicKey {
            path: path.to_path_buf(),
            line: number + 1,
            source,
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Refusal::NoPublicKey { path: path.to_path_buf() }.into());
    }
    Ok(keys)
}

impl Admin {
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    async fn audit(&self, action: AuditAction, organisation_id: Option<i64>, detail: String) -> Result<(), AdminError> {
        let event = NewAuditEvent {
            at_ms: crate::clock::now_millis(),
            actor: self.actor.clone(),
            organisation_id,
            reason: Some(audit::mask_personal_numbers(&detail)),
            ..NewAuditEvent::new(action, AuditOutcome::Ok)
        };
        self.registry.append_audit_events(&[event]).await?;
        Ok(())
    }

    /// Queues mail (in one transaction) and tries to deliver it at once; what cannot be
    /// delivered now stays queued for `serve` to retry.
    async fn mail(&self, mail: Vec<(EmailAddress, crate::notify::Message)>) -> Result<(), AdminError> {
        self.outbox.queue(mail).await?;
        self.deliver_queued_mail().await;
        Ok(())
    }

    /// One delivery round, ended by the first transient failure: a mail server that is down
    /// delays a command by one attempt at most, and `serve` retries.
    pub async fn deliver_queued_mail(&self) {
        {
            match self.outbox.deliver_due(true).await {
                Ok(round) if round.deferred > 0 || round.failed > 0 => tracing::warn!(
                    sent = round.sent,
                    deferred = round.deferred,
                    failed = round.failed,
                    "mail queued for another attempt (serve retries; see `pension-gateway outbox list`)"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot deliver queued mail now; serve retries"),
            }
        }
    }
}
