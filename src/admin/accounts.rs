//! Users and staff: adding, changing and revoking them, their keys and passwords. A generated
//! password goes by mail to the account's own address and is never shown.

use std::path::PathBuf;

use crate::auth::passwords::{generate_password, hash_password};
use crate::domain::{AccountStatus, AuditAction, EmailAddress, EnterpriseNumber, Language, Login, SshPublicKey};
use crate::notify::messages;
use crate::registry::{AccountRef, NewStaff, NewUser, StaffRecord, UserChanges, UserRecord};

use super::error::{AdminError, Field, Refusal};
use super::{non_empty, read_public_keys, Admin, NewAccount, UserRequest};

impl Admin {
    async fn attach_keys(&self, account: AccountRef, files: &[PathBuf]) -> Result<(), AdminError> {
        for file in files {
            for key in read_public_keys(file)? {
                self.registry.add_public_key(account, &key.algorithm(), &key.fingerprint(), &key.openssh()).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn attach_key_lines(&self, account: AccountRef, lines: &[String]) -> Result<(), AdminError> {
        for line in lines {
            let key = SshPublicKey::parse(line)?;
            self.registry.add_public_key(account, &key.algorithm(), &key.fingerprint(), &key.openssh()).await?;
        }
        Ok(())
    }

    fn password_hash(password: Option<&str>) -> Result<Option<String>, AdminError> {
        password.map(hash_password).transpose().map_err(AdminError::from)
    }

    /// Adds a user. Without a password or a key, a generated password is mailed to the
    /// user's own address (never shown).
    pub async fn add_user(&self, request: &UserRequest) -> Result<NewAccount<UserRecord>, AdminError> {
        let name = non_empty(Field::UserName, &request.name)?;
        let has_key = !request.public_key_files.is_empty() || !request.public_key_lines.is_empty();
        let generated = (request.password.is_none() && !has_key).then(generate_password);
        let password = request.password.as_deref().or(generated.as_deref());
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
                external_until: request.external_until,
                password_hash: Self::password_hash(password)?,
            })
            .await?;
        let account = AccountRef::User { id: user.id, organisation_id: organisation.id };
        self.attach_keys(account, &request.public_key_files).await?;
        self.attach_key_lines(account, &request.public_key_lines).await?;
        if let Some(password) = &generated {
            self.send_credentials(&user.email, user.language, &user.login, password).await?;
        }
        let detail = format!("user {} profile {} contracts {}", user.login, user.profile, user.scope);
        self.audit(AuditAction::UserAdd, Some(organisation.id), detail).await?;
        Ok(NewAccount { record: user, password_mailed: generated.is_some() })
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
        self.audit(AuditAction::UserModify, Some(user.organisation_id), detail).await?;
        Ok(user)
    }

    /// Refuses a change that would leave an active organisation without an active master user.
    async fn keep_a_master(&self, user: &UserRecord, still_master: bool) -> Result<(), AdminError> {
        if !user.master || still_master || user.status != AccountStatus::Active {
            return Ok(());
        }
        let organisation = self.registry.organisation(user.organisation_id).await?;
        if organisation.status == AccountStatus::Active
            && self.registry.other_active_masters(user.organisation_id, user.id).await? == 0
        {
            return Err(Refusal::LastMaster { login: user.login.clone(), organisation: organisation.name }.into());
        }
        Ok(())
    }

    pub async fn revoke_user(&self, login: &Login) -> Result<UserRecord, AdminError> {
        let current = self.registry.user(login).await?;
        self.keep_a_master(&current, false).await?;
        let user = self.registry.set_user_status(login, AccountStatus::Revoked).await?;
        self.audit(AuditAction::UserRevoke, Some(user.organisation_id), format!("user {login}")).await?;
        Ok(user)
    }

    pub async fn users(&self, organisation: Option<&EnterpriseNumber>) -> Result<Vec<UserRecord>, AdminError> {
        let id = match organisation {
            Some(number) => Some(self.registry.organisation_by_number(number).await?.id),
            None => None,
        };
        Ok(self.registry.users(id).await?)
    }

    /// Adds a staff member. Without a password or a key, a generated password is mailed to
    /// the staff member's own address (never shown), in `language`.
    pub async fn add_staff(
        &self,
        login: &Login,
        name: &str,
        email: &EmailAddress,
        language: Language,
        password: Option<&str>,
        public_key_files: &[PathBuf],
    ) -> Result<NewAccount<StaffRecord>, AdminError> {
        let name = non_empty(Field::StaffName, name)?;
        let generated = (password.is_none() && public_key_files.is_empty()).then(generate_password);
        let password = password.or(generated.as_deref());
        for file in public_key_files {
            read_public_keys(file)?;
        }
        let staff = self
            .registry
            .create_staff(&NewStaff {
                login: login.clone(),
                name,
                email: email.clone(),
                language,
                password_hash: Self::password_hash(password)?,
            })
            .await?;
        self.attach_keys(AccountRef::Staff { id: staff.id }, public_key_files).await?;
        if let Some(password) = &generated {
            self.send_credentials(email, language, login, password).await?;
        }
        self.audit(AuditAction::StaffAdd, None, format!("staff {login}")).await?;
        Ok(NewAccount { record: staff, password_mailed: generated.is_some() })
    }

    /// Mails credentials to their owner's address only.
    pub async fn send_credentials(
        &self,
        to: &EmailAddress,
        language: Language,
        login: &Login,
        password: &str,
    ) -> Result<(), AdminError> {
        self.mail(vec![(to.clone(), messages::credentials(language, login, password))]).await
    }

    /// Gives a user a new generated password, sent to the user's own address only.
    pub async fn reset_password(&self, login: &Login) -> Result<(), AdminError> {
        let user = self.registry.user(login).await?;
        let password = generate_password();
        let changes = UserChanges { password_hash: Self::password_hash(Some(&password))?, ..UserChanges::default() };
        self.registry.modify_user(login, &changes).await?;
        self.send_credentials(&user.email, user.language, &user.login, &password).await?;
        self.audit(
            AuditAction::UserResetPassword,
            Some(user.organisation_id),
            format!("user {login}: new password sent by mail"),
        )
        .await?;
        Ok(())
    }
}
