//! The messages of a report, in the uploader's language. Each finding has a stable code; the
//! text names the problem and what to do, and never repeats a national number in full.

use crate::domain::Language;

/// A message template per code and language; `{name}` placeholders are filled from the
/// finding's parameters.
fn template(code: &str, language: Language) -> &'static str {
    use Language::{En, Fr, Nl};
    match (code, language) {
        ("file-unreadable", En) => "The file cannot be read as {format}: {detail}",
        ("file-unreadable", Fr) => "Le fichier ne peut pas être lu comme {format} : {detail}",
        ("file-unreadable", Nl) => "Het bestand kan niet gelezen worden als {format}: {detail}",
        ("format-not-allowed", En) => "Files of type .{extension} are not accepted here; send one of: {allowed}",
        ("format-not-allowed", Fr) => "Les fichiers .{extension} ne sont pas acceptés ici ; envoyez l'un de : {allowed}",
        ("format-not-allowed", Nl) => "Bestanden van het type .{extension} worden hier niet aanvaard; stuur een van: {allowed}",
        ("file-too-large", En) => "The file is larger than the limit of {limit}",
        ("file-too-large", Fr) => "Le fichier dépasse la limite de {limit}",
        ("file-too-large", Nl) => "Het bestand is groter dan de limiet van {limit}",
        ("archive-suspicious", En) => "The spreadsheet is refused before reading: {detail}",
        ("archive-suspicious", Fr) => "Le tableur est refusé avant lecture : {detail}",
        ("archive-suspicious", Nl) => "Het rekenblad wordt geweigerd vóór het lezen: {detail}",
        ("too-many-rows", En) => "The file has more than {limit} rows; split it into smaller files",
        ("too-many-rows", Fr) => "Le fichier compte plus de {limit} lignes ; divisez-le en fichiers plus petits",
        ("too-many-rows", Nl) => "Het bestand telt meer dan {limit} rijen; splits het in kleinere bestanden",
        ("parse-timeout", En) => "The file could not be read within the limits: reading it takes longer than {limit} seconds",
        ("parse-timeout", Fr) => "Le fichier n'a pas pu être lu dans les limites : sa lecture prend plus de {limit} secondes",
        ("parse-timeout", Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen duurt langer dan {limit} seconden",
        ("reader-memory", En) => "The file could not be read within the limits: reading it needs more than {limit} MiB of memory",
        ("reader-memory", Fr) => "Le fichier n'a pas pu être lu dans les limites : sa lecture demande plus de {limit} Mio de mémoire",
        ("reader-memory", Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen vraagt meer dan {limit} MiB geheugen",
        ("reader-answer", En) => "The file could not be read within the limits: it holds more than {limit} MiB of cells",
        ("reader-answer", Fr) => "Le fichier n'a pas pu être lu dans les limites : il contient plus de {limit} Mio de cellules",
        ("reader-answer", Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het bevat meer dan {limit} MiB aan cellen",
        ("reader-stopped", En) => "The file could not be read within the limits: the reader stopped ({detail})",
        ("reader-stopped", Fr) => "Le fichier n'a pas pu être lu dans les limites : la lecture s'est arrêtée ({detail})",
        ("reader-stopped", Nl) => "Het bestand kon niet binnen de limieten gelezen worden: het lezen stopte ({detail})",
        ("cell-too-long", En) => "The cell holds {characters} characters; a cell may hold at most {limit}",
        ("cell-too-long", Fr) => "La cellule contient {characters} caractères ; une cellule en contient au plus {limit}",
        ("cell-too-long", Nl) => "De cel bevat {characters} tekens; een cel bevat er hoogstens {limit}",
        ("processing-failed", En) => "The file could not be processed after {attempts} attempts; the insurer has been told and will follow up",
        ("processing-failed", Fr) => "Le fichier n'a pas pu être traité après {attempts} tentatives ; l'assureur en a été informé et assurera le suivi",
        ("processing-failed", Nl) => "Het bestand kon na {attempts} pogingen niet verwerkt worden; de verzekeraar is op de hoogte gebracht en volgt het op",
        ("empty-file", En) => "The file holds no data rows",
        ("empty-file", Fr) => "Le fichier ne contient aucune ligne de données",
        ("empty-file", Nl) => "Het bestand bevat geen gegevensrijen",
        ("header-not-found", En) => "No header row was found: the first rows name none of the expected columns ({expected})",
        ("header-not-found", Fr) => "Aucune ligne d'en-tête trouvée : les premières lignes ne nomment aucune des colonnes attendues ({expected})",
        ("header-not-found", Nl) => "Geen kopregel gevonden: de eerste rijen noemen geen van de verwachte kolommen ({expected})",
        ("missing-column", En) => "The column {column} is missing (accepted headers: {headers})",
        ("missing-column", Fr) => "La colonne {column} est absente (en-têtes acceptés : {headers})",
        ("missing-column", Nl) => "De kolom {column} ontbreekt (aanvaarde koppen: {headers})",
        ("unknown-column", En) => "The column \"{header}\" is not part of this file type and is ignored",
        ("unknown-column", Fr) => "La colonne « {header} » ne fait pas partie de ce type de fichier et est ignorée",
        ("unknown-column", Nl) => "De kolom \"{header}\" hoort niet bij dit bestandstype en wordt genegeerd",
        ("missing-column-suggested", En) => "The column {column} is missing: did you mean \"{suggestion}\" for {column}? (accepted headers: {headers})",
        ("missing-column-suggested", Fr) => "La colonne {column} est absente : vouliez-vous dire « {suggestion} » pour {column} ? (en-têtes acceptés : {headers})",
        ("missing-column-suggested", Nl) => "De kolom {column} ontbreekt: bedoelde u \"{suggestion}\" voor {column}? (aanvaarde koppen: {headers})",
        ("ambiguous-column", En) => "The header \"{header}\" could name more than one column ({columns}): rename it after one of them",
        ("ambiguous-column", Fr) => "L'en-tête « {header} » peut désigner plusieurs colonnes ({columns}) : renommez-le d'après l'une d'elles",
        ("ambiguous-column", Nl) => "De kop \"{header}\" kan meer dan één kolom aanduiden ({columns}): hernoem hem naar een ervan",
        ("duplicate-column", En) => "The column {column} appears twice: \"{first}\" and \"{second}\"; keep one",
        ("duplicate-column", Fr) => "La colonne {column} apparaît deux fois : « {first} » et « {second} » ; gardez-en une",
        ("duplicate-column", Nl) => "De kolom {column} komt twee keer voor: \"{first}\" en \"{second}\"; behoud er één",
        ("other-kind", En) => "This file looks like a file of the kind {kind}: send it into {folder}",
        ("other-kind", Fr) => "Ce fichier ressemble à un fichier du type {kind} : envoyez-le dans {folder}",
        ("other-kind", Nl) => "Dit bestand lijkt op een bestand van het type {kind}: stuur het naar {folder}",
        ("example-row", En) => "The example row of the template is ignored: you may delete it",
        ("example-row", Fr) => "La ligne d'exemple du modèle est ignorée : vous pouvez la supprimer",
        ("example-row", Nl) => "De voorbeeldrij van het sjabloon wordt genegeerd: u mag ze verwijderen",
        ("required", En) => "A value is required",
        ("required", Fr) => "Une valeur est obligatoire",
        ("required", Nl) => "Een waarde is verplicht",
        ("invalid-value", En) => "Invalid value: {detail}",
        ("invalid-value", Fr) => "Valeur invalide : {detail}",
        ("invalid-value", Nl) => "Ongeldige waarde: {detail}",
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
        ("invalid-date", En) => "Not a date: write DD/MM/YYYY or YYYY-MM-DD, or use a date cell",
        ("invalid-date", Fr) => "Pas une date : écrivez JJ/MM/AAAA ou AAAA-MM-JJ, ou utilisez une cellule date",
        ("invalid-date", Nl) => "Geen datum: schrijf DD/MM/JJJJ of JJJJ-MM-DD, of gebruik een datumcel",
        ("invalid-amount", En) => "Not an amount in EUR with at most 2 decimals",
        ("invalid-amount", Fr) => "Pas un montant en EUR avec au plus 2 décimales",
        ("invalid-amount", Nl) => "Geen bedrag in EUR met hoogstens 2 decimalen",
        ("invalid-rate", En) => "Not a rate: write a decimal between 0 and 1 or a percentage such as 80%",
        ("invalid-rate", Fr) => "Pas un taux : écrivez un décimal entre 0 et 1 ou un pourcentage comme 80%",
        ("invalid-rate", Nl) => "Geen breuk: schrijf een decimaal tussen 0 en 1 of een percentage zoals 80%",
        ("invalid-choice", En) => "\"{value}\" is not one of: {allowed}",
        ("invalid-choice", Fr) => "« {value} » ne fait pas partie de : {allowed}",
        ("invalid-choice", Nl) => "\"{value}\" is niet een van: {allowed}",
        ("too-long", En) => "Longer than {limit} characters",
        ("too-long", Fr) => "Plus long que {limit} caractères",
        ("too-long", Nl) => "Langer dan {limit} tekens",
        ("out-of-range", En) => "The value must be {range}",
        ("out-of-range", Fr) => "La valeur doit être {range}",
        ("out-of-range", Nl) => "De waarde moet {range} zijn",
        ("contract-mismatch", En) => "The contract {value} is not the contract of this folder ({expected})",
        ("contract-mismatch", Fr) => "Le contrat {value} n'est pas celui de ce dossier ({expected})",
        ("contract-mismatch", Nl) => "Het contract {value} is niet dat van deze map ({expected})",
        ("employer-mismatch", En) => "The enterprise number {value} is not the one of the contract's employer",
        ("employer-mismatch", Fr) => "Le numéro d'entreprise {value} n'est pas celui de l'employeur du contrat",
        ("employer-mismatch", Nl) => "Het ondernemingsnummer {value} is niet dat van de werkgever van het contract",
        ("duplicate-in-file", En) => "The national number {niss} already appears on row {other_row}",
        ("duplicate-in-file", Fr) => "Le numéro national {niss} figure déjà à la ligne {other_row}",
        ("duplicate-in-file", Nl) => "Het rijksregisternummer {niss} staat al op rij {other_row}",
        ("already-affiliated", En) => "{niss} is already an active affiliate of this contract",
        ("already-affiliated", Fr) => "{niss} est déjà affilié actif de ce contrat",
        ("already-affiliated", Nl) => "{niss} is al een actieve aangeslotene van dit contract",
        ("not-affiliated", En) => "{niss} is not an active affiliate of this contract",
        ("not-affiliated", Fr) => "{niss} n'est pas un affilié actif de ce contrat",
        ("not-affiliated", Nl) => "{niss} is geen actieve aangeslotene van dit contract",
        ("birth-date-mismatch", En) => "The birth date does not match the national number {niss}",
        ("birth-date-mismatch", Fr) => "La date de naissance ne correspond pas au numéro national {niss}",
        ("birth-date-mismatch", Nl) => "De geboortedatum stemt niet overeen met het rijksregisternummer {niss}",
        ("bis-number", En) => "{niss} is a BIS number: the birth date could not be checked",
        ("bis-number", Fr) => "{niss} est un numéro BIS : la date de naissance n'a pas pu être vérifiée",
        ("bis-number", Nl) => "{niss} is een BIS-nummer: de geboortedatum kon niet gecontroleerd worden",
        ("date-before", En) => "The date is before {other} ({other_value})",
        ("date-before", Fr) => "La date est antérieure à {other} ({other_value})",
        ("date-before", Nl) => "De datum ligt vóór {other} ({other_value})",
        ("exit-before-affiliation", En) => "The exit date is before the affiliation date ({other_value})",
        ("exit-before-affiliation", Fr) => "La date de sortie est antérieure à la date d'affiliation ({other_value})",
        ("exit-before-affiliation", Nl) => "De uittredingsdatum ligt vóór de aansluitingsdatum ({other_value})",
        ("late-declaration", En) => "The date is more than {days} days in the past: the legal deadline is {days} days",
        ("late-declaration", Fr) => "La date remonte à plus de {days} jours : le délai légal est de {days} jours",
        ("late-declaration", Nl) => "De datum ligt meer dan {days} dagen in het verleden: de wettelijke termijn is {days} dagen",
        ("unknown-category", En) => "The category {value} does not exist for this contract (known: {allowed})",
        ("unknown-category", Fr) => "La catégorie {value} n'existe pas pour ce contrat (connues : {allowed})",
        ("unknown-category", Nl) => "De categorie {value} bestaat niet voor dit contract (gekend: {allowed})",
        ("name-mismatch", En) => "The name differs from the registry ({expected})",
        ("name-mismatch", Fr) => "Le nom diffère de celui du registre ({expected})",
        ("name-mismatch", Nl) => "De naam verschilt van die in het register ({expected})",
        ("required-when", En) => "A value is required when {other} is {other_value}",
        ("required-when", Fr) => "Une valeur est obligatoire lorsque {other} vaut {other_value}",
        ("required-when", Nl) => "Een waarde is verplicht wanneer {other} {other_value} is",
        ("login-taken", En) => "The login {value} is already used: choose another one",
        ("login-taken", Fr) => "L'identifiant {value} est déjà utilisé : choisissez-en un autre",
        ("login-taken", Nl) => "De gebruikersnaam {value} is al in gebruik: kies een andere",
        ("unknown-user", En) => "{value} is not an active user of this organisation",
        ("unknown-user", Fr) => "{value} n'est pas un utilisateur actif de cette organisation",
        ("unknown-user", Nl) => "{value} is geen actieve gebruiker van deze organisatie",
        ("duplicate-login", En) => "The login {value} already appears on row {other_row}",
        ("duplicate-login", Fr) => "L'identifiant {value} figure déjà à la ligne {other_row}",
        ("duplicate-login", Nl) => "De gebruikersnaam {value} staat al op rij {other_row}",
        ("contract-not-of-organisation", En) => "The contract {value} does not belong to this organisation",
        ("contract-not-of-organisation", Fr) => "Le contrat {value} n'appartient pas à cette organisation",
        ("contract-not-of-organisation", Nl) => "Het contract {value} hoort niet bij deze organisatie",
        ("last-master", En) => "{value} is the last master user: name another master user first",
        ("last-master", Fr) => "{value} est le dernier master user : désignez d'abord un autre master user",
        ("last-master", Nl) => "{value} is de laatste master user: duid eerst een andere master user aan",
        ("sheet-applied", En) => "A user sheet of your organisation was applied. Changes:",
        ("sheet-applied", Fr) => "Une fiche utilisateur de votre organisation a été appliquée. Changements :",
        ("sheet-applied", Nl) => "Een gebruikersfiche van uw organisatie werd toegepast. Wijzigingen:",
        ("template-required", En) => "This is not a template sent by the insurer: fill in the annual-adjustment file published in documents/annual-adjustment/",
        ("template-required", Fr) => "Ce fichier n'est pas un modèle envoyé par l'assureur : complétez le fichier d'adaptation annuelle publié dans documents/annual-adjustment/",
        ("template-required", Nl) => "Dit is geen sjabloon van de verzekeraar: vul het bestand voor de jaarlijkse aanpassing in uit documents/annual-adjustment/",
        ("template-unknown", En) => "The template of this file is unknown for this contract",
        ("template-unknown", Fr) => "Le modèle de ce fichier est inconnu pour ce contrat",
        ("template-unknown", Nl) => "Het sjabloon van dit bestand is onbekend voor dit contract",
        ("row-missing", En) => "The row of affiliate {value} was removed: send back every row of the template",
        ("row-missing", Fr) => "La ligne de l'affilié {value} a été supprimée : renvoyez toutes les lignes du modèle",
        ("row-missing", Nl) => "De rij van aangeslotene {value} werd verwijderd: stuur alle rijen van het sjabloon terug",
        ("row-unknown", En) => "This row is not part of the template",
        ("row-unknown", Fr) => "Cette ligne ne fait pas partie du modèle",
        ("row-unknown", Nl) => "Deze rij hoort niet bij het sjabloon",
        ("locked-changed", En) => "A pre-filled (locked) cell of this row was changed",
        ("locked-changed", Fr) => "Une cellule pré-remplie (verrouillée) de cette ligne a été modifiée",
        ("locked-changed", Nl) => "Een vooraf ingevulde (vergrendelde) cel van deze rij werd gewijzigd",
        ("declare-exit", En) => "No longer employed: declare the exit with an exits file",
        ("declare-exit", Fr) => "Plus en service : déclarez la sortie avec un fichier de sorties",
        ("declare-exit", Nl) => "Niet meer in dienst: meld de uittreding met een uittredingsbestand",
        ("salary-lower", En) => "The new salary is lower than before ({expected})",
        ("salary-lower", Fr) => "Le nouveau salaire est inférieur au précédent ({expected})",
        ("salary-lower", Nl) => "Het nieuwe loon is lager dan voordien ({expected})",
        ("salary-increase-high", En) => "The new salary is more than {percent}% above the previous one ({expected})",
        ("salary-increase-high", Fr) => "Le nouveau salaire dépasse le précédent de plus de {percent}% ({expected})",
        ("salary-increase-high", Nl) => "Het nieuwe loon ligt meer dan {percent}% boven het vorige ({expected})",
        ("rate-changed", En) => "The occupation rate changed ({expected}): it should have been declared as an event",
        ("rate-changed", Fr) => "Le taux d'occupation a changé ({expected}) : cela aurait dû être déclaré comme événement",
        ("rate-changed", Nl) => "De tewerkstellingsbreuk veranderde ({expected}): dit had als gebeurtenis gemeld moeten worden",
        (_, En) => "Problem {code}",
        (_, Fr) => "Problème {code}",
        (_, Nl) => "Probleem {code}",
    }
}

/// Parameters that name columns by their key (alone, or a list joined by ", ").
const COLUMN_PARAMS: [&str; 4] = ["column", "other", "columns", "expected"];

/// The message of `code` in `language`, the columns it names called by their header in that
/// language (`header_of(key)`) rather than by their key.
pub fn render_with_headers(
    code: &str,
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
pub fn render(code: &str, language: Language, params: &[(&'static str, String)]) -> String {
    let param = |wanted: &str| params.iter().find(|(name, _)| *name == wanted).map(|(_, value)| value.as_str());
    let chosen = match (code, param("suggestion"), param("shape")) {
        ("missing-column", Some(_), _) => "missing-column-suggested".to_string(),
        ("invalid-value", _, Some(shape)) => format!("invalid-value-{shape}"),
        _ => code.to_string(),
    };
    let mut text = template(&chosen, language).replace("{code}", code);
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
            render("duplicate-in-file", Language::En, &params),
            "The national number 85.07.30-***.** already appears on row 7"
        );
        assert!(render("duplicate-in-file", Language::Fr, &params).contains("ligne 7"));
        assert!(render("duplicate-in-file", Language::Nl, &params).contains("rij 7"));
    }

    #[test]
    fn columns_are_named_by_their_header_in_the_language() {
        let schemas = crate::ingest::schema::Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let header_of = |key: &str| schema.header_in(key, Language::Nl);
        let params = [("column", "hire_date".to_string()), ("headers", "hire_date / Date d'entrée".to_string())];
        let nl = render_with_headers("missing-column", Language::Nl, &params, &header_of);
        assert!(nl.starts_with("De kolom Datum in dienst ontbreekt"), "{nl}");
        let params = [("expected", "niss, last_name".to_string())];
        let fr = render_with_headers("header-not-found", Language::Fr, &params, &|k| schema.header_in(k, Language::Fr));
        assert!(fr.contains("(NISS, Nom)"), "{fr}");
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_explained_in_the_language_without_english_details() {
        let params = [("detail", "check digits do not match: verify the number".to_string()), ("shape", "niss".into())];
        let fr = render("invalid-value", Language::Fr, &params);
        assert!(fr.starts_with("Pas un numéro de registre national valable") && !fr.contains("check digits"), "{fr}");
        assert!(render("invalid-value", Language::Nl, &params).contains("rijksregisternummer"));
        // Without a shape the detail is shown as it is.
        assert!(render("invalid-value", Language::En, &params[..1]).contains("check digits"));
    }
}
