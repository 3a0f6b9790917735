//! Organisations: adding one, its convention (which ends every earlier access), its quotas.

use time::Date;

use crate::domain::{AuditAction, EmailAddress, EnterpriseNumber, Language};
use crate::registry::OrganisationRecord;

use super::error::{AdminError, Field};
use super::{non_empty, Admin, QuotaUsage};

impl Admin {
    pub async fn add_organisation(
        &self,
        number: &EnterpriseNumber,
        name: &str,
        notify_email: &EmailAddress,
    ) -> Result<OrganisationRecord, AdminError> {
        self.add_organisation_with_language(number, name, notify_email, Language::Fr).await
    }

    /// As [`Admin::add_organisation`], with the language of the mail sent to `notify_email`.
    pub async fn add_organisation_with_language(
        &self,
        number: &EnterpriseNumber,
        name: &str,
        notify_email: &EmailAddress,
        language: Language,
    ) -> Result<OrganisationRecord, AdminError> {
        let name = non_empty(Field::OrganisationName, name)?;
        let record = self.registry.create_organisation(number, &name, notify_email, language).await?;
        self.audit(AuditAction::OrgAdd, Some(record.id), format!("organisation {number}")).await?;
        Ok(record)
    }

    pub async fn organisations(&self) -> Result<Vec<OrganisationRecord>, AdminError> {
        Ok(self.registry.organisations().await?)
    }

    /// Records a new convention: every earlier access of the organisation ends at once (open
    /// sessions are closed at their next request, or within 30 seconds).
    pub async fn record_convention(
        &self,
        organisation: &EnterpriseNumber,
        signed_on: Date,
        notify_email: &EmailAddress,
    ) -> Result<u64, AdminError> {
        let record = self.registry.organisation_by_number(organisation).await?;
        let signed = crate::registry::format_date(signed_on);
        let revoked = self.registry.record_convention(record.id, &signed, notify_email, &self.actor).await?;
        self.audit(
            AuditAction::OrgConvention,
            Some(record.id),
            format!("convention signed {signed}: {revoked} accesses revoked"),
        )
        .await?;
        Ok(revoked)
    }

    /// What an organisation keeps stored against its quota, and what each of its users
    /// uploaded today (UTC) against the daily volume.
    pub async fn quota_usage(
        &self,
        organisation: &EnterpriseNumber,
        limits: crate::config::QuotaSettings,
    ) -> Result<QuotaUsage, AdminError> {
        let record = self.registry.organisation_by_number(organisation).await?;
        let stored = self.registry.stored_inbox_bytes(record.id).await?;
        let day_start = crate::registry::utc_day_start(crate::registry::now_seconds());
        let mut users = Vec::new();
        for user in self.registry.users(Some(record.id)).await? {
            let today = self.registry.uploaded_bytes_since(user.id, day_start).await?;
            users.push((user.login, today));
        }
        Ok(QuotaUsage { organisation: record, stored, limits, users })
    }
}
