//! `/access/users.xlsx`: who has which rights in the master user's organisation today, made
//! from the registry each time it is read (so it is never out of date).

use bytes::Bytes;
use rust_xlsxwriter::{Format, Workbook};

use crate::access::Principal;
use crate::domain::{AccountStatus, Language};
use crate::registry::format_date;

use super::{Conflict, Gateway, GatewayError};

impl Gateway {
    /// The workbook for the principal's organisation.
    pub(super) async fn users_workbook(&self, principal: &Principal) -> Result<Bytes, GatewayError> {
        let organisation_id = principal.organisation_id().ok_or(GatewayError::NotFound)?;
        let users = self.registry.users(Some(organisation_id)).await?;
        let language = self.registry.user(&principal.login).await.map(|u| u.language).unwrap_or(Language::Fr);
        let headers: [&str; 10] = match language {
            Language::Fr => [
                "Identifiant",
                "Nom",
                "E-mail",
                "Profil",
                "Contrats",
                "Master user",
                "Externe",
                "Valable jusqu'au",
                "Statut",
                "Dernière connexion",
            ],
            Language::Nl => [
                "Gebruikersnaam",
                "Naam",
                "E-mail",
                "Profiel",
                "Contracten",
                "Master user",
                "Extern",
                "Geldig tot",
                "Status",
                "Laatste aanmelding",
            ],
            Language::En => [
                "Login",
                "Name",
                "E-mail",
                "Profile",
                "Contracts",
                "Master user",
                "External",
                "Valid until",
                "Status",
                "Last login",
            ],
        };
        let today = self.clock.today();
        let build = || -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
            let mut workbook = Workbook::new();
            let sheet = workbook.add_worksheet();
            sheet.set_name("Users")?;
            let bold = Format::new().set_bold();
            let text = Format::new().set_quote_prefix();
            for (col, header) in headers.iter().enumerate() {
                sheet.write_string_with_format(0, col as u16, *header, &bold)?;
            }
            for (row, user) in (1u32..).zip(users.iter().filter(|u| u.status == AccountStatus::Active)) {
                let expired = user.expires_on.is_some_and(|last| today > last);
                let status = if expired { "expired" } else { "active" };
                let last_login = user
                    .last_login_at
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default();
                let cells = [
                    user.login.to_string(),
                    user.name.clone(),
                    user.email.to_string(),
                    user.profile.to_string(),
                    user.scope.to_string(),
                    if user.master { "Y" } else { "N" }.to_string(),
                    if user.external { "Y" } else { "N" }.to_string(),
                    user.expires_on.map(format_date).unwrap_or_default(),
                    status.to_string(),
                    last_login,
                ];
                for (col, value) in cells.iter().enumerate() {
                    sheet.write_string_with_format(row, col as u16, value, &text)?;
                }
            }
            sheet.autofit();
            workbook.save_to_buffer()
        };
        let bytes = build().map_err(|error| {
            tracing::error!(error = %error, "cannot write users.xlsx");
            GatewayError::Conflict(Conflict::UsersFileUnavailable)
        })?;
        Ok(Bytes::from(bytes))
    }
}
