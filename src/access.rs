//! Who may see, read or write what: the decision table of ARCHITECTURE.md, as one pure
//! function over a [`Principal`], a [`Node`] and an [`Operation`]. No I/O: facts that need the
//! registry (is this upload the user's own, is it processed) are checked by the caller.

use std::collections::BTreeSet;

use crate::domain::{ContractNumber, Login, Profile};
use crate::layout::Area;
use crate::vfs::Node;

/// An authenticated account, as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub login: Login,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A person of an employer or payroll bureau.
    Employer {
        user_id: i64,
        organisation_id: i64,
        profile: Profile,
        master: bool,
        /// The contracts in the user's scope, resolved when the session started.
        contracts: BTreeSet<ContractNumber>,
    },
    /// The insurer's staff: every contract, publishes documents.
    Staff { staff_id: i64 },
}

impl Principal {
    pub fn sees_contract(&self, contract: &ContractNumber) -> bool {
        match &self.role {
            Role::Employer { contracts, .. } => contracts.contains(contract),
            Role::Staff { .. } => true,
        }
    }

    /// The organisation's master user: sees `/access`.
    pub fn is_master(&self) -> bool {
        matches!(self.role, Role::Employer { master: true, .. })
    }

    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Staff { .. })
    }

    /// The organisation the principal acts for; `None` for staff.
    pub fn organisation_id(&self) -> Option<i64> {
        match self.role {
            Role::Employer { organisation_id, .. } => Some(organisation_id),
            Role::Staff { .. } => None,
        }
    }

    /// Whether the node, if it is a file, may be written by this principal: drives the
    /// permission bits shown in listings.
    pub fn may_write(&self, node: &Node) -> bool {
        decide(self, node, Operation::Create).is_ok()
    }
}

/// What a client asks to do with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// stat, realpath.
    Stat,
    /// opendir / readdir.
    List,
    /// open for reading.
    Read,
    /// open for writing (creating or replacing the file).
    Create,
    /// rename within the same folder (source and target are both checked).
    Rename,
    /// remove a file.
    Remove,
    /// setstat / fsetstat (times and permissions sent by clients after an upload).
    SetStat,
    /// mkdir / rmdir.
    ChangeFolders,
}

/// Why an operation is refused; the message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The contract is not in the principal's scope (or does not exist): answered as
    /// "no such file" so that contract numbers cannot be probed.
    #[error("no such file or folder in your access")]
    NotInScope,
    #[error("{0}")]
    Denied(&'static str),
}

/// The decision table. `Ok(())` means allowed as far as roles and folders go.
pub fn decide(principal: &Principal, node: &Node, operation: Operation) -> Result<(), Refusal> {
    if let Some(contract) = node.contract() {
        if !principal.sees_contract(contract) {
            return Err(Refusal::NotInScope);
        }
    }
    let in_access_folder = matches!(
        node,
        Node::AccessFolder | Node::AccessFile { .. } | Node::AccessRequestsFolder | Node::AccessRequestFile { .. }
    );
    if in_access_folder && !principal.is_master() {
        return Err(Refusal::NotInScope);
    }
    // Templates and the test folder are for those who upload: invisible to the others.
    let for_uploaders = matches!(
        node,
        Node::AreaFolder(_, Area::Templates | Area::Test)
            | Node::TemplateFile { .. }
            | Node::InboxFolder { test: true, .. }
            | Node::InboxFile { test: true, .. }
    );
    let uploads = matches!(principal.role, Role::Employer { profile: Profile::Inscription, .. } | Role::Staff { .. });
    if for_uploaders && !uploads {
        return Err(Refusal::NotInScope);
    }
    use Operation::*;
    match operation {
        Stat => Ok(()),
        List if node.is_folder() => Ok(()),
        List => Err(Refusal::Denied("not a folder")),
        ChangeFolders => Err(Refusal::Denied("folders are fixed: files go into the existing folders")),
        Read => match node {
            Node::Document { .. }
            | Node::DocumentChecksums { .. }
            | Node::TemplateFile { .. }
            | Node::ResultFile { .. }
            | Node::AccessFile { .. }
            | Node::AccessRequestFile { .. } => Ok(()),
            Node::InboxFile { .. } => {
                Err(Refusal::Denied("uploads cannot be downloaded again: their report is in results/"))
            }
            _ => Err(Refusal::Denied("a folder cannot be opened as a file")),
        },
        Create | Rename | SetStat | Remove => write_decision(principal, node, operation),
    }
}

fn write_decision(principal: &Principal, node: &Node, operation: Operation) -> Result<(), Refusal> {
    match (&principal.role, node) {
        (Role::Employer { master: true, .. }, Node::AccessRequestFile { .. }) if operation != Operation::Remove => {
            Ok(())
        }
        (_, Node::AccessRequestFile { .. }) => Err(Refusal::Denied("a user sheet already sent stays with its request")),
        (Role::Employer { profile: Profile::Inscription, .. }, Node::InboxFile { .. }) => Ok(()),
        (Role::Employer { profile: Profile::Consultation, .. }, Node::InboxFile { .. }) => Err(Refusal::Denied(
            "your profile is consultation: uploading needs the inscription profile (ask your master user)",
        )),
        (Role::Staff { .. }, Node::Document { .. }) if operation == Operation::Remove => {
            Err(Refusal::Denied("published documents cannot be deleted"))
        }
        (Role::Staff { .. }, Node::Document { .. }) => Ok(()),
        (Role::Staff { .. }, Node::DocumentKindFolder { per_year: true, .. }) => {
            Err(Refusal::Denied("documents of this kind go into a year folder, for example 2026/"))
        }
        (Role::Staff { .. }, Node::InboxFile { test: true, .. }) => {
            Err(Refusal::Denied("the test folder is for the organisations' uploads"))
        }
        (Role::Staff { .. }, Node::InboxFile { .. }) => {
            Err(Refusal::Denied("inboxes receive the organisations' uploads: publish into documents/"))
        }
        (_, Node::DocumentChecksums { .. }) => {
            Err(Refusal::Denied("SHA256SUMS is written by the gateway from the hashes recorded at publication"))
        }
        (_, Node::TemplateFile { .. }) => {
            Err(Refusal::Denied("templates are written by the gateway: fill one in and send it into test/ or inbox/"))
        }
        (Role::Employer { .. }, Node::Document { .. }) => {
            Err(Refusal::Denied("documents are published by the insurer and read-only"))
        }
        (_, Node::ResultFile { .. }) => Err(Refusal::Denied("reports are written by the gateway and read-only")),
        (_, Node::AccessFile { .. }) => {
            Err(Refusal::Denied("users.xlsx is written by the gateway: send changes on a user sheet"))
        }
        (_, _) if node.is_folder() => Err(Refusal::Denied("folders are fixed: files go into the existing folders")),
        (_, _) => Err(Refusal::Denied("read-only")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RemotePath;
    use crate::layout::Layout;

    fn employer(profile: Profile) -> Principal {
        Principal {
            login: Login::parse("bureau").unwrap(),
            role: Role::Employer {
                user_id: 1,
                organisation_id: 1,
                profile,
                master: false,
                contracts: [ContractNumber::parse("GP-1001").unwrap()].into_iter().collect(),
            },
        }
    }

    fn staff() -> Principal {
        Principal { login: Login::parse("insurer").unwrap(), role: Role::Staff { staff_id: 1 } }
    }

    fn node(path: &str) -> Node {
        let layout = Layout::embedded().unwrap();
        Node::route(&layout, &RemotePath::resolve(path).unwrap()).unwrap()
    }

    const UPLOAD: &str = "/GP-1001/inbox/affiliations/a.xlsx";
    const DOCUMENT: &str = "/GP-1001/documents/invoices/f.pdf";

    #[test]
    fn a_consultation_user_reads_documents_but_cannot_upload() {
        let user = employer(Profile::Consultation);
        assert_eq!(decide(&user, &node(DOCUMENT), Operation::Read), Ok(()));
        let refusal = decide(&user, &node(UPLOAD), Operation::Create).unwrap_err();
        assert!(refusal.to_string().contains("inscription"));
    }

    #[test]
    fn an_inscription_user_uploads_only_into_the_inboxes_of_its_contracts() {
        let user = employer(Profile::Inscription);
        assert_eq!(decide(&user, &node(UPLOAD), Operation::Create), Ok(()));
        assert_eq!(decide(&user, &node(UPLOAD), Operation::Remove), Ok(()));
        assert_eq!(
            decide(&user, &node("/GP-2002/inbox/affiliations/a.xlsx"), Operation::Create),
            Err(Refusal::NotInScope)
        );
        assert!(decide(&user, &node(DOCUMENT), Operation::Create).is_err());
        assert!(decide(&user, &node("/GP-1001/results/a.report.json"), Operation::Create).is_err());
        assert!(decide(&user, &node("/GP-1001/inbox/affiliations"), Operation::ChangeFolders).is_err());
    }

    #[test]
    fn contracts_outside_the_scope_are_invisible() {
        let user = employer(Profile::Inscription);
        for op in [Operation::Stat, Operation::List, Operation::Read] {
            assert_eq!(decide(&user, &node("/GP-2002"), op), Err(Refusal::NotInScope));
        }
        assert_eq!(decide(&user, &node("/"), Operation::List), Ok(()));
    }

    #[test]
    fn staff_publish_documents_but_never_delete_them_or_write_inboxes() {
        let staff = staff();
        assert_eq!(decide(&staff, &node("/GP-2002/documents/invoices/f.pdf"), Operation::Create), Ok(()));
        assert!(decide(&staff, &node(DOCUMENT), Operation::Remove).is_err());
        assert!(decide(&staff, &node(UPLOAD), Operation::Create).is_err());
        assert_eq!(decide(&staff, &node("/GP-1001/documents/pension-sheets/2026/s.pdf"), Operation::Create), Ok(()));
    }

    #[test]
    fn only_master_users_see_the_access_folder() {
        let mut master = employer(Profile::Consultation);
        if let Role::Employer { master: flag, .. } = &mut master.role {
            *flag = true;
        }
        assert_eq!(decide(&master, &node("/access"), Operation::List), Ok(()));
        assert_eq!(decide(&master, &node("/access/users.xlsx"), Operation::Read), Ok(()));
        assert!(decide(&master, &node("/access/users.xlsx"), Operation::Create).is_err());
        let user = employer(Profile::Inscription);
        assert_eq!(decide(&user, &node("/access"), Operation::List), Err(Refusal::NotInScope));
        assert_eq!(decide(&staff(), &node("/access/users.xlsx"), Operation::Read), Err(Refusal::NotInScope));
    }

    #[test]
    fn uploads_cannot_be_downloaded_back() {
        let user = employer(Profile::Inscription);
        assert!(decide(&user, &node(UPLOAD), Operation::Read).unwrap_err().to_string().contains("results"));
    }
}
