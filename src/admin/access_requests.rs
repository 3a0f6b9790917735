//! User sheets, applied by staff from a file (`user apply`) or from a master user's access
//! request (`access approve | reject`). A sheet with any error changes nothing.

use std::path::Path;

use crate::access_requests::rows::SheetAction;
use crate::domain::{AccessRequestStatus, AccountStatus, AuditAction, EnterpriseNumber, Language};
use crate::notify::messages;
use crate::registry::{AccountRef, UserChanges};
use crate::storage::ObjectKey;

use super::error::{AdminError, Field, Internal, Refusal};
use super::{non_empty, Admin, SheetOutcome, UserRequest};

impl Admin {
    /// Applies a user sheet for an organisation: every row is checked first (schema, then the
    /// organisation's contracts, users, logins in use and last master user); a sheet with any
    /// error changes nothing. New users without a public key get a generated password by mail;
    /// the organisation's master users are told what changed.
    pub async fn apply_user_sheet(
        &self,
        organisation: &EnterpriseNumber,
        file: &Path,
    ) -> Result<SheetOutcome, AdminError> {
        let bytes = std::fs::read(file).map_err(|source| AdminError::Io { path: file.to_path_buf(), source })?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("sheet").to_string();
        self.apply_user_sheet_bytes(organisation, &name, &bytes).await
    }

    /// As [`Admin::apply_user_sheet`], for a sheet already in memory.
    pub async fn apply_user_sheet_bytes(
        &self,
        organisation: &EnterpriseNumber,
        name: &str,
        bytes: &[u8],
    ) -> Result<SheetOutcome, AdminError> {
        let record = self.registry.organisation_by_number(organisation).await?;
        let checked = crate::access_requests::check_sheet(
            &self.registry,
            &self.schemas,
            &self.reader,
            record.id,
            name,
            bytes::Bytes::copy_from_slice(bytes),
            self.clock.today(),
        )
        .await?;
        if checked.errors() > 0 {
            return Ok(SheetOutcome::Rejected(checked.problems(Language::En)));
        }
        let rows = checked.rows;
        let mut changes = Vec::new();
        for row in &rows {
            match row.action {
                SheetAction::Add => {
                    let (Some(email), Some(profile), Some(scope)) = (row.email.clone(), row.profile, row.scope.clone())
                    else {
                        return Err(Internal::IncompleteCheckedRow(row.row).into());
                    };
                    let added = self
                        .add_user(&UserRequest {
                            organisation: organisation.clone(),
                            login: row.login.clone(),
                            name: row.name.clone().unwrap_or_else(|| row.login.to_string()),
                            email: email.clone(),
                            language: row.language.unwrap_or(Language::Fr),
                            profile,
                            scope,
                            master: false,
                            external_until: row.external_until.flatten(),
                            public_key_files: Vec::new(),
                            public_key_lines: row.public_key.iter().cloned().collect(),
                            password: None,
                        })
                        .await?;
                    let user = added.record;
                    changes.push(format!("ADD {} ({}, contracts {})", user.login, user.profile, user.scope));
                }
                SheetAction::Modify => {
                    let change = UserChanges {
                        name: row.name.clone(),
                        email: row.email.clone(),
                        language: row.language,
                        profile: row.profile,
                        scope: row.scope.clone(),
                        master: None,
                        external_until: row.external_until,
                        password_hash: None,
                    };
                    let user = self.modify_user(&row.login, change, None, &[]).await?;
                    if let Some(key) = &row.public_key {
                        self.attach_key_lines(
                            AccountRef::User { id: user.id, organisation_id: user.organisation_id },
                            std::slice::from_ref(key),
                        )
                        .await?;
                    }
                    changes.push(format!("MODIFY {} ({}, contracts {})", user.login, user.profile, user.scope));
                }
                SheetAction::Remove => {
                    self.revoke_user(&row.login).await?;
                    changes.push(format!("REMOVE {}", row.login));
                }
            }
        }
        self.audit(AuditAction::UserSheetApply, Some(record.id), format!("{}: {}", name, changes.join("; "))).await?;
        let masters = self.registry.users(Some(record.id)).await?;
        let mail = masters
            .iter()
            .filter(|u| u.master && u.status == AccountStatus::Active)
            .map(|master| (master.email.clone(), messages::sheet_applied(master.language, &changes)))
            .collect();
        self.mail(mail).await?;
        Ok(SheetOutcome::Applied(changes))
    }

    /// User sheets dropped by master users, newest first.
    pub async fn access_requests(&self) -> Result<Vec<crate::registry::AccessRequestRecord>, AdminError> {
        Ok(self.registry.access_requests(None).await?)
    }

    /// Applies a pending user sheet. It is checked again first: the registry may have changed
    /// since it was dropped; a sheet that no longer passes is marked invalid and changes nothing.
    pub async fn approve_access_request(&self, id: i64) -> Result<SheetOutcome, AdminError> {
        let request = self.registry.access_request(id).await?;
        if request.status != AccessRequestStatus::Pending {
            return Err(Refusal::NotPending { id, status: request.status }.into());
        }
        let organisation = self.registry.organisation(request.organisation_id).await?;
        let bytes = self.storage.read_verified(&ObjectKey::from_stored(&request.object_key)?, &request.sha256).await?;
        let outcome = self.apply_user_sheet_bytes(&organisation.enterprise_number, &request.file_name, &bytes).await?;
        let (status, reason) = match &outcome {
            SheetOutcome::Applied(_) => (AccessRequestStatus::Approved, None),
            SheetOutcome::Rejected(problems) => {
                (AccessRequestStatus::Invalid, Some(format!("{} problem(s) when applied", problems.len())))
            }
        };
        self.registry.decide_access_request(id, status, &self.actor, reason.as_deref()).await?;
        self.audit(
            AuditAction::AccessApprove,
            Some(request.organisation_id),
            format!("access request #{id}: {status}"),
        )
        .await?;
        Ok(outcome)
    }

    /// Refuses a pending user sheet; the organisation's master users are told why.
    pub async fn reject_access_request(&self, id: i64, reason: &str) -> Result<(), AdminError> {
        let reason = non_empty(Field::Reason, reason)?;
        let request = self.registry.access_request(id).await?;
        if !self.registry.decide_access_request(id, AccessRequestStatus::Rejected, &self.actor, Some(&reason)).await? {
            let status = self.registry.access_request(id).await?.status;
            return Err(Refusal::NotPending { id, status }.into());
        }
        let masters = self.registry.users(Some(request.organisation_id)).await?;
        let mail = masters
            .iter()
            .filter(|u| u.master && u.status == AccountStatus::Active)
            .map(|master| {
                (master.email.clone(), messages::sheet_rejected(master.language, &request.file_name, &reason))
            })
            .collect();
        self.mail(mail).await?;
        self.audit(AuditAction::AccessReject, Some(request.organisation_id), format!("access request #{id}: {reason}"))
            .await
    }
}
