//! The one failure type of the commands: an error with the exit code it deserves (0 ok,
//! 1 failure of the system, 2 input to fix).

use super::prelude::*;

/// An error with the exit code it deserves.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        Self { code: error.exit_code(), error: error.into() }
    }
}

pub fn invalid(message: impl Into<String>) -> Failure {
    Failure { code: 2, error: anyhow::anyhow!(message.into()) }
}
