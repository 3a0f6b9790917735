//! The registry: the only place with SQL. One [`Registry`] over SQLite (the embedded default)
//! or PostgreSQL, chosen by the URL scheme, with the same statements on both (sqlx `Any`,
//! `$N` placeholders, integer flags) and one migrations folder per dialect.
//!
//! One file per aggregate: organisations and contracts, accounts (users, staff, keys),
//! uploads, documents, audit events.

mod access_requests;
mod accounts;
mod audit_events;
mod defender;
mod documents;
mod ingestion;
mod operations;
mod organisations;
mod outbox;
mod periodic;
mod uploads;

use sqlx::any::AnyPoolOptions;

use crate::domain::{ContractNumber, EnterpriseNumber, Login};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlStr};

pub use access_requests::{AccessRequestRecord, NewAccessRequest};
pub use accounts::format_date;
pub use accounts::{
    AccountRef, LoginAccount, NewStaff, NewUser, SessionAccount, StaffRecord, UserAccess, UserChanges, UserRecord,
};
pub use audit_events::{AuditKey, AuditRecord, DownloadReceipt, NewAuditEvent, GENESIS_HASH};
pub use defender::{BanRecord, Scored, Scoring};
pub use documents::{DocumentRecord, NewDocument, Publication, RecordedObject};
pub use ingestion::{
    ActiveAffiliateRecord, AffiliateRecord, Completion, IngestJob, NewReport, RegistryChange, ReportRecord,
    TemplateRecord, TemplateRow,
};
pub use operations::{
    utc_week_start, MailFigures, OperationsFigures, OrganisationFigures, QueueFigures, StatusFigures, TOP_CODES,
};
pub use organisations::{ContractRecord, OrganisationRecord};
pub(crate) use outbox::queue_in as queue_message_in;
pub use outbox::{NewMessage, OutboxRecord};
pub use uploads::{NewUpload, Quota, UploadQuota, UploadRecord, UploadStatus};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot update the database schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    AlreadyExists(Entity),
    #[error("{0} not found")]
    NotFound(Entity),
    /// The registry as it is does not allow the change.
    #[error("refused: {0}")]
    State(StateConflict),
    /// A stored value that no longer parses: the database was changed outside the gateway.
    #[error("the database holds an invalid value in {column}")]
    Corrupt {
        column: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A SQLite registry is served by one process at a time.
    #[error("another process{holder} already serves the SQLite registry {path}: a SQLite registry serves one instance; run several on PostgreSQL")]
    AlreadyServed { path: std::path::PathBuf, holder: String },
    /// The worker's lease on an ingestion job ran out and another worker took the job over:
    /// this worker's result is dropped, the other's stands.
    #[error("the lease on ingestion job #{job_id} was lost to another worker")]
    LeaseLost { job_id: i64 },
    /// Audit events are appended only with the chain's key (startup loads it).
    #[error("no audit key is loaded: audit events cannot be chained")]
    NoAuditKey,
    /// Recording the upload would pass a quota; `remaining` is what was left before it.
    #[error("over the {quota:?} quota ({remaining} bytes left)")]
    OverQuota { quota: Quota, remaining: u64 },
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> Self {
        RegistryError::Database(error)
    }
}

/// A stored value the registry did not expect (an unknown status, a missing id).
#[derive(Debug, thiserror::Error)]
#[error("unexpected value {0:?}")]
pub struct UnexpectedValue(pub String);

/// Maps a parse error of a stored value to [`RegistryError::Corrupt`] naming its column.
pub(crate) fn corrupt<E: std::error::Error + Send + Sync + 'static>(
    column: &'static str,
) -> impl Fn(E) -> RegistryError {
    move |error| RegistryError::Corrupt { column, source: Box::new(error) }
}

/// What a lookup or an insertion of the registry was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Organisation(EnterpriseNumber),
    OrganisationId(i64),
    Contract(ContractNumber),
    /// A user or staff login.
    Login(Login),
    UserId(i64),
    Upload(i64),
    /// The ingestion job of an upload.
    IngestJobOf(i64),
    Document(i64),
    /// A version of a document published at the same moment as another.
    DocumentVersion,
    AccessRequest(i64),
    /// By its SHA-256 fingerprint.
    PublicKey(String),
    /// An open affiliation period of the same person in a contract.
    ActiveAffiliation,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entity::Organisation(number) => write!(f, "organisation {number}"),
            Entity::OrganisationId(id) => write!(f, "organisation #{id}"),
            Entity::Contract(number) => write!(f, "contract {number}"),
            Entity::Login(login) => write!(f, "login {login}"),
            Entity::UserId(id) => write!(f, "user #{id}"),
            Entity::Upload(id) => write!(f, "upload #{id}"),
            Entity::IngestJobOf(id) => write!(f, "an ingestion job for upload #{id}"),
            Entity::Document(id) => write!(f, "document #{id}"),
            Entity::DocumentVersion => f.write_str("a newer version published at the same moment"),
            Entity::AccessRequest(id) => write!(f, "access request #{id}"),
            Entity::PublicKey(fingerprint) => write!(f, "public key {fingerprint}"),
            Entity::ActiveAffiliation => f.write_str("an active affiliation of the same person"),
        }
    }
}

/// A change the registry as it is does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateConflict {
    #[error("upload #{0} was accepted: it is not processed twice")]
    AlreadyAccepted(i64),
    #[error("contract {0} belongs to another organisation")]
    ContractOfAnotherOrganisation(ContractNumber),
    #[error("an exit for someone no longer active")]
    ExitOfInactive,
}

/// Turns a unique-constraint violation into [`RegistryError::AlreadyExists`].
fn unique_or(what: Entity) -> impl FnOnce(sqlx::Error) -> RegistryError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => RegistryError::AlreadyExists(what),
        _ => RegistryError::Database(error),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Handle to the registry database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    dialect: Dialect,
    /// Keys the audit chain; without it no audit event can be appended.
    audit_key: Option<AuditKey>,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../../migrations/sqlite/0001_registry.sql")),
    (2, "ingestion", include_str!("../../migrations/sqlite/0002_ingestion.sql")),
    (3, "conventions", include_str!("../../migrations/sqlite/0003_conventions.sql")),
    (4, "expiry_reminders", include_str!("../../migrations/sqlite/0004_expiry_reminders.sql")),
    (5, "access_requests", include_str!("../../migrations/sqlite/0005_access_requests.sql")),
    (6, "templates", include_str!("../../migrations/sqlite/0006_templates.sql")),
    (7, "download_receipts", include_str!("../../migrations/sqlite/0007_download_receipts.sql")),
    (8, "outbox", include_str!("../../migrations/sqlite/0008_outbox.sql")),
    (9, "quotas_retention", include_str!("../../migrations/sqlite/0009_quotas_retention.sql")),
    (10, "test_uploads", include_str!("../../migrations/sqlite/0010_test_uploads.sql")),
    (11, "keyed_audit_chain", include_str!("../../migrations/sqlite/0011_keyed_audit_chain.sql")),
    (12, "defender", include_str!("../../migrations/sqlite/0012_defender.sql")),
    (13, "staff_language", include_str!("../../migrations/sqlite/0013_staff_language.sql")),
    (14, "periodic_runs", include_str!("../../migrations/sqlite/0014_periodic_runs.sql")),
    (15, "upload_error_codes", include_str!("../../migrations/sqlite/0015_upload_error_codes.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../../migrations/postgres/0001_registry.sql")),
    (2, "ingestion", include_str!("../../migrations/postgres/0002_ingestion.sql")),
    (3, "conventions", include_str!("../../migrations/postgres/0003_conventions.sql")),
    (4, "expiry_reminders", include_str!("../../migrations/postgres/0004_expiry_reminders.sql")),
    (5, "access_requests", include_str!("../../migrations/postgres/0005_access_requests.sql")),
    (6, "templates", include_str!("../../migrations/postgres/0006_templates.sql")),
    (7, "download_receipts", include_str!("../../migrations/postgres/0007_download_receipts.sql")),
    (8, "outbox", include_str!("../../migrations/postgres/0008_outbox.sql")),
    (9, "quotas_retention", include_str!("../../migrations/postgres/0009_quotas_retention.sql")),
    (10, "test_uploads", include_str!("../../migrations/postgres/0010_test_uploads.sql")),
    (11, "keyed_audit_chain", include_str!("../../migrations/postgres/0011_keyed_audit_chain.sql")),
    (12, "defender", include_str!("../../migrations/postgres/0012_defender.sql")),
    (13, "staff_language", include_str!("../../migrations/postgres/0013_staff_language.sql")),
    (14, "periodic_runs", include_str!("../../migrations/postgres/0014_periodic_runs.sql")),
    (15, "upload_error_codes", include_str!("../../migrations/postgres/0015_upload_error_codes.sql")),
];

impl Registry {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") { Dialect::Sqlite } else { Dialect::Postgres };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        if dialect == Dialect::Sqlite {
            if let Some(file) = sqlite_file(&url) {
                make_private(&file).map_err(|e| RegistryError::Connect(sqlx::Error::Io(e)))?;
            }
        }
        let sqlite = dialect == Dialect::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(30))
            // A pooled connection is pinged before each use, to find one the server dropped: a
            // SQLite file is never dropped, and the ping was a second trip to its worker thread
            // on every query.
            .test_before_acquire(!sqlite)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if sqlite {
                        // Deleted and overwritten rows (mail bodies, old hashes) are zeroed, not
                        // left in free pages.
                        sqlx::query("PRAGMA secure_delete = ON").execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(RegistryError::Connect)?;
        let registry = Self { pool, dialect, audit_key: None };
        if dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&registry.pool).await?;
        }
        registry.migrate().await?;
        Ok(registry)
    }

    /// The same registry, chaining audit events with `key`.
    pub fn with_audit_key(mut self, key: AuditKey) -> Self {
        self.audit_key = Some(key);
        self
    }

    async fn migrate(&self) -> Result<(), RegistryError> {
        let source = match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS,
            Dialect::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = source
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, description.into(), MigrationType::Simple, SqlStr::from_static(sql), false)
            })
            .collect();
        Migrator::with_migrations(migrations).run(&self.pool).await?;
        Ok(())
    }

    /// A transaction that will write. On SQLite it takes the write lock at once: a deferred
    /// transaction that reads and then writes fails (SQLITE_BUSY) when another connection
    /// wrote in between, whatever the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, RegistryError> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the database answers now (`/readyz`).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the SQLite file mode 0600 (its folder too, 0700) before SQLite does: SQLite gives
/// its `-wal` and `-shm` files the mode of the database file. Files left readable by others
/// by an earlier version are closed again.
fn make_private(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        if let Ok(metadata) = std::fs::metadata(&path) {
            if metadata.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                tracing::warn!(path = %path.display(), "the registry file was readable by others: now mode 0600");
            }
        }
    }
    Ok(())
}

/// Copies the WAL into the database file and empties it: what was just erased (a delivered
/// mail's body) leaves the disk now, not at the next automatic checkpoint.
pub(crate) async fn forget_erased(registry: &Registry) -> Result<(), RegistryError> {
    if registry.dialect == Dialect::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&registry.pool).await?;
    }
    Ok(())
}

/// Held while a process serves a SQLite registry (a lock on `<file>.serving`, released when
/// the process ends, however it ends). SQLite has no row claims that another process would
/// honour, so a second process serving the same file is refused at start rather than left to
/// process uploads twice. The CLI's short commands do not take it.
#[derive(Debug)]
pub struct ServingLock {
    _file: std::fs::File,
}

/// The serving lock of a SQLite registry; `None` for PostgreSQL (instances share it safely)
/// and for an in-memory database.
pub fn lock_for_serving(url: &str) -> Result<Option<ServingLock>, RegistryError> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let Some(database) = sqlite_file(url) else {
        return Ok(None);
    };
    let mut path = database.clone().into_os_string();
    path.push(".serving");
    let io = |e| RegistryError::Connect(sqlx::Error::Io(e));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
                format!(" (pid {pid})")
            } else {
                String::new()
            };
            return Err(RegistryError::AlreadyServed { path: database, holder });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(Some(ServingLock { _file: file }))
}

fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:") && !path.starts_with("file:")).then(|| path.into())
}

pub use crate::clock::{now_seconds, utc_day_start};

/// `($1, $2, …), ($k+1, …)` for `rows` rows of `columns` parameters; on SQLite plain `?`s.
/// SQLite keeps numbered parameters in a list it searches on every bind, so a statement of a
/// few thousand `$n`s binds in quadratic time; anonymous `?`s, bound in order, are not listed.
pub(super) fn placeholders(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        text.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                text.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => text.push('?'),
                Dialect::Postgres => {
                    text.push('$');
                    text.push_str(&(r * columns + c).to_string());
                }
            }
        }
        text.push(')');
    }
    text
}

/// Flags are stored as 0/1 integers on both dialects.
fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(placeholders(Dialect::Postgres, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(Dialect::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
