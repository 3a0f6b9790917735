//! Outgoing e-mail, for now through the spool transport: one `.eml` file per message in
//! `notify.spool_dir`, for a mail relay or an operator to pick up. Credentials go to the
//! user's own address only; the files are readable by the gateway's user only.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::{EmailAddress, Language, Login};

#[derive(Debug, thiserror::Error)]
#[error("cannot write a message into the spool folder {path}")]
pub struct SpoolError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Where messages go and who sends them.
#[derive(Debug, Clone)]
pub struct Spool {
    pub dir: PathBuf,
    pub from: EmailAddress,
}

impl Spool {
    /// Writes one message; returns the file it is in.
    pub fn send(&self, to: &EmailAddress, subject: &str, body: &str) -> Result<PathBuf, SpoolError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError { path, source }
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(error(&self.dir))?;
        let now = time::OffsetDateTime::now_utc();
        let id = format!("{}-{:08x}", now.unix_timestamp_nanos() / 1_000_000, rand::random::<u32>());
        let path = self.dir.join(format!("{id}.eml"));
        let date = now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
        let domain = self.from.as_str().split_once('@').map(|(_, d)| d).unwrap_or("localhost");
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
            from = self.from,
            body = body.replace('\n', "\r\n"),
        );
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(error(&path))?;
        file.write_all(message.as_bytes()).map_err(error(&path))?;
        file.sync_all().map_err(error(&path))?;
        Ok(path)
    }

    /// A user's new credentials, in the user's language.
    pub fn send_credentials(
        &self,
        to: &EmailAddress,
        language: Language,
        login: &Login,
        password: &str,
    ) -> Result<PathBuf, SpoolError> {
        let (subject, body) = match language {
            Language::Fr => (
                "Extranet Pension Complémentaire : vos codes d'accès",
                format!("Bonjour,\n\nVoici vos codes d'accès personnels à l'Extranet Pension Complémentaire (SFTP).\n\nIdentifiant : {login}\nMot de passe : {password}\n\nNe les communiquez à personne. Ce message est envoyé uniquement à l'adresse indiquée sur votre fiche utilisateur."),
            ),
            Language::Nl => (
                "Extranet Aanvullend Pensioen: uw toegangscodes",
                format!("Goedendag,\n\nHier zijn uw persoonlijke toegangscodes voor het Extranet Aanvullend Pensioen (SFTP).\n\nGebruikersnaam: {login}\nWachtwoord: {password}\n\nDeel ze met niemand. Dit bericht wordt enkel verstuurd naar het adres op uw gebruikersfiche."),
            ),
            Language::En => (
                "Supplementary Pension Extranet: your credentials",
                format!("Hello,\n\nHere are your personal credentials for the Supplementary Pension Extranet (SFTP).\n\nLogin: {login}\nPassword: {password}\n\nShare them with no one. This message goes only to the address on your user sheet."),
            ),
        };
        self.send(to, subject, &body)
    }
}

impl Spool {
    /// Tells a master user that an external user's access is about to end.
    pub fn send_expiry_reminder(
        &self,
        to: &EmailAddress,
        language: Language,
        external_login: &Login,
        last_day: &str,
    ) -> Result<PathBuf, SpoolError> {
        let (subject, body) = match language {
            Language::Fr => (
                "Extranet Pension Complémentaire : un accès externe arrive à échéance",
                format!("Bonjour,\n\nL'accès de l'utilisateur externe {external_login} prend fin après le {last_day}.\nS'il doit être prolongé, envoyez une nouvelle fiche utilisateur avant cette date ; sinon, aucune action n'est nécessaire."),
            ),
            Language::Nl => (
                "Extranet Aanvullend Pensioen: een externe toegang loopt af",
                format!("Goedendag,\n\nDe toegang van de externe gebruiker {external_login} eindigt na {last_day}.\nMoet hij verlengd worden, stuur dan vóór die datum een nieuwe gebruikersfiche; anders is er niets te doen."),
            ),
            Language::En => (
                "Supplementary Pension Extranet: an external access is ending",
                format!("Hello,\n\nThe access of the external user {external_login} ends after {last_day}.\nTo extend it, send a new user sheet before that date; otherwise nothing needs to be done."),
            ),
        };
        self.send(to, subject, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_mail_is_a_private_file_in_the_users_language() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spool =
            Spool { dir: dir.path().join("outbox"), from: EmailAddress::parse("extranet@insurer.example").unwrap() };
        let to = EmailAddress::parse("jan@employer.be").unwrap();
        let path = spool
            .send_credentials(&to, Language::Nl, &Login::parse("jan.peeters").unwrap(), "s3cret-Passw0rd")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("To: jan@employer.be") && text.contains("Wachtwoord: s3cret-Passw0rd"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
