//! Pure domain types: parsed once at the edge, trusted everywhere after.
//!
//! Nothing here does I/O or knows about SSH, SQL or storage. A value of one of these types is
//! valid by construction; the `parse` functions are the only way in from untrusted text.

mod contract_number;
mod email_address;
mod enterprise_number;
mod kind_name;
mod login;
mod named_values;
mod niss;
mod remote_path;
mod ssh_public_key;
mod user_settings;
mod year;

pub use contract_number::ContractNumber;
pub use email_address::EmailAddress;
pub use enterprise_number::EnterpriseNumber;
pub use kind_name::KindName;
pub use login::Login;
pub use named_values::{AccessRequestStatus, AuditAction, AuditOutcome};
pub use niss::Niss;
pub use remote_path::{FileName, RemotePath, RemotePathError};
pub use ssh_public_key::SshPublicKey;
pub use user_settings::{AccountStatus, Language, Profile, Scope};
pub use year::Year;

/// Why a piece of text is not a valid identifier. The message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct InvalidIdentifier {
    pub what: &'static str,
    pub why: String,
}

impl InvalidIdentifier {
    pub(crate) fn new(what: &'static str, why: impl Into<String>) -> Self {
        Self { what, why: why.into() }
    }
}

/// Keeps the digits of `input`, dropping the separators people type (`.`, `-`, `/`, spaces).
/// Returns `None` when anything else is present.
pub(crate) fn digits_without_separators(input: &str) -> Option<String> {
    let mut digits = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '.' | '-' | '/' | ' ' | '\u{a0}' => {}
            _ => return None,
        }
    }
    Some(digits)
}

/// `97 - (n mod 97)`: the Belgian check-digit rule shared by national and enterprise numbers.
pub(crate) fn mod97_check(n: u64) -> u64 {
    97 - (n % 97)
}
