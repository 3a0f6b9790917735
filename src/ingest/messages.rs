//! The messages of a report, in the uploader's language. Each finding has a stable code; the
//! text names the problem and what to do, and never repeats a national number in full.

use crate::domain::Language;

use super::finding_code::FindingCode;

/// A message template per code and language; `{name}` placeholders are filled from the
/// finding's parameters. Exhaustive: a new code does not build until it is translated.
fn template(code: FindingCode, language: Language) -> &'static str {
    use Language::{En, Fr, Nl};
    match (code, language) {
        (FindingCode::FileUnreadable, En) => "The file cannot be read as {format}: {detail}",
        (FindingCode::FileUnreadable, Fr) => "Le fichier ne peut pas être lu comme {format} : {detail}",
        (FindingCode::FileUnreadable, Nl) => "Het bestand kan niet gelezen worden als {format}: {detail}",
        (FindingCode::FormatNotAllowed, En) => "Files of type .{extension} are not accepted here; send one of: {allowed}",
        (FindingCode::FormatNotAllowed, Fr) => "Les fichiers .{extension} ne sont pas acceptés ici ; envoyez l'un de : {allowed}",
        (FindingCode::FormatNotAllowed, Nl) => "Bestanden van het type .{extension} worden hier niet aanvaard; stuur een van: {allowed}",
        (FindingCode::FileTooLarge, En) => "The file is larger than the limit of {limit}",
        (FindingCode::FileTooLarge, Fr) => "Le fichier dépasse la limite de {limit}",
        (FindingCode::FileTooLarge, Nl) => "Het bestand is groter dan de limiet van {limit}",
        (FindingCode::ArchiveSuspicious, En) => "The spreadsheet is refused before reading: {detail}",
        (FindingCode::ArchiveSuspicious, Fr) => "Le tableur est refusé avant lecture : {detail}",
        (FindingCode::ArchiveSuspicious, Nl) => "Het rekenblad wordt geweigerd vóór het lezen: {detail}",
        (FindingCode::TooManyRows, En) => "The file has more than {limit} rows; split it into smaller files",
        (FindingCode::TooManyRows, Fr) => "Le fichier compte plus de {limit} lignes ; divisez-le en fichiers plus petits",
        (FindingCode::TooManyRows, Nl) => "Het bestand telt meer dan {limit} rijen; splits het in kleinere bestanden",
        (FindingCode::ParseTimeout, En) => "The file could not be read within the limits: reading it takes longer than {limit} seconds",
        (FindingCode::ParseTimeout, Fr) => "Le fichier n'a pas pu être lu dans les limites : sa lecture prend plus de {limit} secondes",
        (FindingCode::ParseTimeout, Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen duurt langer dan {limit} seconden",
        (FindingCode::ReaderMemory, En) => "The file could not be read within the limits: reading it needs more than {limit} MiB of memory",
        (FindingCode::ReaderMemory, Fr) => "Le fichier n'a pas pu être lu dans les limites : sa lecture demande plus de {limit} Mio de mémoire",
        (FindingCode::ReaderMemory, Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen vraagt meer dan {limit} MiB geheugen",
        (FindingCode::ReaderAnswer, En) => "The file could not be read within the limits: it holds more than {limit} MiB of cells",
        (FindingCode::ReaderAnswer, Fr) => "Le fichier n'a pas pu être lu dans les limites : il contient plus de {limit} Mio de cellules",
        (FindingCode::ReaderAnswer, Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het bevat meer dan {limit} MiB aan cellen",
        (FindingCode::ReaderStopped, En) => "The file could not be read within the limits: the reader stopped ({detail})",
        (FindingCode::ReaderStopped, Fr) => "Le fichier n'a pas pu être lu dans les limites : la lecture s'est arrêtée ({detail})",
        (FindingCode::ReaderStopped, Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen stopte ({detail})",
        (FindingCode::CellTooLong, En) => "The cell holds {characters} characters; a cell may hold at most {limit}",
        (FindingCode::CellTooLong, Fr) => "La cellule contient {characters} caractères ; une cellule en contient au plus {limit}",
        (FindingCode::CellTooLong, Nl) => "De cel bevat {characters} tekens; een cel bevat er hoogstens {limit}",
        (FindingCode::ProcessingFailed, En) => "The file could not be processed after {attempts} attempts; the insurer has been told and will follow up",
        (FindingCode::ProcessingFailed, Fr) => "Le fichier n'a pas pu être traité après {attempts} tentatives ; l'assureur en a été informé et assurera le suivi",
        (FindingCode::ProcessingFailed, Nl) => "Het bestand kon na {attempts} pogingen niet verwerkt worden; de verzekeraar is op de hoogte gebracht en volgt het op",
        (FindingCode::EmptyFile, En) => "The file holds no data rows",
        (FindingCode::EmptyFile, Fr) => "Le fichier ne contient aucune ligne de données",
        (FindingCode::EmptyFile, Nl) => "Het bestand bevat geen gegevensrijen",
        (FindingCode::HeaderNotFound, En) => "No header row was found: the first rows name none of the expected columns ({expected})",
        (FindingCode::HeaderNotFound, Fr) => "Aucune ligne d'en-tête trouvée : les premières lignes ne nomment aucune des colonnes attendues ({expected})",
        (FindingCode::HeaderNotFound, Nl) => "Geen kopregel gevonden: de eerste rijen noemen geen van de verwachte kolommen ({expected})",
        (FindingCode::MissingColumn, En) => "The column {column} is missing (accepted headers: {headers})",
        (FindingCode::MissingColumn, Fr) => "La colonne {column} est absente (en-têtes acceptés : {headers})",
        (FindingCode::MissingColumn, Nl) => "De kolom {column} ontbreekt (aanvaarde koppen: {headers})",
        (FindingCode::UnknownColumn, En) => "The column \"{header}\" is not part of this file type and is ignored",
        (FindingCode::UnknownColumn, Fr) => "La colonne « {header} » ne fait pas partie de ce type de fichier et est ignorée",
        (FindingCode::UnknownColumn, Nl) => "De kolom \"{header}\" hoort niet bij dit bestandstype en wordt genegeerd",
        (FindingCode::AmbiguousColumn, En) => "The header \"{header}\" could name more than one column ({columns}): rename it after one of them",
        (FindingCode::AmbiguousColumn, Fr) => "L'en-tête « {header} » peut désigner plusieurs colonnes ({columns}) : renommez-le d'après l'une d'elles",
        (FindingCode::AmbiguousColumn, Nl) => "De kop \"{header}\" kan meer dan één kolom aanduiden ({columns}): hernoem hem naar een ervan",
        (FindingCode::DuplicateColumn, En) => "The column {column} appears twice: \"{first}\" and \"{second}\"; keep one",
        (FindingCode::DuplicateColumn, Fr) => "La colonne {column} apparaît deux fois : « {first} » et « {second} » ; gardez-en une",
        (FindingCode::DuplicateColumn, Nl) => "De kolom {column} komt twee keer voor: \"{first}\" en \"{second}\"; behoud er één",
        (FindingCode::OtherKind, En) => "This file looks like a file of the kind {kind}: send it into {folder}",
        (FindingCode::OtherKind, Fr) => "Ce fichier ressemble à un fichier du type {kind} : envoyez-le dans {folder}",
        (FindingCode::OtherKind, Nl) => "Dit bestand lijkt op een bestand van het type {kind}: stuur het naar {folder}",
        (FindingCode::ExampleRow, En) => "The example row of the template is ignored: you may delete it",
        (FindingCode::ExampleRow, Fr) => "La ligne d'exemple du modèle est ignorée : vous pouvez la supprimer",
        (FindingCode::ExampleRow, Nl) => "De voorbeeldrij van het sjabloon wordt genegeerd: u mag ze verwijderen",
        (FindingCode::Required, En) => "A value is required",
        (FindingCode::Required, Fr) => "Une valeur est obligatoire",
        (FindingCode::Required, Nl) => "Een waarde is verplicht",
        (FindingCode::InvalidValue, En) => "Invalid value: {detail}",
        (FindingCode::InvalidValue, Fr) => "Valeur invalide : {detail}",
        (FindingCode::InvalidValue, Nl) => "Ongeldige waarde: {detail}",
        (FindingCode::InvalidDate, En) => "Not a date: write DD/MM/YYYY or YYYY-MM-DD, or use a date cell",
        (FindingCode::InvalidDate, Fr) => "Pas une date : écrivez JJ/MM/AAAA ou AAAA-MM-JJ, ou utilisez une cellule date",
        (FindingCode::InvalidDate, Nl) => "Geen datum: schrijf DD/MM/JJJJ of JJJJ-MM-DD, of gebruik een datumcel",
        (FindingCode::InvalidAmount, En) => "Not an amount in EUR with at most 2 decimals",
        (FindingCode::InvalidAmount, Fr) => "Pas un montant en EUR avec au plus 2 décimales",
        (FindingCode::InvalidAmount, Nl) => "Geen bedrag in EUR met hoogstens 2 decimalen",
        (FindingCode::InvalidRate, En) => "Not a rate: write a decimal between 0 and 1 or a percentage such as 80%",
        (FindingCode::InvalidRate, Fr) => "Pas un taux : écrivez un décimal entre 0 et 1 ou un pourcentage comme 80%",
        (FindingCode::InvalidRate, Nl) => "Geen breuk: schrijf een decimaal tussen 0 en 1 of een percentage zoals 80%",
        (FindingCode::InvalidChoice, En) => "\"{value}\" is not one of: {allowed}",
        (FindingCode::InvalidChoice, Fr) => "« {value} » ne fait pas partie de : {allowed}",
        (FindingCode::InvalidChoice, Nl) => "\"{value}\" is niet een van: {allowed}",
        (FindingCode::TooLong, En) => "Longer than {limit} characters",
        (FindingCode::TooLong, Fr) => "Plus long que {limit} caractères",
        (FindingCode::TooLong, Nl) => "Langer dan {limit} tekens",
        (FindingCode::OutOfRange, En) => "The value must be {range}",
        (FindingCode::OutOfRange, Fr) => "La valeur doit être {range}",
        (FindingCode::OutOfRange, Nl) => "De waarde moet {range} zijn",
        (FindingCode::ContractMismatch, En) => "The contract {value} is not the contract of this folder ({expected})",
        (FindingCode::ContractMismatch, Fr) => "Le contrat {value} n'est pas celui de ce dossier ({expected})",
        (FindingCode::ContractMismatch, Nl) => "Het contract {value} is niet dat van deze map ({expected})",
        (FindingCode::EmployerMismatch, En) => "The enterprise number {value} is not the one of the contract's employer",
        (FindingCode::EmployerMismatch, Fr) => "Le numéro d'entreprise {value} n'est pas celui de l'employeur du contrat",
        (FindingCode::EmployerMismatch, Nl) => "Het ondernemingsnummer {value} is niet dat van de werkgever van het contract",
        (FindingCode::DuplicateInFile, En) => "The national number {niss} already appears on row {other_row}",
        (FindingCode::DuplicateInFile, Fr) => "Le numéro national {niss} figure déjà à la ligne {other_row}",
        (FindingCode::DuplicateInFile, Nl) => "Het rijksregisternummer {niss} staat al op rij {other_row}",
        (FindingCode::AlreadyAffiliated, En) => "{niss} is already an active affiliate of this contract",
        (FindingCode::AlreadyAffiliated, Fr) => "{niss} est déjà affilié actif de ce contrat",
        (FindingCode::AlreadyAffiliated, Nl) => "{niss} is al een actieve aangeslotene van dit contract",
        (FindingCode::NotAffiliated, En) => "{niss} is not an active affiliate of this contract",
        (FindingCode::NotAffiliated, Fr) => "{niss} n'est pas un affilié actif de ce contrat",
        (FindingCode::NotAffiliated, Nl) => "{niss} is geen actieve aangeslotene van dit contract",
        (FindingCode::BirthDateMismatch, En) => "The birth date does not match the national number {niss}",
        (FindingCode::BirthDateMismatch, Fr) => "La date de naissance ne correspond pas au numéro national {niss}",
        (FindingCode::BirthDateMismatch, Nl) => "De geboortedatum stemt niet overeen met het rijksregisternummer {niss}",
        (FindingCode::BisNumber, En) => "{niss} is a BIS number: the birth date could not be checked",
        (FindingCode::BisNumber, Fr) => "{niss} est un numéro BIS : la date de naissance n'a pas pu être vérifiée",
        (FindingCode::BisNumber, Nl) => "{niss} is een BIS-nummer: de geboortedatum kon niet gecontroleerd worden",
        (FindingCode::DateBefore, En) => "The date is before {other} ({other_value})",
        (FindingCode::DateBefore, Fr) => "La date est antérieure à {other} ({other_value})",
        (FindingCode::DateBefore, Nl) => "De datum ligt vóór {other} ({other_value})",
        (FindingCode::ExitBeforeAffiliation, En) => "The exit date is before the affiliation date ({other_value})",
        (FindingCode::ExitBeforeAffiliation, Fr) => "La date de sortie est antérieure à la date d'affiliation ({other_value})",
        (FindingCode::ExitBeforeAffiliation, Nl) => "De uittredingsdatum ligt vóór de aansluitingsdatum ({other_value})",
        (FindingCode::LateDeclaration, En) => "The date is more than {days} days in the past: the legal deadline is {days} days",
        (FindingCode::LateDeclaration, Fr) => "La date remonte à plus de {days} jours : le délai légal est de {days} jours",
        (FindingCode::LateDeclaration, Nl) => "De datum ligt meer dan {days} dagen in het verleden: de wettelijke termijn is {days} dagen",
        (FindingCode::UnknownCategory, En) => "The category {value} does not exist for this contract (known: {allowed})",
        (FindingCode::UnknownCategory, Fr) => "La catégorie {value} n'existe pas pour ce contrat (connues : {allowed})",
        (FindingCode::UnknownCategory, Nl) => "De categorie {value} bestaat niet voor dit contract (gekend: {allowed})",
        (FindingCode::NameMismatch, En) => "The name differs from the registry ({expected})",
        (FindingCode::NameMismatch, Fr) => "Le nom diffère de celui du registre ({expected})",
        (FindingCode::NameMismatch, Nl) => "De naam verschilt van die in het register ({expected})",
        (FindingCode::RequiredWhen, En) => "A value is required when {other} is {other_value}",
        (FindingCode::RequiredWhen, Fr) => "Une valeur est obligatoire lorsque {other} vaut {other_value}",
        (FindingCode::RequiredWhen, Nl) => "Een waarde is verplicht wanneer {other} {other_value} is",
        (FindingCode::LoginTaken, En) => "The login {value} is already used: choose another one",
        (FindingCode::LoginTaken, Fr) => "L'identifiant {value} est déjà utilisé : choisissez-en un autre",
        (FindingCode::LoginTaken, Nl) => "De gebruikersnaam {value} is al in gebruik: kies een andere",
        (FindingCode::UnknownUser, En) => "{value} is not an active user of this organisation",
        (FindingCode::UnknownUser, Fr) => "{value} n'est pas un utilisateur actif de cette organisation",
        (FindingCode::UnknownUser, Nl) => "{value} is geen actieve gebruiker van deze organisatie",
        (FindingCode::DuplicateLogin, En) => "The login {value} already appears on row {other_row}",
        (FindingCode::DuplicateLogin, Fr) => "L'identifiant {value} figure déjà à la ligne {other_row}",
        (FindingCode::DuplicateLogin, Nl) => "De gebruikersnaam {value} staat al op rij {other_row}",
        (FindingCode::ContractNotOfOrganisation, En) => "The contract {value} does not belong to this organisation",
        (FindingCode::ContractNotOfOrganisation, Fr) => "Le contrat {value} n'appartient pas à cette organisation",
        (FindingCode::ContractNotOfOrganisation, Nl) => "Het contract {value} hoort niet bij deze organisatie",
        (FindingCode::LastMaster, En) => "{value} is the last master user: name another master user first",
        (FindingCode::LastMaster, Fr) => "{value} est le dernier master user : désignez d'abord un autre master user",
        (FindingCode::LastMaster, Nl) => "{value} is de laatste master user: duid eerst een andere master user aan",
        (FindingCode::TemplateRequired, En) => "This is not a template sent by the insurer: fill in the annual-adjustment file published in documents/annual-adjustment/",
        (FindingCode::TemplateRequired, Fr) => "Ce fichier n'est pas un modèle envoyé par l'assureur : complétez le fichier d'adaptation annuelle publié dans documents/annual-adjustment/",
        (FindingCode::TemplateRequired, Nl) => "Dit is geen sjabloon van de verzekeraar: vul het bestand voor de jaarlijkse aanpassing in uit documents/annual-adjustment/",
        (FindingCode::TemplateUnknown, En) => "The template of this file is unknown for this contract",
        (FindingCode::TemplateUnknown, Fr) => "Le modèle de ce fichier est inconnu pour ce contrat",
        (FindingCode::TemplateUnknown, Nl) => "Het sjabloon van dit bestand is onbekend voor dit contract",
        (FindingCode::RowMissing, En) => "The row of affiliate {value} was removed: send back every row of the template",
        (FindingCode::RowMissing, Fr) => "La ligne de l'affilié {value} a été supprimée : renvoyez toutes les lignes du modèle",
        (FindingCode::RowMissing, Nl) => "De rij van aangeslotene {value} werd verwijderd: stuur alle rijen van het sjabloon terug",
        (FindingCode::RowUnknown, En) => "This row is not part of the template",
        (FindingCode::RowUnknown, Fr) => "Cette ligne ne fait pas partie du modèle",
        (FindingCode::RowUnknown, Nl) => "Deze rij hoort niet bij het sjabloon",
        (FindingCode::LockedChanged, En) => "A pre-filled (locked) cell of this row was changed",
        (FindingCode::LockedChanged, Fr) => "Une cellule pré-remplie (verrouillée) de cette ligne a été modifiée",
        (FindingCode::LockedChanged, Nl) => "Een vooraf ingevulde (vergrendelde) cel van deze rij werd gewijzigd",
        (FindingCode::DeclareExit, En) => "No longer employed: declare the exit with an exits file",
        (FindingCode::DeclareExit, Fr) => "Plus en service : déclarez la sortie avec un fichier de sorties",
        (FindingCode::DeclareExit, Nl) => "Niet meer in dienst: meld de uittreding met een uittredingsbestand",
        (FindingCode::SalaryLower, En) => "The new salary is lower than before ({expected})",
        (FindingCode::SalaryLower, Fr) => "Le nouveau salaire est inférieur au précédent ({expected})",
        (FindingCode::SalaryLower, Nl) => "Het nieuwe loon is lager dan voordien ({expected})",
        (FindingCode::SalaryIncreaseHigh, En) => "The new salary is more than {percent}% above the previous one ({expected})",
        (FindingCode::SalaryIncreaseHigh, Fr) => "Le nouveau salaire dépasse le précédent de plus de {percent}% ({expected})",
        (FindingCode::SalaryIncreaseHigh, Nl) => "Het nieuwe loon ligt meer dan {percent}% boven het vorige ({expected})",
        (FindingCode::RateChanged, En) => "The occupation rate changed ({expected}): it should have been declared as an event",
        (FindingCode::RateChanged, Fr) => "Le taux d'occupation a changé ({expected}) : cela aurait dû être déclaré comme événement",
        (FindingCode::RateChanged, Nl) => "De tewerkstellingsbreuk veranderde ({expected}): dit had als gebeurtenis gemeld moeten worden",
    }
}

/// Texts that say more than their code's, chosen by a parameter of the finding: the
/// proposed header of a missing column, the shape a value should have.
fn variant_template(name: &str, language: Language) -> Option<&'static str> {
    use Language::{En, Fr, Nl};
    Some(match (name, language) {
        ("missing-column-suggested", En) => "The column {column} is missing: did you mean \"{suggestion}\" for {column}? (accepted headers: {headers})",
        ("missing-column-suggested", Fr) => "La colonne {column} est absente : vouliez-vous dire « {suggestion} » pour {column} ? (en-têtes acceptés : {headers})",
        ("missing-column-suggested", Nl) => "De kolom {column} ontbreekt: bedoelde u \"{suggestion}\" voor {column}? (aanvaarde koppen: {headers})",
        ("invalid-value-niss", En) => "Not a valid national register number: 11 digits (dots and dashes allowed) whose last two check the first nine; check it against the identity card",
        ("invalid-value-niss", Fr) => "Pas un numéro de registre national valable : 11 chiffres (points et tirets permis) dont les deux derniers contrôlent les neuf premiers ; vérifiez-le sur la carte d'identité",
        ("invalid-value-niss", Nl) => "Geen geldig rijksregisternummer: 11 cijfers (punten en streepjes mogen) waarvan de laatste twee de eerste negen controleren; kijk het na op de identiteitskaart",
        ("invalid-value-enterprise", En) => "Not a valid enterprise number: 10 digits starting with 0 or 1 (BE 0403.019.261), with valid check digits",
        ("invalid-value-enterprise", Fr) => "Pas un numéro d'entreprise valable : 10 chiffres commençant par 0 ou 1 (BE 0403.019.261), chiffres de contrôle corrects",
        ("invalid-value-enterprise", Nl) => "Geen geldig ondernemingsnummer: 10 cijfers die met 0 of 1 beginnen (BE 0403.019.261), met juiste controlecijfers",
        ("invalid-value-contract", En) => "Not a contract number such as GP-1001",
        ("invalid-value-contract", Fr) => "Pas un numéro de contrat comme GP-1001",
        ("invalid-value-contract", Nl) => "Geen contractnummer zoals GP-1001",
        ("invalid-value-login", En) => "Not a valid login: 2 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit",
        ("invalid-value-login", Fr) => "Pas un identifiant valable : 2 à 64 lettres, chiffres, '.', '-' ou '_', commençant par une lettre ou un chiffre",
        ("invalid-value-login", Nl) => "Geen geldige gebruikersnaam: 2 tot 64 letters, cijfers, '.', '-' of '_', beginnend met een letter of cijfer",
        ("invalid-value-email", En) => "Not an e-mail address",
        ("invalid-value-email", Fr) => "Pas une adresse e-mail",
        ("invalid-value-email", Nl) => "Geen e-mailadres",
        ("invalid-value-contracts", En) => "Give ALL or contract numbers separated by ; or , (GP-1001;GP-1002)",
        ("invalid-value-contracts", Fr) => "Indiquez ALL ou des numéros de contrat séparés par ; ou , (GP-1001;GP-1002)",
        ("invalid-value-contracts", Nl) => "Geef ALL of contractnummers gescheiden door ; of , (GP-1001;GP-1002)",
        ("invalid-value-public-key", En) => "Not an OpenSSH public key line (ssh-ed25519 AAAA… comment)",
        ("invalid-value-public-key", Fr) => "Pas une ligne de clé publique OpenSSH (ssh-ed25519 AAAA… commentaire)",
        ("invalid-value-public-key", Nl) => "Geen OpenSSH-publieke-sleutelregel (ssh-ed25519 AAAA… commentaar)",
        _ => return None,
    })
}

/// Parameters that name columns by their key (alone, or a list joined by ", ").
const COLUMN_PARAMS: [&str; 4] = ["column", "other", "columns", "expected"];

/// The message of `code` in `language`, the columns it names called by their header in that
/// language (`header_of(key)`) rather than by their key.
pub fn render_with_headers(
    code: FindingCode,
    language: Language,
    params: &[(&'static str, String)],
    header_of: &dyn Fn(&str) -> Option<String>,
) -> String {
    let named: Vec<(&'static str, String)> = params
        .iter()
        .map(|(name, value)| {
            if !COLUMN_PARAMS.contains(name) {
                return (*name, value.clone());
            }
            let shown: Vec<String> =
                value.split(", ").map(|part| header_of(part).unwrap_or_else(|| part.to_string())).collect();
            (*name, shown.join(", "))
        })
        .collect();
    render(code, language, &named)
}

/// The message of `code` in `language`, with its parameters filled in.
pub fn render(code: FindingCode, language: Language, params: &[(&'static str, String)]) -> String {
    let param = |wanted: &str| params.iter().find(|(name, _)| *name == wanted).map(|(_, value)| value.as_str());
    let variant = match (code, param("suggestion"), param("shape")) {
        (FindingCode::MissingColumn, Some(_), _) => variant_template("missing-column-suggested", language),
        (FindingCode::InvalidValue, _, Some(shape)) => variant_template(&format!("invalid-value-{shape}"), language),
        _ => None,
    };
    let mut text = variant.unwrap_or_else(|| template(code, language)).to_string();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_exist_in_three_languages_with_their_parameters() {
        let params = [("niss", "85.07.30-***.**".to_string()), ("other_row", "7".to_string())];
        assert_eq!(
            render(FindingCode::DuplicateInFile, Language::En, &params),
            "The national number 85.07.30-***.** already appears on row 7"
        );
        assert!(render(FindingCode::DuplicateInFile, Language::Fr, &params).contains("ligne 7"));
        assert!(render(FindingCode::DuplicateInFile, Language::Nl, &params).contains("rij 7"));
    }

    #[test]
    fn every_code_speaks_three_languages() {
        for code in FindingCode::ALL {
            let texts: Vec<&str> = [Language::Fr, Language::Nl, Language::En].map(|l| template(code, l)).to_vec();
            assert!(texts.iter().all(|t| !t.is_empty()), "{code}");
            assert!(texts[0] != texts[1] || code == FindingCode::BisNumber, "{code}: French and Dutch differ");
        }
    }

    #[test]
    fn columns_are_named_by_their_header_in_the_language() {
        let schemas = crate::ingest::schema::Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let header_of = |key: &str| schema.header_in(key, Language::Nl);
        let params = [("column", "hire_date".to_string()), ("headers", "hire_date / Date d'entrée".to_string())];
        let nl = render_with_headers(FindingCode::MissingColumn, Language::Nl, &params, &header_of);
        assert!(nl.starts_with("De kolom Datum in dienst ontbreekt"), "{nl}");
        let params = [("expected", "niss, last_name".to_string())];
        let fr = render_with_headers(FindingCode::HeaderNotFound, Language::Fr, &params, &|k| {
            schema.header_in(k, Language::Fr)
        });
        assert!(fr.contains("(NISS, Nom)"), "{fr}");
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_explained_in_the_language_without_english_details() {
        let params = [("detail", "check digits do not match: verify the number".to_string()), ("shape", "niss".into())];
        let fr = render(FindingCode::InvalidValue, Language::Fr, &params);
        assert!(fr.starts_with("Pas un numéro de registre national valable") && !fr.contains("check digits"), "{fr}");
        assert!(render(FindingCode::InvalidValue, Language::Nl, &params).contains("rijksregisternummer"));
        // Without a shape the detail is shown as it is.
        assert!(render(FindingCode::InvalidValue, Language::En, &params[..1]).contains("check digits"));
    }
}
