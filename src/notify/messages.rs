//! The gateway's messages, each in its recipient's language. Pure: no I/O.
//!
//! Nothing personal goes into a message that is not meant for that very person: digests
//! carry kinds and counts, upload results the file's name and counts.

use crate::domain::{Language, Login, Niss};

/// A message ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it is about, for `outbox list` (never its content).
    pub purpose: &'static str,
    pub subject: String,
    pub body: String,
}

fn message(purpose: &'static str, subject: &str, body: String) -> Message {
    Message { purpose, subject: subject.to_string(), body }
}

/// To a login whose password logins were suspended after repeated wrong passwords: once,
/// with no address and nothing else of the attempts.
pub fn password_logins_suspended(language: Language, login: &Login, minutes: i64) -> Message {
    match language {
        Language::Fr => message(
            "password-suspended",
            "Extranet Pension Complémentaire : connexions par mot de passe suspendues",
            format!("Bonjour,\n\nTrop de mots de passe erronés ont été essayés pour l'identifiant {login}. Les connexions par mot de passe de cet identifiant sont suspendues pendant {minutes} minutes ; les connexions par clé continuent de fonctionner.\n\nSi ce n'était pas vous, prévenez votre utilisateur principal."),
        ),
        Language::Nl => message(
            "password-suspended",
            "Extranet Aanvullend Pensioen: aanmelden met wachtwoord opgeschort",
            format!("Goedendag,\n\nVoor de gebruikersnaam {login} werden te veel verkeerde wachtwoorden geprobeerd. Aanmelden met een wachtwoord is voor deze gebruikersnaam {minutes} minuten opgeschort; aanmelden met een sleutel blijft werken.\n\nWas u dit niet, verwittig dan uw hoofdgebruiker."),
        ),
        Language::En => message(
            "password-suspended",
            "Supplementary Pension Extranet: password logins suspended",
            format!("Hello,\n\nToo many wrong passwords were tried for the login {login}. Password logins of this login are suspended for {minutes} minutes; key logins keep working.\n\nIf this was not you, tell your master user."),
        ),
    }
}

/// A copy of an audit checkpoint, for the insurer's auditors (in English, as the operators'
/// own texts are): the chain's head, nothing of its events.
pub fn audit_checkpoint(sequence: i64, at: &str, json: &str) -> Message {
    message(
        "audit-checkpoint",
        &format!("Supplementary Pension Extranet: audit checkpoint at event #{sequence}"),
        format!(
            "The audit trail of the gateway reached event #{sequence} at {at}. Keep this message: \
             `pension-gateway audit verify --checkpoint FILE`, with this message saved as FILE, shows \
             whether any event up to this one was later removed or altered.\n\n{json}\n"
        ),
    )
}

/// A user's new credentials, to the user's own address only.
pub fn credentials(language: Language, login: &Login, password: &str) -> Message {
    match language {
        Language::Fr => message(
            "credentials",
            "Extranet Pension Complémentaire : vos codes d'accès",
            format!("Bonjour,\n\nVoici vos codes d'accès personnels à l'Extranet Pension Complémentaire (SFTP).\n\nIdentifiant : {login}\nMot de passe : {password}\n\nNe les communiquez à personne. Ce message est envoyé uniquement à l'adresse indiquée sur votre fiche utilisateur."),
        ),
        Language::Nl => message(
            "credentials",
            "Extranet Aanvullend Pensioen: uw toegangscodes",
            format!("Goedendag,\n\nHier zijn uw persoonlijke toegangscodes voor het Extranet Aanvullend Pensioen (SFTP).\n\nGebruikersnaam: {login}\nWachtwoord: {password}\n\nDeel ze met niemand. Dit bericht wordt enkel verstuurd naar het adres op uw gebruikersfiche."),
        ),
        Language::En => message(
            "credentials",
            "Supplementary Pension Extranet: your credentials",
            format!("Hello,\n\nHere are your personal credentials for the Supplementary Pension Extranet (SFTP).\n\nLogin: {login}\nPassword: {password}\n\nShare them with no one. This message goes only to the address on your user sheet."),
        ),
    }
}

/// Tells a master user (or the organisation) that an external user's access is about to end.
pub fn expiry_reminder(language: Language, external_login: &Login, last_day: &str) -> Message {
    match language {
        Language::Fr => message(
            "expiry-reminder",
            "Extranet Pension Complémentaire : un accès externe arrive à échéance",
            format!("Bonjour,\n\nL'accès de l'utilisateur externe {external_login} prend fin après le {last_day}.\nS'il doit être prolongé, envoyez une nouvelle fiche utilisateur avant cette date ; sinon, aucune action n'est nécessaire."),
        ),
        Language::Nl => message(
            "expiry-reminder",
            "Extranet Aanvullend Pensioen: een externe toegang loopt af",
            format!("Goedendag,\n\nDe toegang van de externe gebruiker {external_login} eindigt na {last_day}.\nMoet hij verlengd worden, stuur dan vóór die datum een nieuwe gebruikersfiche; anders is er niets te doen."),
        ),
        Language::En => message(
            "expiry-reminder",
            "Supplementary Pension Extranet: an external access is ending",
            format!("Hello,\n\nThe access of the external user {external_login} ends after {last_day}.\nTo extend it, send a new user sheet before that date; otherwise nothing needs to be done."),
        ),
    }
}

/// One publishing run's news for an organisation: one line per contract and kind, with counts.
pub fn documents_available(language: Language, lines: &[String]) -> Message {
    let (subject, intro) = match language {
        Language::Fr => (
            "Extranet Pension Complémentaire : nouveaux documents",
            "Bonjour,\n\nDe nouveaux documents sont disponibles sur l'Extranet Pension Complémentaire :",
        ),
        Language::Nl => (
            "Extranet Aanvullend Pensioen: nieuwe documenten",
            "Goedendag,\n\nEr zijn nieuwe documenten beschikbaar op het Extranet Aanvullend Pensioen:",
        ),
        Language::En => (
            "Supplementary Pension Extranet: new documents",
            "Hello,\n\nNew documents are available on the Supplementary Pension Extranet:",
        ),
    };
    message("documents-available", subject, format!("{intro}\n\n{}\n", lines.join("\n")))
}

/// How the processing of an upload ended, for the user who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadResult {
    Accepted,
    Rejected,
    Duplicate,
    /// Could not be processed; the insurer was told.
    Failed,
}

/// The result of an ingested upload, with where its report is.
pub fn upload_processed(
    language: Language,
    upload_path: &str,
    result: UploadResult,
    (rows, errors, warnings): (i64, i64, i64),
    report_path: &str,
    test: bool,
) -> Message {
    let (mut subject, mut verdict, counts, report) = match (language, result) {
        (Language::Fr, UploadResult::Accepted) => {
            ("fichier accepté", "a été accepté et enregistré", "lignes", "Rapport")
        }
        (Language::Fr, UploadResult::Rejected) => {
            ("fichier refusé", "a été refusé : rien n'a été enregistré", "lignes", "Rapport")
        }
        (Language::Fr, UploadResult::Duplicate) => {
            ("fichier déjà reçu", "a déjà été reçu et accepté : rien n'a changé", "lignes", "Rapport")
        }
        (Language::Fr, UploadResult::Failed) => (
            "fichier non traité",
            "n'a pas pu être traité : rien n'a été enregistré. L'assureur en a été informé et assurera le suivi",
            "lignes",
            "Rapport",
        ),
        (Language::Nl, UploadResult::Failed) => (
            "bestand niet verwerkt",
            "kon niet verwerkt worden: er werd niets geregistreerd. De verzekeraar is op de hoogte gebracht en volgt het op",
            "rijen",
            "Verslag",
        ),
        (Language::En, UploadResult::Failed) => (
            "file not processed",
            "could not be processed: nothing was recorded. The insurer has been told and will follow up",
            "rows",
            "Report",
        ),
        (Language::Nl, UploadResult::Accepted) => {
            ("bestand aanvaard", "werd aanvaard en geregistreerd", "rijen", "Verslag")
        }
        (Language::Nl, UploadResult::Rejected) => {
            ("bestand geweigerd", "werd geweigerd: er werd niets geregistreerd", "rijen", "Verslag")
        }
        (Language::Nl, UploadResult::Duplicate) => {
            ("bestand al ontvangen", "werd al ontvangen en aanvaard: er is niets veranderd", "rijen", "Verslag")
        }
        (Language::En, UploadResult::Accepted) => ("file accepted", "was accepted and recorded", "rows", "Report"),
        (Language::En, UploadResult::Rejected) => {
            ("file rejected", "was rejected: nothing was recorded", "rows", "Report")
        }
        (Language::En, UploadResult::Duplicate) => {
            ("file already received", "was already received and accepted: nothing changed", "rows", "Report")
        }
    };
    // A file sent into test/ is only checked: the mail must not read as if it counted.
    if test {
        let passed = result == UploadResult::Accepted;
        (subject, verdict) = match (language, passed) {
            (Language::Fr, true) => (
                "TEST : fichier valide",
                "a passé tous les contrôles. TEST : rien n'a été enregistré ; envoyez-le dans inbox/ pour qu'il compte",
            ),
            (Language::Fr, false) => {
                ("TEST : fichier à corriger", "ne passe pas les contrôles. TEST : rien n'a été enregistré")
            }
            (Language::Nl, true) => (
                "TEST: bestand in orde",
                "doorstond alle controles. TEST: er werd niets geregistreerd; stuur het naar inbox/ opdat het telt",
            ),
            (Language::Nl, false) => {
                ("TEST: bestand te verbeteren", "doorstaat de controles niet. TEST: er werd niets geregistreerd")
            }
            (Language::En, true) => (
                "TEST: file valid",
                "passed every check. TEST: nothing was recorded; send it into inbox/ for it to count",
            ),
            (Language::En, false) => ("TEST: file to correct", "does not pass the checks. TEST: nothing was recorded"),
        };
    }
    let (errors_word, warnings_word) = match language {
        Language::Fr => ("erreurs", "avertissements"),
        Language::Nl => ("fouten", "waarschuwingen"),
        Language::En => ("errors", "warnings"),
    };
    let brand = match language {
        Language::Fr => "Extranet Pension Complémentaire",
        Language::Nl => "Extranet Aanvullend Pensioen",
        Language::En => "Supplementary Pension Extranet",
    };
    message(
        "upload-processed",
        &format!("{brand} : {subject}"),
        format!(
            "{upload_path} {verdict}.\n\n{rows} {counts}, {errors} {errors_word}, {warnings} {warnings_word}.\n{report} : {report_path}\n",
            // A file name often carries a national number: mail is no place for it.
            upload_path = Niss::mask_in_text(upload_path),
            report_path = Niss::mask_in_text(report_path),
        ),
    )
}

/// The first line of the mail telling a master user that a user sheet was applied.
fn sheet_applied_intro(language: Language) -> &'static str {
    use Language::{En, Fr, Nl};
    match language {
        En => "A user sheet of your organisation was applied. Changes:",
        Fr => "Une fiche utilisateur de votre organisation a été appliquée. Changements :",
        Nl => "Een gebruikersfiche van uw organisatie werd toegepast. Wijzigingen:",
    }
}

/// Tells a master user that a user sheet of the organisation was applied.
pub fn sheet_applied(language: Language, changes: &[String]) -> Message {
    let intro = sheet_applied_intro(language);
    message("access-change", "Extranet Pension Complémentaire", format!("{intro}\n\n{}\n", changes.join("\n")))
}

/// Tells a master user that a user sheet was refused, and why.
pub fn sheet_rejected(language: Language, file_name: &str, reason: &str) -> Message {
    let verdict = match language {
        Language::Fr => "a été refusée",
        Language::Nl => "werd geweigerd",
        Language::En => "was rejected",
    };
    let (file_name, reason) = (Niss::mask_in_text(file_name), Niss::mask_in_text(reason));
    message("access-change", "Extranet Pension Complémentaire", format!("{file_name} {verdict}.\n\n{reason}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_lists_kinds_and_counts_in_the_organisations_language() {
        let lines = vec!["GP-1001 invoices: 3".to_string(), "GP-1002 pension-sheets: 120".to_string()];
        let nl = documents_available(Language::Nl, &lines);
        assert!(nl.subject.contains("nieuwe documenten"));
        assert!(nl.body.contains("GP-1002 pension-sheets: 120"));
        assert_eq!(nl.purpose, "documents-available");
        assert!(documents_available(Language::Fr, &lines).body.contains("nouveaux documents"));
    }

    #[test]
    fn an_upload_result_says_what_happened_and_where_the_report_is() {
        let m = upload_processed(
            Language::En,
            "/GP-1001/inbox/affiliations/a.xlsx",
            UploadResult::Rejected,
            (10, 2, 1),
            "/GP-1001/results/a.xlsx.report.xlsx",
            false,
        );
        assert!(m.subject.contains("rejected"));
        assert!(m.body.contains("10 rows, 2 errors, 1 warnings"));
        assert!(m.body.contains("/GP-1001/results/a.xlsx.report.xlsx"));
        let m = upload_processed(
            Language::Fr,
            "/GP-1001/inbox/affiliations/85073003328.xlsx",
            UploadResult::Accepted,
            (1, 0, 0),
            "/GP-1001/results/85073003328.xlsx.report.xlsx",
            false,
        );
        assert!(!m.body.contains("85073003328") && m.body.contains("85.07.30-***.**.xlsx"), "{}", m.body);
        let fr = upload_processed(Language::Fr, "/x", UploadResult::Accepted, (1, 0, 0), "/r", false);
        assert!(fr.body.contains("accepté"));
        let test = upload_processed(Language::Nl, "/x", UploadResult::Accepted, (1, 0, 0), "/r", true);
        assert!(test.subject.contains("TEST") && test.body.contains("niets geregistreerd"), "{}", test.body);
    }
}
