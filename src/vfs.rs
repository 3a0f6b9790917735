//! Virtual folders: a normalised [`RemotePath`] becomes a [`Node`] — the contract, area, kind
//! and name it designates — according to the [`Layout`]. Pure: what exists inside a folder
//! (published documents, uploads) is the registry's business; who may see it is `access`'s.

use crate::domain::{ContractNumber, FileName, KindName, RemotePath, Year};
use crate::layout::{Area, Layout};

/// What a virtual path designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `/`: one folder per contract in scope.
    Root,
    /// `/<contract>`
    Contract(ContractNumber),
    /// `/<contract>/<area>`
    AreaFolder(ContractNumber, Area),
    /// `/<contract>/documents/<kind>`
    DocumentKindFolder { contract: ContractNumber, kind: KindName, per_year: bool },
    /// `/<contract>/documents/<kind>/<year>` for kinds published per year.
    DocumentYearFolder { contract: ContractNumber, kind: KindName, year: Year },
    /// A published document.
    Document { contract: ContractNumber, kind: KindName, year: Option<Year>, name: FileName },
    /// `SHA256SUMS` in a documents folder: the recorded hashes of the documents listed beside
    /// it (`year` None in a per-year kind folder: every year's, as `2026/name`).
    DocumentChecksums { contract: ContractNumber, kind: KindName, year: Option<Year> },
    /// `/<contract>/inbox/<kind>`, or `/<contract>/test/<kind>` when `test`.
    InboxFolder { contract: ContractNumber, kind: KindName, test: bool },
    /// An upload in an inbox (or in the test folder).
    InboxFile { contract: ContractNumber, kind: KindName, name: FileName, test: bool },
    /// A blank workbook in `/<contract>/templates`.
    TemplateFile { contract: ContractNumber, name: FileName },
    /// A report in `/<contract>/results`.
    ResultFile { contract: ContractNumber, name: FileName },
    /// `/access`: the organisation's master users only.
    AccessFolder,
    /// `/access/<name>` (users.xlsx).
    AccessFile { name: FileName },
    /// `/access/requests`: user sheets dropped by the master user, and their reports.
    AccessRequestsFolder,
    /// `/access/requests/<name>`
    AccessRequestFile { name: FileName },
}

/// The drop folder for user sheets inside `/access`.
pub const REQUESTS_FOLDER: &str = "requests";

/// The folder of master users, beside the contract folders (contract numbers are upper-case,
/// so no contract can be called this).
pub const ACCESS_FOLDER: &str = "access";
/// Who has which rights today, regenerated whenever it is read.
pub const USERS_FILE: &str = "users.xlsx";

/// The checksum list every documents folder shows (`sha256sum -c SHA256SUMS`).
pub const CHECKSUMS_FILE: &str = "SHA256SUMS";

/// The path names nothing in the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no such file or folder")]
pub struct NoSuchNode;

impl Node {
    /// Maps a path onto the layout. Names must match exactly: contract folders are upper-case,
    /// so `/gp-1001` is not an alias of `/GP-1001`.
    pub fn route(layout: &Layout, path: &RemotePath) -> Result<Node, NoSuchNode> {
        let parts: Vec<&str> = path.components().iter().map(FileName::as_str).collect();
        let Some((&first, rest)) = parts.split_first() else {
            return Ok(Node::Root);
        };
        if first == ACCESS_FOLDER {
            return match rest {
                [] => Ok(Node::AccessFolder),
                [folder] if *folder == REQUESTS_FOLDER => Ok(Node::AccessRequestsFolder),
                [folder, _] if *folder == REQUESTS_FOLDER => {
                    Ok(Node::AccessRequestFile { name: path.components().get(2).cloned().ok_or(NoSuchNode)? })
                }
                [_] => Ok(Node::AccessFile { name: path.components().get(1).cloned().ok_or(NoSuchNode)? }),
                _ => Err(NoSuchNode),
            };
        }
        let contract = ContractNumber::parse(first).map_err(|_| NoSuchNode)?;
        if contract.as_str() != first {
            return Err(NoSuchNode);
        }
        let Some((&area_name, rest)) = rest.split_first() else {
            return Ok(Node::Contract(contract));
        };
        let area = layout.area(area_name).ok_or(NoSuchNode)?;
        let name_at = |i: usize| path.components().get(i).cloned().ok_or(NoSuchNode);
        match (area, rest) {
            (_, []) => Ok(Node::AreaFolder(contract, area)),
            (Area::Results, [_]) => Ok(Node::ResultFile { contract, name: name_at(2)? }),
            (Area::Templates, [_]) => Ok(Node::TemplateFile { contract, name: name_at(2)? }),
            (Area::Inbox | Area::Test, [kind, tail @ ..]) => {
                let kind = layout.upload_kind(kind).ok_or(NoSuchNode)?.clone();
                let test = area == Area::Test;
                match tail {
                    [] => Ok(Node::InboxFolder { contract, kind, test }),
                    [_] => Ok(Node::InboxFile { contract, kind, name: name_at(3)?, test }),
                    _ => Err(NoSuchNode),
                }
            }
            (Area::Documents, [kind, tail @ ..]) => {
                let kind = layout.document_kind(kind).ok_or(NoSuchNode)?;
                let (name, per_year) = (kind.name.clone(), kind.per_year);
                match (per_year, tail) {
                    (_, []) => Ok(Node::DocumentKindFolder { contract, kind: name, per_year }),
                    (_, [file]) if *file == CHECKSUMS_FILE => {
                        Ok(Node::DocumentChecksums { contract, kind: name, year: None })
                    }
                    (true, [year, file]) if *file == CHECKSUMS_FILE => {
                        let year = parse_year(year).ok_or(NoSuchNode)?;
                        Ok(Node::DocumentChecksums { contract, kind: name, year: Some(year) })
                    }
                    (false, [_]) => Ok(Node::Document { contract, kind: name, year: None, name: name_at(3)? }),
                    (true, [year]) => {
                        let year = parse_year(year).ok_or(NoSuchNode)?;
                        Ok(Node::DocumentYearFolder { contract, kind: name, year })
                    }
                    (true, [year, _]) => {
                        let year = parse_year(year).ok_or(NoSuchNode)?;
                        Ok(Node::Document { contract, kind: name, year: Some(year), name: name_at(4)? })
                    }
                    _ => Err(NoSuchNode),
                }
            }
            _ => Err(NoSuchNode),
        }
    }

    /// The contract the node belongs to, `None` for the root.
    pub fn contract(&self) -> Option<&ContractNumber> {
        match self {
            Node::Root
            | Node::AccessFolder
            | Node::AccessFile { .. }
            | Node::AccessRequestsFolder
            | Node::AccessRequestFile { .. } => None,
            Node::Contract(c) | Node::AreaFolder(c, _) => Some(c),
            Node::DocumentKindFolder { contract, .. }
            | Node::DocumentYearFolder { contract, .. }
            | Node::Document { contract, .. }
            | Node::DocumentChecksums { contract, .. }
            | Node::TemplateFile { contract, .. }
            | Node::InboxFolder { contract, .. }
            | Node::InboxFile { contract, .. }
            | Node::ResultFile { contract, .. } => Some(contract),
        }
    }

    pub fn is_folder(&self) -> bool {
        !matches!(
            self,
            Node::Document { .. }
                | Node::DocumentChecksums { .. }
                | Node::TemplateFile { .. }
                | Node::InboxFile { .. }
                | Node::ResultFile { .. }
                | Node::AccessFile { .. }
                | Node::AccessRequestFile { .. }
        )
    }

    /// The children a folder always has, whatever is stored: areas and kinds. Folders whose
    /// content comes from the registry (kinds, years, inboxes, results) return an empty list.
    pub fn fixed_children(&self, layout: &Layout) -> Vec<KindName> {
        match self {
            Node::Contract(_) => vec![
                layout.documents_folder.clone(),
                layout.inbox_folder.clone(),
                layout.results_folder.clone(),
                layout.templates_folder.clone(),
                layout.test_folder.clone(),
            ],
            Node::AreaFolder(_, Area::Documents) => layout.document_kinds.iter().map(|k| k.name.clone()).collect(),
            Node::AreaFolder(_, Area::Inbox | Area::Test) => layout.upload_kinds.clone(),
            _ => Vec::new(),
        }
    }
}

/// A year folder of a kind published per year (`domain::Year` says which names are years).
fn parse_year(text: &str) -> Option<Year> {
    Year::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Result<Node, NoSuchNode> {
        let layout = Layout::embedded().unwrap();
        Node::route(&layout, &RemotePath::resolve(path).unwrap())
    }

    fn contract() -> ContractNumber {
        ContractNumber::parse("GP-1001").unwrap()
    }

    #[test]
    fn folders_of_the_architecture_route_to_their_nodes() {
        assert_eq!(route("/").unwrap(), Node::Root);
        assert_eq!(route("/GP-1001").unwrap(), Node::Contract(contract()));
        assert_eq!(route("/GP-1001/results").unwrap(), Node::AreaFolder(contract(), Area::Results));
        assert!(matches!(route("/GP-1001/inbox/affiliations").unwrap(), Node::InboxFolder { .. }));
        assert!(matches!(
            route("/GP-1001/inbox/affiliations/a.xlsx").unwrap(),
            Node::InboxFile { ref name, .. } if name.as_str() == "a.xlsx"
        ));
        assert!(matches!(route("/GP-1001/documents/invoices/f.pdf").unwrap(), Node::Document { year: None, .. }));
        assert!(matches!(
            route("/GP-1001/documents/pension-sheets/2026").unwrap(),
            Node::DocumentYearFolder { year, .. } if year.get() == 2026
        ));
        assert!(matches!(
            route("/GP-1001/documents/pension-sheets/2026/x.pdf").unwrap(),
            Node::Document { year: Some(year), .. } if year.get() == 2026
        ));
        assert!(matches!(route("/GP-1001/results/a.xlsx.report.json").unwrap(), Node::ResultFile { .. }));
    }

    #[test]
    fn anything_outside_the_layout_is_no_such_node() {
        for path in [
            "/gp-1001",
            "/etc",
            "/etc/passwd",
            "/GP-1001/secrets",
            "/GP-1001/inbox/pension-sheets",
            "/GP-1001/inbox/affiliations/a/b",
            "/GP-1001/documents/pension-sheets/26",
            "/GP-1001/documents/pension-sheets/x.pdf",
            "/GP-1001/documents/invoices/2026/x.pdf",
            "/GP-1001/results/a/b",
        ] {
            assert_eq!(route(path), Err(NoSuchNode), "{path}");
        }
    }
}
