//! Gateway errors as SFTP statuses: one total mapping, no wildcard arm. The client gets a
//! short human message; causes go to the log.

use russh_sftp::protocol::StatusCode;

use crate::access::Refusal;
use crate::domain::{Language, RemotePathError};
use crate::gateway::{Conflict, GatewayError};

/// The status code and message a client sees for an error, in the user's language.
pub fn status_of(error: &GatewayError, language: Language) -> (StatusCode, String) {
    let message = error.message(language);
    let code = match error {
        GatewayError::InvalidPath(path_error) => match path_error {
            RemotePathError::EscapesRoot => StatusCode::PermissionDenied,
            RemotePathError::NulByte
            | RemotePathError::NotUtf8
            | RemotePathError::TooLong
            | RemotePathError::InvalidName(_) => StatusCode::Failure,
        },
        GatewayError::NotFound => StatusCode::NoSuchFile,
        GatewayError::Refused(Refusal::NotInScope) => StatusCode::NoSuchFile,
        GatewayError::Refused(Refusal::Denied(_)) => StatusCode::PermissionDenied,
        GatewayError::Unsupported(_) => StatusCode::OpUnsupported,
        // Another person's file, or a record kept: the user may not; the rest may pass later.
        GatewayError::Conflict(
            Conflict::NameOfAnotherUploader
            | Conflict::OnlyUploaderChanges
            | Conflict::OnlyUploaderDeletes
            | Conflict::OnlyUploaderRenames
            | Conflict::AcceptedKept,
        ) => StatusCode::PermissionDenied,
        GatewayError::Conflict(
            Conflict::LargerThanAnUpload
            | Conflict::TemplateUnavailable
            | Conflict::UsersFileUnavailable
            | Conflict::UploadGap
            | Conflict::Interrupted
            | Conflict::BeingProcessed
            | Conflict::BeingProcessedNotDeleted
            | Conflict::TooManyHeldFiles,
        ) => StatusCode::Failure,
        GatewayError::Storage(_) => StatusCode::Failure,
        GatewayError::Registry(_) => StatusCode::Failure,
        GatewayError::Reader(_) => StatusCode::Failure,
        GatewayError::NoSheetSchema => StatusCode::Failure,
        GatewayError::TooLarge { .. } => StatusCode::Failure,
        GatewayError::Quota { .. } => StatusCode::Failure,
        GatewayError::StorageFull => StatusCode::Failure,
    };
    (code, message)
}

/// Refusals of the SFTP edge itself (not of a gateway decision) that a person may read.
/// Protocol errors of broken clients (unknown handle, malformed packet) stay in English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeRefusal {
    AccessEnded,
    ShuttingDown,
    TooManyOpenFiles,
    LinksUnsupported,
}

impl EdgeRefusal {
    pub fn status(self, language: Language) -> (StatusCode, &'static str) {
        use Language::{En, Fr, Nl};
        let code = match self {
            EdgeRefusal::AccessEnded => StatusCode::PermissionDenied,
            EdgeRefusal::ShuttingDown | EdgeRefusal::TooManyOpenFiles => StatusCode::Failure,
            EdgeRefusal::LinksUnsupported => StatusCode::OpUnsupported,
        };
        let text = match (self, language) {
            (EdgeRefusal::AccessEnded, En) => "your access has ended",
            (EdgeRefusal::AccessEnded, Fr) => "votre accès a pris fin",
            (EdgeRefusal::AccessEnded, Nl) => "uw toegang is beëindigd",
            (EdgeRefusal::ShuttingDown, En) => "the server is shutting down: try again in a moment",
            (EdgeRefusal::ShuttingDown, Fr) => "le serveur s'arrête : réessayez dans un instant",
            (EdgeRefusal::ShuttingDown, Nl) => "de server stopt: probeer het zo dadelijk opnieuw",
            (EdgeRefusal::TooManyOpenFiles, En) => "too many open files in this session",
            (EdgeRefusal::TooManyOpenFiles, Fr) => "trop de fichiers ouverts dans cette session",
            (EdgeRefusal::TooManyOpenFiles, Nl) => "te veel open bestanden in deze sessie",
            (EdgeRefusal::LinksUnsupported, En) => "links are not supported",
            (EdgeRefusal::LinksUnsupported, Fr) => "les liens ne sont pas pris en charge",
            (EdgeRefusal::LinksUnsupported, Nl) => "koppelingen worden niet ondersteund",
        };
        (code, text)
    }
}

/// Answers of the SFTP edge to the protocol itself: end of file or folder, and the errors of
/// broken clients (an unknown handle, a malformed packet), which stay in English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolAnswer {
    Ok,
    EndOfFile,
    EndOfFolder,
    UnknownHandle,
    UnknownFolderHandle,
    NotOpenForReading,
    NotOpenForWriting,
    WriteOverLimit,
    UploadAlreadyClosed,
    /// A WRITE waiting for an earlier part when the file was closed.
    ClosedBeforeWritten,
    /// A WRITE that raced the CLOSE of its file.
    WriteAfterClose,
    MalformedRequest,
    MalformedRename,
    ExtensionUnsupported,
    LimitsNotEncoded,
    ReplyIsNotARequest,
}

impl ProtocolAnswer {
    pub fn status(self) -> (StatusCode, &'static str) {
        match self {
            ProtocolAnswer::Ok => (StatusCode::Ok, "ok"),
            ProtocolAnswer::EndOfFile => (StatusCode::Eof, "end of file"),
            ProtocolAnswer::EndOfFolder => (StatusCode::Eof, "end of folder"),
            ProtocolAnswer::UnknownHandle => (StatusCode::Failure, "unknown handle"),
            ProtocolAnswer::UnknownFolderHandle => (StatusCode::Failure, "unknown folder handle"),
            ProtocolAnswer::NotOpenForReading => {
                (StatusCode::PermissionDenied, "this handle was not opened for reading")
            }
            ProtocolAnswer::NotOpenForWriting => {
                (StatusCode::PermissionDenied, "this handle was not opened for writing")
            }
            ProtocolAnswer::WriteOverLimit => (StatusCode::Failure, "write larger than the advertised limit"),
            ProtocolAnswer::UploadAlreadyClosed => (StatusCode::Failure, "upload already closed"),
            ProtocolAnswer::ClosedBeforeWritten => {
                (StatusCode::Failure, "the file was closed before this part could be written")
            }
            ProtocolAnswer::WriteAfterClose => (StatusCode::Failure, "the file is already closed"),
            ProtocolAnswer::MalformedRequest => (StatusCode::BadMessage, "malformed request"),
            ProtocolAnswer::MalformedRename => (StatusCode::BadMessage, "malformed rename request"),
            ProtocolAnswer::ExtensionUnsupported => (StatusCode::OpUnsupported, "extension not supported"),
            ProtocolAnswer::LimitsNotEncoded => (StatusCode::Failure, "cannot encode the limits"),
            ProtocolAnswer::ReplyIsNotARequest => (StatusCode::BadMessage, "a server reply is not a request"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_statuses_clients_understand() {
        let en = Language::En;
        assert_eq!(status_of(&GatewayError::Refused(Refusal::NotInScope), en).0, StatusCode::NoSuchFile);
        let denied = GatewayError::Refused(Refusal::Denied(crate::access::Denial::ReadOnly));
        assert_eq!(status_of(&denied, en), (StatusCode::PermissionDenied, "read-only".to_string()));
        assert_eq!(status_of(&denied, Language::Nl).1, "alleen-lezen");
        assert_eq!(
            status_of(&GatewayError::InvalidPath(RemotePathError::EscapesRoot), en).0,
            StatusCode::PermissionDenied
        );
        let unsupported = GatewayError::Unsupported(crate::gateway::Unsupported::NoAppend);
        assert_eq!(status_of(&unsupported, en).0, StatusCode::OpUnsupported);
        assert!(status_of(&unsupported, Language::Fr).1.contains("renvoyez le fichier entier"));
        let theirs = GatewayError::Conflict(Conflict::OnlyUploaderDeletes);
        assert_eq!(status_of(&theirs, en).0, StatusCode::PermissionDenied);
        assert_eq!(status_of(&GatewayError::Conflict(Conflict::BeingProcessed), en).0, StatusCode::Failure);
    }
}
