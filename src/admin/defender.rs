//! The defender's bans as staff see them: listed, and lifted (`defender unban`), audited.

use std::net::IpAddr;

use crate::auth::defender::Subject;
use crate::domain::{AuditAction, Login};
use crate::registry::BanRecord;

use super::error::{AdminError, Refusal};
use super::Admin;

impl Admin {
    /// Bans and suspensions running now, newest first.
    pub async fn bans(&self) -> Result<Vec<BanRecord>, AdminError> {
        Ok(self.registry.active_bans(crate::clock::now_seconds()).await?)
    }

    /// Lifts the running ban of an address, or the suspension of a login's password logins.
    pub async fn unban(&self, subject: &str) -> Result<(), AdminError> {
        let subject = subject.trim();
        let (kind, name) = match subject.parse::<IpAddr>() {
            Ok(address) => (Subject::Address, address.to_string()),
            Err(_) => (Subject::Login, Login::parse(subject)?.to_string()),
        };
        if !self.registry.lift_ban(kind.as_str(), &name, crate::clock::now_seconds()).await? {
            return Err(Refusal::NotBanned(subject.to_string()).into());
        }
        self.audit(AuditAction::Unban, None, format!("{} {name}: ban lifted", kind.as_str())).await
    }
}
