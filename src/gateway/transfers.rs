//! Downloads, uploads, renames and removals.
//!
//! An upload streams into a staged object while it arrives. On close it is committed and
//! recorded — object first, registry row second — unless its name is a temporary one
//! (`*.filepart`, dot-files…): then it is held by the session until renamed to its final
//! name. Whatever is not committed when the session ends is discarded.

use std::collections::HashMap;

use crate::access::{Operation, Principal, Role};
use crate::domain::{AuditAction, AuditOutcome, FileName, KindName, RemotePath, Year};
use crate::publishing::{DocumentPlace, PublishOutcome};
use crate::registry::{now_seconds, DownloadReceipt, NewUpload};
use crate::storage::{ObjectKey, ObjectReader, ObjectWriter, StagedObject};
use crate::telemetry::metrics::{metrics, Metrics};
use crate::vfs::Node;

use super::entries::{Entry, EntryAttributes};
use super::upload_sink::{SizeLimit, SizeLimitReason, UploadSink};
use super::{Conflict, Gateway, GatewayError, SessionContext, Unsupported};

/// At most this many temporary-named uploads wait for their rename in one session.
const MAX_HELD_UPLOADS: usize = 256;
/// Memory the held uploads of one session may keep (on S3, a held object smaller than one
/// part waits in memory for its rename).
const MAX_HELD_MEMORY: u64 = 64 * 1024 * 1024;

/// An open download.
#[derive(Debug)]
pub struct Download {
    pub path: RemotePath,
    pub reader: ObjectReader,
    /// The published document served, for download receipts.
    pub document_id: Option<i64>,
}

/// Where a finished upload goes.
#[derive(Debug, Clone)]
enum Destination {
    Inbox {
        contract_id: i64,
        organisation_id: i64,
        kind: KindName,
        uploader_user_id: i64,
        /// Into `/<contract>/test/<kind>/`: checked and reported, applied to nothing.
        test: bool,
    },
    Documents {
        contract_id: i64,
        contract: crate::domain::ContractNumber,
        kind: KindName,
        year: Option<Year>,
    },
    /// A user sheet for the insurer's decision.
    AccessRequest {
        organisation_id: i64,
        uploader_user_id: i64,
        language: crate::domain::Language,
    },
}

/// An upload in progress: the bytes go to `writer`.
pub struct Upload {
    pub path: RemotePath,
    pub writer: ObjectWriter,
    destination: Destination,
    limit: Option<SizeLimit>,
    storage: crate::storage::ObjectStore,
}

pub use crate::registry::Quota;

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("path", &self.path.to_string()).finish_non_exhaustive()
    }
}

impl Upload {
    /// The sink that takes the upload's WRITEs (no file larger than `max_upload_bytes`, nor
    /// than the upload's own limit), and the destination, to finish the upload once the sink
    /// is done.
    pub fn into_parts<T>(self, max_upload_bytes: u64) -> (RemotePath, UploadSink<T>, UploadDestination) {
        let sink = UploadSink::new(self.storage, self.writer, self.limit, max_upload_bytes);
        (self.path, sink, UploadDestination(self.destination))
    }
}

/// Where a finished upload goes; opaque outside the gateway.
#[derive(Debug, Clone)]
pub struct UploadDestination(Destination);

/// What closing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Recorded as an upload (inbox) or a document version.
    Recorded,
    /// Same content as the current document of that name: nothing changed.
    Unchanged,
    /// Temporary name: waiting for a rename to its final name.
    Held,
}

struct HeldUpload {
    destination: Destination,
    staged: StagedObject,
    mtime: i64,
}

/// Temporary-named uploads of one session, waiting for their final name.
#[derive(Default)]
pub struct HeldUploads {
    held: HashMap<RemotePath, HeldUpload>,
    /// Documents this session published, by contract and kind: told to each organisation in
    /// one digest when the session ends.
    published: crate::notify::Published,
}

impl std::fmt::Debug for HeldUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldUploads({})", self.held.len())
    }
}

impl HeldUploads {
    pub(super) fn entries_in(&self, folder: &RemotePath) -> Vec<Entry> {
        self.held
            .iter()
            .filter(|(path, _)| &path.parent() == folder)
            .filter_map(|(path, held)| {
                Some(Entry {
                    name: path.file_name()?.to_string(),
                    attributes: EntryAttributes {
                        folder: false,
                        size: held.staged.size(),
                        mtime: held.mtime,
                        writable: true,
                    },
                })
            })
            .collect()
    }

    pub(super) fn attributes_of(&self, path: &RemotePath) -> Option<EntryAttributes> {
        self.held.get(path).map(|held| EntryAttributes {
            folder: false,
            size: held.staged.size(),
            mtime: held.mtime,
            writable: true,
        })
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Drops every held upload (their staged objects go with them) and names what was lost.
    pub fn discard(&mut self) -> Vec<RemotePath> {
        self.held.drain().map(|(path, _)| path).collect()
    }

    /// What the session published, emptied.
    pub fn take_published(&mut self) -> crate::notify::Published {
        std::mem::take(&mut self.published)
    }
}

fn same_folder(from: &RemotePath, to: &RemotePath) -> bool {
    from.parent() == to.parent()
}

impl Gateway {
    /// Audits the outcome of an operation and passes the result through.
    fn audited<T>(
        &self,
        principal: &Principal,
        context: &SessionContext,
        action: AuditAction,
        path: &RemotePath,
        result: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        if let Err(error) = &result {
            let outcome = match error {
                GatewayError::Storage(_)
                | GatewayError::Registry(_)
                | GatewayError::Reader(_)
                | GatewayError::NoSheetSchema => AuditOutcome::Failed,
                _ => AuditOutcome::Refused,
            };
            if outcome == AuditOutcome::Failed {
                tracing::error!(session = %context.session_id, action = action.as_str(), error = ?error, "request failed");
            }
            self.audit_event(
                Some(principal),
                context,
                action,
                Some(path.to_string()),
                outcome,
                Some(error.to_string()),
            );
        }
        result
    }

    pub async fn open_download(
        &self,
        principal: &Principal,
        path: &RemotePath,
        context: &SessionContext,
    ) -> Result<Download, GatewayError> {
        let result = self.open_download_inner(principal, path).await;
        if result.is_ok() {
            self.audit_event(
                Some(principal),
                context,
                AuditAction::OpenRead,
                Some(path.to_string()),
                AuditOutcome::Ok,
                None,
            );
        }
        self.audited(principal, context, AuditAction::OpenRead, path, result)
    }

    async fn open_download_inner(&self, principal: &Principal, path: &RemotePath) -> Result<Download, GatewayError> {
        let node = self.node_for(principal, path, Operation::Read)?;
        let mut document_id = None;
        let object_key = match &node {
            Node::Document { contract, kind, year, name } => {
                let document =
                    self.registry.document(contract, kind, *year, name).await?.ok_or(GatewayError::NotFound)?;
                document_id = Some(document.id);
                document.object_key
            }
            Node::ResultFile { contract, name } => {
                let contract = self.contract_record(contract).await?;
                let report = self.registry.report(contract.id, name.as_str()).await?.ok_or(GatewayError::NotFound)?;
                report.object_key
            }
            Node::AccessRequestFile { name } => self.access_request_object(principal, name).await?.0,
            Node::AccessFile { name } if name.as_str() == crate::vfs::USERS_FILE => {
                let reader = crate::storage::ObjectReader::from_bytes(self.users_workbook(principal).await?);
                return Ok(Download { path: path.clone(), reader, document_id: None });
            }
            Node::TemplateFile { contract, name } => {
                let reader =
                    crate::storage::ObjectReader::from_bytes(self.template_named(principal, contract, name).await?);
                return Ok(Download { path: path.clone(), reader, document_id: None });
            }
            Node::DocumentChecksums { contract, kind, year } => {
                let reader = crate::storage::ObjectReader::from_bytes(self.checksums(contract, kind, *year).await?.0);
                return Ok(Download { path: path.clone(), reader, document_id: None });
            }
            _ => return Err(GatewayError::NotFound),
        };
        let key = ObjectKey::from_stored(&object_key)?;
        let reader = self.storage.open_reader(&key).await?;
        Ok(Download { path: path.clone(), reader, document_id })
    }

    /// Records the end of a download with the bytes served, and a user's first download of a
    /// published document (its receipt).
    pub async fn close_download(
        &self,
        principal: &Principal,
        download: &Download,
        bytes: u64,
        context: &SessionContext,
    ) {
        let mut event = self.session_event(
            Some(principal),
            context,
            AuditAction::CloseRead,
            Some(download.path.to_string()),
            AuditOutcome::Ok,
            None,
        );
        event.bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        // The receipt goes with the audit event, written off the reply's path: an employer
        // fetching many small files would otherwise wait for a registry transaction on every
        // close.
        if let (Some(document_id), Role::Employer { user_id, .. }, true) =
            (download.document_id, &principal.role, bytes > 0)
        {
            event.receipt = Some(DownloadReceipt { document_id, user_id: *user_id });
        }
        self.audit.record(event);
        Metrics::count(&metrics().bytes, "direction", "download", bytes);
    }

    pub async fn begin_upload(
        &self,
        principal: &Principal,
        path: &RemotePath,
        context: &SessionContext,
    ) -> Result<Upload, GatewayError> {
        let result = self.begin_upload_inner(principal, path).await;
        if result.is_ok() {
            self.audit_event(
                Some(principal),
                context,
                AuditAction::OpenWrite,
                Some(path.to_string()),
                AuditOutcome::Ok,
                None,
            );
        }
        self.audited(principal, context, AuditAction::OpenWrite, path, result)
    }

    async fn begin_upload_inner(&self, principal: &Principal, path: &RemotePath) -> Result<Upload, GatewayError> {
        let node = self.node_for(principal, path, Operation::Create)?;
        let processed = |bytes: u64| Some(SizeLimit { bytes, reason: SizeLimitReason::Processed });
        let (destination, key, limit) = match (&node, &principal.role) {
            (Node::InboxFile { contract, kind, name, test }, Role::Employer { user_id, .. }) => {
                let record = self.contract_record(contract).await?;
                self.refuse_name_of_another_uploader(record.id, kind, name, *test, *user_id).await?;
                let destination = Destination::Inbox {
                    contract_id: record.id,
                    organisation_id: record.organisation_id,
                    kind: kind.clone(),
                    uploader_user_id: *user_id,
                    test: *test,
                };
                // A file processing would refuse is refused while it is written, not stored.
                let processed =
                    self.schemas.for_kind(kind.as_str()).and_then(|_| processed(self.max_processed_upload_bytes));
                let quota = self.upload_quota(record.organisation_id, *user_id).await?;
                let limit = Some(processed.map_or(quota, |processed| processed.min(quota)));
                (destination, ObjectKey::for_upload(contract, kind), limit)
            }
            (Node::Document { contract, kind, year, .. }, Role::Staff { .. }) => {
                let record = self.contract_record(contract).await?;
                let destination = Destination::Documents {
                    contract_id: record.id,
                    contract: contract.clone(),
                    kind: kind.clone(),
                    year: *year,
                };
                (destination, ObjectKey::for_document(contract, kind), None)
            }
            (Node::AccessRequestFile { .. }, Role::Employer { user_id, organisation_id, .. }) => {
                let language =
                    self.registry.user_by_id(*user_id).await.map(|u| u.language).unwrap_or(crate::domain::Language::Fr);
                let destination = Destination::AccessRequest {
                    organisation_id: *organisation_id,
                    uploader_user_id: *user_id,
                    language,
                };
                (
                    destination,
                    ObjectKey::for_access_request(*organisation_id),
                    processed(crate::access_requests::MAX_SHEET_BYTES),
                )
            }
            _ => return Err(GatewayError::Unsupported(Unsupported::CannotWriteHere)),
        };
        if let Some(free) = self.storage.short_of_space()? {
            tracing::error!(
                free_bytes = free,
                "uploads refused: the storage volume is below its reserve of free space"
            );
            return Err(GatewayError::StorageFull);
        }
        let writer = self.storage.create(key).await?;
        Ok(Upload { path: path.clone(), writer, destination, limit, storage: self.storage.clone() })
    }

    /// What an inbox upload may still write under the organisation's storage quota and the
    /// user's daily volume; refused at once when nothing is left.
    async fn upload_quota(&self, organisation_id: i64, user_id: i64) -> Result<SizeLimit, GatewayError> {
        let stored = self.registry.stored_inbox_bytes(organisation_id).await?;
        let today = self.registry.uploaded_bytes_since(user_id, crate::registry::utc_day_start(now_seconds())).await?;
        let organisation = SizeLimit {
            bytes: self.quota.organisation_bytes.saturating_sub(stored),
            reason: SizeLimitReason::OrganisationQuota,
        };
        let daily = SizeLimit {
            bytes: self.quota.user_daily_bytes.saturating_sub(today),
            reason: SizeLimitReason::UserDailyQuota,
        };
        let limit = organisation.min(daily);
        if limit.bytes == 0 {
            return Err(limit.error());
        }
        Ok(limit)
    }

    /// An inbox name that shows someone else's upload cannot be taken over: that would hide it
    /// from its sender.
    async fn refuse_name_of_another_uploader(
        &self,
        contract_id: i64,
        kind: &KindName,
        name: &FileName,
        test: bool,
        user_id: i64,
    ) -> Result<(), GatewayError> {
        if name.is_temporary() {
            return Ok(());
        }
        match self.registry.upload_by_name(contract_id, kind, name, test).await? {
            Some(upload) if upload.uploader_user_id != user_id => {
                Err(GatewayError::Conflict(Conflict::NameOfAnotherUploader))
            }
            _ => Ok(()),
        }
    }

    /// Completes an upload whose bytes are all staged.
    pub async fn finish_upload(
        &self,
        principal: &Principal,
        path: RemotePath,
        destination: UploadDestination,
        staged: StagedObject,
        context: &SessionContext,
        held: &mut HeldUploads,
    ) -> Result<UploadOutcome, GatewayError> {
        let (size, sha256) = (staged.size(), staged.sha256().to_string());
        let is_temporary = path.file_name().is_some_and(FileName::is_temporary);
        // Rights are checked again at the close: a profile changed during the upload counts.
        let result = if let Err(error) = self.node_for(principal, &path, Operation::Create) {
            Err(error)
        } else if is_temporary {
            let in_memory: u64 = held.held.values().map(|h| h.staged.bytes_in_memory()).sum();
            let too_many = held.held.len() >= MAX_HELD_UPLOADS && !held.held.contains_key(&path);
            if too_many || in_memory + staged.bytes_in_memory() > MAX_HELD_MEMORY {
                Err(GatewayError::Conflict(Conflict::TooManyHeldFiles))
            } else {
                held.held.insert(path.clone(), HeldUpload { destination: destination.0, staged, mtime: now_seconds() });
                Ok(UploadOutcome::Held)
            }
        } else {
            self.commit(principal, &path, destination.0, staged, held).await
        };
        if let Ok(outcome) = &result {
            let mut event = self.session_event(
                Some(principal),
                context,
                AuditAction::CloseWrite,
                Some(path.to_string()),
                AuditOutcome::Ok,
                Some(format!("{outcome:?}").to_lowercase()),
            );
            event.bytes = Some(i64::try_from(size).unwrap_or(i64::MAX));
            event.sha256 = Some(sha256);
            self.audit.record(event);
            Metrics::count(&metrics().bytes, "direction", "upload", size);
        }
        self.audited(principal, context, AuditAction::CloseWrite, &path, result)
    }

    /// Checks a dropped user sheet at once and records it as a request with its report:
    /// "pending" for the insurer's decision, or "invalid" with the problems to fix.
    async fn record_access_request(
        &self,
        organisation_id: i64,
        uploader_user_id: i64,
        language: crate::domain::Language,
        name: &FileName,
        sheet: crate::storage::Provisional,
    ) -> Result<UploadOutcome, GatewayError> {
        let stored = sheet.object().clone();
        let checked = if stored.size > crate::access_requests::MAX_SHEET_BYTES {
            let finding = crate::ingest::worker::file_finding(&crate::ingest::read::ReadError::TooLarge {
                limit: crate::access_requests::MAX_SHEET_BYTES,
            });
            crate::access_requests::CheckedSheet { rows: Vec::new(), findings: vec![finding] }
        } else {
            let bytes = self.storage.read_verified(&stored.key, &stored.sha256).await?;
            crate::access_requests::check_sheet(
                &self.registry,
                &self.schemas,
                &self.reader,
                organisation_id,
                name.as_str(),
                bytes,
                self.clock.today(),
            )
            .await?
        };
        let status = if checked.errors() > 0 {
            crate::domain::AccessRequestStatus::Invalid
        } else {
            crate::domain::AccessRequestStatus::Pending
        };
        let report = checked.report_json(name.as_str(), status, language);
        let mut writer = self.storage.create(ObjectKey::for_access_request(organisation_id)).await?;
        writer.append(bytes::Bytes::from(report)).await?;
        let report_object = self.storage.commit_provisionally(writer.finish().await?).await?;
        let report = report_object.object();
        self.registry
            .record_access_request(&crate::registry::NewAccessRequest {
                organisation_id,
                uploader_user_id,
                file_name: name.to_string(),
                size: stored.size,
                sha256: stored.sha256.clone(),
                object_key: stored.key.to_string(),
                report_key: report.key.to_string(),
                report_size: report.size,
                status,
                problems: checked.errors() as i64,
            })
            .await?;
        report_object.keep();
        sheet.keep();
        Ok(UploadOutcome::Recorded)
    }

    /// The stored object behind `/access/requests/<name>`: a sheet or its `.report.json`.
    pub(super) async fn access_request_object(
        &self,
        principal: &Principal,
        name: &FileName,
    ) -> Result<(String, u64, i64), GatewayError> {
        let organisation_id = principal.organisation_id().ok_or(GatewayError::NotFound)?;
        let requests = self.registry.access_requests(Some(organisation_id)).await?;
        for request in requests {
            if request.file_name == name.as_str() {
                return Ok((request.object_key, request.size, request.created_at));
            }
            if format!("{}.report.json", request.file_name) == name.as_str() {
                return Ok((request.report_key, request.report_size, request.created_at));
            }
        }
        Err(GatewayError::NotFound)
    }

    /// Object first, registry row second; an object whose row is refused, or that is not
    /// needed, is removed again (`storage::Provisional`).
    async fn commit(
        &self,
        principal: &Principal,
        path: &RemotePath,
        destination: Destination,
        staged: StagedObject,
        held: &mut HeldUploads,
    ) -> Result<UploadOutcome, GatewayError> {
        let name = path.file_name().cloned().ok_or(GatewayError::NotFound)?;
        let object = self.storage.commit_provisionally(staged).await?;
        match destination {
            Destination::Inbox { contract_id, organisation_id, kind, uploader_user_id, test } => {
                let queue_ingestion = self.schemas.for_kind(kind.as_str()).is_some();
                // Counted again as it is recorded: uploads written side by side each saw the
                // quota left when they opened.
                let quota = crate::registry::UploadQuota {
                    organisation_id,
                    organisation_bytes: self.quota.organisation_bytes,
                    user_daily_bytes: self.quota.user_daily_bytes,
                    day_start: crate::registry::utc_day_start(now_seconds()),
                };
                let stored = object.object();
                self.registry
                    .record_upload(
                        &NewUpload {
                            contract_id,
                            kind,
                            uploader_user_id,
                            file_name: name,
                            size: stored.size,
                            sha256: stored.sha256.clone(),
                            object_key: stored.key.to_string(),
                            test,
                        },
                        queue_ingestion,
                        Some(&quota),
                    )
                    .await
                    .map_err(|error| match error {
                        crate::registry::RegistryError::OverQuota { quota, remaining } => {
                            GatewayError::Quota { quota, remaining }
                        }
                        other => GatewayError::from(other),
                    })?;
                object.keep();
                if queue_ingestion {
                    self.ingest_wakeup.notify_one();
                }
                Ok(UploadOutcome::Recorded)
            }
            Destination::Documents { contract_id, contract, kind, year } => {
                let place = DocumentPlace {
                    contract_id,
                    contract: contract.clone(),
                    kind: kind.clone(),
                    year,
                    file_name: name,
                    published_by: principal.login.to_string(),
                };
                match crate::publishing::publish(&self.registry, &place, object).await? {
                    PublishOutcome::Published { .. } => {
                        held.published.add(&contract, kind.as_str());
                        Ok(UploadOutcome::Recorded)
                    }
                    PublishOutcome::Unchanged => Ok(UploadOutcome::Unchanged),
                }
            }
            Destination::AccessRequest { organisation_id, uploader_user_id, language } => {
                self.record_access_request(organisation_id, uploader_user_id, language, &name, object).await
            }
        }
    }

    pub async fn rename(
        &self,
        principal: &Principal,
        from: &RemotePath,
        to: &RemotePath,
        context: &SessionContext,
        held: &mut HeldUploads,
    ) -> Result<(), GatewayError> {
        let result = self.rename_inner(principal, from, to, held).await;
        if result.is_ok() {
            let reason = Some(format!("to {to}"));
            self.audit_event(
                Some(principal),
                context,
                AuditAction::Rename,
                Some(from.to_string()),
                AuditOutcome::Ok,
                reason,
            );
        }
        self.audited(principal, context, AuditAction::Rename, from, result)
    }

    async fn rename_inner(
        &self,
        principal: &Principal,
        from: &RemotePath,
        to: &RemotePath,
        held: &mut HeldUploads,
    ) -> Result<(), GatewayError> {
        let from_node = self.node_for(principal, from, Operation::Rename)?;
        self.node_for(principal, to, Operation::Rename)?;
        if !same_folder(from, to) {
            return Err(GatewayError::Unsupported(Unsupported::RenameWithinFolder));
        }
        if let (Some(pending), Some(new_name)) = (held.held.get(from), to.file_name()) {
            if let (Destination::Inbox { contract_id, kind, uploader_user_id, test, .. }, false) =
                (&pending.destination, new_name.is_temporary())
            {
                self.refuse_name_of_another_uploader(*contract_id, kind, new_name, *test, *uploader_user_id).await?;
            }
        }
        if let Some(pending) = held.held.remove(from) {
            self.node_for(principal, to, Operation::Create)?;
            if to.file_name().is_some_and(FileName::is_temporary) {
                held.held.insert(to.clone(), pending);
                return Ok(());
            }
            return self.commit(principal, to, pending.destination, pending.staged, held).await.map(|_| ());
        }
        let (Node::InboxFile { contract, kind, name, test }, Role::Employer { user_id, .. }) =
            (&from_node, &principal.role)
        else {
            return Err(GatewayError::Unsupported(Unsupported::DocumentsNotRenamed));
        };
        let contract = self.contract_record(contract).await?;
        let upload =
            self.registry.upload_by_name(contract.id, kind, name, *test).await?.ok_or(GatewayError::NotFound)?;
        if upload.uploader_user_id != *user_id {
            return Err(GatewayError::Conflict(Conflict::OnlyUploaderRenames));
        }
        let new_name = to.file_name().ok_or(GatewayError::NotFound)?;
        self.refuse_name_of_another_uploader(contract.id, kind, new_name, *test, *user_id).await?;
        if !self.registry.rename_upload(upload.id, new_name).await? {
            return Err(GatewayError::Conflict(Conflict::BeingProcessed));
        }
        Ok(())
    }

    pub async fn remove(
        &self,
        principal: &Principal,
        path: &RemotePath,
        context: &SessionContext,
        held: &mut HeldUploads,
    ) -> Result<(), GatewayError> {
        let result = self.remove_inner(principal, path, held).await;
        if result.is_ok() {
            self.audit_event(
                Some(principal),
                context,
                AuditAction::Remove,
                Some(path.to_string()),
                AuditOutcome::Ok,
                None,
            );
        }
        self.audited(principal, context, AuditAction::Remove, path, result)
    }

    async fn remove_inner(
        &self,
        principal: &Principal,
        path: &RemotePath,
        held: &mut HeldUploads,
    ) -> Result<(), GatewayError> {
        if held.held.contains_key(path) {
            self.node_for(principal, path, Operation::Stat)?;
            held.held.remove(path);
            return Ok(());
        }
        let node = self.node_for(principal, path, Operation::Remove)?;
        let (Node::InboxFile { contract, kind, name, test }, Role::Employer { user_id, .. }) = (&node, &principal.role)
        else {
            return Err(GatewayError::Unsupported(Unsupported::OnlyOwnUploadsDeleted));
        };
        let contract = self.contract_record(contract).await?;
        let upload =
            self.registry.upload_by_name(contract.id, kind, name, *test).await?.ok_or(GatewayError::NotFound)?;
        if upload.uploader_user_id != *user_id {
            return Err(GatewayError::Conflict(Conflict::OnlyUploaderDeletes));
        }
        use crate::registry::UploadStatus;
        let removed = match upload.status {
            UploadStatus::Received => self.registry.withdraw_upload(upload.id).await?,
            // A refused file is of no use stored: its sender may delete it; the report stays.
            UploadStatus::Rejected | UploadStatus::Failed => {
                self.registry
                    .mark_upload_file_removed(upload.id, &[UploadStatus::Rejected, UploadStatus::Failed])
                    .await?
            }
            // A test recorded nothing: its sender may clear it whatever its result.
            UploadStatus::Accepted | UploadStatus::Duplicate if upload.test => {
                self.registry
                    .mark_upload_file_removed(upload.id, &[UploadStatus::Accepted, UploadStatus::Duplicate])
                    .await?
            }
            UploadStatus::Accepted | UploadStatus::Duplicate => {
                return Err(GatewayError::Conflict(Conflict::AcceptedKept))
            }
            UploadStatus::Processing | UploadStatus::Withdrawn => false,
        };
        if !removed {
            return Err(GatewayError::Conflict(Conflict::BeingProcessedNotDeleted));
        }
        self.storage.delete(&ObjectKey::from_stored(&upload.object_key)?).await?;
        Ok(())
    }

    /// Accepts the times a client sets after an upload; other attribute changes are refused.
    pub async fn set_times(
        &self,
        principal: &Principal,
        path: &RemotePath,
        mtime: Option<i64>,
        held: &mut HeldUploads,
    ) -> Result<(), GatewayError> {
        if let Some(pending) = held.held.get_mut(path) {
            if let Some(mtime) = mtime {
                pending.mtime = mtime;
            }
            return Ok(());
        }
        let node = self.node_for(principal, path, Operation::SetStat)?;
        if let (Node::InboxFile { contract, kind, name, test }, Some(mtime), Role::Employer { user_id, .. }) =
            (&node, mtime, &principal.role)
        {
            let contract = self.contract_record(contract).await?;
            let upload =
                self.registry.upload_by_name(contract.id, kind, name, *test).await?.ok_or(GatewayError::NotFound)?;
            if upload.uploader_user_id != *user_id {
                return Err(GatewayError::Conflict(Conflict::OnlyUploaderChanges));
            }
            self.registry.set_upload_client_mtime(upload.id, mtime).await?;
        }
        Ok(())
    }
}
