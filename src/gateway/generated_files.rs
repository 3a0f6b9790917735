//! Files the gateway writes when they are read, so that they are never out of step: the blank
//! templates of `/<contract>/templates/` (from the schemas) and the `SHA256SUMS` of every
//! documents folder (from the hashes recorded at publication, never by reading the objects).

use bytes::Bytes;

use crate::access::{Principal, Role};
use crate::domain::{ContractNumber, FileName, KindName, Language, Year};
use crate::ingest::blank_templates::{self, TemplateContext};
use crate::ingest::schema::Schema;

use super::{Conflict, Gateway, GatewayError};

static TEMPLATES_SINCE: std::sync::LazyLock<i64> = std::sync::LazyLock::new(crate::registry::now_seconds);

impl Gateway {
    /// The languages whose template names the principal sees: its own; staff see all three.
    async fn template_languages(&self, principal: &Principal) -> Vec<Language> {
        match principal.role {
            Role::Staff { .. } => vec![Language::Fr, Language::Nl, Language::En],
            Role::Employer { .. } => {
                vec![self.registry.user(&principal.login).await.map(|u| u.language).unwrap_or(Language::Fr)]
            }
        }
    }

    /// The schemas of the upload kinds that have a blank template, in the layout's order.
    fn template_schemas(&self) -> Vec<&Schema> {
        self.layout
            .upload_kinds
            .iter()
            .filter_map(|kind| self.schemas.for_kind(kind.as_str()))
            .filter(|schema| blank_templates::offers_template(schema))
            .collect()
    }

    /// The templates of a contract folder as the principal lists them: name and bytes.
    pub(super) async fn templates(
        &self,
        principal: &Principal,
        contract: &ContractNumber,
    ) -> Result<Vec<(String, Bytes)>, GatewayError> {
        let mut files = Vec::new();
        for language in self.template_languages(principal).await {
            for schema in self.template_schemas() {
                let name = blank_templates::file_name(schema, language);
                if !files.iter().any(|(known, _)| *known == name) {
                    let bytes = self.template(contract, schema, language).await?;
                    files.push((name, bytes));
                }
            }
        }
        Ok(files)
    }

    /// One template by its name: in the principal's language first, then in any language.
    pub(super) async fn template_named(
        &self,
        principal: &Principal,
        contract: &ContractNumber,
        name: &FileName,
    ) -> Result<Bytes, GatewayError> {
        let mut languages = self.template_languages(principal).await;
        languages.extend([Language::Fr, Language::Nl, Language::En]);
        for language in languages {
            for schema in self.template_schemas() {
                if blank_templates::file_name(schema, language) == name.as_str() {
                    return self.template(contract, schema, language).await;
                }
            }
        }
        Err(GatewayError::NotFound)
    }

    async fn template(
        &self,
        contract: &ContractNumber,
        schema: &Schema,
        language: Language,
    ) -> Result<Bytes, GatewayError> {
        let record = self.contract_record(contract).await?;
        let organisation = self.registry.organisation(record.organisation_id).await?;
        let categories = self.registry.contract_categories(record.id).await?;
        // Writing a workbook is CPU work: off the runtime's threads, so that a user listing
        // templates in a loop cannot stall the other sessions.
        let (schema, contract, employer) = (schema.clone(), contract.clone(), organisation.enterprise_number);
        let category = categories.into_iter().next();
        let built = tokio::task::spawn_blocking(move || {
            let context = TemplateContext { contract: &contract, employer: &employer, category: category.as_deref() };
            blank_templates::build(&schema, language, &context)
        })
        .await;
        match built {
            Ok(Ok(bytes)) => Ok(Bytes::from(bytes)),
            Ok(Err(error)) => {
                tracing::error!(error = %error, "cannot write a blank template");
                Err(GatewayError::Conflict(Conflict::TemplateUnavailable))
            }
            Err(error) => {
                tracing::error!(error = %error, "writing a blank template stopped");
                Err(GatewayError::Conflict(Conflict::TemplateUnavailable))
            }
        }
    }

    /// When the templates were last changed, as listings show it: the schemas are loaded at
    /// start, so a template changes only with a restart (clients that sync by date and size
    /// do not fetch them again and again).
    pub(super) fn templates_mtime(&self) -> i64 {
        *TEMPLATES_SINCE
    }

    /// `SHA256SUMS` of a documents folder, in the `sha256sum -c` format, and the time of its
    /// newest document (its date). In the folder of a kind published per year it lists every
    /// year's documents as `YEAR/name`.
    pub(super) async fn checksums(
        &self,
        contract: &ContractNumber,
        kind: &KindName,
        year: Option<Year>,
    ) -> Result<(Bytes, i64), GatewayError> {
        let record = self.contract_record(contract).await?;
        let per_year = self.layout.document_kind(kind.as_str()).is_some_and(|k| k.per_year);
        let mut lines = String::new();
        let mut newest = 0;
        let folders: Vec<(Option<Year>, String)> = match (per_year, year) {
            (true, None) => self
                .registry
                .document_years(record.id, kind)
                .await?
                .into_iter()
                .map(|(year, _)| (Some(year), format!("{year}/")))
                .collect(),
            (_, year) => vec![(year, String::new())],
        };
        for (year, prefix) in folders {
            for document in self.registry.documents_in_folder(record.id, kind, year).await? {
                // Two spaces: text mode, as sha256sum writes it.
                lines.push_str(&format!("{}  {prefix}{}\n", document.sha256, document.file_name));
                newest = newest.max(document.published_at);
            }
        }
        // `sha256sum -c` fails on a list without lines: an empty folder has none.
        if lines.is_empty() {
            return Err(GatewayError::NotFound);
        }
        Ok((Bytes::from(lines), newest))
    }
}
