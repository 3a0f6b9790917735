//! The two reports of a processed upload, written to the contract's `results/` folder:
//! `<file>.report.json` for scripts (documented in `schemas/report.schema.json`) and
//! `<file>.report.xlsx` for people (a summary, the list of problems, and — when some cells are
//! at fault — the submitted rows with each faulty cell highlighted and explained in a note).
//!
//! Text that came from the upload is always written as text, never as a formula, and national
//! numbers are masked.

use std::collections::HashMap;

use rust_xlsxwriter::{Color, Format, FormatBorder, Note, Workbook};
use serde_json::json;

use crate::domain::{Language, Niss};
use crate::registry::UploadRecord;

use super::messages::render_with_headers;
use super::read::{Cell, Sheet};
use super::schema::Schema;
use super::validate::{format_date, Finding, Severity};

/// What the processing concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected,
    Duplicate,
    /// The file could not be processed within its attempts: nothing was recorded.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed => "failed",
        }
    }

    fn label(self, language: Language) -> &'static str {
        match (self, language) {
            (Outcome::Accepted, Language::Fr) => "ACCEPTÉ",
            (Outcome::Accepted, Language::Nl) => "AANVAARD",
            (Outcome::Accepted, Language::En) => "ACCEPTED",
            (Outcome::Rejected, Language::Fr) => "REFUSÉ : rien n'a été enregistré",
            (Outcome::Rejected, Language::Nl) => "GEWEIGERD: niets werd geregistreerd",
            (Outcome::Rejected, Language::En) => "REJECTED: nothing was recorded",
            (Outcome::Duplicate, Language::Fr) => "DOUBLON : ce contenu a déjà été accepté",
            (Outcome::Duplicate, Language::Nl) => "DUBBEL: deze inhoud werd al aanvaard",
            (Outcome::Duplicate, Language::En) => "DUPLICATE: this content was already accepted",
            (Outcome::Failed, Language::Fr) => "ÉCHEC : le fichier n'a pas pu être traité, rien n'a été enregistré",
            (Outcome::Failed, Language::Nl) => {
                "MISLUKT: het bestand kon niet verwerkt worden, niets werd geregistreerd"
            }
            (Outcome::Failed, Language::En) => "FAILED: the file could not be processed, nothing was recorded",
        }
    }
}

/// Everything a report says.
pub struct ReportInput<'a> {
    pub upload: &'a UploadRecord,
    pub schema_version: Option<u32>,
    pub language: Language,
    pub outcome: Outcome,
    pub data_rows: usize,
    pub findings: &'a [Finding],
    /// The sheet as read and where each column sits in it, when the file could be read.
    pub sheet: Option<(&'a Sheet, usize, &'a HashMap<String, usize>)>,
    pub duplicate_of: Option<&'a UploadRecord>,
    pub processed_at: String,
    /// The schema the file was read with: messages name its columns by their headers.
    pub schema: Option<&'a Schema>,
}

impl ReportInput<'_> {
    fn message(&self, finding: &Finding) -> String {
        let header_of = |key: &str| self.schema.and_then(|schema| schema.header_in(key, self.language));
        render_with_headers(finding.code, self.language, &finding.params, &header_of)
    }
}

fn severity_word(severity: Severity, language: Language) -> &'static str {
    match (severity, language) {
        (Severity::Error, Language::Fr) => "ERREUR",
        (Severity::Error, Language::Nl) => "FOUT",
        (Severity::Error, Language::En) => "ERROR",
        (Severity::Warning, Language::Fr) => "AVERTISSEMENT",
        (Severity::Warning, Language::Nl) => "WAARSCHUWING",
        (Severity::Warning, Language::En) => "WARNING",
    }
}

fn finding_json(finding: &Finding, input: &ReportInput<'_>) -> serde_json::Value {
    json!({
        "row": finding.row,
        "column": finding.column,
        "code": finding.code.as_str(),
        "message": input.message(finding),
    })
}

/// The JSON report.
pub fn json_report(input: &ReportInput<'_>) -> Vec<u8> {
    let (errors, warnings): (Vec<&Finding>, Vec<&Finding>) =
        input.findings.iter().partition(|f| f.severity == Severity::Error);
    let value = json!({
        "report_version": 1,
        "upload_id": input.upload.id,
        "file_name": input.upload.file_name.as_str(),
        "contract": input.upload.contract.as_str(),
        "kind": input.upload.kind.as_str(),
        "schema_version": input.schema_version,
        "sha256": input.upload.sha256,
        "status": input.outcome.as_str(),
        "test": input.upload.test,
        "processed_at": input.processed_at,
        "language": input.language.as_str(),
        "rows": input.data_rows,
        "errors": errors.iter().map(|f| finding_json(f, input)).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(|f| finding_json(f, input)).collect::<Vec<_>>(),
        "duplicate_of": input.duplicate_of.map(|d| json!({ "upload_id": d.id, "file_name": d.file_name.as_str() })),
    });
    serde_json::to_vec_pretty(&value).unwrap_or_default()
}

/// Text from an upload, as a report shows it: national numbers masked.
fn shown(cell: &Cell, is_niss_column: bool) -> String {
    let text = match cell {
        Cell::Empty => String::new(),
        Cell::Text(t) => t.clone(),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Cell::Number(n) => n.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Date(d) => format_date(*d),
        Cell::Error(e) => format!("#{e}"),
        Cell::TooLong { characters } => format!("[{characters} characters]"),
    };
    if is_niss_column {
        let padded = match cell {
            Cell::Number(_) if text.len() < 11 => format!("{text:0>11}"),
            _ => text.clone(),
        };
        if let Ok(niss) = Niss::parse(&padded) {
            return niss.masked();
        }
    }
    crate::audit::mask_personal_numbers(&text)
}

/// The spreadsheet report.
pub fn xlsx_report(input: &ReportInput<'_>) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let language = input.language;
    let (title, sheet_summary, sheet_problems, sheet_rows) = match language {
        Language::Fr => ("Rapport de traitement", "Résumé", "Problèmes", "Lignes"),
        Language::Nl => ("Verwerkingsverslag", "Samenvatting", "Problemen", "Rijen"),
        Language::En => ("Processing report", "Summary", "Problems", "Rows"),
    };
    let bold = Format::new().set_bold();
    let header = Format::new().set_bold().set_background_color(Color::RGB(0xD9E1F2)).set_border(FormatBorder::Thin);
    let text = Format::new().set_quote_prefix();
    let error_cell = Format::new().set_quote_prefix().set_background_color(Color::RGB(0xFFC7CE));
    let warning_cell = Format::new().set_quote_prefix().set_background_color(Color::RGB(0xFFEB9C));
    let errors = input.findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = input.findings.len() - errors;

    let mut workbook = Workbook::new();
    let summary = workbook.add_worksheet();
    summary.set_name(sheet_summary)?;
    summary.write_string_with_format(0, 0, title, &bold)?;
    if input.upload.test {
        let banner = Format::new().set_bold().set_font_color(Color::White).set_background_color(Color::RGB(0xC00000));
        let text = match language {
            Language::Fr => "TEST — fichier déposé dans test/ : contrôlé comme un vrai envoi, rien n'a été enregistré",
            Language::Nl => {
                "TEST — bestand in test/ geplaatst: gecontroleerd zoals een echte zending, er werd niets geregistreerd"
            }
            Language::En => "TEST — file sent into test/: checked as a real upload would be, nothing was recorded",
        };
        summary.write_string_with_format(0, 1, text, &banner)?;
    }
    let labels: [(&str, &str, &str); 8] = [
        ("Fichier", "Bestand", "File"),
        ("Contrat", "Contract", "Contract"),
        ("Type", "Soort", "Kind"),
        ("Résultat", "Resultaat", "Result"),
        ("Lignes", "Rijen", "Rows"),
        ("Erreurs", "Fouten", "Errors"),
        ("Avertissements", "Waarschuwingen", "Warnings"),
        ("Traité le", "Verwerkt op", "Processed at"),
    ];
    let values = [
        input.upload.file_name.to_string(),
        input.upload.contract.to_string(),
        input.upload.kind.to_string(),
        input.outcome.label(language).to_string(),
        input.data_rows.to_string(),
        errors.to_string(),
        warnings.to_string(),
        input.processed_at.clone(),
    ];
    for (i, ((fr, nl, en), value)) in labels.iter().zip(values.iter()).enumerate() {
        let label = match language {
            Language::Fr => fr,
            Language::Nl => nl,
            Language::En => en,
        };
        let row = i as u32 + 2;
        summary.write_string_with_format(row, 0, *label, &bold)?;
        summary.write_string_with_format(row, 1, crate::audit::mask_personal_numbers(value), &text)?;
    }
    summary.set_column_width(0, 18)?;
    summary.set_column_width(1, 60)?;

    let problems = workbook.add_worksheet();
    problems.set_name(sheet_problems)?;
    let problem_headers: [&str; 5] = match language {
        Language::Fr => ["Ligne", "Colonne", "Gravité", "Code", "Message"],
        Language::Nl => ["Rij", "Kolom", "Ernst", "Code", "Bericht"],
        Language::En => ["Row", "Column", "Severity", "Code", "Message"],
    };
    for (col, name) in problem_headers.iter().enumerate() {
        problems.write_string_with_format(0, col as u16, *name, &header)?;
    }
    for (i, finding) in input.findings.iter().enumerate() {
        let row = i as u32 + 1;
        if let Some(number) = finding.row {
            problems.write_number(row, 0, f64::from(number))?;
        }
        problems.write_string_with_format(row, 1, finding.column.clone().unwrap_or_default(), &text)?;
        problems.write_string(row, 2, severity_word(finding.severity, language))?;
        problems.write_string(row, 3, finding.code.as_str())?;
        problems.write_string_with_format(row, 4, input.message(finding), &text)?;
    }
    problems.set_column_width(4, 90)?;
    problems.set_freeze_panes(1, 0)?;

    // The submitted rows are shown to point at faulty cells: a file without any row-level
    // finding gets no copy of itself (a clean 100 000-row file would triple the report's cost).
    let points_at_cells = input.findings.iter().any(|f| f.row.is_some() && f.column.is_some());
    if let (Some((sheet, header_index, positions)), true) = (input.sheet, points_at_cells) {
        let rows = workbook.add_worksheet();
        rows.set_name(sheet_rows)?;
        let niss_position = positions.get("niss").copied();
        let key_of: HashMap<usize, &str> = positions.iter().map(|(k, p)| (*p, k.as_str())).collect();
        let mut marks: HashMap<(u32, usize), (Severity, Vec<String>)> = HashMap::new();
        for finding in input.findings {
            let (Some(row), Some(column)) = (finding.row, finding.column.as_ref()) else {
                continue;
            };
            let Some(position) = positions.get(column) else {
                continue;
            };
            let mark = marks.entry((row, *position)).or_insert((finding.severity, Vec::new()));
            mark.0 = mark.0.max(finding.severity);
            mark.1.push(input.message(finding));
        }
        rows.write_string_with_format(0, 0, "#", &header)?;
        for (out_row, sheet_row) in sheet.rows.iter().skip(header_index).enumerate() {
            let out_row = out_row as u32;
            if out_row > 0 {
                rows.write_number(out_row, 0, f64::from(sheet_row.number))?;
            }
            for (position, cell) in sheet_row.cells.iter().enumerate().take(512) {
                let col = position as u16 + 1;
                let value = shown(cell, niss_position == Some(position) && out_row > 0);
                let format = match (out_row, marks.get(&(sheet_row.number, position))) {
                    (0, _) => &header,
                    (_, Some((Severity::Error, _))) => &error_cell,
                    (_, Some((Severity::Warning, _))) => &warning_cell,
                    _ => &text,
                };
                if !value.is_empty() || out_row == 0 || format != &text {
                    rows.write_string_with_format(out_row, col, value, format)?;
                }
                if let Some((_, messages)) = marks.get(&(sheet_row.number, position)) {
                    let key = key_of.get(&position).copied().unwrap_or("");
                    rows.insert_note(out_row, col, &Note::new(format!("{key}: {}", messages.join("\n"))))?;
                }
            }
        }
        rows.set_freeze_panes(1, 1)?;
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContractNumber, FileName, KindName};
    use crate::ingest::finding_code::FindingCode;
    use crate::registry::UploadStatus;

    fn upload() -> UploadRecord {
        UploadRecord {
            id: 7,
            contract: ContractNumber::parse("GP-1001").unwrap(),
            kind: KindName::parse("affiliations").unwrap(),
            uploader_user_id: 1,
            uploader: "upload.user".into(),
            file_name: FileName::parse("affiliations.xlsx").unwrap(),
            size: 10,
            sha256: "ab".repeat(32),
            object_key: "uploads/x".into(),
            status: UploadStatus::Processing,
            received_at: 0,
            client_mtime: None,
            data_rows: None,
            error_count: None,
            warning_count: None,
            processed_at: None,
            file_removed_at: None,
            test: false,
        }
    }

    #[test]
    fn the_json_report_splits_errors_from_warnings_and_never_shows_a_national_number() {
        let upload = upload();
        let findings = [
            Finding::error(Some(3), Some("niss"), FindingCode::AlreadyAffiliated).with("value", "85073003328"),
            Finding::warning(Some(4), Some("salary"), FindingCode::InvalidValue).with("value", "abc"),
            Finding::error(None, None, FindingCode::MissingColumn).with("column", "birth_date"),
        ];
        let input = ReportInput {
            upload: &upload,
            schema_version: Some(1),
            language: Language::Nl,
            outcome: Outcome::Rejected,
            data_rows: 2,
            findings: &findings,
            sheet: None,
            duplicate_of: None,
            processed_at: "2026-12-03T10:00:00Z".into(),
            schema: None,
        };
        let bytes = json_report(&input);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("85073003328"), "{text}");
        let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(report["status"], "rejected");
        assert_eq!(report["language"], "nl");
        assert_eq!(report["file_name"], "affiliations.xlsx");
        assert_eq!(report["kind"], "affiliations");
        let errors = report["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0]["row"].as_u64(), errors[0]["code"].as_str()), (Some(3), Some("already-affiliated")));
        assert!(errors[1]["row"].is_null() && errors[1]["column"].is_null(), "a problem of the whole file");
        assert_eq!(report["warnings"].as_array().unwrap().len(), 1);
        for finding in errors.iter().chain(report["warnings"].as_array().unwrap()) {
            assert!(!finding["message"].as_str().unwrap().is_empty());
        }
    }
}
