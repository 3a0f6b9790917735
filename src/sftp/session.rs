//! The state of one SFTP session and the only ways to answer a request: every status goes
//! through `sftp/status.rs` (gateway errors, edge refusals, protocol answers), never a
//! hand-written code and message.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use russh_sftp::protocol::{Packet, Status, StatusCode};
use tokio::sync::{mpsc, Notify};

use crate::access::Principal;
use crate::domain::{AuditAction, AuditOutcome, RemotePath};
use crate::gateway::{Gateway, GatewayError, SessionContext};

use super::budget::{Budget, Reservation};
use super::open_handles::OpenHandles;
use super::status::{status_of, EdgeRefusal, ProtocolAnswer};
use super::wire::{encode_data, Outgoing};

/// The state of one SFTP session, shared by its dispatcher, its ordered worker and its
/// upload and download tasks.
pub struct Session {
    pub gateway: Arc<Gateway>,
    /// Who the session acts for, refreshed from the registry before requests that open,
    /// close or change files, and on a timer: a revoked, expired or changed account takes
    /// effect on open sessions.
    pub principal: std::sync::RwLock<Arc<Principal>>,
    /// Set when the account may no longer be used: the session ends.
    pub access_ended: AtomicBool,
    pub context: SessionContext,
    pub handles: Mutex<OpenHandles>,
    /// Bytes of requests and of answers not yet written to the channel.
    pub budget: Budget,
    pub max_upload_bytes: u64,
    /// Boxed: the queue reserves room for 32 answers when the session starts.
    pub responses: mpsc::UnboundedSender<Box<Outgoing>>,
    pub request_done: Notify,
    /// The server is shutting down: no new files are opened.
    pub draining: AtomicBool,
    /// The session has ended: queued requests are dropped unanswered.
    pub closing: AtomicBool,
    /// Temporary-named uploads waiting for their rename (owned by the ordered worker).
    pub held_uploads: AtomicUsize,
}

impl Session {
    pub fn principal(&self) -> Arc<Principal> {
        Arc::clone(&self.principal.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Records an upload that ends without being recorded.
    pub fn audit_lost_upload(&self, path: &RemotePath, reason: &str) {
        let principal = self.principal();
        let path = Some(path.to_string());
        self.gateway.audit_event(
            Some(&principal),
            &self.context,
            AuditAction::CloseWrite,
            path,
            AuditOutcome::Failed,
            Some(reason.into()),
        );
    }

    /// Reloads the principal; false when the account may no longer be used.
    pub async fn refresh_principal(&self) -> bool {
        let current = self.principal();
        match self.gateway.current_principal(&current, &self.context).await {
            Ok(fresh) => {
                *self.principal.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
                true
            }
            Err(_) => {
                self.access_ended.store(true, Ordering::Release);
                false
            }
        }
    }

    pub fn handles(&self) -> MutexGuard<'_, OpenHandles> {
        // A panic while holding the lock cannot leave the table half-updated: take it anyway.
        self.handles.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn send(&self, packet: Packet) {
        match Bytes::try_from(packet) {
            Ok(bytes) => {
                let _ = self.responses.send(Box::new(Outgoing { bytes, _budget: None }));
            }
            Err(error) => {
                tracing::error!(session = %self.context.session_id, error = %error, "cannot encode a response")
            }
        }
    }

    fn send_status(&self, id: u32, code: StatusCode, message: &str) {
        self.send(Packet::Status(Status {
            id,
            status_code: code,
            error_message: message.to_string(),
            language_tag: "en".to_string(),
        }));
    }

    pub fn send_ok(&self, id: u32) {
        self.answer(id, ProtocolAnswer::Ok);
    }

    pub fn answer(&self, id: u32, answer: ProtocolAnswer) {
        let (code, message) = answer.status();
        self.send_status(id, code, message);
    }

    pub fn send_error(&self, id: u32, error: &GatewayError) {
        let (code, message) = status_of(error, self.principal().language);
        self.send_status(id, code, &message);
    }

    pub fn send_refusal(&self, id: u32, refusal: EdgeRefusal) {
        let (code, message) = refusal.status(self.principal().language);
        self.send_status(id, code, message);
    }

    /// DATA is the hot path: encoded by hand with a single copy of the payload. The
    /// reservation is given back once the answer is written to the channel.
    pub fn send_data(&self, id: u32, data: &[u8], reservation: Reservation) {
        let _ = self.responses.send(Box::new(Outgoing { bytes: encode_data(id, data), _budget: Some(reservation) }));
    }

    /// Takes `len` bytes from the in-flight budget; `None` when the budget is exceeded.
    pub fn reserve(&self, len: usize) -> Option<Reservation> {
        self.budget.try_reserve(len)
    }

    /// Resolves a client path, auditing refused ones (`..` escapes, NUL bytes).
    pub fn resolve(&self, action: AuditAction, raw: &str) -> Result<RemotePath, GatewayError> {
        RemotePath::resolve(raw).map_err(|error| {
            let shown: String = raw.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
            self.gateway.audit_event(
                Some(&*self.principal()),
                &self.context,
                action,
                Some(shown),
                AuditOutcome::Refused,
                Some(error.to_string()),
            );
            GatewayError::InvalidPath(error)
        })
    }
}
