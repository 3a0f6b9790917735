//! Contracts: adding one, its personnel categories, its affiliates, its documents and the
//! annual-adjustment template made from its registry.

use time::Date;

use crate::domain::{AuditAction, ContractNumber, EnterpriseNumber, FileName, KindName};
use crate::registry::ContractRecord;

use super::error::{AdminError, Internal, Refusal};
use super::Admin;

impl Admin {
    pub async fn add_contract(
        &self,
        organisation: &EnterpriseNumber,
        number: &ContractNumber,
        title: &str,
    ) -> Result<ContractRecord, AdminError> {
        let organisation = self.registry.organisation_by_number(organisation).await?;
        let record = self.registry.create_contract(organisation.id, number, title.trim()).await?;
        self.audit(AuditAction::ContractAdd, Some(organisation.id), format!("contract {number}")).await?;
        Ok(record)
    }

    pub async fn contracts(&self, organisation: Option<&EnterpriseNumber>) -> Result<Vec<ContractRecord>, AdminError> {
        let id = match organisation {
            Some(number) => Some(self.registry.organisation_by_number(number).await?.id),
            None => None,
        };
        Ok(self.registry.contracts(id).await?)
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
                return Err(Refusal::Category(code).into());
            }
            set.insert(code);
        }
        let record = self.registry.contract(contract).await?;
        self.registry.set_contract_categories(record.id, &set).await?;
        let list: Vec<&str> = set.iter().map(String::as_str).collect();
        self.audit(
            AuditAction::ContractCategories,
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
                AuditAction::AffiliatesReveal,
                Some(record.organisation_id),
                format!("contract {contract}: {} national numbers shown", list.len()),
            )
            .await?;
        }
        Ok(list)
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
            .map_err(Internal::Template)?;
        self.registry.record_template(&template_id, record.id, adjustment_date, rows.len()).await?;
        let name = format!("annual-adjustment-{contract}-{}.xlsx", crate::registry::format_date(adjustment_date));
        let name = FileName::parse(&name).map_err(Internal::MadeName)?;
        if publish {
            let kind = KindName::parse("annual-adjustment")?;
            self.publish_bytes(contract, &kind, None, &name, &workbook).await?;
        }
        self.audit(
            AuditAction::TemplateAnnualAdjustment,
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
}
