//! Why a request the access rules allow still cannot be done: what the client is told, in the
//! user's language (the English text is also what the log and the audit trail keep).

use crate::domain::Language;

/// A request of a kind the gateway does not serve here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    CannotWriteHere,
    RenameWithinFolder,
    DocumentsNotRenamed,
    OnlyOwnUploadsDeleted,
    NotAFolder,
    NoResize,
    FoldersFixed,
    NoAppend,
    WriteInOrder,
}

/// A request that conflicts with the state of the file or of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    NameOfAnotherUploader,
    OnlyUploaderChanges,
    OnlyUploaderDeletes,
    OnlyUploaderRenames,
    LargerThanAnUpload,
    TemplateUnavailable,
    UsersFileUnavailable,
    UploadGap,
    Interrupted,
    BeingProcessed,
    BeingProcessedNotDeleted,
    AcceptedKept,
    TooManyHeldFiles,
}

impl Unsupported {
    pub fn text(self, language: Language) -> &'static str {
        use Language::{En, Fr, Nl};
        match (self, language) {
            (Unsupported::CannotWriteHere, En) => "files cannot be written here",
            (Unsupported::CannotWriteHere, Fr) => "aucun fichier ne peut être écrit ici",
            (Unsupported::CannotWriteHere, Nl) => "hier kunnen geen bestanden geschreven worden",
            (Unsupported::RenameWithinFolder, En) => "files can only be renamed within their folder",
            (Unsupported::RenameWithinFolder, Fr) => "un fichier ne peut être renommé que dans son dossier",
            (Unsupported::RenameWithinFolder, Nl) => "een bestand kan alleen binnen zijn map hernoemd worden",
            (Unsupported::DocumentsNotRenamed, En) => "published documents cannot be renamed",
            (Unsupported::DocumentsNotRenamed, Fr) => "les documents publiés ne peuvent pas être renommés",
            (Unsupported::DocumentsNotRenamed, Nl) => "gepubliceerde documenten kunnen niet hernoemd worden",
            (Unsupported::OnlyOwnUploadsDeleted, En) => "only your own unprocessed or rejected uploads can be deleted",
            (Unsupported::OnlyOwnUploadsDeleted, Fr) => {
                "seuls vos propres envois non traités ou refusés peuvent être supprimés"
            }
            (Unsupported::OnlyOwnUploadsDeleted, Nl) => {
                "alleen uw eigen onverwerkte of geweigerde zendingen kunnen verwijderd worden"
            }
            (Unsupported::NotAFolder, En) => "not a folder",
            (Unsupported::NotAFolder, Fr) => "ce n'est pas un dossier",
            (Unsupported::NotAFolder, Nl) => "dit is geen map",
            (Unsupported::NoResize, En) => "changing the size of a file is not supported",
            (Unsupported::NoResize, Fr) => "la taille d'un fichier ne peut pas être changée",
            (Unsupported::NoResize, Nl) => "de grootte van een bestand kan niet gewijzigd worden",
            (Unsupported::FoldersFixed, En) => "folders are fixed",
            (Unsupported::FoldersFixed, Fr) => "les dossiers sont fixes",
            (Unsupported::FoldersFixed, Nl) => "de mappen liggen vast",
            (Unsupported::NoAppend, En) => "appending is not supported: upload the whole file again",
            (Unsupported::NoAppend, Fr) => "l'ajout en fin de fichier n'est pas possible : renvoyez le fichier entier",
            (Unsupported::NoAppend, Nl) => "toevoegen aan een bestand kan niet: stuur het hele bestand opnieuw",
            (Unsupported::WriteInOrder, En) => {
                "uploads are written from start to end: rewriting or skipping bytes is not supported"
            }
            (Unsupported::WriteInOrder, Fr) => {
                "un envoi s'écrit du début à la fin : réécrire ou sauter des octets n'est pas possible"
            }
            (Unsupported::WriteInOrder, Nl) => {
                "een zending wordt van begin tot einde geschreven: bytes herschrijven of overslaan kan niet"
            }
        }
    }
}

impl Conflict {
    pub fn text(self, language: Language) -> &'static str {
        use Language::{En, Fr, Nl};
        match (self, language) {
            (Conflict::NameOfAnotherUploader, En) => {
                "a file of this name was uploaded by someone else: choose another name"
            }
            (Conflict::NameOfAnotherUploader, Fr) => {
                "un fichier de ce nom a été envoyé par quelqu'un d'autre : choisissez un autre nom"
            }
            (Conflict::NameOfAnotherUploader, Nl) => {
                "een bestand met deze naam werd door iemand anders verzonden: kies een andere naam"
            }
            (Conflict::OnlyUploaderChanges, En) => "only the person who uploaded a file may change it",
            (Conflict::OnlyUploaderChanges, Fr) => "seule la personne qui a envoyé un fichier peut le modifier",
            (Conflict::OnlyUploaderChanges, Nl) => "alleen wie een bestand verzond, mag het wijzigen",
            (Conflict::OnlyUploaderDeletes, En) => "only the person who uploaded a file may delete it",
            (Conflict::OnlyUploaderDeletes, Fr) => "seule la personne qui a envoyé un fichier peut le supprimer",
            (Conflict::OnlyUploaderDeletes, Nl) => "alleen wie een bestand verzond, mag het verwijderen",
            (Conflict::OnlyUploaderRenames, En) => "only the person who uploaded a file may rename it",
            (Conflict::OnlyUploaderRenames, Fr) => "seule la personne qui a envoyé un fichier peut le renommer",
            (Conflict::OnlyUploaderRenames, Nl) => "alleen wie een bestand verzond, mag het hernoemen",
            (Conflict::LargerThanAnUpload, En) => "the file is larger than an upload may be",
            (Conflict::LargerThanAnUpload, Fr) => "le fichier est plus grand qu'un envoi ne peut l'être",
            (Conflict::LargerThanAnUpload, Nl) => "het bestand is groter dan een zending mag zijn",
            (Conflict::TemplateUnavailable, En) => "the template cannot be made right now",
            (Conflict::TemplateUnavailable, Fr) => "le modèle ne peut pas être créé pour l'instant",
            (Conflict::TemplateUnavailable, Nl) => "het sjabloon kan nu niet aangemaakt worden",
            (Conflict::UsersFileUnavailable, En) => "users.xlsx cannot be made right now",
            (Conflict::UsersFileUnavailable, Fr) => "users.xlsx ne peut pas être créé pour l'instant",
            (Conflict::UsersFileUnavailable, Nl) => "users.xlsx kan nu niet aangemaakt worden",
            (Conflict::UploadGap, En) => "the upload has a gap: some parts never arrived",
            (Conflict::UploadGap, Fr) => "l'envoi est incomplet : certaines parties ne sont jamais arrivées",
            (Conflict::UploadGap, Nl) => "de zending is onvolledig: sommige delen kwamen nooit aan",
            (Conflict::Interrupted, En) => "the upload was interrupted",
            (Conflict::Interrupted, Fr) => "l'envoi a été interrompu",
            (Conflict::Interrupted, Nl) => "de zending werd onderbroken",
            (Conflict::BeingProcessed, En) => "this upload is already being processed",
            (Conflict::BeingProcessed, Fr) => "cet envoi est déjà en cours de traitement",
            (Conflict::BeingProcessed, Nl) => "deze zending wordt al verwerkt",
            (Conflict::BeingProcessedNotDeleted, En) => "this upload is already being processed and cannot be deleted",
            (Conflict::BeingProcessedNotDeleted, Fr) => {
                "cet envoi est déjà en cours de traitement et ne peut plus être supprimé"
            }
            (Conflict::BeingProcessedNotDeleted, Nl) => {
                "deze zending wordt al verwerkt en kan niet meer verwijderd worden"
            }
            (Conflict::AcceptedKept, En) => "an accepted upload is kept as the record of what entered the registry",
            (Conflict::AcceptedKept, Fr) => {
                "un envoi accepté est conservé comme trace de ce qui est entré dans le registre"
            }
            (Conflict::AcceptedKept, Nl) => {
                "een aanvaarde zending wordt bewaard als spoor van wat in het register kwam"
            }
            (Conflict::TooManyHeldFiles, En) => {
                "too many unfinished temporary files in this session: rename them before sending more"
            }
            (Conflict::TooManyHeldFiles, Fr) => {
                "trop de fichiers temporaires inachevés dans cette session : renommez-les avant d'en envoyer d'autres"
            }
            (Conflict::TooManyHeldFiles, Nl) => {
                "te veel onafgewerkte tijdelijke bestanden in deze sessie: hernoem ze voor u er meer stuurt"
            }
        }
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text(Language::En))
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text(Language::En))
    }
}
