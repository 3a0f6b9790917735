//! Folder listings and file attributes of the virtual tree, as a principal sees it.

use crate::access::{decide, Operation, Principal, Role};
use crate::domain::{FileName, RemotePath, Year};
use crate::layout::Area;
use crate::registry::now_seconds;
use crate::vfs::Node;

use super::entries::{Entry, EntryAttributes};
use super::transfers::HeldUploads;
use super::{Gateway, GatewayError, Unsupported};

impl Gateway {
    /// Routes a path and checks that the principal may do `operation` on it.
    pub(super) fn node_for(
        &self,
        principal: &Principal,
        path: &RemotePath,
        operation: Operation,
    ) -> Result<Node, GatewayError> {
        let node = Node::route(&self.layout, path).map_err(|_| GatewayError::NotFound)?;
        decide(principal, &node, operation)?;
        Ok(node)
    }

    /// Whether the principal may put files into this folder.
    fn folder_writable(&self, principal: &Principal, path: &RemotePath) -> bool {
        let probe = FileName::parse("probe").map(|name| path.join(&name));
        match probe.map(|p| Node::route(&self.layout, &p)) {
            Ok(Ok(child)) => !child.is_folder() && principal.may_write(&child),
            _ => false,
        }
    }

    /// Whether a fixed child folder shows in a listing: areas a principal may not use
    /// (templates and test without the inscription profile) are not listed.
    fn visible(&self, principal: &Principal, folder: &RemotePath, name: &str) -> bool {
        let Ok(name) = FileName::parse(name) else {
            return false;
        };
        Node::route(&self.layout, &folder.join(&name))
            .is_ok_and(|child| decide(principal, &child, Operation::List).is_ok())
    }

    /// The `SHA256SUMS` line of a documents folder listing.
    async fn checksums_entry(
        &self,
        contract: &crate::domain::ContractNumber,
        kind: &crate::domain::KindName,
        year: Option<Year>,
    ) -> Result<Option<Entry>, GatewayError> {
        let (size, mtime) = match self.checksums(contract, kind, year).await {
            Ok((bytes, newest)) => (bytes.len() as u64, newest),
            Err(GatewayError::NotFound) => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok(Some(Entry {
            name: crate::vfs::CHECKSUMS_FILE.to_string(),
            attributes: EntryAttributes { folder: false, size, mtime, writable: false },
        }))
    }

    /// The entries of a folder, sorted by name.
    pub async fn list(
        &self,
        principal: &Principal,
        path: &RemotePath,
        held: &HeldUploads,
    ) -> Result<Vec<Entry>, GatewayError> {
        let node = self.node_for(principal, path, Operation::List)?;
        let folder = |name: String, writable: bool| Entry { name, attributes: EntryAttributes::folder(writable) };
        let sub_folder = |name: &str| {
            let writable = FileName::parse(name).is_ok_and(|n| self.folder_writable(principal, &path.join(&n)));
            folder(name.to_string(), writable)
        };
        let mut entries = match &node {
            Node::Root => {
                let numbers: Vec<String> = match &principal.role {
                    Role::Employer { contracts, .. } => contracts.iter().map(|c| c.to_string()).collect(),
                    Role::Staff { .. } => {
                        self.registry.contracts(None).await?.into_iter().map(|c| c.number.to_string()).collect()
                    }
                };
                let mut entries: Vec<Entry> = numbers.into_iter().map(|n| folder(n, false)).collect();
                if principal.is_master() {
                    entries.push(folder(crate::vfs::ACCESS_FOLDER.to_string(), false));
                }
                entries
            }
            Node::AccessFolder => {
                let size = self.users_workbook(principal).await?.len() as u64;
                vec![
                    Entry {
                        name: crate::vfs::USERS_FILE.to_string(),
                        attributes: EntryAttributes { folder: false, size, mtime: now_seconds(), writable: false },
                    },
                    folder(crate::vfs::REQUESTS_FOLDER.to_string(), true),
                ]
            }
            Node::AccessRequestsFolder => {
                let organisation_id = principal.organisation_id().ok_or(GatewayError::NotFound)?;
                let mut entries = Vec::new();
                for request in self.registry.access_requests(Some(organisation_id)).await? {
                    let attributes =
                        |size| EntryAttributes { folder: false, size, mtime: request.created_at, writable: false };
                    entries.push(Entry {
                        name: format!("{}.report.json", request.file_name),
                        attributes: attributes(request.report_size),
                    });
                    entries.push(Entry { name: request.file_name, attributes: attributes(request.size) });
                }
                entries.extend(held.entries_in(path));
                entries
            }
            Node::Contract(_)
            | Node::AreaFolder(_, Area::Documents)
            | Node::AreaFolder(_, Area::Inbox)
            | Node::AreaFolder(_, Area::Test) => node
                .fixed_children(&self.layout)
                .iter()
                .filter(|name| self.visible(principal, path, name.as_str()))
                .map(|k| sub_folder(k.as_str()))
                .collect(),
            Node::AreaFolder(contract, Area::Templates) => self
                .templates(principal, contract)
                .await?
                .into_iter()
                .map(|(name, bytes)| Entry {
                    name,
                    attributes: EntryAttributes {
                        folder: false,
                        size: bytes.len() as u64,
                        mtime: self.templates_mtime(),
                        writable: false,
                    },
                })
                .collect(),
            Node::AreaFolder(contract, Area::Results) => {
                let contract = self.contract_record(contract).await?;
                self.registry
                    .reports_in_folder(contract.id)
                    .await?
                    .into_iter()
                    .map(|r| Entry {
                        name: r.file_name,
                        attributes: EntryAttributes {
                            folder: false,
                            size: r.size,
                            mtime: r.created_at,
                            writable: false,
                        },
                    })
                    .collect()
            }
            Node::DocumentKindFolder { contract: number, kind, per_year: true } => {
                let contract = self.contract_record(number).await?;
                let years = self.registry.document_years(contract.id, kind).await?;
                let mut entries: Vec<Entry> = years
                    .into_iter()
                    .map(|(year, newest)| {
                        let mut entry = sub_folder(&year.to_string());
                        entry.attributes.mtime = newest;
                        entry
                    })
                    .collect();
                entries.extend(self.checksums_entry(number, kind, None).await?);
                entries
            }
            Node::DocumentKindFolder { contract: number, kind, per_year: false }
            | Node::DocumentYearFolder { contract: number, kind, .. } => {
                let year = match &node {
                    Node::DocumentYearFolder { year, .. } => Some(*year),
                    _ => None,
                };
                let contract = self.contract_record(number).await?;
                let writable = principal.is_staff();
                let mut entries: Vec<Entry> = self
                    .registry
                    .documents_in_folder(contract.id, kind, year)
                    .await?
                    .into_iter()
                    .map(|d| Entry {
                        name: d.file_name.to_string(),
                        attributes: EntryAttributes { folder: false, size: d.size, mtime: d.published_at, writable },
                    })
                    .collect();
                entries.extend(self.checksums_entry(number, kind, year).await?);
                entries.extend(held.entries_in(path));
                entries
            }
            Node::InboxFolder { contract, kind, test } => {
                let contract = self.contract_record(contract).await?;
                let writable = self.folder_writable(principal, path);
                let mut entries: Vec<Entry> = self
                    .registry
                    .uploads_in_folder(contract.id, kind, *test)
                    .await?
                    .into_iter()
                    .map(|u| Entry {
                        attributes: EntryAttributes {
                            folder: false,
                            size: u.size,
                            mtime: u.client_mtime.unwrap_or(u.received_at),
                            writable,
                        },
                        name: u.file_name.to_string(),
                    })
                    .collect();
                entries.extend(held.entries_in(path));
                entries
            }
            Node::Document { .. }
            | Node::DocumentChecksums { .. }
            | Node::TemplateFile { .. }
            | Node::InboxFile { .. }
            | Node::ResultFile { .. }
            | Node::AccessFile { .. }
            | Node::AccessRequestFile { .. } => return Err(GatewayError::Unsupported(Unsupported::NotAFolder)),
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|later, earlier| later.name == earlier.name);
        Ok(entries)
    }

    /// Attributes of one path.
    pub async fn stat(
        &self,
        principal: &Principal,
        path: &RemotePath,
        held: &HeldUploads,
    ) -> Result<EntryAttributes, GatewayError> {
        let node = self.node_for(principal, path, Operation::Stat)?;
        if let Some(attributes) = held.attributes_of(path) {
            return Ok(attributes);
        }
        match &node {
            Node::Root | Node::AreaFolder(..) | Node::AccessFolder => Ok(EntryAttributes::folder(false)),
            Node::AccessFile { name } if name.as_str() == crate::vfs::USERS_FILE => {
                let size = self.users_workbook(principal).await?.len() as u64;
                Ok(EntryAttributes { folder: false, size, mtime: now_seconds(), writable: false })
            }
            Node::AccessFile { .. } => Err(GatewayError::NotFound),
            Node::AccessRequestsFolder => Ok(EntryAttributes::folder(true)),
            Node::AccessRequestFile { name } => {
                let (_, size, mtime) = self.access_request_object(principal, name).await?;
                Ok(EntryAttributes { folder: false, size, mtime, writable: false })
            }
            Node::Contract(number) => {
                self.contract_record(number).await?;
                Ok(EntryAttributes::folder(false))
            }
            Node::DocumentKindFolder { .. } | Node::DocumentYearFolder { .. } | Node::InboxFolder { .. } => {
                Ok(EntryAttributes::folder(self.folder_writable(principal, path)))
            }
            Node::Document { contract, kind, year, name } => {
                let document = self.registry.document(contract, kind, *year, name).await?;
                let document = document.ok_or(GatewayError::NotFound)?;
                Ok(EntryAttributes {
                    folder: false,
                    size: document.size,
                    mtime: document.published_at,
                    writable: principal.may_write(&node),
                })
            }
            Node::DocumentChecksums { contract, kind, year } => {
                let (bytes, mtime) = self.checksums(contract, kind, *year).await?;
                Ok(EntryAttributes { folder: false, size: bytes.len() as u64, mtime, writable: false })
            }
            Node::TemplateFile { contract, name } => {
                let size = self.template_named(principal, contract, name).await?.len() as u64;
                Ok(EntryAttributes { folder: false, size, mtime: self.templates_mtime(), writable: false })
            }
            Node::InboxFile { contract, kind, name, test } => {
                let contract = self.contract_record(contract).await?;
                let upload = self.registry.upload_by_name(contract.id, kind, name, *test).await?;
                let upload = upload.ok_or(GatewayError::NotFound)?;
                Ok(EntryAttributes {
                    folder: false,
                    size: upload.size,
                    mtime: upload.client_mtime.unwrap_or(upload.received_at),
                    writable: principal.may_write(&node),
                })
            }
            Node::ResultFile { contract, name } => {
                let contract = self.contract_record(contract).await?;
                let report = self.registry.report(contract.id, name.as_str()).await?.ok_or(GatewayError::NotFound)?;
                Ok(EntryAttributes { folder: false, size: report.size, mtime: report.created_at, writable: false })
            }
        }
    }
}
