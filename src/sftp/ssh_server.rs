//! The SSH server: an accept loop with bounded connections, authentication through the
//! gateway, and channels restricted to the `sftp` subsystem.
//!
//! Written around `russh::server::run_stream` rather than `run_on_socket`, which stops the
//! whole server on one failed `accept()` and has no connection cap.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{cipher, compression, kex, mac, Channel, ChannelId, MethodKind, MethodSet, Preferred, SshId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::access::Principal;
use crate::auth::limits::{ConnectionRate, Counters, MaxStartups, RefusedConnections, Slot};
use crate::domain::Login;
use crate::domain::{AuditAction, AuditOutcome};
use crate::gateway::{Gateway, SessionContext};

use super::proxy_header::{read_proxy_header, ProxyHeader};
use super::sftp_session::{self, SessionEnd, SessionLimits};

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("cannot create the folder of the host key {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the host key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    #[error("the host key {path} is readable by group or others: run chmod 600 on it")]
    Exposed { path: PathBuf },
    #[error("cannot write the host key {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    #[error("cannot generate a host key")]
    Generate(#[source] russh::keys::ssh_key::Error),
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub host_key: PathBuf,
    /// Logged-in connections, in total and per source address.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Connections not logged in yet (their own budget, apart from the logged-in ones).
    pub max_startups: MaxStartups,
    pub max_unauthenticated_per_address: usize,
    pub connections_per_minute_per_address: u32,
    pub connection_burst_per_address: u32,
    pub max_sessions_per_user: usize,
    pub login_grace: Duration,
    pub idle_timeout: Duration,
    pub auth_rejection_delay: Duration,
    pub max_concurrent_password_checks: usize,
    pub max_open_handles: usize,
    pub max_bytes_in_flight: usize,
    pub max_upload_bytes: u64,
    pub shutdown_grace: Duration,
    /// Between the start of shutdown and the end of accepting (`/readyz` says 503 meanwhile).
    pub drain_delay: Duration,
    /// A PROXY protocol header comes first, from `trusted_proxies` only.
    pub proxy_protocol: bool,
    pub trusted_proxies: Vec<crate::auth::defender::Network>,
}

/// Loads the ed25519 host key, generating it (mode 0600) on first start.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, HostKeyError> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        let mode = std::fs::metadata(path)
            .map_err(|e| HostKeyError::Folder { path: path.to_path_buf(), source: e })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(HostKeyError::Exposed { path: path.to_path_buf() });
        }
        return PrivateKey::read_openssh_file(path)
            .map_err(|source| HostKeyError::Read { path: path.to_path_buf(), source });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|source| HostKeyError::Folder { path: parent.to_path_buf(), source })?;
    }
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(HostKeyError::Generate)?;
    key.write_openssh_file(path, russh::keys::ssh_key::LineEnding::LF)
        .map_err(|source| HostKeyError::Write { path: path.to_path_buf(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| HostKeyError::Folder { path: path.to_path_buf(), source })?;
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "generated a new host key");
    Ok(key)
}

/// Modern algorithms only: no SHA-1, no CBC, no compression. The strict-kex marker keeps the
/// Terrapin countermeasure on.
fn preferred_algorithms() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::ECDH_SHA2_NISTP256,
            kex::ECDH_SHA2_NISTP384,
            kex::ECDH_SHA2_NISTP521,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Borrowed(&[
            Algorithm::Ed25519,
            Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
            Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
            Algorithm::Ecdsa { curve: EcdsaCurve::NistP521 },
            Algorithm::Rsa { hash: Some(russh::keys::HashAlg::Sha512) },
            Algorithm::Rsa { hash: Some(russh::keys::HashAlg::Sha256) },
        ]),
        cipher: Cow::Borrowed(&[
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::AES_256_CTR,
            cipher::AES_192_CTR,
            cipher::AES_128_CTR,
        ]),
        mac: Cow::Borrowed(&[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM, mac::HMAC_SHA512, mac::HMAC_SHA256]),
        compression: Cow::Borrowed(&[compression::NONE]),
        ..Preferred::default()
    }
}

/// How long a connection whose SFTP session ended is left for the client to close (or to open
/// a new session) before the server closes it.
const AFTER_SESSION_LINGER: Duration = Duration::from_secs(10);

/// Where the connection's SFTP session stands; the connection's timers read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SftpPhase {
    /// Not started yet: the login grace timer may still close the connection.
    NotStarted,
    Running,
    /// Ended by the client, the channel closed by the server: the client closes the connection.
    Ended,
}

/// Ends a channel the way SSH clients expect of a finished subsystem: exit status 0, EOF,
/// close. Clients (PuTTY's psftp, Go's SSH library) then close the connection themselves; a
/// disconnect sent at this point is reported by them as a failure.
async fn end_channel(handle: &russh::server::Handle, channel: ChannelId) {
    let _ = handle.exit_status_request(channel, 0).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

/// Sends a disconnect, giving up after a second: the connection is cut anyway.
async fn disconnect(handle: &russh::server::Handle, reason: &str) {
    let message = handle.disconnect(russh::Disconnect::ByApplication, reason.to_string(), "en".into());
    let _ = tokio::time::timeout(Duration::from_secs(1), message).await;
}

fn advertised_methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

fn reject() -> Auth {
    // Naming the methods again keeps clients offering passwords after a wrong one.
    Auth::Reject { proceed_with_methods: Some(advertised_methods()), partial_success: false }
}

/// The SFTP server of the gateway.
pub struct SshServer {
    config: Arc<russh::server::Config>,
    gateway: Arc<Gateway>,
    settings: ServerSettings,
    /// Logged-in connections, in total and per address: taken at login, never before.
    connections: Arc<Semaphore>,
    per_address: Arc<Counters<IpAddr>>,
    per_user: Arc<Counters<Login>>,
    /// Connections not logged in yet, in total (one key) and per address.
    waiting: Arc<Counters<()>>,
    waiting_per_address: Arc<Counters<IpAddr>>,
    rate: ConnectionRate,
    refused: Arc<RefusedConnections>,
    next_session: AtomicU64,
}

/// PROXY protocol headers being read at once; a balancer sends its header at once.
const MAX_PENDING_PROXY_HEADERS: usize = 256;
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How often refused connections are summed up into the audit trail.
const REFUSALS_WINDOW: Duration = Duration::from_secs(60);

impl SshServer {
    pub fn new(gateway: Arc<Gateway>, host_key: PrivateKey, settings: &ServerSettings) -> Self {
        let config = russh::server::Config {
            server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-pension-gateway")),
            methods: advertised_methods(),
            auth_rejection_time: settings.auth_rejection_delay,
            // The first "none" probe reveals nothing: answer it at once.
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![host_key],
            window_size: 8 * 1024 * 1024,
            maximum_packet_size: 65535,
            channel_buffer_size: 256,
            preferred: preferred_algorithms(),
            max_auth_attempts: 6,
            inactivity_timeout: Some(settings.idle_timeout),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Self {
            config: Arc::new(config),
            gateway,
            settings: settings.clone(),
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            per_address: Arc::new(Counters::new()),
            per_user: Arc::new(Counters::new()),
            waiting: Arc::new(Counters::new()),
            waiting_per_address: Arc::new(Counters::new()),
            rate: ConnectionRate::new(
                settings.connections_per_minute_per_address,
                settings.connection_burst_per_address,
            ),
            refused: Arc::new(RefusedConnections::default()),
            next_session: AtomicU64::new(1),
        }
    }

    /// Accepts connections until `shutdown` turns true, then lets open transfers finish for
    /// at most the configured grace time and disconnects what remains.
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let (force_stop, force_stop_signal) = watch::channel(false);
        let mut sessions = JoinSet::new();
        let mut refusals_window = tokio::time::interval(REFUSALS_WINDOW);
        refusals_window.reset();
        // Connections from a balancer come back here once their PROXY header gave the client.
        let (proxied, mut proxied_connections) = mpsc::channel::<(TcpStream, SocketAddr)>(64);
        let pending_headers = Arc::new(Semaphore::new(MAX_PENDING_PROXY_HEADERS));
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = refusals_window.tick() => self.report_refusals(),
                Some((tcp, client)) = proxied_connections.recv() => {
                    self.admit(tcp, client, &mut sessions, &shutdown, &force_stop_signal)
                }
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) if self.settings.proxy_protocol => {
                        self.read_client_address(tcp, peer, &proxied, &pending_headers)
                    }
                    Ok((tcp, peer)) => self.admit(tcp, peer, &mut sessions, &shutdown, &force_stop_signal),
                    Err(error) => {
                        // Out of file descriptors and the like: wait, but keep serving.
                        tracing::warn!(error = %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        drop(listener);
        self.report_refusals();
        tracing::info!(open = sessions.len(), "stopped accepting connections; waiting for open transfers");
        let deadline = tokio::time::sleep(self.settings.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = sessions.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!(open = sessions.len(), "shutdown grace time over: disconnecting");
                    let _ = force_stop.send(true);
                    let cleanup = tokio::time::timeout(Duration::from_secs(5), async {
                        while sessions.join_next().await.is_some() {}
                    });
                    if cleanup.await.is_err() {
                        sessions.abort_all();
                    }
                    break;
                }
            }
        }
    }

    /// Behind a balancer: refuses a connection from outside `trusted_proxies`, else reads its
    /// PROXY header (off the accept loop) and hands the connection back with the client's
    /// address. Nothing of SSH is sent before.
    fn read_client_address(
        &self,
        mut tcp: TcpStream,
        peer: SocketAddr,
        proxied: &mpsc::Sender<(TcpStream, SocketAddr)>,
        pending: &Arc<Semaphore>,
    ) {
        let context = SessionContext { session_id: "-".into(), remote_addr: peer };
        if !self.settings.trusted_proxies.iter().any(|network| network.contains(peer.ip())) {
            return self.refuse_connection(&context, "not-a-trusted-proxy");
        }
        let Ok(permit) = Arc::clone(pending).try_acquire_owned() else {
            return self.refuse_connection(&context, "too-many-proxy-headers-pending");
        };
        let (proxied, gateway, refused) = (proxied.clone(), Arc::clone(&self.gateway), Arc::clone(&self.refused));
        tokio::spawn(async move {
            let header = tokio::time::timeout(PROXY_HEADER_TIMEOUT, read_proxy_header(&mut tcp)).await;
            drop(permit);
            let client = match header {
                Ok(Ok(ProxyHeader::Client(client))) => client,
                Ok(Ok(ProxyHeader::Local)) => peer,
                Ok(Err(error)) => {
                    tracing::warn!(proxy = %peer, error = %error, "connection refused");
                    return refuse_connection(&gateway, &refused, &context, "bad-proxy-header");
                }
                Err(_) => return refuse_connection(&gateway, &refused, &context, "proxy-header-timeout"),
            };
            let _ = proxied.send((tcp, client)).await;
        });
    }

    fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        sessions: &mut JoinSet<()>,
        shutdown: &watch::Receiver<bool>,
        force_stop: &watch::Receiver<bool>,
    ) {
        let session_id = format!("s{}", self.next_session.fetch_add(1, Ordering::Relaxed));
        let (phase_sender, mut phase) = watch::channel(SftpPhase::NotStarted);
        let context = SessionContext { session_id, remote_addr: peer };
        // Before any key exchange work: connections that have not logged in draw from their
        // own budget, so that silent sockets never starve those who log in.
        let address = peer.ip();
        if !self.rate.allow(address, std::time::Instant::now()) {
            return self.refuse_connection(&context, "connection-rate");
        }
        let draw = rand::random::<u8>() % 100;
        if !self.settings.max_startups.admits(self.waiting.taken(&()), draw) {
            return self.refuse_connection(&context, "max-startups");
        }
        let Some(address_wait) =
            self.waiting_per_address.try_take(address, self.settings.max_unauthenticated_per_address)
        else {
            return self.refuse_connection(&context, "too-many-unauthenticated-from-address");
        };
        let Some(wait) = self.waiting.try_take((), self.settings.max_startups.full) else {
            return self.refuse_connection(&context, "max-startups");
        };
        let _ = tcp.set_nodelay(true);
        // A second handle on the socket lets us cut the connection whatever state russh is
        // in (before key exchange, a disconnect message cannot be sent).
        let (tcp, kill_switch) = match tcp.into_std().and_then(|s| Ok((s.try_clone()?, s))) {
            Ok((clone, std_stream)) => match TcpStream::from_std(std_stream) {
                Ok(tcp) => (tcp, clone),
                Err(error) => {
                    tracing::warn!(error = %error, "cannot set up the connection");
                    return;
                }
            },
            Err(error) => {
                tracing::warn!(error = %error, "cannot set up the connection");
                return;
            }
        };
        let handler = Connection {
            gateway: Arc::clone(&self.gateway),
            context: context.clone(),
            principal: None,
            per_user: Arc::clone(&self.per_user),
            max_sessions_per_user: self.settings.max_sessions_per_user,
            user_slot: None,
            waiting: Some((wait, address_wait)),
            connections: Arc::clone(&self.connections),
            per_address: Arc::clone(&self.per_address),
            max_connections_per_address: self.settings.max_connections_per_address,
            logged_in: None,
            channels: HashMap::new(),
            limits: SessionLimits {
                max_open_handles: self.settings.max_open_handles,
                max_bytes_in_flight: self.settings.max_bytes_in_flight,
                max_upload_bytes: self.settings.max_upload_bytes,
                idle_timeout: self.settings.idle_timeout,
            },
            shutdown: shutdown.clone(),
            phase: Arc::new(phase_sender),
            sftp_tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let sftp_tasks = Arc::clone(&handler.sftp_tasks);
        let config = Arc::clone(&self.config);
        let login_grace = self.settings.login_grace;
        let (gateway, refused) = (Arc::clone(&self.gateway), Arc::clone(&self.refused));
        let mut shutdown = shutdown.clone();
        let mut force_stop = force_stop.clone();
        sessions.spawn(async move {
            // The grace time runs from the accept, the version exchange included.
            let login_deadline = tokio::time::Instant::now() + login_grace;
            // A banned address gets nothing, not even the version line.
            if gateway.address_banned(context.remote_addr.ip()).await {
                refuse_connection(&gateway, &refused, &context, "banned");
                let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                return;
            }
            let started =
                tokio::time::timeout_at(login_deadline, russh::server::run_stream(config, tcp, handler)).await;
            let running = match started {
                Ok(Ok(running)) => running,
                Ok(Err(error)) => {
                    tracing::debug!(session = %context.session_id, error = %error, "handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(session = %context.session_id, "login grace time exceeded before the handshake");
                    let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                    return;
                }
            };
            let handle = running.handle();
            tokio::pin!(running);
            let login_deadline = tokio::time::sleep_until(login_deadline);
            tokio::pin!(login_deadline);
            let mut login_timer_done = false;
            let mut draining = false;
            // Armed when the SFTP session ends: the client is expected to close the connection.
            let linger = tokio::time::sleep(AFTER_SESSION_LINGER);
            tokio::pin!(linger);
            let mut lingering = false;
            let mut phase_open = true;
            loop {
                let current = *phase.borrow();
                if draining && current != SftpPhase::Running {
                    disconnect(&handle, "the server is shutting down").await;
                    draining = false;
                }
                tokio::select! {
                    result = &mut running => {
                        if let Err(error) = result {
                            tracing::debug!(session = %context.session_id, error = %error, "connection ended");
                        }
                        // The SFTP tasks finish what they started (commits, audit) before the
                        // connection's slots are released and shutdown may close the registry.
                        let tasks = std::mem::take(&mut *sftp_tasks.lock().unwrap_or_else(|p| p.into_inner()));
                        for task in tasks {
                            let _ = task.await;
                        }
                        break;
                    }
                    _ = &mut login_deadline, if !login_timer_done => {
                        login_timer_done = true;
                        // Read now: the session may have started since the top of the loop.
                        if *phase.borrow() == SftpPhase::NotStarted {
                            tracing::info!(session = %context.session_id, "login grace time exceeded");
                            disconnect(&handle, "login grace time exceeded").await;
                            let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                        }
                    }
                    changed = phase.changed(), if phase_open => {
                        if changed.is_err() {
                            phase_open = false;
                            continue;
                        }
                        lingering = *phase.borrow() == SftpPhase::Ended;
                        if lingering {
                            linger.as_mut().reset(tokio::time::Instant::now() + AFTER_SESSION_LINGER);
                        }
                    }
                    _ = &mut linger, if lingering => {
                        lingering = false;
                        tracing::debug!(session = %context.session_id, "connection left open after its SFTP session");
                        disconnect(&handle, "the SFTP session has ended").await;
                        let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                    }
                    changed = shutdown.changed(), if !draining => {
                        if changed.is_err() || *shutdown.borrow() {
                            draining = true;
                        }
                    }
                    _ = force_stop.changed() => {
                        disconnect(&handle, "the server is shutting down").await;
                        let _ = kill_switch.shutdown(std::net::Shutdown::Both);
                    }
                    _ = tokio::time::sleep(Duration::from_millis(200)), if draining => {}
                }
            }
        });
    }

    /// Closes a connection before any SSH work. The first refusal of an address and reason in
    /// a window is audited at once; the others are counted and summed up at the window's end.
    fn refuse_connection(&self, context: &SessionContext, reason: &'static str) {
        refuse_connection(&self.gateway, &self.refused, context, reason);
    }

    fn report_refusals(&self) {
        for (address, reason, count) in self.refused.end_window() {
            let context = SessionContext { session_id: "-".into(), remote_addr: SocketAddr::new(address, 0) };
            tracing::warn!(remote = %address, reason, count, "connections refused");
            self.gateway.audit_event(
                None,
                &context,
                AuditAction::Connect,
                None,
                AuditOutcome::Refused,
                Some(format!("{reason}: {count} more connections refused in {} s", REFUSALS_WINDOW.as_secs())),
            );
        }
    }
}

/// Audits the first refusal of an address and reason in a window; counts the others.
fn refuse_connection(
    gateway: &Arc<Gateway>,
    refused: &RefusedConnections,
    context: &SessionContext,
    reason: &'static str,
) {
    let metrics = crate::telemetry::metrics::metrics();
    crate::telemetry::metrics::Metrics::count(&metrics.connections_refused, "reason", reason, 1);
    if refused.record(context.remote_addr.ip(), reason) {
        tracing::warn!(session = %context.session_id, remote = %context.remote_addr, reason, "connection refused");
        gateway.audit_event(None, context, AuditAction::Connect, None, AuditOutcome::Refused, Some(reason.to_string()));
        // A balancer's own failures (its header) are not its clients' doing: it is never scored.
        if !matches!(reason, "banned" | "bad-proxy-header" | "proxy-header-timeout" | "too-many-proxy-headers-pending")
        {
            let (gateway, context) = (Arc::clone(gateway), context.clone());
            tokio::spawn(async move { gateway.score_over_limit(&context).await });
        }
    }
}

/// One SSH connection.
struct Connection {
    gateway: Arc<Gateway>,
    context: SessionContext,
    principal: Option<Principal>,
    per_user: Arc<Counters<Login>>,
    max_sessions_per_user: usize,
    user_slot: Option<Slot<Login>>,
    /// Held until the login: the connection's place in the budget of those not logged in.
    waiting: Option<(Slot<()>, Slot<IpAddr>)>,
    connections: Arc<Semaphore>,
    per_address: Arc<Counters<IpAddr>>,
    max_connections_per_address: usize,
    /// Taken at the login: the connection's place among the logged-in ones.
    logged_in: Option<(OwnedSemaphorePermit, Slot<IpAddr>, crate::telemetry::metrics::OpenSession)>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    limits: SessionLimits,
    shutdown: watch::Receiver<bool>,
    /// One SFTP session at a time; a client may start another once the last one ended.
    phase: Arc<watch::Sender<SftpPhase>>,
    sftp_tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Connection {
    /// Accepts an authenticated principal unless the server, its address or its login
    /// already has as many logged-in connections as allowed.
    fn admit(&mut self, principal: Option<Principal>) -> Auth {
        let Some(principal) = principal else {
            return reject();
        };
        let permit = Arc::clone(&self.connections).try_acquire_owned().ok();
        let address = self.per_address.try_take(self.context.remote_addr.ip(), self.max_connections_per_address);
        let (permit, address) = match (permit, address) {
            (Some(permit), Some(address)) => (permit, address),
            (None, _) => return self.refuse_login(&principal, "too-many-connections"),
            (Some(_), None) => return self.refuse_login(&principal, "too-many-connections-from-address"),
        };
        match self.per_user.try_take(principal.login.clone(), self.max_sessions_per_user) {
            Some(slot) => {
                self.user_slot = Some(slot);
                self.logged_in = Some((permit, address, crate::telemetry::metrics::OpenSession::start()));
                // No longer waiting: its place goes to the next connection that has not logged in.
                self.waiting = None;
                self.principal = Some(principal);
                Auth::Accept
            }
            None => self.refuse_login(&principal, "too-many-sessions"),
        }
    }

    /// Refuses an authenticated login over a limit, audited with the limit's name.
    fn refuse_login(&self, principal: &Principal, reason: &str) -> Auth {
        self.gateway.audit_event(
            Some(principal),
            &self.context,
            AuditAction::Login,
            None,
            AuditOutcome::Refused,
            Some(reason.into()),
        );
        reject()
    }

    fn refuse_request(
        &mut self,
        channel: ChannelId,
        request: AuditAction,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.gateway.audit_event(
            self.principal.as_ref(),
            &self.context,
            request,
            None,
            AuditOutcome::Refused,
            Some("only the sftp subsystem is served".into()),
        );
        // A refused channel is not read any more: drop it so that it cannot fill up.
        self.channels.remove(&channel);
        session.channel_failure(channel)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let principal = self.gateway.authenticate_password(user, password, &self.context).await;
        Ok(self.admit(principal))
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        let fingerprint = offer.public_key.fingerprint(HashAlg::Sha256).to_string();
        if self.gateway.public_key_acceptable(user, &fingerprint, &self.context).await {
            Ok(Auth::Accept)
        } else {
            Ok(reject())
        }
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        let principal = self.gateway.authenticate_public_key(user, &fingerprint, &self.context).await;
        Ok(self.admit(principal))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        Ok(reject())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.principal.is_none() || *self.phase.borrow() == SftpPhase::Running || !self.channels.is_empty() {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" || *self.phase.borrow() == SftpPhase::Running {
            return self.refuse_request(channel, AuditAction::Subsystem, session);
        }
        let (Some(principal), Some(opened)) = (self.principal.clone(), self.channels.remove(&channel)) else {
            return session.channel_failure(channel);
        };
        self.phase.send_replace(SftpPhase::Running);
        session.channel_success(channel)?;
        let gateway = Arc::clone(&self.gateway);
        let context = self.context.clone();
        let limits = self.limits;
        let shutdown = self.shutdown.clone();
        let handle = session.handle();
        let phase = Arc::clone(&self.phase);
        let task = tokio::spawn(async move {
            let end = sftp_session::serve(opened.into_stream(), gateway, principal, context, limits, shutdown).await;
            let reason = match end {
                SessionEnd::ClientClosed => {
                    end_channel(&handle, channel).await;
                    phase.send_replace(SftpPhase::Ended);
                    return;
                }
                SessionEnd::Drained => "the server is shutting down",
                SessionEnd::Idle => "idle timeout",
                SessionEnd::AccessEnded => "your access has ended",
                SessionEnd::Violation(reason) => reason,
            };
            // Disconnected while still Running: no new session can start in between.
            disconnect(&handle, reason).await;
            phase.send_replace(SftpPhase::Ended);
        });
        let mut tasks = self.sftp_tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, AuditAction::Exec, session)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        self.refuse_request(channel, AuditAction::Shell, session)
    }

    #[allow(clippy::too_many_arguments)] // the signature is russh's
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request(channel, AuditAction::X11, session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}
