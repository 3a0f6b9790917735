//! Validation of a read spreadsheet against its schema and the registry's facts. Pure and
//! synchronous: the facts (active affiliates, categories, the folder's contract) are loaded
//! before, and the findings say row by row, cell by cell, what to fix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use time::{Date, Duration};

use crate::domain::{ContractNumber, EnterpriseNumber, Niss};

use super::blank_templates::is_example_marker;
pub use super::finding_code::FindingCode;
use super::headers::{Recognition, SUGGESTION_THRESHOLD};
use super::read::{Cell, Sheet, MAX_CELL_CHARACTERS};
use super::schema::{Column, ColumnType, Rule, Schema};

/// How many rows at the top of a sheet are searched for the header row.
const HEADER_SEARCH_ROWS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found, at a row (as Excel numbers it) and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub row: Option<u32>,
    pub column: Option<String>,
    pub code: FindingCode,
    pub severity: Severity,
    pub params: Vec<(&'static str, String)>,
}

impl Finding {
    pub fn error(row: Option<u32>, column: Option<&str>, code: FindingCode) -> Self {
        Self { row, column: column.map(str::to_string), code, severity: Severity::Error, params: Vec::new() }
    }

    pub fn warning(row: Option<u32>, column: Option<&str>, code: FindingCode) -> Self {
        Self { severity: Severity::Warning, ..Self::error(row, column, code) }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

/// A typed cell value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Contract(ContractNumber),
    Enterprise(EnterpriseNumber),
    Niss(Niss),
    Date(Date),
    /// EUR cents.
    Cents(i64),
    /// Per ten thousand (0.8 → 8000).
    Rate(i64),
    Choice(String),
    Login(crate::domain::Login),
    Email(crate::domain::EmailAddress),
    Contracts(crate::domain::Scope),
    /// A parsed OpenSSH public key line.
    PublicKey(String),
}

impl Value {
    /// The value as a person reads it in a report (national numbers masked).
    pub fn shown(&self) -> String {
        match self {
            Value::Text(t) | Value::Choice(t) => t.clone(),
            Value::Contract(c) => c.to_string(),
            Value::Enterprise(e) => e.to_string(),
            Value::Niss(n) => n.masked(),
            Value::Date(d) => format_date(*d),
            Value::Cents(c) => format!("{}.{:02}", c / 100, c % 100),
            Value::Rate(r) => format!("{}", *r as f64 / 10_000.0),
            Value::Login(l) => l.to_string(),
            Value::Email(e) => e.to_string(),
            Value::Contracts(s) => s.to_string(),
            Value::PublicKey(k) => k.chars().take(40).collect(),
        }
    }
}

pub fn format_date(date: Date) -> String {
    format!("{:02}/{:02}/{}", date.day(), u8::from(date.month()), date.year())
}

/// A data row with its typed values, by column key.
#[derive(Debug, Clone)]
pub struct ValidRow {
    pub number: u32,
    /// Keyed by column key; the keys are shared by every row of a file, not copied into each.
    pub values: BTreeMap<Arc<str>, Value>,
}

impl ValidRow {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::Text(t) | Value::Choice(t)) => Some(t),
            _ => None,
        }
    }

    pub fn date(&self, key: &str) -> Option<Date> {
        match self.values.get(key) {
            Some(Value::Date(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn niss(&self, key: &str) -> Option<&Niss> {
        match self.values.get(key) {
            Some(Value::Niss(n)) => Some(n),
            _ => None,
        }
    }
}

/// An affiliate the registry holds as active in the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAffiliate {
    pub last_name: String,
    pub first_name: String,
    pub affiliation_date: Date,
}

/// What validation needs to know from the registry.
#[derive(Debug, Clone)]
pub struct RegistryFacts {
    /// The contract of the folder the file was sent into (`None`: a file of no contract).
    pub folder_contract: Option<ContractNumber>,
    pub employer: EnterpriseNumber,
    pub categories: BTreeSet<String>,
    /// Active affiliates by national number (11 digits).
    pub active: HashMap<String, ActiveAffiliate>,
    pub today: Date,
}

/// The header row, the data rows with their typed values, and every finding.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub header_row: Option<u32>,
    /// Index of the header row in the sheet, and the position of each matched column.
    pub header_index: Option<usize>,
    pub positions: HashMap<String, usize>,
    pub rows: Vec<ValidRow>,
    pub data_rows: usize,
    pub findings: Vec<Finding>,
}

impl Validation {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    /// How many errors of each code, by code.
    pub fn error_codes(&self) -> Vec<(&'static str, i64)> {
        let mut counts = std::collections::BTreeMap::new();
        for finding in self.findings.iter().filter(|f| f.severity == Severity::Error) {
            *counts.entry(finding.code.as_str()).or_insert(0_i64) += 1;
        }
        counts.into_iter().collect()
    }
}

pub use super::headers::normalise;

/// A cell as trimmed text; `None` when empty.
pub fn cell_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Empty => None,
        Cell::Text(t) => {
            let trimmed = t.trim();
            (!trimmed.is_empty()).then(|| trimmed.to_string())
        }
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
        Cell::Number(n) => Some(n.to_string()),
        Cell::Bool(b) => Some(b.to_string()),
        Cell::Date(d) => Some(format_date(*d)),
        Cell::Error(e) => Some(format!("#{e}")),
        Cell::TooLong { characters } => Some(format!("[{characters} characters]")),
    }
}

/// Maps header cells to schema columns. Returns the column index of each key.
fn match_headers(
    schema: &Schema,
    sheet: &Sheet,
    findings: &mut Vec<Finding>,
) -> Option<(usize, BTreeMap<String, usize>)> {
    let recognise = |cell: &Cell| match cell_text(cell) {
        Some(text) => schema.headers.recognise(&text),
        None => Recognition::Unknown,
    };
    let (index, _) = sheet
        .rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .enumerate()
        .map(|(i, row)| (i, row.cells.iter().filter(|c| recognise(c) != Recognition::Unknown).count()))
        .filter(|(_, matches)| *matches > 0)
        .max_by_key(|(i, matches)| (*matches, std::cmp::Reverse(*i)))?;
    let header = &sheet.rows[index];
    let mut positions: BTreeMap<String, usize> = BTreeMap::new();
    let mut matched_by: BTreeMap<&str, String> = BTreeMap::new();
    let mut named_in_ambiguity: BTreeSet<&str> = BTreeSet::new();
    let mut unknown: Vec<String> = Vec::new();
    for (position, cell) in header.cells.iter().enumerate() {
        let Some(text) = cell_text(cell) else {
            continue;
        };
        match schema.headers.recognise(&text) {
            Recognition::Column(found) => {
                let key = schema.columns[found].key.as_str();
                if let Some(first) = matched_by.get(key) {
                    findings.push(
                        Finding::error(Some(header.number), Some(key), FindingCode::DuplicateColumn)
                            .with("column", key)
                            .with("first", first.clone())
                            .with("second", text),
                    );
                } else {
                    positions.insert(key.to_string(), position);
                    matched_by.insert(key, text);
                }
            }
            Recognition::Ambiguous(found) => {
                let keys: Vec<&str> = found.iter().map(|&i| schema.columns[i].key.as_str()).collect();
                named_in_ambiguity.extend(keys.iter().copied());
                findings.push(
                    Finding::error(Some(header.number), None, FindingCode::AmbiguousColumn)
                        .with("header", text)
                        .with("columns", keys.join(", ")),
                );
            }
            Recognition::Unknown => unknown.push(text),
        }
    }
    let missing: Vec<usize> = (0..schema.columns.len())
        .filter(|&i| {
            let column = &schema.columns[i];
            column.required && !positions.contains_key(&column.key) && !named_in_ambiguity.contains(column.key.as_str())
        })
        .collect();
    // The closest unknown header is proposed for a missing column, each header at most once.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for &column in &missing {
        for (candidate, text) in unknown.iter().enumerate() {
            let closeness = schema.headers.closeness(column, text);
            if closeness >= SUGGESTION_THRESHOLD {
                pairs.push((closeness, column, candidate));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut suggestions: HashMap<usize, usize> = HashMap::new();
    let mut proposed: BTreeSet<usize> = BTreeSet::new();
    for (_, column, candidate) in pairs {
        if !suggestions.contains_key(&column) && !proposed.contains(&candidate) {
            suggestions.insert(column, candidate);
            proposed.insert(candidate);
        }
    }
    // An unknown header proposed for a missing column is said once, in that error.
    for (candidate, text) in unknown.iter().enumerate() {
        if !proposed.contains(&candidate) {
            findings.push(
                Finding::warning(Some(header.number), None, FindingCode::UnknownColumn).with("header", text.clone()),
            );
        }
    }
    for column_index in missing {
        let column = &schema.columns[column_index];
        let mut finding = Finding::error(Some(header.number), Some(&column.key), FindingCode::MissingColumn)
            .with("column", column.key.clone())
            .with("headers", column.headers.join(" / "));
        if let Some(&candidate) = suggestions.get(&column_index) {
            finding = finding.with("suggestion", unknown[candidate].clone());
        }
        findings.push(finding);
    }
    Some((index, positions))
}

fn parse_date_text(text: &str) -> Option<Date> {
    let (year, month, day) = if let Some((d, rest)) = text.split_once('/') {
        let (m, y) = rest.split_once('/')?;
        (y, m, d)
    } else {
        let mut parts = text.splitn(3, '-');
        let y = parts.next()?;
        let m = parts.next()?;
        let d = parts.next()?;
        if y.len() != 4 {
            return None;
        }
        (y, m, d)
    };
    if year.len() != 4 || !(1..=2).contains(&month.len()) || !(1..=2).contains(&day.len()) {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// A decimal written with `,` or `.` as decimal separator and spaces, `'` or the other
/// separator as thousands separators; returned scaled by 10^`decimals`, refusing more.
fn parse_decimal(text: &str, decimals: u32) -> Option<i64> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, ' ' | '\u{a0}' | '\'' | '€')).collect();
    let (negative, cleaned) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, cleaned),
    };
    let separator = cleaned.rfind([',', '.']);
    let (whole, fraction) = match separator {
        Some(at) => {
            let fraction = &cleaned[at + 1..];
            // "1.234" with a single dot and three digits would be ambiguous: only the last
            // separator is decimal, earlier ones must be thousands separators.
            (cleaned[..at].replace([',', '.'], ""), fraction.to_string())
        }
        None => (cleaned.clone(), String::new()),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if fraction.len() as u32 > decimals {
        return None;
    }
    let scale = 10i64.checked_pow(decimals)?;
    let whole_value: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction_value: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.checked_pow(decimals - fraction.len() as u32)?
    };
    let value = whole_value.checked_mul(scale)?.checked_add(fraction_value)?;
    Some(if negative { -value } else { value })
}

/// Converts one cell to the column's type, or says what is wrong with it.
fn convert(column: &Column, cell: &Cell) -> Result<Option<Value>, Finding> {
    let key = Some(column.key.as_str());
    let invalid = |detail: String| Finding::error(None, key, FindingCode::InvalidValue).with("detail", detail);
    // The domain's reason is English: the report names what the value should look like instead.
    let invalid_as =
        |shape: &'static str| move |e: crate::domain::InvalidIdentifier| invalid(e.why).with("shape", shape);
    let Some(text) = cell_text(cell) else {
        return Ok(None);
    };
    let value = match &column.column_type {
        ColumnType::Text => Value::Text(text),
        // Codes are compared as people type them: "Employés" is the category EMPLOYES.
        ColumnType::Code => Value::Text(super::headers::without_accents(&text).to_uppercase()),
        ColumnType::ContractNumber => Value::Contract(ContractNumber::parse(&text).map_err(invalid_as("contract"))?),
        ColumnType::EnterpriseNumber => {
            let text = match cell {
                Cell::Number(_) if text.len() < 10 => format!("{text:0>10}"),
                _ => text,
            };
            Value::Enterprise(EnterpriseNumber::parse(&text).map_err(invalid_as("enterprise"))?)
        }
        ColumnType::Niss => {
            // A number cell loses leading zeros: pad back to 11 digits.
            let text = match cell {
                Cell::Number(_) if text.len() < 11 => format!("{text:0>11}"),
                _ => text,
            };
            Value::Niss(Niss::parse(&text).map_err(invalid_as("niss"))?)
        }
        ColumnType::Date => match cell {
            Cell::Date(date) => Value::Date(*date),
            _ => {
                Value::Date(parse_date_text(&text).ok_or_else(|| Finding::error(None, key, FindingCode::InvalidDate))?)
            }
        },
        ColumnType::Amount => {
            let cents = match cell {
                Cell::Number(n) => {
                    let scaled = n * 100.0;
                    if (scaled - scaled.round()).abs() > 1e-6 || !scaled.is_finite() || scaled.abs() > 1e15 {
                        return Err(Finding::error(None, key, FindingCode::InvalidAmount));
                    }
                    scaled.round() as i64
                }
                _ => parse_decimal(&text, 2).ok_or_else(|| Finding::error(None, key, FindingCode::InvalidAmount))?,
            };
            Value::Cents(cents)
        }
        ColumnType::Rate => {
            let bad = || Finding::error(None, key, FindingCode::InvalidRate);
            let per_ten_thousand = match cell {
                Cell::Number(n) if n.is_finite() && (0.0..=1.0).contains(n) => (n * 10_000.0).round() as i64,
                Cell::Number(_) => return Err(bad()),
                // "80%" read with two decimals is 8000 per ten thousand: the same scale.
                _ => match text.strip_suffix('%') {
                    Some(percent) => parse_decimal(percent.trim(), 2).ok_or_else(bad)?,
                    None => parse_decimal(&text, 4).ok_or_else(bad)?,
                },
            };
            Value::Rate(per_ten_thousand)
        }
        ColumnType::Login => Value::Login(crate::domain::Login::parse(&text).map_err(invalid_as("login"))?),
        ColumnType::Email => Value::Email(crate::domain::EmailAddress::parse(&text).map_err(invalid_as("email"))?),
        ColumnType::Contracts => Value::Contracts(crate::domain::Scope::parse(&text).map_err(invalid_as("contracts"))?),
        ColumnType::PublicKey => {
            let key = crate::domain::SshPublicKey::parse(&text).map_err(invalid_as("public-key"))?;
            Value::PublicKey(key.openssh())
        }
        ColumnType::Enum(values) => {
            let wanted = normalise(&text);
            let found = values.iter().find(|v| v.is_named_by(&wanted));
            match found {
                Some(choice) => Value::Choice(choice.value.clone()),
                None => {
                    let allowed: Vec<&str> = values.iter().map(|v| v.value.as_str()).collect();
                    return Err(Finding::error(None, key, FindingCode::InvalidChoice)
                        .with("value", text.chars().take(40).collect::<String>())
                        .with("allowed", allowed.join(", ")));
                }
            }
        }
    };
    if let (Some(limit), Value::Text(text)) = (column.max_length, &value) {
        if text.chars().count() > limit {
            return Err(Finding::error(None, key, FindingCode::TooLong).with("limit", limit.to_string()));
        }
    }
    Ok(Some(value))
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Cents(c) => Some(*c as f64 / 100.0),
        Value::Rate(r) => Some(*r as f64 / 10_000.0),
        _ => None,
    }
}

fn describe_range(min: Option<f64>, max: Option<f64>, min_exclusive: bool, max_exclusive: bool) -> String {
    let mut parts = Vec::new();
    if let Some(min) = min {
        parts.push(format!("{} {min}", if min_exclusive { ">" } else { ">=" }));
    }
    if let Some(max) = max {
        parts.push(format!("{} {max}", if max_exclusive { "<" } else { "<=" }));
    }
    // Symbols only: the range is read in every language.
    parts.join(", ")
}

/// Whether one of the first rows of the sheet names every required column of the schema:
/// a file refused for missing columns may have been sent into the wrong folder.
pub fn names_every_required_column(schema: &Schema, sheet: &Sheet) -> bool {
    sheet.rows.iter().take(HEADER_SEARCH_ROWS).any(|row| {
        let named: BTreeSet<usize> = row
            .cells
            .iter()
            .filter_map(|cell| match schema.headers.recognise(&cell_text(cell)?) {
                Recognition::Column(index) => Some(index),
                _ => None,
            })
            .collect();
        schema.columns.iter().enumerate().all(|(index, column)| !column.required || named.contains(&index))
    })
}

/// Validates a whole sheet. Rows before the header are ignored; empty rows are skipped.
pub fn validate(schema: &Schema, sheet: &Sheet, facts: &RegistryFacts) -> Validation {
    let mut findings = Vec::new();
    let Some((header_index, positions)) = match_headers(schema, sheet, &mut findings) else {
        let expected: Vec<&str> = schema.columns.iter().filter(|c| c.required).map(|c| c.key.as_str()).collect();
        findings.push(Finding::error(None, None, FindingCode::HeaderNotFound).with("expected", expected.join(", ")));
        return Validation { findings, ..Validation::default() };
    };
    let header_row = sheet.rows[header_index].number;
    if findings.iter().any(|f| f.severity == Severity::Error) {
        return Validation {
            header_row: Some(header_row),
            header_index: Some(header_index),
            positions: positions.into_iter().collect(),
            findings,
            ..Validation::default()
        };
    }
    let keys: Vec<Arc<str>> = schema.columns.iter().map(|column| Arc::from(column.key.as_str())).collect();
    let mut rows = Vec::new();
    let mut first_seen: HashMap<String, u32> = HashMap::new();
    let mut data_rows = 0usize;
    for row in &sheet.rows[header_index + 1..] {
        if row.cells.iter().all(|c| cell_text(c).is_none()) {
            continue;
        }
        // The grey example row of a blank template, left in: said, and not read as a person.
        if row.cells.iter().any(|c| matches!(c, Cell::Text(t) if is_example_marker(t))) {
            findings.push(Finding::warning(Some(row.number), None, FindingCode::ExampleRow));
            continue;
        }
        data_rows += 1;
        for (position, cell) in row.cells.iter().enumerate() {
            if let Cell::TooLong { characters } = cell {
                let column = positions.iter().find(|(_, p)| **p == position).map(|(key, _)| key.as_str());
                findings.push(
                    Finding::error(Some(row.number), column, FindingCode::CellTooLong)
                        .with("characters", characters.to_string())
                        .with("limit", MAX_CELL_CHARACTERS.to_string()),
                );
            }
        }
        let mut values = BTreeMap::new();
        for (column, key) in schema.columns.iter().zip(&keys) {
            let Some(&position) = positions.get(&column.key) else {
                continue;
            };
            let cell = row.cells.get(position).unwrap_or(&Cell::Empty);
            if matches!(cell, Cell::TooLong { .. }) {
                continue;
            }
            match convert(column, cell) {
                Ok(Some(value)) => {
                    values.insert(Arc::clone(key), value);
                }
                Ok(None) if column.required => {
                    findings.push(Finding::error(Some(row.number), Some(&column.key), FindingCode::Required));
                }
                Ok(None) => {}
                Err(mut finding) => {
                    finding.row = Some(row.number);
                    findings.push(finding);
                }
            }
        }
        let valid = ValidRow { number: row.number, values };
        check_rules(schema, &valid, facts, &mut first_seen, &mut findings);
        rows.push(valid);
    }
    if data_rows == 0 {
        findings.push(Finding::error(None, None, FindingCode::EmptyFile));
    }
    findings
        .sort_by_key(|f| (f.row.unwrap_or(0), schema.columns.iter().position(|c| Some(&c.key) == f.column.as_ref())));
    Validation {
        header_row: Some(header_row),
        header_index: Some(header_index),
        positions: positions.into_iter().collect(),
        rows,
        data_rows,
        findings,
    }
}

// Each arm reads as "this rule on this kind of value: check, then report"; folding the checks
// into match guards would move them away from the findings they produce.
#[allow(clippy::collapsible_match)]
fn check_rules(
    schema: &Schema,
    row: &ValidRow,
    facts: &RegistryFacts,
    first_seen: &mut HashMap<String, u32>,
    findings: &mut Vec<Finding>,
) {
    let at = |column: &Column, code| Finding::error(Some(row.number), Some(&column.key), code);
    let warn = |column: &Column, code| Finding::warning(Some(row.number), Some(&column.key), code);
    for column in &schema.columns {
        let value = row.get(&column.key);
        for rule in &column.rules {
            match (rule, value) {
                (Rule::RequiredWhen { column: other, equals }, None) => {
                    if row.text(other) == Some(equals.as_str()) {
                        findings.push(
                            at(column, FindingCode::RequiredWhen)
                                .with("other", other.clone())
                                .with("other_value", equals.clone()),
                        );
                    }
                }
                (_, None) => {}
                (Rule::EqualsFolderContract, Some(Value::Contract(contract))) => {
                    if Some(contract) != facts.folder_contract.as_ref() {
                        findings.push(
                            at(column, FindingCode::ContractMismatch).with("value", contract.to_string()).with(
                                "expected",
                                facts.folder_contract.as_ref().map(ToString::to_string).unwrap_or_default(),
                            ),
                        );
                    }
                }
                (Rule::EmployerOfContract, Some(Value::Enterprise(number))) => {
                    if number != &facts.employer {
                        findings.push(at(column, FindingCode::EmployerMismatch).with("value", number.to_string()));
                    }
                }
                (Rule::UniqueInFile, Some(Value::Niss(niss))) => {
                    if let Some(other) = first_seen.get(niss.reveal()) {
                        findings.push(
                            at(column, FindingCode::DuplicateInFile)
                                .with("niss", niss.masked())
                                .with("other_row", other.to_string()),
                        );
                    } else {
                        first_seen.insert(niss.reveal().to_string(), row.number);
                    }
                }
                (Rule::NotActiveInContract, Some(Value::Niss(niss))) => {
                    if facts.active.contains_key(niss.reveal()) {
                        findings.push(at(column, FindingCode::AlreadyAffiliated).with("niss", niss.masked()));
                    }
                }
                (Rule::ActiveInContract, Some(Value::Niss(niss))) => {
                    if !facts.active.contains_key(niss.reveal()) {
                        findings.push(at(column, FindingCode::NotAffiliated).with("niss", niss.masked()));
                    }
                }
                (Rule::CategoryOfContract, Some(Value::Text(category))) => {
                    if !facts.categories.contains(category) {
                        let known: Vec<&str> = facts.categories.iter().map(String::as_str).collect();
                        let known = if known.is_empty() { "-".to_string() } else { known.join(", ") };
                        findings.push(
                            at(column, FindingCode::UnknownCategory)
                                .with("value", category.clone())
                                .with("allowed", known),
                        );
                    }
                }
                (Rule::MatchesRegistryName, Some(Value::Text(name))) => {
                    let registered = row.niss("niss").and_then(|n| facts.active.get(n.reveal()));
                    if let Some(affiliate) = registered {
                        let expected =
                            if column.key == "first_name" { &affiliate.first_name } else { &affiliate.last_name };
                        if normalise(expected) != normalise(name) {
                            findings.push(warn(column, FindingCode::NameMismatch).with("expected", expected.clone()));
                        }
                    }
                }
                (Rule::NotBeforeAffiliation, Some(Value::Date(date))) => {
                    let registered = row.niss("niss").and_then(|n| facts.active.get(n.reveal()));
                    if let Some(affiliate) = registered {
                        if *date < affiliate.affiliation_date {
                            findings.push(
                                at(column, FindingCode::ExitBeforeAffiliation)
                                    .with("other_value", format_date(affiliate.affiliation_date)),
                            );
                        }
                    }
                }
                (Rule::MatchesNissBirthDate { column: niss_column }, Some(Value::Date(date))) => {
                    if let Some(niss) = row.niss(niss_column) {
                        if niss.is_bis() {
                            findings.push(warn(column, FindingCode::BisNumber).with("niss", niss.masked()));
                        } else {
                            let (month, day) = niss.birth_month_day();
                            let matches = date.year() == niss.birth_year()
                                && month.is_none_or(|m| m == u32::from(u8::from(date.month())))
                                && day.is_none_or(|d| d == u32::from(date.day()));
                            if !matches {
                                findings.push(at(column, FindingCode::BirthDateMismatch).with("niss", niss.masked()));
                            }
                        }
                    }
                }
                (Rule::NotBefore { column: other }, Some(Value::Date(date))) => {
                    if let Some(other_date) = row.date(other) {
                        if *date < other_date {
                            findings.push(
                                at(column, FindingCode::DateBefore)
                                    .with("other", other.clone())
                                    .with("other_value", format_date(other_date)),
                            );
                        }
                    }
                }
                (Rule::NotOlderThanDays { days }, Some(Value::Date(date))) => {
                    if *date < facts.today - Duration::days(*days) {
                        findings.push(warn(column, FindingCode::LateDeclaration).with("days", days.to_string()));
                    }
                }
                (Rule::Range { min, max, min_exclusive, max_exclusive }, Some(value)) => {
                    if let Some(number) = numeric(value) {
                        let below = min.is_some_and(|m| if *min_exclusive { number <= m } else { number < m });
                        let above = max.is_some_and(|m| if *max_exclusive { number >= m } else { number > m });
                        if below || above {
                            findings.push(
                                at(column, FindingCode::OutOfRange)
                                    .with("range", describe_range(*min, *max, *min_exclusive, *max_exclusive)),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;
    use crate::ingest::messages;
    use crate::ingest::read::SheetRow;
    use crate::ingest::schema::Schemas;

    fn facts() -> RegistryFacts {
        RegistryFacts {
            folder_contract: Some(ContractNumber::parse("GP-1001").unwrap()),
            employer: EnterpriseNumber::parse("0403019261").unwrap(),
            categories: ["EMPLOYES".to_string(), "OUVRIERS".to_string()].into_iter().collect(),
            active: HashMap::new(),
            today: Date::from_calendar_date(2026, time::Month::June, 15).unwrap(),
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    fn sheet(rows: Vec<Vec<Cell>>) -> Sheet {
        Sheet {
            rows: rows.into_iter().enumerate().map(|(i, cells)| SheetRow { number: i as u32 + 1, cells }).collect(),
        }
    }

    fn french_header() -> Vec<Cell> {
        [
            "N° de contrat",
            "N° d'entreprise",
            "NISS",
            "Nom",
            "Prénom",
            "Date de naissance",
            "Sexe",
            "Langue",
            "Date d'entrée en service",
            "Date d'affiliation",
            "Catégorie",
            "Statut",
            "Taux d'occupation",
            "Salaire temps plein",
            "Fréquence du salaire",
        ]
        .iter()
        .map(|h| text(h))
        .collect()
    }

    fn good_row() -> Vec<Cell> {
        vec![
            text("GP-1001"),
            text("BE 0403.019.261"),
            Cell::Number(85073003328.0),
            text("Dupont"),
            text("Marie"),
            text("30/07/1985"),
            text("F"),
            text("fr"),
            text("2026-01-01"),
            text("01/02/2026"),
            text("employes"),
            text("Employé"),
            text("80%"),
            text("3.250,50"),
            text("mensuel"),
        ]
    }

    #[test]
    fn a_french_file_with_numbers_stripped_of_zeros_is_valid() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut second = good_row();
        second[2] = Cell::Number(1020312345.0);
        second[5] = Cell::Date(Date::from_calendar_date(2001, time::Month::February, 3).unwrap());
        let result = validate(
            schema,
            &sheet(vec![vec![text("Affiliations 2026")], french_header(), good_row(), second]),
            &facts(),
        );
        assert_eq!(result.errors(), 0, "{:?}", result.findings);
        assert_eq!(result.header_row, Some(2));
        assert_eq!(result.rows.len(), 2);
        let row = &result.rows[0];
        assert_eq!(row.number, 3);
        assert_eq!(row.get("salary_fte"), Some(&Value::Cents(325_050)));
        assert_eq!(row.get("occupation_rate"), Some(&Value::Rate(8000)));
        assert_eq!(row.get("worker_status"), Some(&Value::Choice("WHITE_COLLAR".into())));
        assert_eq!(result.rows[1].niss("niss").unwrap().reveal(), "01020312345");
    }

    #[test]
    fn each_bad_cell_is_named_by_row_column_and_code() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut bad = good_row();
        bad[0] = text("GP-2002");
        bad[2] = text("85073003329");
        bad[9] = text("2025-12-01");
        bad[10] = text("CADRES");
        bad[12] = text("1.5");
        let mut duplicate = good_row();
        duplicate[5] = text("31/07/1985");
        let result = validate(schema, &sheet(vec![french_header(), good_row(), bad, duplicate]), &facts());
        let found: Vec<(Option<u32>, Option<&str>, FindingCode)> =
            result.findings.iter().map(|f| (f.row, f.column.as_deref(), f.code)).collect();
        assert!(found.contains(&(Some(3), Some("contract_number"), FindingCode::ContractMismatch)), "{found:?}");
        assert!(found.contains(&(Some(3), Some("niss"), FindingCode::InvalidValue)), "{found:?}");
        assert!(found.contains(&(Some(3), Some("affiliation_date"), FindingCode::DateBefore)), "{found:?}");
        assert!(found.contains(&(Some(3), Some("category"), FindingCode::UnknownCategory)), "{found:?}");
        assert!(found.contains(&(Some(3), Some("occupation_rate"), FindingCode::OutOfRange)), "{found:?}");
        assert!(found.contains(&(Some(4), Some("niss"), FindingCode::DuplicateInFile)), "{found:?}");
        assert!(found.contains(&(Some(4), Some("birth_date"), FindingCode::BirthDateMismatch)), "{found:?}");
        for finding in &result.findings {
            for (_, value) in &finding.params {
                assert!(!value.contains("85073003328"), "a national number in a message: {value}");
            }
        }
    }

    #[test]
    fn missing_and_unknown_columns_are_reported_by_name() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut header = french_header();
        header.remove(2);
        header.push(text("Remarques"));
        let result = validate(schema, &sheet(vec![header, good_row()]), &facts());
        let codes: Vec<(FindingCode, Option<&str>)> =
            result.findings.iter().map(|f| (f.code, f.column.as_deref())).collect();
        assert!(codes.contains(&(FindingCode::MissingColumn, Some("niss"))), "{codes:?}");
        assert!(codes.contains(&(FindingCode::UnknownColumn, None)), "{codes:?}");
    }

    #[test]
    fn dutch_headers_match_without_case_or_accents() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("exits").unwrap();
        let header: Vec<Cell> = [
            "CONTRACTNUMMER",
            "ondernemingsnummer",
            "Insz",
            "Naam",
            "Voornaam",
            "Uittredingsdatum",
            "Reden van uittreding",
        ]
        .iter()
        .map(|h| text(h))
        .collect();
        let mut facts = facts();
        facts.active.insert(
            "85073003328".into(),
            ActiveAffiliate {
                last_name: "Dupont".into(),
                first_name: "Marie".into(),
                affiliation_date: Date::from_calendar_date(2020, time::Month::January, 1).unwrap(),
            },
        );
        let row = vec![
            text("GP-1001"),
            text("0403019261"),
            text("85.07.30-033.28"),
            text("Dupond"),
            text("Marie"),
            text("01/06/2026"),
            text("overlijden"),
        ];
        let result = validate(schema, &sheet(vec![header, row]), &facts);
        let codes: Vec<FindingCode> = result.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![FindingCode::NameMismatch, FindingCode::RequiredWhen], "{:?}", result.findings);
        assert_eq!(result.errors(), 1);
    }

    fn headers(names: &[&str]) -> Vec<Cell> {
        names.iter().map(|h| text(h)).collect()
    }

    #[test]
    fn the_headers_payroll_bureaus_write_are_accepted() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut french = french_header();
        french[14] = text("Périodicité du salaire");
        let result = validate(schema, &sheet(vec![french, good_row()]), &facts());
        assert_eq!(result.errors(), 0, "{:?}", result.findings);
        let dutch = headers(&[
            "Contractnummer",
            "Ondernemingsnummer",
            "INSZ",
            "Naam",
            "Voornaam",
            "Geboortedatum",
            "Geslacht",
            "Taal",
            "Datum indiensttreding",
            "Aansluitingsdatum",
            "Categorie",
            "Statuut",
            "Tewerkstellingsbreuk",
            "Bruto loon voltijds",
            "Frequentie loon",
        ]);
        let result = validate(schema, &sheet(vec![dutch, good_row()]), &facts());
        assert_eq!(result.errors(), 0, "{:?}", result.findings);
        assert_eq!(result.rows[0].get("salary_fte"), Some(&Value::Cents(325_050)));
        assert_eq!(result.rows[0].get("salary_frequency"), Some(&Value::Choice("MONTHLY".into())));
    }

    #[test]
    fn two_headers_for_one_column_and_one_header_for_two_are_errors_naming_both() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut header = french_header();
        header.push(text("Voltijds brutoloon"));
        let result = validate(schema, &sheet(vec![header, good_row()]), &facts());
        let duplicate = result.findings.iter().find(|f| f.code == FindingCode::DuplicateColumn).unwrap();
        let shown = messages::render(duplicate.code, Language::En, &duplicate.params);
        assert!(shown.contains("Salaire temps plein") && shown.contains("Voltijds brutoloon"), "{shown}");

        let overlapping = Schema::parse(
            r#"
kind = "dates"
version = 1
formats = ["csv"]
action = "affiliate"
title = { en = "Dates", fr = "Dates", nl = "Data" }
[[columns]]
key = "hire_date"
fr = ["Date d'entrée"]
words = ["hire"]
extra_words = ["birth"]
type = "date"
required = true
[[columns]]
key = "birth_date"
fr = ["Date de naissance"]
words = ["birth"]
extra_words = ["hire"]
type = "date"
required = true
"#,
            "dates.toml",
        )
        .unwrap();
        let result =
            validate(&overlapping, &sheet(vec![headers(&["Naissance / entrée"]), vec![text("01/01/2020")]]), &facts());
        let codes: Vec<FindingCode> = result.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![FindingCode::AmbiguousColumn], "{:?}", result.findings);
        let shown = messages::render(FindingCode::AmbiguousColumn, Language::Nl, &result.findings[0].params);
        assert!(shown.contains("hire_date, birth_date") && shown.contains("Naissance / entrée"), "{shown}");
    }

    #[test]
    fn a_missing_column_proposes_the_closest_unknown_header() {
        let schemas = Schemas::embedded().unwrap();
        let schema = schemas.for_kind("affiliations").unwrap();
        let mut header = french_header();
        header[5] = text("Date de naisance");
        header.push(text("Remarques"));
        let result = validate(schema, &sheet(vec![header, good_row()]), &facts());
        let missing = result.findings.iter().find(|f| f.code == FindingCode::MissingColumn).unwrap();
        assert_eq!(missing.column.as_deref(), Some("birth_date"));
        let shown = messages::render(missing.code, Language::Fr, &missing.params);
        assert!(shown.contains("vouliez-vous dire « Date de naisance » pour birth_date"), "{shown}");
        assert_eq!(
            result.findings.iter().filter(|f| f.code == FindingCode::MissingColumn).count(),
            1,
            "{:?}",
            result.findings
        );
    }

    #[test]
    fn decimals_and_dates_are_read_strictly() {
        assert_eq!(parse_decimal("3.250,50", 2), Some(325_050));
        assert_eq!(parse_decimal("3 250.5", 2), Some(325_050));
        assert_eq!(parse_decimal("12.345", 2), None);
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(parse_date_text("30/07/1985").map(format_date), Some("30/07/1985".into()));
        assert_eq!(parse_date_text("1985-07-30").map(format_date), Some("30/07/1985".into()));
        assert_eq!(parse_date_text("31/02/2026"), None);
        assert_eq!(parse_date_text("07/30/85"), None);
        assert_eq!(normalise("  N° d'Entrée "), "n d entree");
    }
}
