//! What an administration command can fail with. Each refusal names what the operator gave and
//! what to do; [`AdminError::exit_code`] tells input to fix (2) from a failure of the system (1).

use std::path::PathBuf;

use crate::auth::passwords::PasswordError;
use crate::domain::{InvalidIdentifier, KindName, Login, RemotePathError};
use crate::ingest::reader_process::ReaderError;
use crate::registry::{Entity, RegistryError, StateConflict};
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operator's input breaks a rule; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Identifier(#[from] InvalidIdentifier),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    FileName(#[from] RemotePathError),
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("{0} already exists")]
    AlreadyExists(Entity),
    #[error(transparent)]
    State(StateConflict),
    #[error("{path} line {line}: {source}")]
    PublicKey {
        path: PathBuf,
        line: usize,
        #[source]
        source: InvalidIdentifier,
    },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error(transparent)]
    Checkpoint(#[from] crate::audit::CheckpointError),
    /// A failure of the gateway itself (not of the operator's input).
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A rule of the administration that the operator's input breaks.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0} must not be empty")]
    Empty(Field),
    #[error("{0} must not contain control characters")]
    ControlCharacters(Field),
    #[error("{} holds no public key", path.display())]
    NoPublicKey { path: PathBuf },
    #[error("{login} is the last master user of {organisation}: name another master user first")]
    LastMaster { login: Login, organisation: String },
    #[error("access request #{id} is {status}, not pending")]
    NotPending { id: i64, status: crate::domain::AccessRequestStatus },
    #[error("unknown document kind {kind}: known kinds are {}", known.join(", "))]
    UnknownDocumentKind { kind: KindName, known: Vec<String> },
    #[error("documents of kind {0} need --period YEAR")]
    PeriodNeeded(KindName),
    #[error("documents of kind {0} are not filed by year")]
    NotFiledByYear(KindName),
    #[error("{}: not a file name in UTF-8", path.display())]
    FileNameNotUtf8 { path: PathBuf },
    #[error("{}: SHA256SUMS is the checksum list the gateway writes in every documents folder; publish under another name", path.display())]
    ReservedFileName { path: PathBuf },
    #[error("category {0:?}: use letters, digits, '_' or '-' (at most 32), for example EMPLOYES")]
    Category(String),
    #[error("{0} is not banned now (see pension-gateway defender list)")]
    NotBanned(String),
}

/// A value the operator gives by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    OrganisationName,
    UserName,
    StaffName,
    Reason,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::OrganisationName => "the organisation's name",
            Field::UserName => "the user's name",
            Field::StaffName => "the staff member's name",
            Field::Reason => "the reason",
        })
    }
}

/// A failure of the gateway itself while it served an administration command.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("cannot write the annual-adjustment template")]
    Template(#[source] rust_xlsxwriter::XlsxError),
    #[error("the name the gateway made for a file is refused")]
    MadeName(#[source] RemotePathError),
    #[error("row {0} of a checked user sheet lacks what an ADD row needs")]
    IncompleteCheckedRow(u32),
    #[error("no user-sheet schema is configured")]
    NoSheetSchema,
}

impl AdminError {
    /// 2 for input the operator can fix, 1 for failures of the system.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Refused(_)
            | AdminError::Identifier(_)
            | AdminError::Password(_)
            | AdminError::FileName(_)
            | AdminError::NotFound(_)
            | AdminError::AlreadyExists(_)
            | AdminError::State(_)
            | AdminError::PublicKey { .. }
            | AdminError::Io { .. } => 2,
            AdminError::Registry(_)
            | AdminError::Storage(_)
            | AdminError::Reader(_)
            | AdminError::Checkpoint(_)
            | AdminError::Internal(_) => 1,
        }
    }
}

impl From<RegistryError> for AdminError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::NotFound(what) => AdminError::NotFound(what),
            RegistryError::AlreadyExists(what) => AdminError::AlreadyExists(what),
            RegistryError::State(conflict) => AdminError::State(conflict),
            other => AdminError::Registry(other),
        }
    }
}

impl From<crate::access_requests::SheetCheckError> for AdminError {
    fn from(error: crate::access_requests::SheetCheckError) -> Self {
        use crate::access_requests::SheetCheckError;
        match error {
            SheetCheckError::Registry(error) => error.into(),
            SheetCheckError::Reader(error) => AdminError::Reader(error),
            SheetCheckError::NoSchema => Internal::NoSheetSchema.into(),
        }
    }
}
