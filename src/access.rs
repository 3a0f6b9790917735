//! Who may see, read or write what: the decision table of ARCHITECTURE.md, as one pure
//! function over a [`Principal`], a [`Node`] and an [`Operation`]. No I/O: facts that need the
//! registry (is this upload the user's own, is it processed) are checked by the caller.

use std::collections::BTreeSet;

use crate::domain::{ContractNumber, Language, Login, Profile};
use crate::layout::Area;
use crate::vfs::Node;

/// An authenticated account, as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub login: Login,
    pub role: Role,
    /// The language refusals are told in.
    pub language: Language,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The contract is not in the principal's scope (or does not exist): answered as
    /// "no such file" so that contract numbers cannot be probed.
    #[error("no such file or folder in your access")]
    NotInScope,
    #[error("{0}")]
    Denied(Denial),
}

/// Why an operation on a path that exists is refused; said to the user in their language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    NotAFolder,
    FoldersFixed,
    UploadsNotReadable,
    FolderNotFile,
    SheetStaysWithRequest,
    ConsultationProfile,
    DocumentsKept,
    YearFolderNeeded,
    TestFolderForOrganisations,
    InboxForOrganisations,
    ChecksumsWritten,
    TemplatesWritten,
    DocumentsReadOnly,
    ReportsReadOnly,
    UsersFileWritten,
    ReadOnly,
}

impl Denial {
    pub fn text(self, language: Language) -> &'static str {
        use Language::{En, Fr, Nl};
        match (self, language) {
            (Denial::NotAFolder, En) => "not a folder",
            (Denial::NotAFolder, Fr) => "ce n'est pas un dossier",
            (Denial::NotAFolder, Nl) => "dit is geen map",
            (Denial::FoldersFixed, En) => "folders are fixed: files go into the existing folders",
            (Denial::FoldersFixed, Fr) => "les dossiers sont fixes : les fichiers vont dans les dossiers existants",
            (Denial::FoldersFixed, Nl) => "de mappen liggen vast: bestanden gaan in de bestaande mappen",
            (Denial::UploadsNotReadable, En) => "uploads cannot be downloaded again: their report is in results/",
            (Denial::UploadsNotReadable, Fr) => {
                "un fichier envoyé ne peut pas être retéléchargé : son rapport est dans results/"
            }
            (Denial::UploadsNotReadable, Nl) => {
                "een verzonden bestand kan niet opnieuw gedownload worden: het verslag staat in results/"
            }
            (Denial::FolderNotFile, En) => "a folder cannot be opened as a file",
            (Denial::FolderNotFile, Fr) => "un dossier ne peut pas être ouvert comme un fichier",
            (Denial::FolderNotFile, Nl) => "een map kan niet als bestand geopend worden",
            (Denial::SheetStaysWithRequest, En) => "a user sheet already sent stays with its request",
            (Denial::SheetStaysWithRequest, Fr) => "une fiche utilisateur envoyée reste liée à sa demande",
            (Denial::SheetStaysWithRequest, Nl) => "een verzonden gebruikersfiche blijft bij haar aanvraag",
            (Denial::ConsultationProfile, En) => {
                "your profile is consultation: uploading needs the inscription profile (ask your master user)"
            }
            (Denial::ConsultationProfile, Fr) => {
                "votre profil est consultation : envoyer des fichiers demande le profil inscription (demandez-le à votre master user)"
            }
            (Denial::ConsultationProfile, Nl) => {
                "uw profiel is raadpleging: bestanden versturen vraagt het profiel inschrijving (vraag het aan uw master user)"
            }
            (Denial::DocumentsKept, En) => "published documents cannot be deleted",
            (Denial::DocumentsKept, Fr) => "les documents publiés ne peuvent pas être supprimés",
            (Denial::DocumentsKept, Nl) => "gepubliceerde documenten kunnen niet verwijderd worden",
            (Denial::YearFolderNeeded, En) => "documents of this kind go into a year folder, for example 2026/",
            (Denial::YearFolderNeeded, Fr) => "les documents de ce type vont dans un dossier d'année, par exemple 2026/",
            (Denial::YearFolderNeeded, Nl) => "documenten van dit type gaan in een jaarmap, bijvoorbeeld 2026/",
            (Denial::TestFolderForOrganisations, En) => "the test folder is for the organisations' uploads",
            (Denial::TestFolderForOrganisations, Fr) => "le dossier test est destiné aux envois des organisations",
            (Denial::TestFolderForOrganisations, Nl) => "de testmap is bestemd voor de zendingen van de organisaties",
            (Denial::InboxForOrganisations, En) => "inboxes receive the organisations' uploads: publish into documents/",
            (Denial::InboxForOrganisations, Fr) => {
                "les inbox reçoivent les envois des organisations : publiez dans documents/"
            }
            (Denial::InboxForOrganisations, Nl) => {
                "de inboxen ontvangen de zendingen van de organisaties: publiceer in documents/"
            }
            (Denial::ChecksumsWritten, En) => {
                "SHA256SUMS is written by the gateway from the hashes recorded at publication"
            }
            (Denial::ChecksumsWritten, Fr) => {
                "SHA256SUMS est écrit par la passerelle à partir des empreintes enregistrées à la publication"
            }
            (Denial::ChecksumsWritten, Nl) => {
                "SHA256SUMS wordt door de gateway geschreven uit de bij de publicatie geregistreerde hashes"
            }
            (Denial::TemplatesWritten, En) => {
                "templates are written by the gateway: fill one in and send it into test/ or inbox/"
            }
            (Denial::TemplatesWritten, Fr) => {
                "les modèles sont écrits par la passerelle : complétez-en un et envoyez-le dans test/ ou inbox/"
            }
            (Denial::TemplatesWritten, Nl) => {
                "de sjablonen worden door de gateway geschreven: vul er een in en stuur het naar test/ of inbox/"
            }
            (Denial::DocumentsReadOnly, En) => "documents are published by the insurer and read-only",
            (Denial::DocumentsReadOnly, Fr) => "les documents sont publiés par l'assureur et en lecture seule",
            (Denial::DocumentsReadOnly, Nl) => "de documenten worden door de verzekeraar gepubliceerd en zijn alleen-lezen",
            (Denial::ReportsReadOnly, En) => "reports are written by the gateway and read-only",
            (Denial::ReportsReadOnly, Fr) => "les rapports sont écrits par la passerelle et en lecture seule",
            (Denial::ReportsReadOnly, Nl) => "de verslagen worden door de gateway geschreven en zijn alleen-lezen",
            (Denial::UsersFileWritten, En) => "users.xlsx is written by the gateway: send changes on a user sheet",
            (Denial::UsersFileWritten, Fr) => {
                "users.xlsx est écrit par la passerelle : envoyez les changements sur une fiche utilisateur"
            }
            (Denial::UsersFileWritten, Nl) => {
                "users.xlsx wordt door de gateway geschreven: stuur wijzigingen op een gebruikersfiche"
            }
            (Denial::ReadOnly, En) => "read-only",
            (Denial::ReadOnly, Fr) => "en lecture seule",
            (Denial::ReadOnly, Nl) => "alleen-lezen",
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text(Language::En))
    }
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
        List => Err(Refusal::Denied(Denial::NotAFolder)),
        ChangeFolders => Err(Refusal::Denied(Denial::FoldersFixed)),
        Read => match node {
            Node::Document { .. }
            | Node::DocumentChecksums { .. }
            | Node::TemplateFile { .. }
            | Node::ResultFile { .. }
            | Node::AccessFile { .. }
            | Node::AccessRequestFile { .. } => Ok(()),
            Node::InboxFile { .. } => Err(Refusal::Denied(Denial::UploadsNotReadable)),
            _ => Err(Refusal::Denied(Denial::FolderNotFile)),
        },
        Create | Rename | SetStat | Remove => write_decision(principal, node, operation),
    }
}

fn write_decision(principal: &Principal, node: &Node, operation: Operation) -> Result<(), Refusal> {
    match (&principal.role, node) {
        (Role::Employer { master: true, .. }, Node::AccessRequestFile { .. }) if operation != Operation::Remove => {
            Ok(())
        }
        (_, Node::AccessRequestFile { .. }) => Err(Refusal::Denied(Denial::SheetStaysWithRequest)),
        (Role::Employer { profile: Profile::Inscription, .. }, Node::InboxFile { .. }) => Ok(()),
        (Role::Employer { profile: Profile::Consultation, .. }, Node::InboxFile { .. }) => {
            Err(Refusal::Denied(Denial::ConsultationProfile))
        }
        (Role::Staff { .. }, Node::Document { .. }) if operation == Operation::Remove => {
            Err(Refusal::Denied(Denial::DocumentsKept))
        }
        (Role::Staff { .. }, Node::Document { .. }) => Ok(()),
        (Role::Staff { .. }, Node::DocumentKindFolder { per_year: true, .. }) => {
            Err(Refusal::Denied(Denial::YearFolderNeeded))
        }
        (Role::Staff { .. }, Node::InboxFile { test: true, .. }) => {
            Err(Refusal::Denied(Denial::TestFolderForOrganisations))
        }
        (Role::Staff { .. }, Node::InboxFile { .. }) => Err(Refusal::Denied(Denial::InboxForOrganisations)),
        (_, Node::DocumentChecksums { .. }) => Err(Refusal::Denied(Denial::ChecksumsWritten)),
        (_, Node::TemplateFile { .. }) => Err(Refusal::Denied(Denial::TemplatesWritten)),
        (Role::Employer { .. }, Node::Document { .. }) => Err(Refusal::Denied(Denial::DocumentsReadOnly)),
        (_, Node::ResultFile { .. }) => Err(Refusal::Denied(Denial::ReportsReadOnly)),
        (_, Node::AccessFile { .. }) => Err(Refusal::Denied(Denial::UsersFileWritten)),
        (_, _) if node.is_folder() => Err(Refusal::Denied(Denial::FoldersFixed)),
        (_, _) => Err(Refusal::Denied(Denial::ReadOnly)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RemotePath;
    use crate::layout::Layout;

    fn employer(profile: Profile) -> Principal {
        Principal {
            language: Language::Fr,
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
        Principal { login: Login::parse("insurer").unwrap(), role: Role::Staff { staff_id: 1 }, language: Language::En }
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
