//! Organisations (employers) and their contracts.

use sqlx::Row;

use super::{now_seconds, unique_or, Entity, Registry, RegistryError};
use crate::domain::{AccountStatus, ContractNumber, EmailAddress, EnterpriseNumber};

#[derive(Debug, Clone)]
pub struct OrganisationRecord {
    pub id: i64,
    pub enterprise_number: EnterpriseNumber,
    pub name: String,
    pub notify_email: EmailAddress,
    pub status: AccountStatus,
    pub created_at: i64,
    /// Of the messages sent to `notify_email`.
    pub language: crate::domain::Language,
}

#[derive(Debug, Clone)]
pub struct ContractRecord {
    pub id: i64,
    pub number: ContractNumber,
    pub organisation_id: i64,
    pub title: String,
}

use super::corrupt;

fn organisation_from_row(row: &sqlx::any::AnyRow) -> Result<OrganisationRecord, RegistryError> {
    Ok(OrganisationRecord {
        id: row.try_get("id")?,
        enterprise_number: EnterpriseNumber::parse(&row.try_get::<String, _>("enterprise_number")?)
            .map_err(corrupt("organisations.enterprise_number"))?,
        name: row.try_get("name")?,
        notify_email: EmailAddress::parse(&row.try_get::<String, _>("notify_email")?)
            .map_err(corrupt("organisations.notify_email"))?,
        status: row.try_get::<String, _>("status")?.parse().map_err(corrupt("organisations.status"))?,
        created_at: row.try_get("created_at")?,
        language: row.try_get::<String, _>("language")?.parse().map_err(corrupt("organisations.language"))?,
    })
}

fn contract_from_row(row: &sqlx::any::AnyRow) -> Result<ContractRecord, RegistryError> {
    Ok(ContractRecord {
        id: row.try_get("id")?,
        number: ContractNumber::parse(&row.try_get::<String, _>("number")?).map_err(corrupt("contracts.number"))?,
        organisation_id: row.try_get("organisation_id")?,
        title: row.try_get("title")?,
    })
}

impl Registry {
    pub async fn create_organisation(
        &self,
        number: &EnterpriseNumber,
        name: &str,
        notify_email: &EmailAddress,
        language: crate::domain::Language,
    ) -> Result<OrganisationRecord, RegistryError> {
        let row = sqlx::query(
            "INSERT INTO organisations (enterprise_number, name, notify_email, status, created_at, language)
             VALUES ($1, $2, $3, 'active', $4, $5)
             RETURNING id, enterprise_number, name, notify_email, status, created_at, language",
        )
        .bind(number.as_str())
        .bind(name)
        .bind(notify_email.as_str())
        .bind(now_seconds())
        .bind(language.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(unique_or(Entity::Organisation(number.clone())))?;
        organisation_from_row(&row)
    }

    pub async fn organisations(&self) -> Result<Vec<OrganisationRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, enterprise_number, name, notify_email, status, created_at, language
             FROM organisations ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(organisation_from_row).collect()
    }

    pub async fn organisation_by_number(&self, number: &EnterpriseNumber) -> Result<OrganisationRecord, RegistryError> {
        let row = sqlx::query(
            "SELECT id, enterprise_number, name, notify_email, status, created_at, language
             FROM organisations WHERE enterprise_number = $1",
        )
        .bind(number.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::NotFound(Entity::Organisation(number.clone())))?;
        organisation_from_row(&row)
    }

    pub async fn organisation(&self, id: i64) -> Result<OrganisationRecord, RegistryError> {
        let row = sqlx::query(
            "SELECT id, enterprise_number, name, notify_email, status, created_at, language
             FROM organisations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::NotFound(Entity::OrganisationId(id)))?;
        organisation_from_row(&row)
    }

    pub async fn set_organisation_status(&self, id: i64, status: AccountStatus) -> Result<(), RegistryError> {
        sqlx::query("UPDATE organisations SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_contract(
        &self,
        organisation_id: i64,
        number: &ContractNumber,
        title: &str,
    ) -> Result<ContractRecord, RegistryError> {
        let row = sqlx::query(
            "INSERT INTO contracts (number, organisation_id, title, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, number, organisation_id, title",
        )
        .bind(number.as_str())
        .bind(organisation_id)
        .bind(title)
        .bind(now_seconds())
        .fetch_one(&self.pool)
        .await
        .map_err(unique_or(Entity::Contract(number.clone())))?;
        contract_from_row(&row)
    }

    pub async fn contract(&self, number: &ContractNumber) -> Result<ContractRecord, RegistryError> {
        let row = sqlx::query("SELECT id, number, organisation_id, title FROM contracts WHERE number = $1")
            .bind(number.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| RegistryError::NotFound(Entity::Contract(number.clone())))?;
        contract_from_row(&row)
    }

    /// Contracts of one organisation, or of all when `organisation_id` is `None`.
    pub async fn contracts(&self, organisation_id: Option<i64>) -> Result<Vec<ContractRecord>, RegistryError> {
        let rows = match organisation_id {
            Some(id) => {
                sqlx::query(
                    "SELECT id, number, organisation_id, title FROM contracts
                     WHERE organisation_id = $1 ORDER BY number",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT id, number, organisation_id, title FROM contracts ORDER BY number")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(contract_from_row).collect()
    }

    /// Records a new convention: the notification address changes and every access the
    /// organisation had is revoked, in one transaction. Returns how many users lost access.
    pub async fn record_convention(
        &self,
        organisation_id: i64,
        signed_on: &str,
        notify_email: &EmailAddress,
        recorded_by: &str,
    ) -> Result<u64, RegistryError> {
        let mut tx = self.begin_write().await?;
        let revoked =
            sqlx::query("UPDATE users SET status = 'revoked' WHERE organisation_id = $1 AND status = 'active'")
                .bind(organisation_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("UPDATE organisations SET notify_email = $1, status = 'active' WHERE id = $2")
            .bind(notify_email.as_str())
            .bind(organisation_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO conventions (organisation_id, signed_on, notify_email, recorded_by, recorded_at, revoked_users)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(organisation_id)
        .bind(signed_on)
        .bind(notify_email.as_str())
        .bind(recorded_by)
        .bind(now_seconds())
        .bind(i64::try_from(revoked).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Active master users of an organisation, other than `except_user_id`.
    pub async fn other_active_masters(&self, organisation_id: i64, except_user_id: i64) -> Result<i64, RegistryError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM users WHERE organisation_id = $1 AND is_master = 1 AND status = 'active' AND id <> $2",
        )
        .bind(organisation_id)
        .bind(except_user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }
}
