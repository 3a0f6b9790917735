//! Wiring: the only place that puts concrete pieces together. `Application::build` opens the
//! registry and storage, loads the host key and binds the listener; `local_addr` tells the
//! real port (tests bind port 0); `run_until` serves until the shutdown future completes, with
//! every background service in one `JoinSet`. [`admin`] builds the administration services
//! for the CLI, with the same parts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::admin::{Admin, AdminParts};
use crate::audit::AuditLog;
use crate::config::Settings;
use crate::gateway::{Clock, Gateway, GatewayState};
use crate::ingest::reader_process::ReaderProcess;
use crate::ingest::worker::{IngestSettingsView, Ingestor};
use crate::notify::Outbox;
use crate::registry::{Registry, RegistryError};
use crate::sftp::{load_or_create_host_key, HostKeyError, SshServer};
use crate::storage::{ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the data folder {path} is open to group or others (mode {mode:o}): it holds personal data and keys; run chmod 700 on it")]
    DataDirExposed { path: std::path::PathBuf, mode: u32 },
    #[error("cannot create the data folder {path}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot open the object storage")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    #[error(transparent)]
    AuditKey(#[from] crate::audit::AuditKeyError),
    #[error(transparent)]
    Mail(#[from] crate::notify::TransportError),
    #[error(transparent)]
    StatusToken(#[from] crate::http::TokenError),
    #[error("cannot listen on {address}: is another server using this port?")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Creates the data folder (mode 0700: it holds personal data and keys); refuses one that
/// group or others may open, as the host key.
pub fn ensure_data_dir(settings: &Settings) -> Result<(), StartupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = &settings.data_dir;
    let error = |source| StartupError::DataDir { path: path.clone(), source };
    if !path.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(error)?;
    } else {
        let mode = std::fs::metadata(path).map_err(error)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(StartupError::DataDirExposed { path: path.clone(), mode: mode & 0o777 });
        }
    }
    Ok(())
}

/// The registry (with the audit chain's key) and the object store, as the CLI and the
/// server use them.
pub async fn open_state(settings: &Settings) -> Result<(Registry, ObjectStore), StartupError> {
    ensure_data_dir(settings)?;
    let audit_key = crate::audit::load_or_create_key(&settings.audit_key)?;
    let registry =
        Registry::connect(&settings.database.url, settings.database.max_connections).await?.with_audit_key(audit_key);
    let storage = ObjectStore::open(&settings.storage).await?;
    Ok((registry, storage))
}

/// The administration services alone (the CLI), with every part they need.
pub async fn admin(settings: &Settings, actor: impl Into<String>) -> Result<Admin, StartupError> {
    let (registry, storage) = open_state(settings).await?;
    let outbox = Outbox::new(registry.clone(), &settings.notify)?;
    Ok(Admin::new(admin_parts(settings, registry, storage, outbox, Clock::system()), actor))
}

fn admin_parts(
    settings: &Settings,
    registry: Registry,
    storage: ObjectStore,
    outbox: Outbox,
    clock: Clock,
) -> AdminParts {
    AdminParts {
        registry,
        storage,
        layout: settings.layout.clone(),
        outbox,
        schemas: settings.ingest.schemas.clone(),
        reader: ReaderProcess::new(settings.ingest.reader.clone()),
        clock,
    }
}

pub struct Application {
    listener: TcpListener,
    /// The private operations listener and the status page's token, when `[http] listen` is set.
    http_listener: Option<(TcpListener, crate::http::StatusToken)>,
    drain_delay: Duration,
    admin: AdminParts,
    server: SshServer,
    gateway: Arc<Gateway>,
    registry: Registry,
    audit_writer: JoinHandle<()>,
    ingestor: Arc<Ingestor>,
    ingest_wakeup: Arc<Notify>,
    ingest_workers: usize,
    reminders: ReminderSchedule,
    retention: RetentionSchedule,
    outbox: Outbox,
    /// Held until the run ends: no second process serves the same SQLite file.
    serving_lock: Option<crate::registry::ServingLock>,
}

/// What the hourly retention pass needs.
struct RetentionSchedule {
    storage: ObjectStore,
    audit: AuditLog,
    layout: crate::layout::Layout,
    settings: crate::config::RetentionSettings,
}

/// What the hourly expiry reminders need.
struct ReminderSchedule {
    outbox: Outbox,
    days_before: i64,
    clock: Clock,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// As [`Application::build`], with a clock that tests control.
    pub async fn build_with_clock(settings: &Settings, clock: Clock) -> Result<Self, StartupError> {
        let (registry, storage) = open_state(settings).await?;
        let serving_lock = crate::registry::lock_for_serving(&settings.database.url)?;
        let removed = storage.remove_stale_staging().await?;
        if removed > 0 {
            tracing::info!(removed, "removed unfinished uploads left by stopped processes");
        }
        let host_key = load_or_create_host_key(&settings.server.host_key)?;
        let (audit, audit_writer) = AuditLog::start(registry.clone());
        let ingest_wakeup = Arc::new(Notify::new());
        let outbox = Outbox::new(registry.clone(), &settings.notify)?;
        let reader = ReaderProcess::new(settings.ingest.reader.clone());
        let state = GatewayState {
            // Interactive reads (user sheets at their CLOSE) have slots of their own: a queue of
            // slow files in ingestion never makes a master user wait.
            reader: ReaderProcess::new(settings.ingest.reader.clone()),
            max_processed_upload_bytes: settings.ingest.limits.max_file_bytes,
            quota: settings.quota,
            registry: registry.clone(),
            storage: storage.clone(),
            layout: settings.layout.clone(),
            schemas: settings.ingest.schemas.clone(),
            clock: clock.clone(),
            ingest_wakeup: Arc::clone(&ingest_wakeup),
            outbox: outbox.clone(),
            defender: settings.defender.clone(),
        };
        let clock_for_reminders = clock.clone();
        let ingestor = Arc::new(
            Ingestor::new(
                registry.clone(),
                storage.clone(),
                settings.layout.clone(),
                settings.ingest.schemas.clone(),
                IngestSettingsView {
                    limits: settings.ingest.limits,
                    parse_time_limit: settings.ingest.parse_time_limit,
                    max_attempts: settings.ingest.max_attempts,
                    lease: settings.ingest.lease,
                    reader,
                },
                clock,
                audit.clone(),
            )
            .with_mail_wakeup(outbox.wakeup()),
        );
        let admin =
            admin_parts(settings, registry.clone(), storage.clone(), outbox.clone(), clock_for_reminders.clone());
        let retention = RetentionSchedule {
            storage,
            audit: audit.clone(),
            layout: settings.layout.clone(),
            settings: settings.retention,
        };
        let gateway = Arc::new(Gateway::new(state, audit, settings.server.max_concurrent_password_checks));
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .map_err(|source| StartupError::Bind { address: settings.server.listen, source })?;
        let server = SshServer::new(Arc::clone(&gateway), host_key, &settings.server);
        let http_listener = match settings.http.listen {
            Some(address) => Some((
                TcpListener::bind(address).await.map_err(|source| StartupError::Bind { address, source })?,
                crate::http::StatusToken::load_or_create(&settings.http.token_file)?,
            )),
            None => None,
        };
        Ok(Self {
            listener,
            http_listener,
            drain_delay: settings.server.drain_delay,
            admin,
            server,
            gateway,
            registry,
            audit_writer,
            ingestor,
            ingest_wakeup,
            ingest_workers: settings.ingest.workers,
            retention,
            outbox: outbox.clone(),
            serving_lock,
            reminders: ReminderSchedule {
                outbox: outbox.clone(),
                days_before: settings.expiry_reminder_days,
                clock: clock_for_reminders,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The operations listener's address, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_listener.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The administration services of this gateway, acting for `actor`.
    pub fn admin(&self, actor: impl Into<String>) -> Admin {
        Admin::new(self.admin.clone(), actor)
    }

    pub fn gateway(&self) -> Arc<Gateway> {
        Arc::clone(&self.gateway)
    }

    /// The mail queue and its deliverer.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The ingestion worker, for tests that drive it step by step (with `ingest.workers = 0`).
    pub fn ingestor(&self) -> Arc<Ingestor> {
        Arc::clone(&self.ingestor)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open transfers finish
    /// within the grace time, writes the remaining audit events and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            http_listener,
            drain_delay,
            admin,
            server,
            gateway,
            registry,
            audit_writer,
            ingestor,
            ingest_wakeup,
            ingest_workers,
            reminders,
            retention,
            outbox,
            serving_lock,
        } = self;
        let (stop, stop_signal) = watch::channel(false);
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Outside the JoinSet: it answers (503) through the whole drain and ends with the run.
        let operations = http_listener.map(|(listener, status_token)| {
            let operations = crate::http::Operations {
                registry: registry.clone(),
                storage: admin.storage.clone(),
                draining: Arc::clone(&draining),
                status_token,
            };
            tracing::info!(address = ?listener.local_addr().ok(), "operations listener (/healthz, /readyz, /metrics, /status)");
            AbortOnDrop(tokio::spawn(crate::http::serve(listener, Arc::new(operations))))
        });
        let mut services: JoinSet<&'static str> = JoinSet::new();
        let signal = stop_signal.clone();
        services.spawn(async move {
            server.run(listener, signal).await;
            "SFTP server"
        });
        for _ in 0..ingest_workers {
            let worker = Arc::clone(&ingestor).run(Arc::clone(&ingest_wakeup), stop_signal.clone());
            services.spawn(async move {
                worker.await;
                "ingestion worker"
            });
        }
        drop(ingestor);
        let reminding = remind_hourly(registry.clone(), reminders, stop_signal.clone());
        services.spawn(async move {
            reminding.await;
            "expiry reminders"
        });
        let instance = instance_name();
        let retaining = retain_hourly(registry.clone(), retention, instance.clone(), stop_signal.clone());
        services.spawn(async move {
            retaining.await;
            "retention"
        });
        let delivering = outbox.run(stop_signal.clone());
        services.spawn(async move {
            delivering.await;
            "mail delivery"
        });
        let checkpointing =
            checkpoint_hourly(Admin::new(admin.clone(), "gateway"), registry.clone(), instance, stop_signal.clone());
        services.spawn(async move {
            checkpointing.await;
            "audit checkpoints"
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                // A service that ends before shutdown was asked for is a fault worth a log line.
                Some(ended) = services.join_next() => log_service_end(ended, false),
            }
        }
        draining.store(true, std::sync::atomic::Ordering::SeqCst);
        crate::telemetry::metrics::metrics().ready.set(0);
        if operations.is_some() && !drain_delay.is_zero() {
            // The balancer sees /readyz fail and stops sending; until then, connections are served.
            tracing::info!(seconds = drain_delay.as_secs(), "draining: still accepting while the balancer notices");
            tokio::time::sleep(drain_delay).await;
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
        // A worker finishes the file it is on; its job is otherwise taken over after restart.
        while let Some(ended) = services.join_next().await {
            log_service_end(ended, true);
        }
        gateway.audit().close();
        drop(gateway);
        if tokio::time::timeout(Duration::from_secs(10), audit_writer).await.is_err() {
            tracing::error!("audit writer did not finish in time");
        }
        // The last events of this run are covered by a checkpoint too.
        if let Err(error) = Admin::new(admin, "gateway").checkpoint().await {
            tracing::error!(error = ?error, "cannot write the audit checkpoint at shutdown");
        }
        registry.close().await;
        drop(operations);
        drop(serving_lock);
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn log_service_end(ended: Result<&'static str, tokio::task::JoinError>, stopping: bool) {
    match ended {
        Ok(service) if stopping => tracing::debug!(service, "stopped"),
        Ok(service) => tracing::error!(service, "a background service ended before shutdown"),
        Err(error) if error.is_panic() => tracing::error!(error = %error, "a background service panicked"),
        Err(error) => tracing::error!(error = %error, "a background service was cancelled"),
    }
}

/// Writes a signed checkpoint of the audit chain into the object store every hour (and mails
/// a copy, when configured): one instance of a fleet per hour.
async fn checkpoint_hourly(admin: Admin, registry: Registry, instance: String, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
        if !claim_this_hour(&registry, "audit checkpoint", &instance).await {
            continue;
        }
        if let Err(error) = admin.checkpoint().await {
            tracing::error!(error = ?error, "cannot write the audit checkpoint");
        }
    }
}

/// Whether this instance runs `job` this hour; false, too, when the registry cannot say (the
/// next hour tries again).
async fn claim_this_hour(registry: &Registry, job: &str, instance: &str) -> bool {
    let now = crate::registry::now_seconds();
    match registry.claim_period(job, now.div_euclid(3600), now, instance).await {
        Ok(claimed) => {
            if !claimed {
                tracing::debug!(job, "another instance runs this hour's pass");
            }
            claimed
        }
        Err(error) => {
            tracing::error!(job, error = ?error, "cannot claim this hour's pass");
            false
        }
    }
}

/// Names this instance in the registry's claims: host and process.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Sends the expiry reminders that are due, every hour, until shutdown.
async fn remind_hourly(registry: Registry, schedule: ReminderSchedule, mut stop: watch::Receiver<bool>) {
    let ReminderSchedule { outbox, days_before, clock } = schedule;
    loop {
        match crate::notify::reminders::send_expiry_reminders(&registry, &outbox, &clock, days_before).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "expiry reminders sent to master users"),
            Err(error) => tracing::error!(error = ?error, "expiry reminders failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The retention pass, at start and then every hour: one instance of a fleet per hour.
async fn retain_hourly(
    registry: Registry,
    schedule: RetentionSchedule,
    instance: String,
    mut stop: watch::Receiver<bool>,
) {
    let RetentionSchedule { storage, audit, layout, settings } = schedule;
    loop {
        if claim_this_hour(&registry, "retention", &instance).await {
            let now = crate::registry::now_seconds();
            match crate::retention::run_pass(&registry, &storage, &audit, &layout, settings, now).await {
                Ok(pass) if pass == crate::retention::RetentionPass::default() => {}
                Ok(pass) => tracing::info!(removed = pass.removed, failed = pass.failed, "retention pass"),
                Err(error) => tracing::error!(error = ?error, "the retention pass failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
