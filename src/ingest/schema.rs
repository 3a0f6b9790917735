//! Upload schemas: one TOML file per kind and version in `schemas/`, declaring the columns of
//! a spreadsheet (English key, French and Dutch header aliases, type, required flag, rules,
//! enumerations). Loaded and checked at start-up: a broken schema stops it, naming the file and
//! the field. Pure: no I/O beyond reading the files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::{KindName, Language};

use super::headers::{ColumnWords, HeaderMatcher, Vocabulary};

/// The schemas built into the binary.
pub const EMBEDDED_SCHEMAS: &[(&str, &str)] = &[
    ("affiliations.v1.toml", include_str!("../../schemas/affiliations.v1.toml")),
    ("exits.v1.toml", include_str!("../../schemas/exits.v1.toml")),
    ("user-sheet.v1.toml", include_str!("../../schemas/user-sheet.v1.toml")),
    ("annual-adjustment.v1.toml", include_str!("../../schemas/annual-adjustment.v1.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read the schema folder {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("schema {file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    kind: String,
    version: u32,
    formats: Vec<String>,
    action: String,
    title: BTreeMap<String, String>,
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    key: String,
    #[serde(default)]
    fr: Vec<String>,
    #[serde(default)]
    nl: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
    /// Further sets of meanings that name the column (schemas/vocabulary.toml).
    #[serde(default)]
    words: Vec<String>,
    /// Meanings a header of this column may add.
    #[serde(default)]
    extra_words: Vec<String>,
    #[serde(rename = "type")]
    column_type: String,
    required: bool,
    max_length: Option<usize>,
    #[serde(default)]
    values: Vec<RawEnumValue>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnumValue {
    value: String,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    rule: String,
    column: Option<String>,
    equals: Option<String>,
    min: Option<String>,
    max: Option<String>,
    #[serde(default)]
    min_exclusive: bool,
    #[serde(default)]
    max_exclusive: bool,
    days: Option<i64>,
}

/// File formats a schema accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileFormat {
    Xlsx,
    Xls,
    Ods,
    Csv,
}

impl FileFormat {
    pub fn from_extension(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "xlsx" | "xlsm" => Some(Self::Xlsx),
            "xls" => Some(Self::Xls),
            "ods" => Some(Self::Ods),
            "csv" | "txt" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Xls => "xls",
            Self::Ods => "ods",
            Self::Csv => "csv",
        }
    }
}

/// What an accepted file does to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Affiliate,
    Exit,
    /// Not an upload into a contract inbox: applied to the organisation's users.
    UserSheet,
    /// The return of an annual-adjustment template: checked against the template it came from.
    AnnualAdjustment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    pub value: String,
    pub aliases: Vec<String>,
    /// The value and its aliases in the form cells are compared in, folded once here rather
    /// than for every cell of a file.
    folded: Vec<String>,
}

impl EnumValue {
    pub fn new(value: String, aliases: Vec<String>) -> Self {
        let folded = std::iter::once(&value).chain(&aliases).map(|text| super::headers::normalise(text)).collect();
        Self { value, aliases, folded }
    }

    /// Whether a cell's folded text names this value or one of its aliases.
    pub fn is_named_by(&self, folded_text: &str) -> bool {
        self.folded.iter().any(|folded| folded == folded_text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// Free text, trimmed.
    Text,
    /// An upper-case code (a category).
    Code,
    ContractNumber,
    EnterpriseNumber,
    Niss,
    Date,
    /// EUR, at most 2 decimals.
    Amount,
    /// A decimal 0–1 or a percentage.
    Rate,
    Enum(Vec<EnumValue>),
    Login,
    Email,
    /// ALL, or contract numbers separated by `;` or `,`.
    Contracts,
    /// An OpenSSH public key line.
    PublicKey,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    EqualsFolderContract,
    EmployerOfContract,
    UniqueInFile,
    NotActiveInContract,
    ActiveInContract,
    CategoryOfContract,
    MatchesRegistryName,
    NotBeforeAffiliation,
    MatchesNissBirthDate { column: String },
    NotBefore { column: String },
    RequiredWhen { column: String, equals: String },
    NotOlderThanDays { days: i64 },
    Range { min: Option<f64>, max: Option<f64>, min_exclusive: bool, max_exclusive: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub key: String,
    /// Key and aliases, as written in the schema.
    pub headers: Vec<String>,
    /// The aliases per language, the first one being the header templates are written with.
    pub fr: Vec<String>,
    pub nl: Vec<String>,
    pub en: Vec<String>,
    pub column_type: ColumnType,
    pub required: bool,
    pub max_length: Option<usize>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub kind: KindName,
    pub version: u32,
    pub formats: Vec<FileFormat>,
    pub action: Action,
    pub titles: BTreeMap<String, String>,
    pub columns: Vec<Column>,
    /// Recognises header cells as these columns (in the same order).
    pub headers: HeaderMatcher,
}

impl Schema {
    pub fn parse(text: &str, file: &str) -> Result<Self, SchemaError> {
        let invalid = |message: String| SchemaError::Invalid { file: file.to_string(), message };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.message().to_string()))?;
        let raw: RawSchema = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(format!("field `{}`: {}", e.path(), e.inner().message())))?;
        let kind = KindName::parse(&raw.kind).map_err(|e| invalid(format!("field `kind`: {e}")))?;
        let formats = raw
            .formats
            .iter()
            .map(|f| {
                FileFormat::from_extension(&format!(".{f}")).ok_or_else(|| {
                    invalid(format!("field `formats`: unknown format {f:?} (allowed: xlsx, xls, ods, csv)"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let action = match raw.action.as_str() {
            "affiliate" => Action::Affiliate,
            "exit" => Action::Exit,
            "user-sheet" => Action::UserSheet,
            "annual-adjustment" => Action::AnnualAdjustment,
            other => return Err(invalid(format!("field `action`: {other:?} (allowed: affiliate, exit, user-sheet)"))),
        };
        for language in ["en", "fr", "nl"] {
            if !raw.title.contains_key(language) {
                return Err(invalid(format!("field `title`: the {language} title is missing")));
            }
        }
        let mut columns: Vec<Column> = Vec::new();
        let mut words: Vec<ColumnWords> = Vec::new();
        for (index, raw_column) in raw.columns.into_iter().enumerate() {
            let at = |field: &str| format!("field `columns[{index}].{field}`");
            if raw_column.key.is_empty() || !raw_column.key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(invalid(format!("{}: keys are lower-case words joined by _", at("key"))));
            }
            if columns.iter().any(|c| c.key == raw_column.key) {
                return Err(invalid(format!("{}: column {} is declared twice", at("key"), raw_column.key)));
            }
            let column_type = match raw_column.column_type.as_str() {
                "text" => ColumnType::Text,
                "code" => ColumnType::Code,
                "contract_number" => ColumnType::ContractNumber,
                "enterprise_number" => ColumnType::EnterpriseNumber,
                "niss" => ColumnType::Niss,
                "date" => ColumnType::Date,
                "amount" => ColumnType::Amount,
                "rate" => ColumnType::Rate,
                "login" => ColumnType::Login,
                "email" => ColumnType::Email,
                "contracts" => ColumnType::Contracts,
                "public_key" => ColumnType::PublicKey,
                "enum" => {
                    if raw_column.values.is_empty() {
                        return Err(invalid(format!("{}: an enum needs values", at("values"))));
                    }
                    ColumnType::Enum(
                        raw_column
                            .values
                            .into_iter()
                            .map(|v| EnumValue::new(v.value, v.aliases))
                            .collect(),
                    )
                }
                other => {
                    return Err(invalid(format!(
                        "{}: unknown type {other:?} (allowed: text, code, contract_number, enterprise_number, niss, date, amount, rate, enum, login, email, contracts, public_key)",
                        at("type")
                    )))
                }
            };
            let mut rules = Vec::new();
            for (rule_index, raw_rule) in raw_column.rules.into_iter().enumerate() {
                let at = |field: &str| format!("field `columns[{index}].rules[{rule_index}].{field}`");
                let needs_column = |r: &RawRule| {
                    r.column.clone().ok_or_else(|| invalid(format!("{}: this rule needs `column`", at("column"))))
                };
                let bound = |text: &Option<String>, field: &str| -> Result<Option<f64>, SchemaError> {
                    text.as_deref()
                        .map(|t| t.parse::<f64>().map_err(|_| invalid(format!("{}: {t:?} is not a number", at(field)))))
                        .transpose()
                };
                let rule = match raw_rule.rule.as_str() {
                    "equals_folder_contract" => Rule::EqualsFolderContract,
                    "employer_of_contract" => Rule::EmployerOfContract,
                    "unique_in_file" => Rule::UniqueInFile,
                    "not_active_in_contract" => Rule::NotActiveInContract,
                    "active_in_contract" => Rule::ActiveInContract,
                    "category_of_contract" => Rule::CategoryOfContract,
                    "matches_registry_name" => Rule::MatchesRegistryName,
                    "not_before_affiliation" => Rule::NotBeforeAffiliation,
                    "matches_niss_birth_date" => Rule::MatchesNissBirthDate { column: needs_column(&raw_rule)? },
                    "not_before" => Rule::NotBefore { column: needs_column(&raw_rule)? },
                    "required_when" => Rule::RequiredWhen {
                        column: needs_column(&raw_rule)?,
                        equals: raw_rule
                            .equals
                            .clone()
                            .ok_or_else(|| invalid(format!("{}: required_when needs `equals`", at("equals"))))?,
                    },
                    "not_older_than_days" => Rule::NotOlderThanDays {
                        days: raw_rule
                            .days
                            .ok_or_else(|| invalid(format!("{}: this rule needs `days`", at("days"))))?,
                    },
                    "range" => Rule::Range {
                        min: bound(&raw_rule.min, "min")?,
                        max: bound(&raw_rule.max, "max")?,
                        min_exclusive: raw_rule.min_exclusive,
                        max_exclusive: raw_rule.max_exclusive,
                    },
                    other => return Err(invalid(format!("{}: unknown rule {other:?}", at("rule")))),
                };
                rules.push(rule);
            }
            let mut headers = vec![raw_column.key.clone()];
            headers.extend(raw_column.fr.iter().cloned());
            headers.extend(raw_column.nl.iter().cloned());
            headers.extend(raw_column.en.iter().cloned());
            let choices = match &column_type {
                ColumnType::Enum(values) => values
                    .iter()
                    .flat_map(|v| std::iter::once(v.value.clone()).chain(v.aliases.iter().cloned()))
                    .collect(),
                _ => Vec::new(),
            };
            words.push(ColumnWords {
                key: raw_column.key.clone(),
                aliases: headers.clone(),
                words: raw_column.words,
                extra_words: raw_column.extra_words,
                choices,
            });
            columns.push(Column {
                key: raw_column.key,
                headers,
                fr: raw_column.fr,
                nl: raw_column.nl,
                en: raw_column.en,
                column_type,
                required: raw_column.required,
                max_length: raw_column.max_length,
                rules,
            });
        }
        // Rules that name another column must name a declared one.
        for column in &columns {
            for rule in &column.rules {
                let other = match rule {
                    Rule::MatchesNissBirthDate { column }
                    | Rule::NotBefore { column }
                    | Rule::RequiredWhen { column, .. } => Some(column),
                    _ => None,
                };
                if let Some(other) = other {
                    if !columns.iter().any(|c| &c.key == other) {
                        return Err(invalid(format!("column {}: a rule names the unknown column {other}", column.key)));
                    }
                }
            }
        }
        if columns.is_empty() {
            return Err(invalid("field `columns`: a schema needs columns".into()));
        }
        let vocabulary = Vocabulary::embedded().map_err(|e| invalid(e.to_string()))?;
        let headers = HeaderMatcher::new(vocabulary, &words).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { kind, version: raw.version, formats, action, titles: raw.title, columns, headers })
    }

    pub fn column(&self, key: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.key == key)
    }

    /// The header a person reads for a column in a language (the first alias, else the
    /// French one); `None` for a key the schema does not have.
    pub fn header_in(&self, key: &str, language: Language) -> Option<String> {
        let column = self.column(key)?;
        let aliases = match language {
            Language::Fr => &column.fr,
            Language::Nl => &column.nl,
            Language::En => &column.en,
        };
        Some(aliases.first().or(column.fr.first()).cloned().unwrap_or_else(|| column.key.clone()))
    }

    /// The title of the kind in a language.
    pub fn title(&self, language: Language) -> &str {
        self.titles.get(language.as_str()).map(String::as_str).unwrap_or(self.kind.as_str())
    }
}

/// The schemas in force, by upload kind (the highest version of each kind).
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    by_kind: BTreeMap<String, Schema>,
}

impl Schemas {
    pub fn embedded() -> Result<Self, SchemaError> {
        Self::from_files(EMBEDDED_SCHEMAS.iter().map(|(name, text)| (name.to_string(), text.to_string())))
    }

    /// Every `*.toml` file of a folder.
    pub fn from_dir(dir: &Path) -> Result<Self, SchemaError> {
        let read_error = |source| SchemaError::Read { path: dir.to_path_buf(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| SchemaError::Read { path: path.clone(), source })?;
                files.push((path.display().to_string(), text));
            }
        }
        Self::from_files(files)
    }

    fn from_files(files: impl IntoIterator<Item = (String, String)>) -> Result<Self, SchemaError> {
        let mut by_kind: BTreeMap<String, Schema> = BTreeMap::new();
        for (file, text) in files {
            let schema = Schema::parse(&text, &file)?;
            let newer = by_kind.get(schema.kind.as_str()).is_none_or(|current| current.version < schema.version);
            if newer {
                by_kind.insert(schema.kind.to_string(), schema);
            }
        }
        Ok(Self { by_kind })
    }

    pub fn for_kind(&self, kind: &str) -> Option<&Schema> {
        self.by_kind.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.by_kind.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schemas_load() {
        let schemas = Schemas::embedded().unwrap();
        let affiliations = schemas.for_kind("affiliations").unwrap();
        assert_eq!(affiliations.action, Action::Affiliate);
        assert!(affiliations.column("niss").unwrap().headers.contains(&"INSZ".to_string()));
        assert!(schemas.for_kind("exits").is_some());
    }

    #[test]
    fn a_broken_schema_names_its_file_and_field() {
        let text = include_str!("../../schemas/exits.v1.toml").replace("type = \"date\"", "type = \"datum\"");
        let message = Schema::parse(&text, "exits.v1.toml").unwrap_err().to_string();
        assert!(
            message.contains("exits.v1.toml") && message.contains("type") && message.contains("datum"),
            "{message}"
        );
        let text =
            include_str!("../../schemas/exits.v1.toml").replace("rule = \"active_in_contract\"", "rule = \"is_nice\"");
        let message = Schema::parse(&text, "exits.v1.toml").unwrap_err().to_string();
        assert!(message.contains("rules[1].rule") && message.contains("is_nice"), "{message}");
        let text = include_str!("../../schemas/exits.v1.toml").replace("required = true", "requird = true");
        let message = Schema::parse(&text, "x.toml").unwrap_err().to_string();
        assert!(message.contains("requird"), "{message}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A schema file damaged anywhere (a byte changed, a run cut out) loads or is refused
        /// with an error: never a panic.
        #[test]
        fn fuzz_a_damaged_schema_loads_or_is_refused(at in 0usize..20_000, cut in 0usize..64, byte in proptest::prelude::any::<u8>()) {
            let text = include_str!("../../schemas/affiliations.v1.toml");
            let mut bytes = text.as_bytes().to_vec();
            let at = at % bytes.len();
            bytes[at] = byte;
            let end = (at + cut).min(bytes.len());
            bytes.drain(at..end);
            let _ = Schema::parse(&String::from_utf8_lossy(&bytes), "fuzzed.toml");
        }
    }
}
