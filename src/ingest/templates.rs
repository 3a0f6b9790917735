//! Annual-adjustment templates: the insurer's pre-filled workbook for a contract (one row per
//! active affiliate, registry data locked, input cells unlocked with validation, headers in
//! French and Dutch, an instructions sheet, a hidden META sheet with the template id and one
//! hash per row), and the check of a returned file against the template it came from.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{DataValidation, Format, ProtectionOptions, Workbook};
use sha2::{Digest, Sha256};
use time::Date;

use crate::registry::TemplateRow;

use super::finding_code::FindingCode;
use super::read::Sheet;
use super::validate::{cell_text, format_date, Finding, ValidRow, Value};

pub const DATA_SHEET: &str = "Adaptation-Aanpassing";
pub const META_SHEET: &str = "META";

/// Pre-filled, locked columns: key and header.
pub const LOCKED: [(&str, &str); 10] = [
    ("affiliate_id", "N° d'affilié / Aansluitingsnummer"),
    ("niss", "NISS / INSZ"),
    ("last_name", "Nom / Naam"),
    ("first_name", "Prénom / Voornaam"),
    ("birth_date", "Date de naissance / Geboortedatum"),
    ("category", "Catégorie / Categorie"),
    ("previous_occupation_rate", "Taux d'occupation actuel / Huidige tewerkstellingsbreuk"),
    ("previous_salary_fte", "Salaire temps plein actuel / Huidig voltijds loon"),
    ("salary_frequency", "Fréquence / Frequentie"),
    ("adjustment_date", "Date d'adaptation / Aanpassingsdatum"),
];

/// Columns the employer fills in.
pub const INPUTS: [(&str, &str); 4] = [
    ("still_employed", "Toujours en service (O/N) / Nog in dienst (J/N)"),
    ("new_salary_fte", "Nouveau salaire temps plein / Nieuw voltijds loon"),
    ("occupation_rate_at_date", "Taux d'occupation à la date / Tewerkstellingsbreuk op de datum"),
    ("bonus_amount", "Bonus"),
];

/// The text of the locked cells of one row, as written in the template.
pub fn locked_values(row: &TemplateRow, adjustment_date: Date) -> Vec<String> {
    let birth = Date::parse(&row.birth_date, time::macros::format_description!("[year]-[month]-[day]"))
        .map(format_date)
        .unwrap_or_else(|_| row.birth_date.clone());
    vec![
        row.affiliate_id.to_string(),
        row.niss.clone(),
        row.last_name.clone(),
        row.first_name.clone(),
        birth,
        row.category.clone(),
        format!("{}", row.occupation_rate as f64 / 10_000.0),
        format!("{}.{:02}", row.salary_fte_cents / 100, row.salary_fte_cents % 100),
        row.salary_frequency.clone(),
        format_date(adjustment_date),
    ]
}

/// The hash that ties a row's locked cells to its template.
pub fn row_hash(template_id: &str, values: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(template_id.as_bytes());
    for value in values {
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Writes the template workbook.
pub fn build(
    template_id: &str,
    contract: &str,
    adjustment_date: Date,
    rows: &[TemplateRow],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold().set_text_wrap();
    let locked = Format::new().set_quote_prefix().set_locked();
    let input = Format::new().set_unlocked();

    let data = workbook.add_worksheet();
    data.set_name(DATA_SHEET)?;
    for (col, (_, title)) in LOCKED.iter().chain(INPUTS.iter()).enumerate() {
        data.write_string_with_format(0, col as u16, *title, &header)?;
    }
    let last_row = rows.len() as u32;
    for (row, affiliate) in (1u32..).zip(rows.iter()) {
        for (col, value) in locked_values(affiliate, adjustment_date).into_iter().enumerate() {
            data.write_string_with_format(row, col as u16, value, &locked)?;
        }
        for col in 0..INPUTS.len() {
            data.write_blank(row, (LOCKED.len() + col) as u16, &input)?;
        }
    }
    if last_row > 0 {
        let first_input = LOCKED.len() as u16;
        let yes_no = DataValidation::new().allow_list_strings(&["O", "N", "J", "Y"])?;
        data.add_data_validation(1, first_input, last_row, first_input, &yes_no)?;
        let salary = DataValidation::new().allow_decimal_number(rust_xlsxwriter::DataValidationRule::GreaterThan(0.0));
        data.add_data_validation(1, first_input + 1, last_row, first_input + 1, &salary)?;
        let rate = DataValidation::new().allow_decimal_number(rust_xlsxwriter::DataValidationRule::Between(0.0, 1.0));
        data.add_data_validation(1, first_input + 2, last_row, first_input + 2, &rate)?;
    }
    data.set_column_range_width(0, (LOCKED.len() + INPUTS.len()) as u16, 20)?;
    data.set_freeze_panes(1, 4)?;
    data.protect_with_options(&ProtectionOptions { format_columns: true, ..ProtectionOptions::default() });

    let instructions = workbook.add_worksheet();
    instructions.set_name("Instructions")?;
    let lines = [
        "FR — Complétez les colonnes à droite pour chaque affilié, puis déposez ce fichier dans inbox/annual-adjustment/. Ne supprimez ni n'ajoutez de lignes ; les cellules pré-remplies sont verrouillées. Un affilié qui n'est plus en service : N, et déclarez sa sortie avec un fichier de sorties.",
        "NL — Vul de kolommen rechts in voor elke aangeslotene en plaats dit bestand in inbox/annual-adjustment/. Verwijder of voeg geen rijen toe; vooraf ingevulde cellen zijn vergrendeld. Een aangeslotene die niet meer in dienst is: N, en meld de uittreding met een uittredingsbestand.",
    ];
    for (row, line) in lines.iter().enumerate() {
        instructions.write_string(row as u32, 0, *line)?;
    }
    instructions.set_column_width(0, 140)?;

    let meta = workbook.add_worksheet();
    meta.set_name(META_SHEET)?;
    meta.write_string(0, 0, "template_id")?;
    meta.write_string(0, 1, template_id)?;
    meta.write_string(1, 0, "contract")?;
    meta.write_string(1, 1, contract)?;
    meta.write_string(2, 0, "adjustment_date")?;
    meta.write_string(2, 1, format_date(adjustment_date))?;
    for (row, affiliate) in (4u32..).zip(rows.iter()) {
        meta.write_string(row, 0, affiliate.affiliate_id.to_string())?;
        meta.write_string(row, 1, row_hash(template_id, &locked_values(affiliate, adjustment_date)))?;
    }
    meta.set_hidden(true);
    workbook.save_to_buffer()
}

/// What the hidden META sheet of a returned file says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub template_id: String,
    pub contract: String,
    /// Row hash by affiliate id, in template order.
    pub rows: Vec<(String, String)>,
}

/// Reads the META sheet of an xlsx; `None` when there is none (a home-made file).
pub fn read_meta(bytes: &[u8]) -> Option<Meta> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).ok()?;
    let range = workbook.worksheet_range(META_SHEET).ok()?;
    let text = |row: usize, col: usize| match range.get((row, col)) {
        Some(Data::String(s)) => Some(s.clone()),
        _ => None,
    };
    if text(0, 0).as_deref() != Some("template_id") {
        return None;
    }
    let template_id = text(0, 1)?;
    let contract = text(1, 1)?;
    let rows = (4..range.height().min(250_000)).filter_map(|r| Some((text(r, 0)?, text(r, 1)?))).collect();
    Some(Meta { template_id, contract, rows })
}

/// Compares a returned sheet with its template and applies the rules of DOMAIN.md §5.
/// Returns the findings and, per data row, the affiliate id it stands for.
pub fn check_return(
    meta: &Meta,
    sheet: &Sheet,
    header_index: usize,
    positions: &HashMap<String, usize>,
    rows: &[ValidRow],
    max_increase_percent: i64,
) -> (Vec<Finding>, HashMap<u32, i64>) {
    let mut findings = Vec::new();
    let mut affiliates = HashMap::new();
    let expected: HashMap<&str, &str> = meta.rows.iter().map(|(id, hash)| (id.as_str(), hash.as_str())).collect();
    let mut seen = std::collections::HashSet::new();
    for sheet_row in sheet.rows.iter().skip(header_index + 1) {
        let values: Vec<String> = LOCKED
            .iter()
            .map(|(key, _)| {
                positions.get(*key).and_then(|p| sheet_row.cells.get(*p)).and_then(cell_text).unwrap_or_default()
            })
            .collect();
        if values.iter().all(String::is_empty) {
            continue;
        }
        let id = values[0].clone();
        match expected.get(id.as_str()) {
            None => findings.push(Finding::error(Some(sheet_row.number), None, FindingCode::RowUnknown)),
            Some(hash) => {
                seen.insert(id.clone());
                if row_hash(&meta.template_id, &values) != *hash {
                    findings.push(Finding::error(Some(sheet_row.number), None, FindingCode::LockedChanged));
                } else if let Ok(affiliate_id) = id.parse::<i64>() {
                    affiliates.insert(sheet_row.number, affiliate_id);
                }
            }
        }
    }
    for (id, _) in &meta.rows {
        if !seen.contains(id) {
            findings
                .push(Finding::error(None, Some("affiliate_id"), FindingCode::RowMissing).with("value", id.clone()));
        }
    }
    for row in rows {
        if row.text("still_employed") == Some("N") {
            findings.push(Finding::error(Some(row.number), Some("still_employed"), FindingCode::DeclareExit));
            continue;
        }
        if let (Some(Value::Cents(new)), Some(Value::Cents(previous))) =
            (row.get("new_salary_fte"), row.get("previous_salary_fte"))
        {
            let shown = format!("{}.{:02}", previous / 100, previous % 100);
            if new < previous {
                findings.push(
                    Finding::warning(Some(row.number), Some("new_salary_fte"), FindingCode::SalaryLower)
                        .with("expected", shown),
                );
            } else if *new * 100 > *previous * (100 + max_increase_percent) {
                findings.push(
                    Finding::warning(Some(row.number), Some("new_salary_fte"), FindingCode::SalaryIncreaseHigh)
                        .with("percent", max_increase_percent.to_string())
                        .with("expected", shown),
                );
            }
        }
        if let (Some(Value::Rate(now)), Some(Value::Rate(before))) =
            (row.get("occupation_rate_at_date"), row.get("previous_occupation_rate"))
        {
            if now != before {
                findings.push(
                    Finding::warning(Some(row.number), Some("occupation_rate_at_date"), FindingCode::RateChanged)
                        .with("expected", format!("{}", *before as f64 / 10_000.0)),
                );
            }
        }
    }
    (findings, affiliates)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ingest::read::{Cell, SheetRow};

    fn affiliate(id: i64, last_name: &str) -> TemplateRow {
        TemplateRow {
            affiliate_id: id,
            niss: "85073003328".into(),
            last_name: last_name.into(),
            first_name: "Anne".into(),
            birth_date: "1985-07-30".into(),
            category: "EMPLOYES".into(),
            occupation_rate: 10_000,
            salary_fte_cents: 300_000,
            salary_frequency: "MONTHLY".into(),
        }
    }

    fn sheet_row(number: u32, values: &[String]) -> SheetRow {
        SheetRow { number, cells: values.iter().map(|v| Cell::Text(v.clone())).collect() }
    }

    fn answered(number: u32, values: &[(&str, Value)]) -> ValidRow {
        ValidRow { number, values: values.iter().map(|(k, v)| ((*k).into(), v.clone())).collect::<BTreeMap<_, _>>() }
    }

    #[test]
    fn a_return_is_checked_row_by_row_against_its_template() {
        let day = Date::from_calendar_date(2027, time::Month::January, 1).unwrap();
        let (kept, changed, missing) = (affiliate(11, "Dupont"), affiliate(12, "Peeters"), affiliate(13, "Janssens"));
        let meta = Meta {
            template_id: "t-1".into(),
            contract: "GP-1001".into(),
            rows: [&kept, &changed, &missing]
                .iter()
                .map(|row| (row.affiliate_id.to_string(), row_hash("t-1", &locked_values(row, day))))
                .collect(),
        };
        let mut tampered = locked_values(&changed, day);
        tampered[2] = "Someone Else".into();
        let mut unknown = locked_values(&kept, day);
        unknown[0] = "99".into();
        let header: Vec<String> = LOCKED.iter().map(|(_, title)| title.to_string()).collect();
        let sheet = Sheet {
            rows: vec![
                sheet_row(1, &header),
                sheet_row(2, &locked_values(&kept, day)),
                sheet_row(3, &tampered),
                sheet_row(4, &unknown),
            ],
        };
        let positions: HashMap<String, usize> =
            LOCKED.iter().enumerate().map(|(i, (k, _))| (k.to_string(), i)).collect();
        let rows = [
            answered(
                2,
                &[
                    ("still_employed", Value::Choice("Y".into())),
                    ("new_salary_fte", Value::Cents(250_000)),
                    ("previous_salary_fte", Value::Cents(300_000)),
                    ("occupation_rate_at_date", Value::Rate(8_000)),
                    ("previous_occupation_rate", Value::Rate(10_000)),
                ],
            ),
            answered(
                5,
                &[
                    ("still_employed", Value::Choice("Y".into())),
                    ("new_salary_fte", Value::Cents(600_000)),
                    ("previous_salary_fte", Value::Cents(300_000)),
                ],
            ),
            answered(6, &[("still_employed", Value::Choice("N".into()))]),
        ];
        let (findings, affiliates) = check_return(&meta, &sheet, 0, &positions, &rows, 20);
        let found: Vec<(Option<u32>, FindingCode)> = findings.iter().map(|f| (f.row, f.code)).collect();
        assert_eq!(
            found,
            vec![
                (Some(3), FindingCode::LockedChanged),
                (Some(4), FindingCode::RowUnknown),
                (None, FindingCode::RowMissing),
                (Some(2), FindingCode::SalaryLower),
                (Some(2), FindingCode::RateChanged),
                (Some(5), FindingCode::SalaryIncreaseHigh),
                (Some(6), FindingCode::DeclareExit),
            ]
        );
        let missing_ids: Vec<&str> = findings
            .iter()
            .filter(|f| f.code == FindingCode::RowMissing)
            .flat_map(|f| f.params.iter().map(|(_, v)| v.as_str()))
            .collect();
        assert_eq!(missing_ids, ["13"], "the row left out of the return");
        assert_eq!(affiliates, HashMap::from([(2, 11)]), "only an intact row stands for its affiliate");
    }
}
