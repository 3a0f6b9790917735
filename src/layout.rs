//! The folder layout: names of the per-contract areas and the kinds exchanged in them, read
//! from `config/layout.toml`. Kinds are data: adding one is a configuration change.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::KindName;

/// The layout built into the binary.
pub const EMBEDDED_LAYOUT: &str = include_str!("../config/layout.toml");

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read the layout file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layout {origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    folders: RawFolders,
    document_kinds: Vec<RawKind>,
    upload_kinds: Vec<RawKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFolders {
    documents: String,
    inbox: String,
    results: String,
    #[serde(default = "default_templates_folder")]
    templates: String,
    #[serde(default = "default_test_folder")]
    test: String,
}

fn default_templates_folder() -> String {
    "templates".into()
}

fn default_test_folder() -> String {
    "test".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    name: String,
    #[serde(default)]
    per_year: bool,
}

/// A kind of document the insurer publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentKind {
    pub name: KindName,
    /// Documents of this kind sit in one sub-folder per year.
    pub per_year: bool,
}

/// The areas of a contract folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Documents,
    Inbox,
    Results,
    /// Blank workbooks to start an upload from, generated from the schemas.
    Templates,
    /// Uploads checked like the inbox's, reported, and applied to nothing.
    Test,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub documents_folder: KindName,
    pub inbox_folder: KindName,
    pub results_folder: KindName,
    pub templates_folder: KindName,
    pub test_folder: KindName,
    pub document_kinds: Vec<DocumentKind>,
    pub upload_kinds: Vec<KindName>,
}

impl Layout {
    /// Where an upload sits in the virtual tree: its inbox, or the test folder.
    pub fn upload_path(&self, contract: impl std::fmt::Display, kind: &str, file_name: &str, test: bool) -> String {
        let area = if test { &self.test_folder } else { &self.inbox_folder };
        format!("/{contract}/{area}/{kind}/{file_name}")
    }

    pub fn embedded() -> Result<Self, LayoutError> {
        Self::parse(EMBEDDED_LAYOUT, "built into the binary")
    }

    pub fn from_file(path: &Path) -> Result<Self, LayoutError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| LayoutError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, LayoutError> {
        let invalid = |message: String| LayoutError::Invalid { origin: origin.to_string(), message };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.message().to_string()))?;
        let raw: RawLayout = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(format!("key `{}`: {}", e.path(), e.inner().message())))?;
        let name = |key: &str, value: &str| KindName::parse(value).map_err(|e| invalid(format!("key `{key}`: {e}")));
        let documents_folder = name("folders.documents", &raw.folders.documents)?;
        let inbox_folder = name("folders.inbox", &raw.folders.inbox)?;
        let results_folder = name("folders.results", &raw.folders.results)?;
        let templates_folder = name("folders.templates", &raw.folders.templates)?;
        let test_folder = name("folders.test", &raw.folders.test)?;
        let all = [&documents_folder, &inbox_folder, &results_folder, &templates_folder, &test_folder];
        if all.iter().enumerate().any(|(i, a)| all[i + 1..].contains(a)) {
            return Err(invalid(
                "the folders documents, inbox, results, templates and test need five different names".into(),
            ));
        }
        let mut document_kinds: Vec<DocumentKind> = Vec::new();
        for kind in &raw.document_kinds {
            let parsed = name("document_kinds.name", &kind.name)?;
            if document_kinds.iter().any(|k| k.name == parsed) {
                return Err(invalid(format!("document kind {parsed} is listed twice")));
            }
            document_kinds.push(DocumentKind { name: parsed, per_year: kind.per_year });
        }
        let mut upload_kinds: Vec<KindName> = Vec::new();
        for kind in &raw.upload_kinds {
            let parsed = name("upload_kinds.name", &kind.name)?;
            if kind.per_year {
                return Err(invalid(format!("upload kind {parsed}: per_year applies to document kinds only")));
            }
            if upload_kinds.contains(&parsed) {
                return Err(invalid(format!("upload kind {parsed} is listed twice")));
            }
            upload_kinds.push(parsed);
        }
        Ok(Self {
            documents_folder,
            inbox_folder,
            results_folder,
            templates_folder,
            test_folder,
            document_kinds,
            upload_kinds,
        })
    }

    /// The area a folder name designates inside a contract folder.
    pub fn area(&self, folder: &str) -> Option<Area> {
        if folder == self.documents_folder.as_str() {
            Some(Area::Documents)
        } else if folder == self.inbox_folder.as_str() {
            Some(Area::Inbox)
        } else if folder == self.results_folder.as_str() {
            Some(Area::Results)
        } else if folder == self.templates_folder.as_str() {
            Some(Area::Templates)
        } else if folder == self.test_folder.as_str() {
            Some(Area::Test)
        } else {
            None
        }
    }

    pub fn area_folder(&self, area: Area) -> &KindName {
        match area {
            Area::Documents => &self.documents_folder,
            Area::Inbox => &self.inbox_folder,
            Area::Results => &self.results_folder,
            Area::Templates => &self.templates_folder,
            Area::Test => &self.test_folder,
        }
    }

    pub fn document_kind(&self, name: &str) -> Option<&DocumentKind> {
        self.document_kinds.iter().find(|k| k.name.as_str() == name)
    }

    pub fn upload_kind(&self, name: &str) -> Option<&KindName> {
        self.upload_kinds.iter().find(|k| k.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_layout_has_the_kinds_of_the_architecture() {
        let layout = Layout::embedded().unwrap();
        assert_eq!(layout.area("inbox"), Some(Area::Inbox));
        assert!(layout.document_kind("pension-sheets").unwrap().per_year);
        assert!(!layout.document_kind("invoices").unwrap().per_year);
        assert!(layout.upload_kind("affiliations").is_some());
        assert!(layout.upload_kind("pension-sheets").is_none());
    }

    #[test]
    fn a_broken_layout_names_what_is_wrong() {
        let text = "document_kinds=[]\nupload_kinds=[]\n[folders]\ndocuments='d'\ninbox='d'\nresults='r'\n";
        assert!(Layout::parse(text, "t").unwrap_err().to_string().contains("five different"));
        let text = "[folders]\ndocuments='d'\ninbox='i'\nresults='r'\n[[document_kinds]]\nname='Bad Name'\n[[upload_kinds]]\nname='x'\n";
        let message = Layout::parse(text, "t").unwrap_err().to_string();
        assert!(message.contains("document_kinds.name"), "{message}");
        let text = "document_kinds=[]\nupload_kinds=[]\n[folders]\ndocuments='d'\ninbox='i'\nresults='r'\ncolour='x'\n";
        assert!(Layout::parse(text, "t").unwrap_err().to_string().contains("colour"));
    }
}
