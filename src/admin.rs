//! The administration services behind the CLI: organisations, contracts, users, staff,
//! publishing and listings. Inputs arrive already parsed into domain types; every change is
//! written to the audit log with the operator as actor.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use time::Date;
use tokio::io::AsyncReadExt;

use crate::audit;
use crate::domain::{
    ContractNumber, EmailAddress, EnterpriseNumber, FileName, InvalidIdentifier, KindName, Language, Login, Profile,
    Scope, SshPublicKey,
};
use crate::layout::Layout;
use crate::notify::messages;
use crate::passwords::{hash_password, PasswordError};
use crate::registry::{
    AccountRef, ContractRecord, NewAuditEvent, NewDocument, NewStaff, NewUser, OrganisationRecord, Publication,
    Registry, RegistryError, StaffRecord, UploadRecord, UserChanges, UserRecord,
};
use crate::storage::{ObjectKey, ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Registry(RegistryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no mail transport is configured")]
    NoMail,
    #[error(transparent)]
    Reader(#[from] crate::ingest::reader_process::ReaderError),
    #[error("no user-sheet schema is configured")]
    NoSheetSchema,
}

impl From<crate::user_sheets::SheetCheckError> for AdminError {
    fn from(error: crate::user_sheets::SheetCheckError) -> Self {
        use crate::user_sheets::SheetCheckError;
        match error {
            SheetCheckError::Registry(error) => error.into(),
            SheetCheckError::Reader(error) => AdminError::Reader(error),
            SheetCheckError::NoSchema => AdminError::NoSheetSchema,
        }
    }
}

/// An organisation's use of its quotas (`quota show`).
#[derive(Debug, Clone)]
pub struct QuotaUsage {
    pub organisation: OrganisationRecord,
    /// Bytes of inbox files stored.
    pub stored: u64,
    pub limits: crate::config::QuotaSettings,
    /// Bytes each user uploaded today (UTC).
    pub users: Vec<(crate::domain::Login, u64)>,
}

impl AdminError {
    /// 2 for input the operator can fix, 1 for failures of the system.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Invalid(_) | AdminError::NotFound(_) | AdminError::Conflict(_) => 2,
            AdminError::Registry(_)
            | AdminError::Storage(_)
            | AdminError::Io { .. }
            | AdminError::NoMail
            | AdminError::Reader(_)
            | AdminError::NoSheetSchema => 1,
        }
    }
}

impl From<RegistryError> for AdminError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::NotFound(what) => AdminError::NotFound(what.to_string()),
            RegistryError::AlreadyExists(what) => AdminError::Conflict(what.to_string()),
            RegistryError::State(conflict) => AdminError::Invalid(conflict.to_string()),
            other => AdminError::Registry(other),
        }
    }
}

impl From<InvalidIdentifier> for AdminError {
    fn from(error: InvalidIdentifier) -> Self {
        AdminError::Invalid(error.to_string())
    }
}

impl From<PasswordError> for AdminError {
    fn from(error: PasswordError) -> Self {
        AdminError::Invalid(error.to_string())
    }
}

/// A user to create, as the operator described it.
#[derive(Debug, Clone)]
pub struct UserRequest {
    pub organisation: EnterpriseNumber,
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub profile: Profile,
    pub scope: Scope,
    pub master: bool,
    pub external_until: Option<Date>,
    pub public_key_files: Vec<PathBuf>,
    /// OpenSSH public key lines (from a user sheet).
    pub public_key_lines: Vec<String>,
    pub password: Option<String>,
}

/// What applying a user sheet did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetOutcome {
    /// Nothing was changed; one line per problem: row, column, message.
    Rejected(Vec<(Option<u32>, Option<String>, String)>),
    /// The changes made, one line each.
    Applied(Vec<String>),
}

/// One published file and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    Published { replaced: bool },
    Unchanged,
}

/// Administration of one gateway, on behalf of one operator.
#[derive(Debug, Clone)]
pub struct Admin {
    registry: Registry,
    storage: ObjectStore,
    layout: Layout,
    actor: String,
    outbox: Option<crate::notify::Outbox>,
    ingest: Option<(crate::ingest::schema::Schemas, crate::ingest::reader_process::ReaderProcess)>,
}

fn non_empty(what: &str, value: &str) -> Result<String, AdminError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AdminError::Invalid(format!("{what} must not be empty")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!("{what} must not contain control characters")));
    }
    Ok(trimmed.to_string())
}

/// Reads OpenSSH public keys (one per line, `#` comments allowed) from a file.
pub fn read_public_keys(path: &Path) -> Result<Vec<SshPublicKey>, AdminError> {
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::Io { path: path.to_path_buf(), source })?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = SshPublicKey::parse(line)
            .map_err(|e| AdminError::Invalid(format!("{} line {}: {e}", path.display(), number + 1)))?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(AdminError::Invalid(format!("{} holds no public key", path.display())));
    }
    Ok(keys)
}

impl Admin {
    pub fn new(registry: Registry, storage: ObjectStore, layout: Layout, actor: impl Into<String>) -> Self {
        Self { registry, storage, layout, actor: actor.into(), outbox: None, ingest: None }
    }

    /// Checks user sheets against these schemas, read by these child processes. Without it,
    /// user sheets cannot be applied.
    pub fn with_ingest(
        mut self,
        schemas: crate::ingest::schema::Schemas,
        reader: crate::ingest::reader_process::ReaderProcess,
    ) -> Self {
        self.ingest = Some((schemas, reader));
        self
    }

    /// Sends credentials and notices through this outbox.
    pub fn with_outbox(mut self, outbox: crate::notify::Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    async fn audit(&self, action: &str, organisation_id: Option<i64>, detail: String) -> Result<(), AdminError> {
        let event = NewAuditEvent {
            at_ms: crate::clock::now_millis(),
            actor: self.actor.clone(),
            organisation_id,
            action: action.to_string(),
            outcome: audit::OK.to_string(),
            reason: Some(audit::mask_personal_numbers(&detail)),
            ..NewAuditEvent::default()
        };
        self.registry.append_audit_events(&[event]).await?;
        Ok(())
    }

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
        let name = non_empty("the organisation's name", name)?;
        let record = self.registry.create_organisation(number, &name, notify_email, language).await?;
        self.audit("org-add", Some(record.id), format!("organisation {number}")).await?;
        Ok(record)
    }

    pub async fn organisations(&self) -> Result<Vec<OrganisationRecord>, AdminError> {
        Ok(self.registry.organisations().await?)
    }

    pub async fn add_contract(
        &self,
        organisation: &EnterpriseNumber,
        number: &ContractNumber,
        title: &str,
    ) -> Result<ContractRecord, AdminError> {
        let organisation = self.registry.organisation_by_number(organisation).await?;
        let record = self.registry.create_contract(organisation.id, number, title.trim()).await?;
        self.audit("contract-add", Some(organisation.id), format!("contract {number}")).await?;
        Ok(record)
    }

    pub async fn contracts(&self, organisation: Option<&EnterpriseNumber>) -> Result<Vec<ContractRecord>, AdminError> {
        let id = match organisation {
            Some(number) => Some(self.registry.organisation_by_number(number).await?.id),
            None => None,
        };
        Ok(self.registry.contracts(id).await?)
    }

    async fn attach_keys(&self, account: AccountRef, files: &[PathBuf]) -> Result<(), AdminError> {
        for file in files {
            for key in read_public_keys(file)? {
                self.registry.add_public_key(account, &key.algorithm(), &key.fingerprint(), &key.openssh()).await?;
            }
        }
        Ok(())
    }

    async fn attach_key_lines(&self, account: AccountRef, lines: &[String]) -> Result<(), AdminError> {
        for line in lines {
            let key = SshPublicKey::parse(line)?;
            self.registry.add_public_key(account, &key.algorithm(), &key.fingerprint(), &key.openssh()).await?;
        }
        Ok(())
    }

    fn password_hash(password: Option<&str>) -> Result<Option<String>, AdminError> {
        password.map(hash_password).transpose().map_err(AdminError::from)
    }

    pub async fn add_user(&self, request: &UserRequest) -> Result<UserRecord, AdminError> {
        let name = non_empty("the user's name", &request.name)?;
        if request.password.is_none() && request.public_key_files.is_empty() && request.public_key_lines.is_empty() {
            return Err(AdminError::Invalid("a user needs a password or a public key to log in".into()));
        }
        for file in &request.public_key_files {
            read_public_keys(file)?;
        }
        let organisation = self.registry.organisation_by_number(&request.organisation).await?;
        let user = self
            .registry
            .create_user(&NewUser {
                organisation_id: organisation.id,
                login: request.login.clone(),
                name,
                email: request.email.clone(),
                language: request.language,
                profile: request.profile,
                scope: request.scope.clone(),
                master: request.master,
                external: request.external_until.is_some(),
                expires_on: request.external_until,
                password_hash: Self::password_hash(request.password.as_deref())?,
            })
            .await?;
        let account = AccountRef::User { id: user.id, organisation_id: organisation.id };
        self.attach_keys(account, &request.public_key_files).await?;
        self.attach_key_lines(account, &request.public_key_lines).await?;
        let detail = format!("user {} profile {} contracts {}", user.login, user.profile, user.scope);
        self.audit("user-add", Some(organisation.id), detail).await?;
        Ok(user)
    }

    pub async fn modify_user(
        &self,
        login: &Login,
        changes: UserChanges,
        password: Option<&str>,
        public_key_files: &[PathBuf],
    ) -> Result<UserRecord, AdminError> {
        for file in public_key_files {
            read_public_keys(file)?;
        }
        let current = self.registry.user(login).await?;
        self.keep_a_master(&current, changes.master.unwrap_or(current.master)).await?;
        let changes = UserChanges { password_hash: Self::password_hash(password)?, ..changes };
        let user = self.registry.modify_user(login, &changes).await?;
        let account = AccountRef::User { id: user.id, organisation_id: user.organisation_id };
        self.attach_keys(account, public_key_files).await?;
        let detail = format!("user {} profile {} contracts {}", user.login, user.profile, user.scope);
        self.audit("user-modify", Some(user.organisation_id), detail).await?;
        Ok(user)
    }

    /// Refuses a change that would leave an active organisation without an active master user.
    async fn keep_a_master(&self, user: &UserRecord, still_master: bool) -> Result<(), AdminError> {
        if !user.master || still_master || user.status != crate::domain::AccountStatus::Active {
            return Ok(());
        }
        let organisation = self.registry.organisation(user.organisation_id).await?;
        if organisation.status == crate::domain::AccountStatus::Active
            && self.registry.other_active_masters(user.organisation_id, user.id).await? == 0
        {
            return Err(AdminError::Invalid(format!(
                "{} is the last master user of {}: name another master user first",
                user.login, organisation.name
            )));
        }
        Ok(())
    }

    pub async fn revoke_user(&self, login: &Login) -> Result<UserRecord, AdminError> {
        let current = self.registry.user(login).await?;
        self.keep_a_master(&current, false).await?;
        let user = self.registry.set_user_status(login, crate::domain::AccountStatus::Revoked).await?;
        self.audit("user-revoke", Some(user.organisation_id), format!("user {login}")).await?;
        Ok(user)
    }

    pub async fn users(&self, organisation: Option<&EnterpriseNumber>) -> Result<Vec<UserRecord>, AdminError> {
        let id = match organisation {
            Some(number) => Some(self.registry.organisation_by_number(number).await?.id),
            None => None,
        };
        Ok(self.registry.users(id).await?)
    }

    pub async fn add_staff(
        &self,
        login: &Login,
        name: &str,
        email: &EmailAddress,
        password: Option<&str>,
        public_key_files: &[PathBuf],
    ) -> Result<StaffRecord, AdminError> {
        let name = non_empty("the staff member's name", name)?;
        if password.is_none() && public_key_files.is_empty() {
            return Err(AdminError::Invalid("a staff member needs a password or a public key to log in".into()));
        }
        for file in public_key_files {
            read_public_keys(file)?;
        }
        let staff = self
            .registry
            .create_staff(&NewStaff {
                login: login.clone(),
                name,
                email: email.clone(),
                password_hash: Self::password_hash(password)?,
            })
            .await?;
        self.attach_keys(AccountRef::Staff { id: staff.id }, public_key_files).await?;
        self.audit("staff-add", None, format!("staff {login}")).await?;
        Ok(staff)
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
            "org-convention",
            Some(record.id),
            format!("convention signed {signed}: {revoked} accesses revoked"),
        )
        .await?;
        Ok(revoked)
    }

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
        use crate::ingest::user_sheet;
        let record = self.registry.organisation_by_number(organisation).await?;
        let Some((schemas, reader)) = &self.ingest else {
            return Err(AdminError::Invalid("user sheets cannot be read here: no reader is configured".into()));
        };
        let checked = crate::user_sheets::check_sheet(
            &self.registry,
            schemas,
            reader,
            record.id,
            name,
            bytes::Bytes::copy_from_slice(bytes),
        )
        .await?;
        if checked.errors() > 0 {
            return Ok(SheetOutcome::Rejected(checked.problems(Language::En)));
        }
        let rows = checked.rows;
        let mut changes = Vec::new();
        for row in &rows {
            match row.action {
                user_sheet::SheetAction::Add => {
                    let password = row.public_key.is_none().then(crate::passwords::generate_password);
                    let (Some(email), Some(profile), Some(scope)) = (row.email.clone(), row.profile, row.scope.clone())
                    else {
                        return Err(AdminError::Invalid(format!("row {}: incomplete ADD row", row.row)));
                    };
                    let user = self
                        .add_user(&UserRequest {
                            organisation: organisation.clone(),
                            login: row.login.clone(),
                            name: row.name.clone().unwrap_or_else(|| row.login.to_string()),
                            email: email.clone(),
                            language: row.language.unwrap_or(Language::Fr),
                            profile,
                            scope,
                            master: false,
                            external_until: if row.external == Some(true) { row.valid_until } else { None },
                            public_key_files: Vec::new(),
                            public_key_lines: row.public_key.iter().cloned().collect(),
                            password: password.clone(),
                        })
                        .await?;
                    if let Some(password) = password {
                        self.send_credentials(&email, user.language, &user.login, &password).await?;
                    }
                    changes.push(format!("ADD {} ({}, contracts {})", user.login, user.profile, user.scope));
                }
                user_sheet::SheetAction::Modify => {
                    let external = match row.external {
                        Some(true) => Some((true, row.valid_until)),
                        Some(false) => Some((false, None)),
                        None => row.valid_until.map(|d| (true, Some(d))),
                    };
                    let change = UserChanges {
                        name: row.name.clone(),
                        email: row.email.clone(),
                        language: row.language,
                        profile: row.profile,
                        scope: row.scope.clone(),
                        master: None,
                        external,
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
                user_sheet::SheetAction::Remove => {
                    self.revoke_user(&row.login).await?;
                    changes.push(format!("REMOVE {}", row.login));
                }
            }
        }
        self.audit("user-sheet-apply", Some(record.id), format!("{}: {}", name, changes.join("; "))).await?;
        let masters = self.registry.users(Some(record.id)).await?;
        let mail = masters
            .iter()
            .filter(|u| u.master && u.status == crate::domain::AccountStatus::Active)
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
        if request.status != "pending" {
            return Err(AdminError::Invalid(format!("access request #{id} is {}, not pending", request.status)));
        }
        let organisation = self.registry.organisation(request.organisation_id).await?;
        let bytes = self.storage.read_verified(&ObjectKey::from_stored(&request.object_key)?, &request.sha256).await?;
        let outcome = self.apply_user_sheet_bytes(&organisation.enterprise_number, &request.file_name, &bytes).await?;
        let (status, reason) = match &outcome {
            SheetOutcome::Applied(_) => ("approved", None),
            SheetOutcome::Rejected(problems) => {
                ("invalid", Some(format!("{} problem(s) when applied", problems.len())))
            }
        };
        self.registry.decide_access_request(id, status, &self.actor, reason.as_deref()).await?;
        self.audit("access-approve", Some(request.organisation_id), format!("access request #{id}: {status}")).await?;
        Ok(outcome)
    }

    /// Refuses a pending user sheet; the organisation's master users are told why.
    pub async fn reject_access_request(&self, id: i64, reason: &str) -> Result<(), AdminError> {
        let reason = non_empty("the reason", reason)?;
        let request = self.registry.access_request(id).await?;
        if !self.registry.decide_access_request(id, "rejected", &self.actor, Some(&reason)).await? {
            return Err(AdminError::Invalid(format!("access request #{id} is {}, not pending", request.status)));
        }
        let masters = self.registry.users(Some(request.organisation_id)).await?;
        let mail = masters
            .iter()
            .filter(|u| u.master && u.status == crate::domain::AccountStatus::Active)
            .map(|master| {
                (master.email.clone(), messages::sheet_rejected(master.language, &request.file_name, &reason))
            })
            .collect();
        self.mail(mail).await?;
        self.audit("access-reject", Some(request.organisation_id), format!("access request #{id}: {reason}")).await
    }

    /// Queues mail (in one transaction) and tries to deliver it at once; what cannot be
    /// delivered now stays queued for `serve` to retry. Without an outbox, nothing is sent.
    async fn mail(&self, mail: Vec<(EmailAddress, crate::notify::Message)>) -> Result<(), AdminError> {
        let Some(outbox) = &self.outbox else { return Ok(()) };
        outbox.queue(mail).await?;
        self.deliver_queued_mail().await;
        Ok(())
    }

    /// One delivery round, ended by the first transient failure: a mail server that is down
    /// delays a command by one attempt at most, and `serve` retries.
    pub async fn deliver_queued_mail(&self) {
        if let Some(outbox) = &self.outbox {
            match outbox.deliver_due(true).await {
                Ok(round) if round.deferred > 0 || round.failed > 0 => tracing::warn!(
                    sent = round.sent,
                    deferred = round.deferred,
                    failed = round.failed,
                    "mail queued for another attempt (serve retries; see `pension-gateway outbox list`)"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot deliver queued mail now; serve retries"),
            }
        }
    }

    /// Mails credentials to their owner's address only.
    pub async fn send_credentials(
        &self,
        to: &EmailAddress,
        language: Language,
        login: &Login,
        password: &str,
    ) -> Result<(), AdminError> {
        if self.outbox.is_none() {
            return Err(AdminError::NoMail);
        }
        self.mail(vec![(to.clone(), messages::credentials(language, login, password))]).await
    }

    /// Gives a user a new generated password, sent to the user's own address only.
    pub async fn reset_password(&self, login: &Login) -> Result<(), AdminError> {
        // Checked before the password changes: a password that cannot be sent is not set.
        if self.outbox.is_none() {
            return Err(AdminError::NoMail);
        }
        let user = self.registry.user(login).await?;
        let password = crate::passwords::generate_password();
        let changes = UserChanges { password_hash: Self::password_hash(Some(&password))?, ..UserChanges::default() };
        self.registry.modify_user(login, &changes).await?;
        self.send_credentials(&user.email, user.language, &user.login, &password).await?;
        self.audit(
            "user-reset-password",
            Some(user.organisation_id),
            format!("user {login}: new password sent by mail"),
        )
        .await?;
        Ok(())
    }

    /// Publishes one file as a document of a contract.
    pub async fn publish(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        period: Option<u16>,
        file: &Path,
    ) -> Result<PublishOutcome, AdminError> {
        let document_kind = self.layout.document_kind(kind.as_str()).ok_or_else(|| {
            let known: Vec<&str> = self.layout.document_kinds.iter().map(|k| k.name.as_str()).collect();
            AdminError::Invalid(format!("unknown document kind {kind}: known kinds are {}", known.join(", ")))
        })?;
        let year = match (document_kind.per_year, period) {
            (true, None) => {
                return Err(AdminError::Invalid(format!("documents of kind {kind} need --period YEAR")));
            }
            (true, Some(year)) => Some(year),
            (false, Some(_)) => {
                return Err(AdminError::Invalid(format!("documents of kind {kind} are not filed by year")));
            }
            (false, None) => None,
        };
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| AdminError::Invalid(format!("{}: not a file name in UTF-8", file.display())))?;
        let file_name = FileName::parse(file_name).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let source =
            tokio::fs::File::open(file).await.map_err(|source| AdminError::Io { path: file.to_path_buf(), source })?;
        self.publish_from(contract, kind, year, file_name, source, file).await
    }

    /// Makes the annual-adjustment template of a contract (one row per active affiliate),
    /// records it so that the return can be checked against it, and publishes it in
    /// `documents/annual-adjustment/` when asked. Returns the file name and the workbook.
    pub async fn annual_adjustment_template(
        &self,
        contract: &ContractNumber,
        adjustment_date: Date,
        publish: bool,
    ) -> Result<(FileName, Vec<u8>), AdminError> {
        let record = self.registry.contract(contract).await?;
        let rows = self.registry.template_rows(record.id).await?;
        let id_bytes: [u8; 16] = rand::random();
        let template_id = hex::encode(id_bytes);
        let workbook = crate::ingest::templates::build(&template_id, contract.as_str(), adjustment_date, &rows)
            .map_err(|e| AdminError::Invalid(format!("cannot write the template: {e}")))?;
        self.registry.record_template(&template_id, record.id, adjustment_date, rows.len()).await?;
        let name = format!("annual-adjustment-{contract}-{}.xlsx", crate::registry::format_date(adjustment_date));
        let name = FileName::parse(&name).map_err(|e| AdminError::Invalid(e.to_string()))?;
        if publish {
            let kind = KindName::parse("annual-adjustment")?;
            self.publish_bytes(contract, &kind, None, &name, &workbook).await?;
        }
        self.audit(
            "template-annual-adjustment",
            Some(record.organisation_id),
            format!("contract {contract}: template {template_id}, {} rows", rows.len()),
        )
        .await?;
        Ok((name, workbook))
    }

    /// Current documents of a contract, each with who downloaded it and when first.
    pub async fn documents(
        &self,
        contract: &ContractNumber,
    ) -> Result<Vec<(crate::registry::DocumentRecord, Vec<(String, i64)>)>, AdminError> {
        let record = self.registry.contract(contract).await?;
        Ok(self.registry.documents_with_receipts(record.id).await?)
    }

    /// Tells each organisation, once per publishing run, that new documents are waiting: kinds
    /// and counts per contract, nothing personal, to the convention's notification address.
    /// One digest per organisation concerned by a publishing run; returns how many.
    pub async fn send_publication_digests(&self, published: &crate::notify::Published) -> Result<usize, AdminError> {
        let Some(outbox) = &self.outbox else { return Ok(0) };
        let count = outbox.queue_digests(published).await?;
        self.deliver_queued_mail().await;
        Ok(count)
    }

    /// Publishes bytes made in memory (a template) as a document.
    pub async fn publish_bytes(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        period: Option<u16>,
        file_name: &FileName,
        bytes: &[u8],
    ) -> Result<PublishOutcome, AdminError> {
        self.publish_from(contract, kind, period, file_name.clone(), bytes, Path::new(file_name.as_str())).await
    }

    async fn publish_from<R: tokio::io::AsyncRead + Unpin>(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        year: Option<u16>,
        file_name: FileName,
        mut source: R,
        origin: &Path,
    ) -> Result<PublishOutcome, AdminError> {
        if file_name.as_str() == crate::vfs::CHECKSUMS_FILE {
            return Err(AdminError::Invalid(format!(
                "{}: SHA256SUMS is the checksum list the gateway writes in every documents folder; publish under another name",
                origin.display()
            )));
        }
        let contract_record = self.registry.contract(contract).await?;
        let io_error = |source| AdminError::Io { path: origin.to_path_buf(), source };
        let mut writer = self.storage.create(ObjectKey::for_document(contract, kind)).await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = source.read(&mut buffer).await.map_err(io_error)?;
            if read == 0 {
                break;
            }
            writer.append(Bytes::copy_from_slice(&buffer[..read])).await?;
        }
        let stored = writer.finish().await?.commit().await?;
        let publication = self
            .registry
            .record_document(&NewDocument {
                contract_id: contract_record.id,
                kind: kind.clone(),
                year,
                file_name: file_name.clone(),
                size: stored.size,
                sha256: stored.sha256.clone(),
                object_key: stored.key.to_string(),
                published_by: self.actor.clone(),
            })
            .await;
        let outcome = match publication {
            Ok(Publication::Published { replaced, .. }) => PublishOutcome::Published { replaced: replaced.is_some() },
            Ok(Publication::Unchanged(_)) => {
                self.storage.delete(&stored.key).await?;
                PublishOutcome::Unchanged
            }
            Err(error) => {
                self.storage.delete(&stored.key).await?;
                return Err(error.into());
            }
        };
        let detail = format!("{contract}/{kind}/{file_name} sha256 {} {:?}", stored.sha256, outcome);
        self.audit("publish", Some(contract_record.organisation_id), detail).await?;
        Ok(outcome)
    }

    /// Replaces the personnel categories of a contract (codes such as EMPLOYES, OUVRIERS).
    pub async fn set_categories(&self, contract: &ContractNumber, codes: &[String]) -> Result<(), AdminError> {
        let mut set = std::collections::BTreeSet::new();
        for code in codes {
            let code = code.trim().to_uppercase();
            if code.is_empty()
                || code.len() > 32
                || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(AdminError::Invalid(format!(
                    "category {code:?}: use letters, digits, '_' or '-' (at most 32), for example EMPLOYES"
                )));
            }
            set.insert(code);
        }
        let record = self.registry.contract(contract).await?;
        self.registry.set_contract_categories(record.id, &set).await?;
        let list: Vec<&str> = set.iter().map(String::as_str).collect();
        self.audit(
            "contract-categories",
            Some(record.organisation_id),
            format!("contract {contract} categories {}", list.join(",")),
        )
        .await?;
        Ok(())
    }

    /// The affiliates of a contract. Revealing national numbers is audited.
    pub async fn affiliates(
        &self,
        contract: &ContractNumber,
        reveal: bool,
    ) -> Result<Vec<crate::registry::AffiliateRecord>, AdminError> {
        let record = self.registry.contract(contract).await?;
        let list = self.registry.affiliates(record.id).await?;
        if reveal {
            self.audit(
                "affiliates-reveal",
                Some(record.organisation_id),
                format!("contract {contract}: {} national numbers shown", list.len()),
            )
            .await?;
        }
        Ok(list)
    }

    /// Queues an upload's processing again.
    pub async fn retry_ingestion(&self, upload_id: i64) -> Result<(), AdminError> {
        self.registry.retry_ingestion(upload_id).await?;
        self.audit("ingest-retry", None, format!("upload #{upload_id}")).await
    }

    pub async fn uploads(&self, contract: Option<&ContractNumber>) -> Result<Vec<UploadRecord>, AdminError> {
        let id = match contract {
            Some(number) => Some(self.registry.contract(number).await?.id),
            None => None,
        };
        Ok(self.registry.uploads(id).await?)
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

    pub async fn upload(&self, id: i64) -> Result<UploadRecord, AdminError> {
        Ok(self.registry.upload(id).await?)
    }
}
