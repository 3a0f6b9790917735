//! Gateway errors as SFTP statuses: one total mapping, no wildcard arm. The client gets a
//! short human message; causes go to the log.

use russh_sftp::protocol::StatusCode;

use crate::access::Refusal;
use crate::domain::RemotePathError;
use crate::gateway::GatewayError;

/// The status code and message a client sees for an error.
pub fn status_of(error: &GatewayError) -> (StatusCode, String) {
    let message = error.to_string();
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
        GatewayError::Conflict(_) => StatusCode::Failure,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_statuses_clients_understand() {
        assert_eq!(status_of(&GatewayError::Refused(Refusal::NotInScope)).0, StatusCode::NoSuchFile);
        let (code, message) = status_of(&GatewayError::Refused(Refusal::Denied("read-only")));
        assert_eq!((code, message.as_str()), (StatusCode::PermissionDenied, "read-only"));
        assert_eq!(status_of(&GatewayError::InvalidPath(RemotePathError::EscapesRoot)).0, StatusCode::PermissionDenied);
        assert_eq!(status_of(&GatewayError::Unsupported("no")).0, StatusCode::OpUnsupported);
    }
}
