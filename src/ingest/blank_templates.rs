//! Blank workbooks to start an upload from, generated from the kind's schema so that they are
//! always in step with it: the headers in the user's language (the column's key in a note), one
//! example row in grey to delete, data validation for choices, dates, amounts and rates, and a
//! second sheet explaining each column and its rules. Pure: bytes in memory.

use rust_xlsxwriter::{
    Color, DataValidation, DataValidationRule, DocProperties, ExcelDateTime, Format, FormatAlign, Note, Workbook,
    XlsxError,
};

use crate::domain::{ContractNumber, EnterpriseNumber, Language};

use super::headers::normalise;
use super::schema::{Action, Column, ColumnType, Rule, Schema};

/// Rows of the data sheet that carry the data validation (the example row included).
const VALIDATED_ROWS: u32 = 5_000;

/// Written in the example row: a row holding one of these is the example and is skipped.
pub const EXAMPLE_MARKERS: [&str; 3] =
    ["EXEMPLE (supprimez cette ligne)", "VOORBEELD (verwijder deze rij)", "EXAMPLE (delete this row)"];

/// An example national number whose birth date is the example birth date.
const EXAMPLE_NISS: &str = "85.07.30-033.28";
const EXAMPLE_BIRTH: (u16, u8, u8) = (1985, 7, 30);

/// Whether a cell's text is the marker of the template's example row.
pub fn is_example_marker(text: &str) -> bool {
    static FOLDED: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| EXAMPLE_MARKERS.iter().map(|m| normalise(m)).collect());
    // Every text cell of a file is asked: a long one is no marker, and is not folded.
    if text.len() > 2 * EXAMPLE_MARKERS.iter().map(|m| m.len()).max().unwrap_or(0) {
        return false;
    }
    let folded = normalise(text);
    FOLDED.contains(&folded)
}

/// Whether the kind has a blank template: files of the other kinds come from the insurer
/// (annual-adjustment templates) or belong to `/access` (user sheets).
pub fn offers_template(schema: &Schema) -> bool {
    matches!(schema.action, Action::Affiliate | Action::Exit)
}

/// The template's file name: the kind's title in the language (`aansluitingen.xlsx`).
pub fn file_name(schema: &Schema, language: Language) -> String {
    let folded = normalise(schema.title(language));
    format!("{}.xlsx", folded.replace(' ', "-"))
}

/// What the example row is filled with.
#[derive(Debug, Clone)]
pub struct TemplateContext<'a> {
    pub contract: &'a ContractNumber,
    pub employer: &'a EnterpriseNumber,
    /// A personnel category of the contract, if it has any.
    pub category: Option<&'a str>,
}

fn header(column: &Column, language: Language) -> &str {
    let aliases = match language {
        Language::Fr => &column.fr,
        Language::Nl => &column.nl,
        Language::En => &column.en,
    };
    aliases.first().or(column.fr.first()).map(String::as_str).unwrap_or(column.key.as_str())
}

fn words(language: Language) -> Words {
    match language {
        Language::Fr => Words {
            columns_sheet: "Colonnes",
            titles: ["Colonne", "Clé", "Obligatoire", "À écrire", "Règles"],
            yes: "oui",
            no: "non",
            note_required: "obligatoire",
            note_optional: "facultative",
            intro: "Remplissez une ligne par personne sous les en-têtes : écrasez la ligne d'exemple en gris ou supprimez-la (laissée, elle est ignorée). \
                    Essayez le fichier dans test/ : il est vérifié comme un vrai envoi, sans rien changer. \
                    Envoyez-le ensuite dans inbox/. Le rapport arrive dans results/.",
        },
        Language::Nl => Words {
            columns_sheet: "Kolommen",
            titles: ["Kolom", "Sleutel", "Verplicht", "In te vullen", "Regels"],
            yes: "ja",
            no: "nee",
            note_required: "verplicht",
            note_optional: "facultatief",
            intro: "Vul één rij per persoon in onder de koppen: overschrijf de grijze voorbeeldrij of verwijder ze (blijft ze staan, dan wordt ze genegeerd). \
                    Probeer het bestand in test/: het wordt gecontroleerd zoals een echte zending, zonder iets te wijzigen. \
                    Stuur het daarna naar inbox/. Het verslag komt in results/.",
        },
        Language::En => Words {
            columns_sheet: "Columns",
            titles: ["Column", "Key", "Required", "What to write", "Rules"],
            yes: "yes",
            no: "no",
            note_required: "required",
            note_optional: "optional",
            intro: "Fill in one row per person under the headers: overwrite the grey example row or delete it (left in, it is ignored). \
                    Try the file in test/: it is checked as a real upload would be, and nothing changes. \
                    Then send it into inbox/. The report comes into results/.",
        },
    }
}

struct Words {
    columns_sheet: &'static str,
    titles: [&'static str; 5],
    yes: &'static str,
    no: &'static str,
    note_required: &'static str,
    note_optional: &'static str,
    intro: &'static str,
}

fn describe_type(column: &Column, language: Language) -> String {
    use Language::{En, Fr, Nl};
    let choices =
        |values: &[super::schema::EnumValue]| values.iter().map(|v| v.value.as_str()).collect::<Vec<_>>().join(", ");
    match (&column.column_type, language) {
        (ColumnType::Text, Fr) => "Texte".into(),
        (ColumnType::Text, Nl) => "Tekst".into(),
        (ColumnType::Text, En) => "Text".into(),
        (ColumnType::Code, Fr) => "Code (catégorie du contrat)".into(),
        (ColumnType::Code, Nl) => "Code (categorie van het contract)".into(),
        (ColumnType::Code, En) => "Code (category of the contract)".into(),
        (ColumnType::ContractNumber, Fr) => "Le numéro du contrat de ce dossier".into(),
        (ColumnType::ContractNumber, Nl) => "Het nummer van het contract van deze map".into(),
        (ColumnType::ContractNumber, En) => "The number of this folder's contract".into(),
        (ColumnType::EnterpriseNumber, Fr) => "Numéro d'entreprise (BCE) de l'employeur, 10 chiffres".into(),
        (ColumnType::EnterpriseNumber, Nl) => "Ondernemingsnummer (KBO) van de werkgever, 10 cijfers".into(),
        (ColumnType::EnterpriseNumber, En) => "The employer's enterprise number (CBE), 10 digits".into(),
        (ColumnType::Niss, Fr) => "Numéro de registre national, 11 chiffres (points et tirets permis)".into(),
        (ColumnType::Niss, Nl) => "Rijksregisternummer, 11 cijfers (punten en streepjes mogen)".into(),
        (ColumnType::Niss, En) => "National register number, 11 digits (dots and dashes allowed)".into(),
        (ColumnType::Date, Fr) => "Date JJ/MM/AAAA (ou cellule date)".into(),
        (ColumnType::Date, Nl) => "Datum DD/MM/JJJJ (of datumcel)".into(),
        (ColumnType::Date, En) => "Date DD/MM/YYYY (or a date cell)".into(),
        (ColumnType::Amount, Fr) => "Montant en EUR, au plus 2 décimales".into(),
        (ColumnType::Amount, Nl) => "Bedrag in EUR, hoogstens 2 decimalen".into(),
        (ColumnType::Amount, En) => "Amount in EUR, at most 2 decimals".into(),
        (ColumnType::Rate, Fr) => "Entre 0 et 1, ou un pourcentage (80%)".into(),
        (ColumnType::Rate, Nl) => "Tussen 0 en 1, of een percentage (80%)".into(),
        (ColumnType::Rate, En) => "Between 0 and 1, or a percentage (80%)".into(),
        (ColumnType::Enum(values), Fr) => format!("Une de : {}", choices(values)),
        (ColumnType::Enum(values), Nl) => format!("Een van: {}", choices(values)),
        (ColumnType::Enum(values), En) => format!("One of: {}", choices(values)),
        (_, Fr) => "Texte".into(),
        (_, Nl) => "Tekst".into(),
        (_, En) => "Text".into(),
    }
}

fn describe_rule(rule: &Rule, language: Language) -> Option<String> {
    use Language::{En, Fr, Nl};
    let text = match (rule, language) {
        (Rule::EqualsFolderContract, Fr) => "égal au contrat du dossier".into(),
        (Rule::EqualsFolderContract, Nl) => "gelijk aan het contract van de map".into(),
        (Rule::EqualsFolderContract, En) => "equal to the folder's contract".into(),
        (Rule::EmployerOfContract, Fr) => "l'employeur du contrat".into(),
        (Rule::EmployerOfContract, Nl) => "de werkgever van het contract".into(),
        (Rule::EmployerOfContract, En) => "the employer of the contract".into(),
        (Rule::UniqueInFile, Fr) => "une seule fois dans le fichier".into(),
        (Rule::UniqueInFile, Nl) => "één keer in het bestand".into(),
        (Rule::UniqueInFile, En) => "once in the file".into(),
        (Rule::NotActiveInContract, Fr) => "pas déjà affilié au contrat".into(),
        (Rule::NotActiveInContract, Nl) => "nog niet aangesloten bij het contract".into(),
        (Rule::NotActiveInContract, En) => "not yet affiliated to the contract".into(),
        (Rule::ActiveInContract, Fr) => "affilié au contrat".into(),
        (Rule::ActiveInContract, Nl) => "aangesloten bij het contract".into(),
        (Rule::ActiveInContract, En) => "affiliated to the contract".into(),
        (Rule::CategoryOfContract, Fr) => "une catégorie du contrat".into(),
        (Rule::CategoryOfContract, Nl) => "een categorie van het contract".into(),
        (Rule::CategoryOfContract, En) => "a category of the contract".into(),
        (Rule::MatchesNissBirthDate { .. }, Fr) => "cohérente avec le NISS".into(),
        (Rule::MatchesNissBirthDate { .. }, Nl) => "in overeenstemming met het INSZ".into(),
        (Rule::MatchesNissBirthDate { .. }, En) => "consistent with the national number".into(),
        (Rule::NotBefore { column }, Fr) => format!("pas avant {column}"),
        (Rule::NotBefore { column }, Nl) => format!("niet vóór {column}"),
        (Rule::NotBefore { column }, En) => format!("not before {column}"),
        (Rule::NotBeforeAffiliation, Fr) => "pas avant l'affiliation".into(),
        (Rule::NotBeforeAffiliation, Nl) => "niet vóór de aansluiting".into(),
        (Rule::NotBeforeAffiliation, En) => "not before the affiliation".into(),
        (Rule::RequiredWhen { column, equals }, Fr) => format!("obligatoire si {column} = {equals}"),
        (Rule::RequiredWhen { column, equals }, Nl) => format!("verplicht als {column} = {equals}"),
        (Rule::RequiredWhen { column, equals }, En) => format!("required when {column} = {equals}"),
        (Rule::NotOlderThanDays { days }, Fr) => format!("au plus {days} jours passés"),
        (Rule::NotOlderThanDays { days }, Nl) => format!("hoogstens {days} dagen geleden"),
        (Rule::NotOlderThanDays { days }, En) => format!("at most {days} days ago"),
        (Rule::Range { .. }, Fr) => "dans les limites permises".into(),
        (Rule::Range { .. }, Nl) => "binnen de toegelaten grenzen".into(),
        (Rule::Range { .. }, En) => "within the allowed range".into(),
        (Rule::MatchesRegistryName, _) => return None,
    };
    Some(text)
}

/// What the example row holds in a column: a cell written by `write_example`.
enum Example {
    Text(String),
    Date(ExcelDateTime),
    Number(f64),
}

fn example(column: &Column, language: Language, context: &TemplateContext<'_>) -> Result<Example, XlsxError> {
    let marker = match language {
        Language::Fr => EXAMPLE_MARKERS[0],
        Language::Nl => EXAMPLE_MARKERS[1],
        Language::En => EXAMPLE_MARKERS[2],
    };
    // A column only needed with another value (the date of death for a death) stays empty,
    // so that the example is a consistent row.
    if column.rules.iter().any(|rule| matches!(rule, Rule::RequiredWhen { .. })) {
        return Ok(Example::Text(String::new()));
    }
    Ok(match &column.column_type {
        ColumnType::ContractNumber => Example::Text(context.contract.to_string()),
        ColumnType::EnterpriseNumber => Example::Text(context.employer.to_string()),
        ColumnType::Niss => Example::Text(EXAMPLE_NISS.into()),
        ColumnType::Date if column.key == "birth_date" => {
            let (y, m, d) = EXAMPLE_BIRTH;
            Example::Date(ExcelDateTime::from_ymd(y, m, d)?)
        }
        ColumnType::Date => Example::Date(ExcelDateTime::from_ymd(2026, 1, 1)?),
        ColumnType::Amount => Example::Number(3250.5),
        ColumnType::Rate => Example::Number(1.0),
        ColumnType::Code => Example::Text(context.category.unwrap_or("").to_string()),
        // "Marie" is a woman.
        ColumnType::Enum(values) if column.key == "gender" && values.iter().any(|v| v.value == "F") => {
            Example::Text("F".into())
        }
        ColumnType::Enum(values) => Example::Text(values.first().map(|v| v.value.clone()).unwrap_or_default()),
        _ if column.key == "last_name" => Example::Text(marker.to_string()),
        _ if column.key == "first_name" => Example::Text("Marie".into()),
        _ => Example::Text(String::new()),
    })
}

/// The blank template of a kind, in a language.
pub fn build(schema: &Schema, language: Language, context: &TemplateContext<'_>) -> Result<Vec<u8>, XlsxError> {
    let words = words(language);
    let mut workbook = Workbook::new();
    // A fixed creation date: the same template is the same bytes (and size) at every read.
    let created = ExcelDateTime::from_ymd(2026, 1, 1)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created).set_author("pension-gateway"));
    let bold = Format::new().set_bold().set_text_wrap().set_align(FormatAlign::Top);
    let grey = Format::new().set_font_color(Color::Gray).set_italic();
    let grey_date = grey.clone().set_num_format("dd/mm/yyyy");
    let date = Format::new().set_num_format("dd/mm/yyyy");

    let data = workbook.add_worksheet();
    let title: String = schema.title(language).chars().take(31).collect();
    data.set_name(&title)?;
    for (index, column) in schema.columns.iter().enumerate() {
        let col = u16::try_from(index).map_err(|_| XlsxError::ParameterError("too many columns".into()))?;
        data.write_string_with_format(0, col, header(column, language), &bold)?;
        let needed = if column.required { words.note_required } else { words.note_optional };
        let note = Note::new(format!("{} ({needed})\n{}", column.key, describe_type(column, language)))
            .set_author("pension-gateway")
            .set_width(260);
        data.insert_note(0, col, &note)?;
        match example(column, language, context)? {
            Example::Text(text) => data.write_string_with_format(1, col, text, &grey)?,
            Example::Date(value) => data.write_datetime_with_format(1, col, &value, &grey_date)?,
            Example::Number(value) => data.write_number_with_format(1, col, value, &grey)?,
        };
        let validation = match &column.column_type {
            ColumnType::Enum(values) => {
                let list: Vec<&str> = values.iter().map(|v| v.value.as_str()).collect();
                // Excel limits a list to 255 characters: longer lists are explained, not enforced.
                (list.join(",").len() <= 255).then(|| DataValidation::new().allow_list_strings(&list)).transpose()?
            }
            ColumnType::Date => {
                let first = ExcelDateTime::from_ymd(1900, 1, 1)?;
                let last = ExcelDateTime::from_ymd(2100, 12, 31)?;
                for row in 2..=VALIDATED_ROWS {
                    data.set_cell_format(row, col, &date)?;
                }
                Some(DataValidation::new().allow_date(DataValidationRule::Between(first, last)))
            }
            ColumnType::Amount => {
                Some(DataValidation::new().allow_decimal_number(DataValidationRule::GreaterThanOrEqualTo(0.0)))
            }
            ColumnType::Rate => Some(DataValidation::new().allow_decimal_number(DataValidationRule::Between(0.0, 1.0))),
            _ => None,
        };
        if let Some(validation) = validation {
            data.add_data_validation(1, col, VALIDATED_ROWS, col, &validation)?;
        }
        data.set_column_width(col, 22)?;
    }
    data.set_freeze_panes(1, 0)?;

    let explained = workbook.add_worksheet();
    explained.set_name(words.columns_sheet)?;
    explained.write_string(0, 0, words.intro)?;
    for (col, title) in words.titles.iter().enumerate() {
        explained.write_string_with_format(2, col as u16, *title, &bold)?;
    }
    for (row, column) in (3u32..).zip(schema.columns.iter()) {
        explained.write_string(row, 0, header(column, language))?;
        explained.write_string(row, 1, &column.key)?;
        explained.write_string(row, 2, if column.required { words.yes } else { words.no })?;
        explained.write_string(row, 3, describe_type(column, language))?;
        let rules: Vec<String> = column.rules.iter().filter_map(|r| describe_rule(r, language)).collect();
        explained.write_string(row, 4, rules.join("; "))?;
    }
    explained.set_column_width(0, 30)?;
    explained.set_column_width(1, 20)?;
    explained.set_column_width(2, 12)?;
    explained.set_column_width(3, 60)?;
    explained.set_column_width(4, 50)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::read::{read, Cell, ReadLimits};
    use crate::ingest::schema::{FileFormat, Schemas};

    fn context<'a>(contract: &'a ContractNumber, employer: &'a EnterpriseNumber) -> TemplateContext<'a> {
        TemplateContext { contract, employer, category: Some("EMPLOYES") }
    }

    #[test]
    fn templates_are_named_after_their_kind_in_the_language() {
        let schemas = Schemas::embedded().unwrap();
        let affiliations = schemas.for_kind("affiliations").unwrap();
        assert_eq!(file_name(affiliations, Language::Nl), "aansluitingen.xlsx");
        assert_eq!(file_name(affiliations, Language::Fr), "affiliations.xlsx");
        assert_eq!(file_name(schemas.for_kind("exits").unwrap(), Language::Fr), "sorties.xlsx");
        assert!(!offers_template(schemas.for_kind("annual-adjustment").unwrap()));
    }

    #[test]
    fn every_header_of_a_template_is_read_back_as_its_column() {
        let schemas = Schemas::embedded().unwrap();
        let contract = ContractNumber::parse("GP-1001").unwrap();
        let employer = EnterpriseNumber::parse("0403019261").unwrap();
        for kind in ["affiliations", "exits"] {
            let schema = schemas.for_kind(kind).unwrap();
            for language in [Language::Fr, Language::Nl, Language::En] {
                let bytes = build(schema, language, &context(&contract, &employer)).unwrap();
                let sheet = read("template.xlsx", &bytes, &[FileFormat::Xlsx], &ReadLimits::default()).unwrap();
                let headers = &sheet.rows[0].cells;
                assert_eq!(headers.len(), schema.columns.len());
                for (cell, column) in headers.iter().zip(&schema.columns) {
                    let Cell::Text(text) = cell else { panic!("{kind}/{language}: header {cell:?}") };
                    let read = schema.headers.recognise(text);
                    assert_eq!(
                        read,
                        crate::ingest::headers::Recognition::Column(
                            schema.columns.iter().position(|c| c.key == column.key).unwrap()
                        ),
                        "{kind}/{language}: {text}"
                    );
                }
                let marker = sheet.rows[1].cells.iter().any(|c| matches!(c, Cell::Text(t) if is_example_marker(t)));
                assert!(marker, "{kind}/{language}: the example row carries its marker");
            }
        }
    }
}
