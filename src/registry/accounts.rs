//! Accounts that can log in: extranet users (per organisation), insurer staff, and the public
//! keys and argon2id password hashes attached to them. Users and staff share one login
//! namespace.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::Row;
use time::Date;

use super::{flag, now_seconds, unique_or, Entity, Registry, RegistryError, StateConflict};
use crate::domain::{AccountStatus, ContractNumber, EmailAddress, Language, Login, Profile, Scope};

/// Which table an account lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef {
    User { id: i64, organisation_id: i64 },
    Staff { id: i64 },
}

/// What authentication needs to know about a login.
#[derive(Debug, Clone)]
pub struct LoginAccount {
    pub account: AccountRef,
    pub password_hash: Option<String>,
    pub status: AccountStatus,
    pub organisation_status: AccountStatus,
    pub expires_on: Option<Date>,
}

impl LoginAccount {
    /// Why this account may not log in on `today`, as a reason code for the audit log.
    pub fn refusal(&self, today: Date) -> Option<&'static str> {
        if self.status != AccountStatus::Active {
            Some("account-revoked")
        } else if self.organisation_status != AccountStatus::Active {
            Some("organisation-revoked")
        } else if self.expires_on.is_some_and(|last_day| today > last_day) {
            Some("account-expired")
        } else {
            None
        }
    }
}

/// An open session's account, see [`Registry::session_account`].
#[derive(Debug, Clone)]
pub struct SessionAccount {
    /// Its state; the password hash is not read.
    pub account: LoginAccount,
    /// What a user may reach; `None` for staff.
    pub access: Option<UserAccess>,
}

/// A user's rights as they stand now.
#[derive(Debug, Clone)]
pub struct UserAccess {
    pub language: Language,
    pub profile: Profile,
    pub master: bool,
    /// Every contract the user reaches now: its scope, or all of its organisation's.
    pub contracts: BTreeSet<ContractNumber>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub organisation_id: i64,
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub profile: Profile,
    pub scope: Scope,
    pub master: bool,
    /// An external user (DOMAIN.md §1.5) and the last day of the access; `None`: not external.
    pub external_until: Option<Date>,
    pub password_hash: Option<String>,
}

/// Changes to a user; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
    pub language: Option<Language>,
    pub profile: Option<Profile>,
    pub scope: Option<Scope>,
    pub master: Option<bool>,
    /// `Some(None)`: no longer external; `Some(Some(day))`: external until that day.
    pub external_until: Option<Option<Date>>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub organisation_id: i64,
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub profile: Profile,
    pub scope: Scope,
    pub master: bool,
    pub external: bool,
    pub expires_on: Option<Date>,
    pub status: AccountStatus,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewStaff {
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StaffRecord {
    pub id: i64,
    pub login: Login,
    pub name: String,
    pub email: EmailAddress,
    pub language: Language,
    pub status: AccountStatus,
}

const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// A date as the registry stores it: `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

fn parse_stored_date(text: Option<String>) -> Result<Option<Date>, RegistryError> {
    text.map(|t| Date::parse(&t, DATE_FORMAT).map_err(super::corrupt("date"))).transpose()
}

use super::corrupt;

const USER_COLUMNS_SQL: &str = "SELECT id, organisation_id, login, name, email, language, profile, all_contracts,
        is_master, is_external, expires_on, status, created_at, last_login_at FROM users";

impl Registry {
    async fn login_taken(&self, login: &Login) -> Result<bool, RegistryError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users WHERE login = $1) + (SELECT COUNT(*) FROM staff WHERE login = $1)",
        )
        .bind(login.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// The contract ids of `scope`, each checked to belong to the organisation.
    async fn scope_contract_ids(&self, organisation_id: i64, scope: &Scope) -> Result<Vec<i64>, RegistryError> {
        let Scope::Contracts(numbers) = scope else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::with_capacity(numbers.len());
        for number in numbers {
            let contract = self.contract(number).await?;
            if contract.organisation_id != organisation_id {
                return Err(RegistryError::State(StateConflict::ContractOfAnotherOrganisation(number.clone())));
            }
            ids.push(contract.id);
        }
        Ok(ids)
    }

    pub async fn create_user(&self, user: &NewUser) -> Result<UserRecord, RegistryError> {
        if self.login_taken(&user.login).await? {
            return Err(RegistryError::AlreadyExists(Entity::Login(user.login.clone())));
        }
        let contract_ids = self.scope_contract_ids(user.organisation_id, &user.scope).await?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO users (organisation_id, login, name, email, language, profile, all_contracts, is_master,
                                is_external, expires_on, status, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12) RETURNING id",
        )
        .bind(user.organisation_id)
        .bind(user.login.as_str())
        .bind(&user.name)
        .bind(user.email.as_str())
        .bind(user.language.as_str())
        .bind(user.profile.as_str())
        .bind(flag(matches!(user.scope, Scope::AllContracts)))
        .bind(flag(user.master))
        .bind(flag(user.external_until.is_some()))
        .bind(user.external_until.map(format_date))
        .bind(user.password_hash.as_deref())
        .bind(now_seconds())
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_or(Entity::Login(user.login.clone())))?;
        let id: i64 = row.try_get(0)?;
        for contract_id in contract_ids {
            sqlx::query("INSERT INTO user_contracts (user_id, contract_id) VALUES ($1, $2)")
                .bind(id)
                .bind(contract_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.user(&user.login).await
    }

    pub async fn modify_user(&self, login: &Login, changes: &UserChanges) -> Result<UserRecord, RegistryError> {
        let current = self.user(login).await?;
        let contract_ids = match &changes.scope {
            Some(scope) => Some(self.scope_contract_ids(current.organisation_id, scope).await?),
            None => None,
        };
        let (external, expires_on) = match changes.external_until {
            Some(until) => (until.is_some(), until),
            None => (current.external, current.expires_on),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET name = $1, email = $2, language = $3, profile = $4, all_contracts = $5,
                    is_master = $6, is_external = $7, expires_on = $8,
                    password_hash = COALESCE($9, password_hash)
             WHERE id = $10",
        )
        .bind(changes.name.as_ref().unwrap_or(&current.name))
        .bind(changes.email.as_ref().unwrap_or(&current.email).as_str())
        .bind(changes.language.unwrap_or(current.language).as_str())
        .bind(changes.profile.unwrap_or(current.profile).as_str())
        .bind(flag(matches!(changes.scope.as_ref().unwrap_or(&current.scope), Scope::AllContracts)))
        .bind(flag(changes.master.unwrap_or(current.master)))
        .bind(flag(external))
        .bind(expires_on.map(format_date))
        .bind(changes.password_hash.as_deref())
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        if let Some(ids) = contract_ids {
            sqlx::query("DELETE FROM user_contracts WHERE user_id = $1").bind(current.id).execute(&mut *tx).await?;
            for contract_id in ids {
                sqlx::query("INSERT INTO user_contracts (user_id, contract_id) VALUES ($1, $2)")
                    .bind(current.id)
                    .bind(contract_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.user(login).await
    }

    pub async fn set_user_status(&self, login: &Login, status: AccountStatus) -> Result<UserRecord, RegistryError> {
        let result = sqlx::query("UPDATE users SET status = $1 WHERE login = $2")
            .bind(status.as_str())
            .bind(login.as_str())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(RegistryError::NotFound(Entity::Login(login.clone())));
        }
        self.user(login).await
    }

    async fn user_from_row(&self, row: &AnyRow) -> Result<UserRecord, RegistryError> {
        let id: i64 = row.try_get("id")?;
        let all_contracts = row.try_get::<i64, _>("all_contracts")? != 0;
        let scope = if all_contracts {
            Scope::AllContracts
        } else {
            let rows = sqlx::query(
                "SELECT c.number FROM user_contracts uc JOIN contracts c ON c.id = uc.contract_id
                 WHERE uc.user_id = $1 ORDER BY c.number",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            let mut numbers = Vec::with_capacity(rows.len());
            for r in rows {
                numbers.push(ContractNumber::parse(&r.try_get::<String, _>(0)?).map_err(corrupt("contracts.number"))?);
            }
            Scope::Contracts(numbers)
        };
        Ok(UserRecord {
            id,
            organisation_id: row.try_get("organisation_id")?,
            login: Login::parse(&row.try_get::<String, _>("login")?).map_err(corrupt("users.login"))?,
            name: row.try_get("name")?,
            email: EmailAddress::parse(&row.try_get::<String, _>("email")?).map_err(corrupt("users.email"))?,
            language: row.try_get::<String, _>("language")?.parse().map_err(corrupt("users.language"))?,
            profile: row.try_get::<String, _>("profile")?.parse().map_err(corrupt("users.profile"))?,
            scope,
            master: row.try_get::<i64, _>("is_master")? != 0,
            external: row.try_get::<i64, _>("is_external")? != 0,
            expires_on: parse_stored_date(row.try_get("expires_on")?)?,
            status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("users.status"))?,
            created_at: row.try_get("created_at")?,
            last_login_at: row.try_get("last_login_at")?,
        })
    }

    pub async fn user(&self, login: &Login) -> Result<UserRecord, RegistryError> {
        let sql = sqlx::AssertSqlSafe(format!("{USER_COLUMNS_SQL} WHERE login = $1"));
        let row = sqlx::query(sql)
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(Entity::Login(login.clone())))?;
        self.user_from_row(&row).await
    }

    pub async fn user_by_id(&self, id: i64) -> Result<UserRecord, RegistryError> {
        let sql = sqlx::AssertSqlSafe(format!("{USER_COLUMNS_SQL} WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(Entity::UserId(id)))?;
        self.user_from_row(&row).await
    }

    pub async fn users(&self, organisation_id: Option<i64>) -> Result<Vec<UserRecord>, RegistryError> {
        let rows = match organisation_id {
            Some(org) => {
                let sql = sqlx::AssertSqlSafe(format!("{USER_COLUMNS_SQL} WHERE organisation_id = $1 ORDER BY login"));
                sqlx::query(sql).bind(org).fetch_all(&self.pool).await?
            }
            None => {
                let sql = sqlx::AssertSqlSafe(format!("{USER_COLUMNS_SQL} ORDER BY login"));
                sqlx::query(sql).fetch_all(&self.pool).await?
            }
        };
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(self.user_from_row(row).await?);
        }
        Ok(users)
    }

    pub async fn create_staff(&self, staff: &NewStaff) -> Result<StaffRecord, RegistryError> {
        if self.login_taken(&staff.login).await? {
            return Err(RegistryError::AlreadyExists(Entity::Login(staff.login.clone())));
        }
        let row = sqlx::query(
            "INSERT INTO staff (login, name, email, language, status, password_hash, created_at)
             VALUES ($1, $2, $3, $4, 'active', $5, $6) RETURNING id",
        )
        .bind(staff.login.as_str())
        .bind(&staff.name)
        .bind(staff.email.as_str())
        .bind(staff.language.as_str())
        .bind(staff.password_hash.as_deref())
        .bind(now_seconds())
        .fetch_one(&self.pool)
        .await
        .map_err(unique_or(Entity::Login(staff.login.clone())))?;
        Ok(StaffRecord {
            id: row.try_get(0)?,
            login: staff.login.clone(),
            name: staff.name.clone(),
            email: staff.email.clone(),
            language: staff.language,
            status: AccountStatus::Active,
        })
    }

    /// A staff member by login.
    pub async fn staff(&self, login: &Login) -> Result<StaffRecord, RegistryError> {
        let row = sqlx::query("SELECT id, name, email, language, status FROM staff WHERE login = $1")
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(Entity::Login(login.clone())))?;
        Ok(StaffRecord {
            id: row.try_get("id")?,
            login: login.clone(),
            name: row.try_get("name")?,
            email: EmailAddress::parse(&row.try_get::<String, _>("email")?).map_err(corrupt("staff.email"))?,
            language: row.try_get::<String, _>("language")?.parse().map_err(corrupt("staff.language"))?,
            status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("staff.status"))?,
        })
    }

    /// The account behind a login, whatever its state; `None` when no such login exists.
    pub async fn login_account(&self, login: &Login) -> Result<Option<LoginAccount>, RegistryError> {
        let user = sqlx::query(
            "SELECT u.id, u.organisation_id, u.password_hash, u.status, u.expires_on, o.status AS organisation_status
             FROM users u JOIN organisations o ON o.id = u.organisation_id WHERE u.login = $1",
        )
        .bind(login.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = user {
            return Ok(Some(LoginAccount {
                account: AccountRef::User { id: row.try_get("id")?, organisation_id: row.try_get("organisation_id")? },
                password_hash: row.try_get("password_hash")?,
                status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("users.status"))?,
                organisation_status: row
                    .try_get::<String, _>("organisation_status")?
                    .parse()
                    .map_err(corrupt("organisations.status"))?,
                expires_on: parse_stored_date(row.try_get("expires_on")?)?,
            }));
        }
        let staff = sqlx::query("SELECT id, password_hash, status FROM staff WHERE login = $1")
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?;
        staff
            .map(|row| {
                Ok(LoginAccount {
                    account: AccountRef::Staff { id: row.try_get("id")? },
                    password_hash: row.try_get("password_hash")?,
                    status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("staff.status"))?,
                    organisation_status: AccountStatus::Active,
                    expires_on: None,
                })
            })
            .transpose()
    }

    /// An open session's account as it stands now, in one query: its state and, for a user,
    /// what it may reach. Sessions re-check this before each file they open, so a revocation,
    /// a profile change or a new contract applies at once; `None` when the login is gone.
    pub async fn session_account(&self, login: &Login) -> Result<Option<SessionAccount>, RegistryError> {
        // One row for the account, then one per contract it reaches: every contract of the
        // organisation, or those of its scope.
        let rows = sqlx::query(
            "SELECT 'user' AS kind, u.id, u.organisation_id, u.status, u.expires_on,
                    o.status AS organisation_status, u.language, u.profile, u.is_master, NULL AS number
             FROM users u JOIN organisations o ON o.id = u.organisation_id WHERE u.login = $1
             UNION ALL
             SELECT 'contract', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, c.number
             FROM users u JOIN contracts c ON c.organisation_id = u.organisation_id
             WHERE u.login = $1 AND u.all_contracts = 1
             UNION ALL
             SELECT 'contract', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, c.number
             FROM users u JOIN user_contracts uc ON uc.user_id = u.id JOIN contracts c ON c.id = uc.contract_id
             WHERE u.login = $1 AND u.all_contracts = 0
             UNION ALL
             SELECT 'staff', s.id, NULL, s.status, NULL, NULL, NULL, NULL, NULL, NULL
             FROM staff s WHERE s.login = $1",
        )
        .bind(login.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut session = None;
        let mut contracts = BTreeSet::new();
        for row in &rows {
            let status = || -> Result<AccountStatus, RegistryError> {
                row.try_get::<String, _>("status")?.parse().map_err(corrupt("account.status"))
            };
            match row.try_get::<String, _>("kind")?.as_str() {
                "contract" => {
                    let number = row.try_get::<String, _>("number")?;
                    contracts.insert(ContractNumber::parse(&number).map_err(corrupt("contracts.number"))?);
                }
                "user" => {
                    let account = LoginAccount {
                        account: AccountRef::User {
                            id: row.try_get("id")?,
                            organisation_id: row.try_get("organisation_id")?,
                        },
                        password_hash: None,
                        status: status()?,
                        organisation_status: row
                            .try_get::<String, _>("organisation_status")?
                            .parse()
                            .map_err(corrupt("organisations.status"))?,
                        expires_on: parse_stored_date(row.try_get("expires_on")?)?,
                    };
                    let access = UserAccess {
                        language: row.try_get::<String, _>("language")?.parse().map_err(corrupt("users.language"))?,
                        profile: row.try_get::<String, _>("profile")?.parse().map_err(corrupt("users.profile"))?,
                        master: row.try_get::<i64, _>("is_master")? != 0,
                        contracts: BTreeSet::new(),
                    };
                    session = Some(SessionAccount { account, access: Some(access) });
                }
                _ => {
                    let account = LoginAccount {
                        account: AccountRef::Staff { id: row.try_get("id")? },
                        password_hash: None,
                        status: status()?,
                        organisation_status: AccountStatus::Active,
                        expires_on: None,
                    };
                    // Users and staff share one login namespace; should both ever hold it,
                    // the user is the one it resolves to, as at login.
                    if session.is_none() {
                        session = Some(SessionAccount { account, access: None });
                    }
                }
            }
        }
        if let Some(access) = session.as_mut().and_then(|s| s.access.as_mut()) {
            access.contracts = contracts;
        }
        Ok(session)
    }

    pub async fn record_login(&self, account: AccountRef) -> Result<(), RegistryError> {
        let (sql, id) = match account {
            AccountRef::User { id, .. } => ("UPDATE users SET last_login_at = $1 WHERE id = $2", id),
            AccountRef::Staff { id } => ("UPDATE staff SET last_login_at = $1 WHERE id = $2", id),
        };
        sqlx::query(sql).bind(now_seconds()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Attaches a public key to an account; a key belongs to one account only.
    pub async fn add_public_key(
        &self,
        account: AccountRef,
        algorithm: &str,
        fingerprint: &str,
        openssh: &str,
    ) -> Result<(), RegistryError> {
        let (user_id, staff_id) = match account {
            AccountRef::User { id, .. } => (Some(id), None),
            AccountRef::Staff { id } => (None, Some(id)),
        };
        sqlx::query(
            "INSERT INTO public_keys (user_id, staff_id, algorithm, fingerprint, openssh, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user_id)
        .bind(staff_id)
        .bind(algorithm)
        .bind(fingerprint)
        .bind(openssh)
        .bind(now_seconds())
        .execute(&self.pool)
        .await
        .map_err(unique_or(Entity::PublicKey(fingerprint.to_string())))?;
        Ok(())
    }

    /// The login a public key (by SHA-256 fingerprint) belongs to.
    pub async fn public_key_owner(&self, fingerprint: &str) -> Result<Option<Login>, RegistryError> {
        let row = sqlx::query(
            "SELECT COALESCE(u.login, s.login) FROM public_keys k
             LEFT JOIN users u ON u.id = k.user_id LEFT JOIN staff s ON s.id = k.staff_id
             WHERE k.fingerprint = $1",
        )
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Login::parse(&r.try_get::<String, _>(0)?).map_err(corrupt("login"))).transpose()
    }

    /// Active external users whose last day falls between `from` and `until` (inclusive) and
    /// whose master users were not yet reminded of that date.
    pub async fn externals_to_remind(&self, from: Date, until: Date) -> Result<Vec<UserRecord>, RegistryError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{USER_COLUMNS_SQL} WHERE is_external = 1 AND status = 'active' AND expires_on >= $1 AND expires_on <= $2
               AND (reminded_for IS NULL OR reminded_for <> expires_on) ORDER BY id"
        ));
        let rows = sqlx::query(sql).bind(format_date(from)).bind(format_date(until)).fetch_all(&self.pool).await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(self.user_from_row(row).await?);
        }
        Ok(users)
    }

    /// Marks the external user reminded of `expires_on` and queues `messages` in one
    /// transaction, if no one did it before: false when another run (this instance's or
    /// another's) already reminded of that date, and then nothing is queued.
    pub async fn remind_once(
        &self,
        user_id: i64,
        expires_on: Date,
        messages: &[super::NewMessage],
    ) -> Result<bool, RegistryError> {
        let mut tx = self.begin_write().await?;
        let date = format_date(expires_on);
        let claimed = sqlx::query(
            "UPDATE users SET reminded_for = $1 WHERE id = $2 AND (reminded_for IS NULL OR reminded_for <> $1)",
        )
        .bind(&date)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            for message in messages {
                super::outbox::queue_in(&mut tx, message).await?;
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Every login in use, among users of all organisations and staff.
    pub async fn all_logins(&self) -> Result<Vec<Login>, RegistryError> {
        let rows = sqlx::query("SELECT login FROM users UNION SELECT login FROM staff").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Login::parse(&r.try_get::<String, _>(0)?).map_err(corrupt("login"))).collect()
    }
}
