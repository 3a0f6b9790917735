//! The service layer between the SFTP edge and the state: authentication, folder listings,
//! downloads, uploads, renames and removals, in domain terms. Every decision goes through
//! [`crate::access::decide`]; every action and refusal is audited here, once.
//!
//! Nothing in this module knows about SSH packets: `sftp` calls it, never the reverse.

mod authentication;
mod defender;
mod entries;
mod folders;
mod generated_files;
mod reasons;
mod transfers;
mod upload_sink;
mod users_workbook;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};

use crate::access::{Principal, Refusal};
use crate::audit::AuditLog;
use crate::domain::{AuditAction, AuditOutcome, Language, RemotePathError};
use crate::ingest::reader_process::ReaderProcess;
use crate::ingest::schema::Schemas;
use crate::layout::Layout;
use crate::registry::{NewAuditEvent, Registry, RegistryError};
use crate::storage::{ObjectStore, StorageError};

pub use crate::clock::Clock;
pub use entries::{Entry, EntryAttributes};
pub use reasons::{Conflict, Unsupported};
pub use transfers::{Download, HeldUploads, Quota, Upload, UploadDestination, UploadOutcome};
pub use upload_sink::{SizeLimit, SizeLimitReason, UploadSink, Written, MAX_PENDING_WRITE_BYTES};

/// Why a request failed. `sftp::status` maps each variant to a status code, exhaustively.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    InvalidPath(#[from] RemotePathError),
    #[error("no such file or folder")]
    NotFound,
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Unsupported(Unsupported),
    #[error("{0}")]
    Conflict(Conflict),
    // What the client is told, in English: one text, kept by `message`.
    #[error("{}", self.message(Language::En))]
    Storage(#[from] StorageError),
    #[error("{}", self.message(Language::En))]
    Registry(#[from] RegistryError),
    #[error("{}", self.message(Language::En))]
    Reader(#[from] crate::ingest::reader_process::ReaderError),
    #[error("no user-sheet schema is configured")]
    NoSheetSchema,
    /// The file is larger than this folder accepts.
    #[error("{}", self.message(Language::En))]
    TooLarge { limit: u64 },
    #[error("{}", self.message(Language::En))]
    Quota { quota: transfers::Quota, remaining: u64 },
    #[error("{}", self.message(Language::En))]
    StorageFull,
}

fn quota_text(quota: transfers::Quota, remaining: u64, language: Language) -> String {
    let left = human_bytes(remaining);
    match (quota, language) {
        (transfers::Quota::Organisation, Language::En) => {
            format!("your organisation's storage quota is used up: {left} left (rejected uploads you delete free it)")
        }
        (transfers::Quota::Organisation, Language::Fr) => format!(
            "le quota de stockage de votre organisation est épuisé : il reste {left} (supprimer vos envois refusés en libère)"
        ),
        (transfers::Quota::Organisation, Language::Nl) => format!(
            "het opslagquotum van uw organisatie is op: er blijft {left} over (uw geweigerde zendingen verwijderen maakt ruimte vrij)"
        ),
        (transfers::Quota::UserDaily, Language::En) => {
            format!("your upload volume for today is used up: {left} left until midnight UTC")
        }
        (transfers::Quota::UserDaily, Language::Fr) => {
            format!("votre volume d'envoi du jour est épuisé : il reste {left} jusqu'à minuit UTC")
        }
        (transfers::Quota::UserDaily, Language::Nl) => {
            format!("uw verzendvolume voor vandaag is op: er blijft {left} over tot middernacht UTC")
        }
    }
}

impl GatewayError {
    /// What the client is told, in the user's language; causes stay in the log.
    pub fn message(&self, language: Language) -> String {
        use Language::{En, Fr, Nl};
        let text = |en: &str, fr: &str, nl: &str| -> String {
            match language {
                En => en,
                Fr => fr,
                Nl => nl,
            }
            .to_string()
        };
        match self {
            GatewayError::InvalidPath(RemotePathError::EscapesRoot) => {
                text("the path leaves the root folder", "le chemin sort du dossier racine", "het pad verlaat de hoofdmap")
            }
            GatewayError::InvalidPath(_) => text(
                "this path is not valid: use letters, digits, '.', '-' and '_'",
                "ce chemin n'est pas valable : utilisez des lettres, des chiffres, '.', '-' et '_'",
                "dit pad is ongeldig: gebruik letters, cijfers, '.', '-' en '_'",
            ),
            GatewayError::NotFound | GatewayError::Refused(Refusal::NotInScope) => text(
                "no such file or folder in your access",
                "aucun fichier ou dossier de ce nom dans votre accès",
                "geen bestand of map met deze naam in uw toegang",
            ),
            GatewayError::Refused(Refusal::Denied(denial)) => denial.text(language).to_string(),
            GatewayError::Unsupported(reason) => reason.text(language).to_string(),
            GatewayError::Conflict(reason) => reason.text(language).to_string(),
            GatewayError::Storage(_) => text(
                "storage is unavailable, try again later",
                "le stockage est indisponible, réessayez plus tard",
                "de opslag is niet beschikbaar, probeer later opnieuw",
            ),
            GatewayError::Registry(_) => text(
                "the registry is unavailable, try again later",
                "le registre est indisponible, réessayez plus tard",
                "het register is niet beschikbaar, probeer later opnieuw",
            ),
            GatewayError::Reader(_) | GatewayError::NoSheetSchema => text(
                "the file cannot be checked now, try again later",
                "le fichier ne peut pas être contrôlé maintenant, réessayez plus tard",
                "het bestand kan nu niet gecontroleerd worden, probeer later opnieuw",
            ),
            GatewayError::TooLarge { limit } => {
                let mib = limit / (1024 * 1024);
                match language {
                    En => format!("the file is larger than {mib} MiB, the most this folder accepts"),
                    Fr => format!("le fichier dépasse {mib} Mio, le maximum que ce dossier accepte"),
                    Nl => format!("het bestand is groter dan {mib} MiB, het maximum dat deze map aanvaardt"),
                }
            }
            GatewayError::Quota { quota, remaining } => quota_text(*quota, *remaining, language),
            GatewayError::StorageFull => text(
                "the server's storage is nearly full: uploads are refused for now, try again later",
                "le stockage du serveur est presque plein : les envois sont refusés pour l'instant, réessayez plus tard",
                "de opslag van de server is bijna vol: zendingen worden voorlopig geweigerd, probeer later opnieuw",
            ),
        }
    }
}

/// `1.5 GiB`, `12 MiB`, `300 KiB`, `0 B`: the same in every language.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64).replace(".0 ", " ");
        }
    }
    format!("{bytes} B")
}

impl From<crate::access_requests::SheetCheckError> for GatewayError {
    fn from(error: crate::access_requests::SheetCheckError) -> Self {
        use crate::access_requests::SheetCheckError;
        match error {
            SheetCheckError::Registry(error) => Self::Registry(error),
            SheetCheckError::Reader(error) => Self::Reader(error),
            SheetCheckError::NoSchema => Self::NoSheetSchema,
        }
    }
}

/// Where a request comes from, for the audit log.
#[derive(Debug, Clone)]
pub struct SessionContext {
    pub session_id: String,
    pub remote_addr: SocketAddr,
}

/// What one organisation and one user may upload.
#[derive(Debug, Clone, Copy)]
pub struct QuotaSettings {
    /// Bytes of inbox uploads an organisation may keep stored.
    pub organisation_bytes: u64,
    /// Bytes one user may upload per (UTC) day.
    pub user_daily_bytes: u64,
}

/// What the gateway's services work on.
#[derive(Debug, Clone)]
pub struct GatewayState {
    pub registry: Registry,
    pub storage: ObjectStore,
    pub layout: Layout,
    pub schemas: Schemas,
    /// Reads dropped user sheets in a child process.
    pub reader: ReaderProcess,
    /// Uploads of kinds that are processed may not be larger (`ingest.max_file_bytes`).
    pub max_processed_upload_bytes: u64,
    pub quota: QuotaSettings,
    pub clock: Clock,
    pub ingest_wakeup: Arc<Notify>,
    pub outbox: crate::notify::Outbox,
    pub defender: crate::auth::defender::DefenderSettings,
}

/// The gateway's services, shared by every session.
#[derive(Debug)]
pub struct Gateway {
    registry: Registry,
    storage: ObjectStore,
    layout: Layout,
    schemas: Schemas,
    reader: ReaderProcess,
    max_processed_upload_bytes: u64,
    quota: QuotaSettings,
    audit: AuditLog,
    clock: Clock,
    password_checks: Semaphore,
    /// Woken when an upload is queued for ingestion.
    ingest_wakeup: Arc<Notify>,
    outbox: crate::notify::Outbox,
    defender: crate::auth::defender::DefenderSettings,
}

impl Gateway {
    pub fn new(state: GatewayState, audit: AuditLog, max_concurrent_password_checks: usize) -> Self {
        Self {
            registry: state.registry,
            storage: state.storage,
            layout: state.layout,
            schemas: state.schemas,
            reader: state.reader,
            max_processed_upload_bytes: state.max_processed_upload_bytes,
            quota: state.quota,
            audit,
            clock: state.clock,
            password_checks: Semaphore::new(max_concurrent_password_checks.max(1)),
            ingest_wakeup: state.ingest_wakeup,
            outbox: state.outbox,
            defender: state.defender,
        }
    }

    pub fn outbox(&self) -> &crate::notify::Outbox {
        &self.outbox
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn storage(&self) -> &ObjectStore {
        &self.storage
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A contract of the registry; one that does not exist is "no such file".
    pub(crate) async fn contract_record(
        &self,
        number: &crate::domain::ContractNumber,
    ) -> Result<crate::registry::ContractRecord, GatewayError> {
        self.registry.contract(number).await.map_err(|error| match error {
            RegistryError::NotFound(_) => GatewayError::NotFound,
            other => GatewayError::Registry(other),
        })
    }

    /// Records one event of a session.
    pub fn audit_event(
        &self,
        principal: Option<&Principal>,
        context: &SessionContext,
        action: AuditAction,
        path: Option<String>,
        outcome: AuditOutcome,
        reason: Option<String>,
    ) {
        self.audit.record(self.session_event(principal, context, action, path, outcome, reason));
    }

    fn session_event(
        &self,
        principal: Option<&Principal>,
        context: &SessionContext,
        action: AuditAction,
        path: Option<String>,
        outcome: AuditOutcome,
        reason: Option<String>,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor: principal.map(|p| p.login.to_string()).unwrap_or_else(|| "-".into()),
            organisation_id: principal.and_then(Principal::organisation_id),
            path,
            reason,
            remote_addr: Some(context.remote_addr.to_string()),
            session_id: Some(context.session_id.clone()),
            ..NewAuditEvent::new(action, outcome)
        }
    }
}
