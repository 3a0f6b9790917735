//! Settings: the embedded `config/default.toml`, then an optional file, then
//! `PENSION_GATEWAY__SECTION__KEY` environment variables, checked into [`Settings`].
//!
//! Every key is known: an unknown or invalid key stops start-up with a message naming the key
//! and what is allowed. Derived paths use `{data_dir}`. Nothing here opens sockets or databases.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::layout::{Layout, LayoutError};

// Each module owns its settings type; this module reads the keys and assembles them.
pub use crate::gateway::QuotaSettings;
pub use crate::retention::RetentionSettings;
pub use crate::sftp::ServerSettings;
pub use crate::storage::{BackendSettings, EncryptionSettings, S3Settings, StorageSettings};
pub use crate::telemetry::{LogFormat, LogSettings};

/// The configuration shipped with the binary: every key with its default and its meaning.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

/// Prefix of environment variables that override keys (`PENSION_GATEWAY__SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "PENSION_GATEWAY__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("environment variable {variable}: {message}")]
    Environment { variable: String, message: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Schema(#[from] crate::ingest::schema::SchemaError),
}

// ---------------------------------------------------------------------------------------------
// Raw settings: the TOML shape, unknown keys refused.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    data_dir: String,
    layout_file: String,
    server: RawServer,
    database: RawDatabase,
    storage: RawStorage,
    ingest: RawIngest,
    notify: RawNotify,
    access: RawAccess,
    quota: RawQuota,
    retention: RawRetention,
    defender: RawDefender,
    http: RawHttp,
    log: RawLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    token_file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    organisation_bytes: u64,
    user_daily_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    rejected_days: u32,
    accepted_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefender {
    enabled: bool,
    observation_window_seconds: u64,
    address_threshold: u32,
    login_threshold: u32,
    wrong_password_weight: u32,
    unknown_login_weight: u32,
    over_limit_weight: u32,
    first_ban_minutes: u64,
    longest_ban_hours: u64,
    slowdown_step_ms: u64,
    slowest_answer_ms: u64,
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    expiry_reminder_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    transport: String,
    spool_dir: String,
    from: String,
    audit_checkpoint_to: String,
    max_attempts: u32,
    first_retry_seconds: u64,
    smtp: RawSmtp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: u16,
    tls: String,
    credentials_file: String,
    timeout_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    schemas_dir: String,
    workers: u32,
    max_file_bytes: u64,
    max_rows: u64,
    max_uncompressed_bytes: u64,
    parse_time_limit_seconds: u64,
    reader_memory_mib: u64,
    reader_program: String,
    max_attempts: u32,
    lease_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    host_key: String,
    audit_key: String,
    max_connections: u32,
    max_connections_per_address: u32,
    max_startups: String,
    max_unauthenticated_per_address: u32,
    connections_per_minute_per_address: u32,
    connection_burst_per_address: u32,
    max_sessions_per_user: u32,
    login_grace_seconds: u64,
    idle_timeout_seconds: u64,
    auth_rejection_delay_ms: u64,
    max_concurrent_password_checks: u32,
    max_open_handles: u32,
    max_bytes_in_flight: u64,
    max_upload_bytes: u64,
    shutdown_grace_seconds: u64,
    drain_delay_seconds: u64,
    proxy_protocol: bool,
    trusted_proxies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    url_file: String,
    max_connections: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    backend: String,
    path: String,
    fsync: bool,
    reserve_free_mib: u64,
    s3: RawS3,
    encryption: RawEncryption,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    bucket: String,
    endpoint: String,
    region: String,
    force_path_style: bool,
    prefix: String,
    part_size_mib: u64,
    request_timeout_seconds: u64,
    stall_seconds: u64,
    max_attempts: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncryption {
    enabled: bool,
    identity_files: Vec<String>,
    recipients: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: String,
    level: String,
}

// ---------------------------------------------------------------------------------------------
// Validated settings.

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub layout: Layout,
    pub server: ServerSettings,
    /// The key file of the audit chain.
    pub audit_key: PathBuf,
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub ingest: IngestSettings,
    pub notify: crate::notify::NotifySettings,
    /// Days before an external user's last day when its master users are reminded.
    pub expiry_reminder_days: i64,
    pub quota: QuotaSettings,
    pub retention: RetentionSettings,
    pub defender: crate::auth::defender::DefenderSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
}

/// The private operations listener.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `None`: off.
    pub listen: Option<SocketAddr>,
    pub token_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub schemas: crate::ingest::schema::Schemas,
    pub workers: usize,
    pub limits: crate::ingest::read::ReadLimits,
    pub parse_time_limit: Duration,
    /// How uploaded spreadsheets are read: in a child process with these limits.
    pub reader: crate::ingest::reader_process::ReaderSettings,
    pub max_attempts: u32,
    pub lease: Duration,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    /// May carry a password: never printed (see the `Debug` impl).
    pub url: String,
    pub max_connections: u32,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.url.split_once(':').map(|(s, _)| s).unwrap_or("?");
        f.debug_struct("DatabaseSettings")
            .field("url", &format_args!("{scheme}://[redacted]"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Settings {
    /// Embedded defaults, then `file`, then the environment variables in `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table = parse_table(EMBEDDED_DEFAULTS, "the embedded config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::ReadFile { path: path.to_path_buf(), source })?;
            let overlay = parse_table(&text, &path.display().to_string())?;
            merge_tables(&mut table, overlay);
        }
        apply_environment(&mut table, env)?;
        Self::from_table(table)
    }

    /// Embedded defaults with a few keys changed: for `demo`, tests and tools.
    pub fn with_overrides(overrides: &[(&str, toml::Value)]) -> Result<Self, ConfigError> {
        let mut table = parse_table(EMBEDDED_DEFAULTS, "the embedded config/default.toml")?;
        for (key, value) in overrides {
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            insert_at(&mut table, &path, value.clone(), key)?;
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let raw: RawSettings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::Key { key: e.path().to_string(), message: e.inner().message().to_string() })?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let key_error = |key: &str, message: String| ConfigError::Key { key: key.to_string(), message };
        if raw.data_dir.trim().is_empty() {
            return Err(key_error("data_dir", "must not be empty".into()));
        }
        let data_dir = PathBuf::from(&raw.data_dir);
        let with_data_dir = |key: &str, value: &str| -> Result<PathBuf, ConfigError> {
            if value.trim().is_empty() {
                return Err(key_error(key, "must not be empty".into()));
            }
            Ok(PathBuf::from(value.replace("{data_dir}", &raw.data_dir)))
        };

        let layout = if raw.layout_file.is_empty() {
            Layout::embedded()?
        } else {
            Layout::from_file(&with_data_dir("layout_file", &raw.layout_file)?)?
        };

        let s = raw.server;
        let listen: SocketAddr = s.listen.parse().map_err(|_| {
            key_error("server.listen", format!("{:?} is not an address:port such as 127.0.0.1:2222", s.listen))
        })?;
        let positive = |key: &str, value: u64| -> Result<u64, ConfigError> {
            if value == 0 {
                Err(key_error(key, "must be greater than 0".into()))
            } else {
                Ok(value)
            }
        };
        let audit_key = with_data_dir("server.audit_key", &s.audit_key)?;
        let server = ServerSettings {
            listen,
            host_key: with_data_dir("server.host_key", &s.host_key)?,
            max_connections: positive("server.max_connections", s.max_connections.into())? as usize,
            max_connections_per_address: positive(
                "server.max_connections_per_address",
                s.max_connections_per_address.into(),
            )? as usize,
            max_startups: crate::auth::limits::MaxStartups::parse(&s.max_startups)
                .map_err(|e| key_error("server.max_startups", e.to_string()))?,
            max_unauthenticated_per_address: positive(
                "server.max_unauthenticated_per_address",
                s.max_unauthenticated_per_address.into(),
            )? as usize,
            connections_per_minute_per_address: positive(
                "server.connections_per_minute_per_address",
                s.connections_per_minute_per_address.into(),
            )? as u32,
            connection_burst_per_address: positive(
                "server.connection_burst_per_address",
                s.connection_burst_per_address.into(),
            )? as u32,
            max_sessions_per_user: positive("server.max_sessions_per_user", s.max_sessions_per_user.into())? as usize,
            login_grace: Duration::from_secs(positive("server.login_grace_seconds", s.login_grace_seconds)?),
            idle_timeout: Duration::from_secs(positive("server.idle_timeout_seconds", s.idle_timeout_seconds)?),
            auth_rejection_delay: Duration::from_millis(s.auth_rejection_delay_ms),
            max_concurrent_password_checks: positive(
                "server.max_concurrent_password_checks",
                s.max_concurrent_password_checks.into(),
            )? as usize,
            max_open_handles: positive("server.max_open_handles", s.max_open_handles.into())? as usize,
            max_bytes_in_flight: usize::try_from(positive("server.max_bytes_in_flight", s.max_bytes_in_flight)?)
                .unwrap_or(usize::MAX)
                .max(1 << 20),
            max_upload_bytes: positive("server.max_upload_bytes", s.max_upload_bytes)?,
            shutdown_grace: Duration::from_secs(s.shutdown_grace_seconds),
            drain_delay: Duration::from_secs(s.drain_delay_seconds),
            proxy_protocol: s.proxy_protocol,
            trusted_proxies: {
                let mut networks = Vec::with_capacity(s.trusted_proxies.len());
                for network in &s.trusted_proxies {
                    networks.push(
                        crate::auth::defender::Network::parse(network)
                            .map_err(|e| key_error("server.trusted_proxies", e.to_string()))?,
                    );
                }
                if s.proxy_protocol && networks.is_empty() {
                    return Err(key_error(
                        "server.trusted_proxies",
                        "must name the load balancers' networks when server.proxy_protocol is on".into(),
                    ));
                }
                networks
            },
        };
        let http = HttpSettings {
            listen: match raw.http.listen.trim() {
                "" => None,
                listen => Some(listen.parse().map_err(|_| {
                    key_error("http.listen", format!("{listen:?} is not an address:port such as 127.0.0.1:9180"))
                })?),
            },
            token_file: with_data_dir("http.token_file", &raw.http.token_file)?,
        };

        let d = raw.database;
        let url = if d.url_file.is_empty() {
            d.url.replace("{data_dir}", &raw.data_dir)
        } else {
            read_secret_file(&with_data_dir("database.url_file", &d.url_file)?, "database.url_file")?
        };
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(key_error("database.url", "must start with sqlite:// or postgres://".into()));
        }
        let database = DatabaseSettings {
            url,
            max_connections: positive("database.max_connections", d.max_connections.into())? as u32,
        };

        let backend = match raw.storage.backend.as_str() {
            "local" => BackendSettings::LocalDisk {
                path: with_data_dir("storage.path", &raw.storage.path)?,
                fsync: raw.storage.fsync,
            },
            "s3" => {
                let s3 = raw.storage.s3;
                if s3.bucket.trim().is_empty() {
                    return Err(key_error(
                        "storage.s3.bucket",
                        "must name the bucket when storage.backend = \"s3\"".into(),
                    ));
                }
                let prefix = s3.prefix.trim_matches('/').to_string();
                let prefix_ok = prefix
                    .split('/')
                    .all(|segment| segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
                if !prefix_ok {
                    return Err(key_error("storage.s3.prefix", "only letters, digits, - _ . and / are allowed".into()));
                }
                if s3.part_size_mib < 5 || s3.part_size_mib > 512 {
                    return Err(key_error(
                        "storage.s3.part_size_mib",
                        "must be between 5 and 512 (S3's limits)".into(),
                    ));
                }
                let endpoint = s3.endpoint.trim();
                if !(endpoint.is_empty() || endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(key_error("storage.s3.endpoint", "must start with http:// or https://".into()));
                }
                BackendSettings::S3(S3Settings {
                    bucket: s3.bucket.trim().to_string(),
                    endpoint: (!endpoint.is_empty()).then(|| endpoint.to_string()),
                    region: s3.region,
                    force_path_style: s3.force_path_style,
                    prefix: if prefix.is_empty() { prefix } else { format!("{prefix}/") },
                    part_size: usize::try_from(s3.part_size_mib << 20).unwrap_or(usize::MAX),
                    request_timeout: Duration::from_secs(positive(
                        "storage.s3.request_timeout_seconds",
                        s3.request_timeout_seconds,
                    )?),
                    stall: Duration::from_secs(positive("storage.s3.stall_seconds", s3.stall_seconds)?),
                    max_attempts: positive("storage.s3.max_attempts", s3.max_attempts.into())? as u32,
                })
            }
            other => {
                return Err(key_error(
                    "storage.backend",
                    format!("{other:?} is not a backend: allowed: \"local\", \"s3\""),
                ))
            }
        };
        let e = raw.storage.encryption;
        let identity_files = e
            .identity_files
            .iter()
            .map(|file| with_data_dir("storage.encryption.identity_files", file))
            .collect::<Result<Vec<_>, _>>()?;
        if e.enabled && identity_files.is_empty() {
            return Err(key_error(
                "storage.encryption.identity_files",
                "encryption is on: name at least one identity file (or turn storage.encryption.enabled off)".into(),
            ));
        }
        let storage = StorageSettings {
            backend,
            encryption: EncryptionSettings { enabled: e.enabled, identity_files, recipients: e.recipients },
            reserve_free_bytes: raw.storage.reserve_free_mib.saturating_mul(1024 * 1024),
        };

        let i = raw.ingest;
        let schemas = if i.schemas_dir.is_empty() {
            crate::ingest::schema::Schemas::embedded()?
        } else {
            crate::ingest::schema::Schemas::from_dir(&with_data_dir("ingest.schemas_dir", &i.schemas_dir)?)?
        };
        let parse_time_limit =
            Duration::from_secs(positive("ingest.parse_time_limit_seconds", i.parse_time_limit_seconds)?);
        let reader_memory_mib = positive("ingest.reader_memory_mib", i.reader_memory_mib)?;
        if reader_memory_mib < 64 {
            return Err(key_error(
                "ingest.reader_memory_mib",
                "at least 64 (MiB): the reader itself needs that".into(),
            ));
        }
        let reader_program = if i.reader_program.is_empty() {
            std::env::current_exe().map_err(|e| {
                key_error("ingest.reader_program", format!("cannot find this program to run the reader: {e}"))
            })?
        } else {
            with_data_dir("ingest.reader_program", &i.reader_program)?
        };
        let ingest = IngestSettings {
            reader: crate::ingest::reader_process::ReaderSettings {
                program: reader_program,
                memory_mib: reader_memory_mib,
                time_limit: parse_time_limit,
                concurrency: (i.workers as usize).max(1),
            },
            schemas,
            workers: i.workers as usize,
            limits: crate::ingest::read::ReadLimits {
                max_file_bytes: positive("ingest.max_file_bytes", i.max_file_bytes)?,
                max_rows: usize::try_from(positive("ingest.max_rows", i.max_rows)?).unwrap_or(usize::MAX),
                max_zip_entries: 10_000,
                max_uncompressed_bytes: positive("ingest.max_uncompressed_bytes", i.max_uncompressed_bytes)?,
                max_compression_ratio: 200,
            },
            parse_time_limit,
            max_attempts: positive("ingest.max_attempts", i.max_attempts.into())? as u32,
            lease: Duration::from_secs(positive("ingest.lease_seconds", i.lease_seconds)?),
        };

        let n = raw.notify;
        let transport = match n.transport.as_str() {
            "spool" => {
                crate::notify::TransportSettings::Spool { dir: with_data_dir("notify.spool_dir", &n.spool_dir)? }
            }
            "smtp" => {
                let smtp = n.smtp;
                if smtp.host.trim().is_empty() {
                    return Err(key_error(
                        "notify.smtp.host",
                        "must name the mail server when notify.transport = \"smtp\"".into(),
                    ));
                }
                let tls = match smtp.tls.as_str() {
                    "none" => crate::notify::TlsMode::None,
                    "starttls" => crate::notify::TlsMode::StartTls,
                    "tls" => crate::notify::TlsMode::Tls,
                    other => {
                        return Err(key_error(
                            "notify.smtp.tls",
                            format!("{other:?}: allowed: \"none\", \"starttls\", \"tls\""),
                        ))
                    }
                };
                let credentials = if smtp.credentials_file.is_empty() {
                    None
                } else {
                    let path = with_data_dir("notify.smtp.credentials_file", &smtp.credentials_file)?;
                    let text = read_secret_file(&path, "notify.smtp.credentials_file")?;
                    Some(crate::notify::parse_credentials(&text).ok_or_else(|| {
                        key_error(
                            "notify.smtp.credentials_file",
                            format!(
                                "{} must hold the login on its first line and the password on the second",
                                path.display()
                            ),
                        )
                    })?)
                };
                crate::notify::TransportSettings::Smtp(crate::notify::SmtpSettings {
                    host: smtp.host.trim().to_string(),
                    port: smtp.port,
                    tls,
                    credentials,
                    timeout: Duration::from_secs(positive("notify.smtp.timeout_seconds", smtp.timeout_seconds)?),
                })
            }
            other => return Err(key_error("notify.transport", format!("{other:?}: allowed: \"spool\", \"smtp\""))),
        };
        let notify = crate::notify::NotifySettings {
            transport,
            from: crate::domain::EmailAddress::parse(&n.from).map_err(|e| key_error("notify.from", e.to_string()))?,
            audit_checkpoint_to: match n.audit_checkpoint_to.trim() {
                "" => None,
                address => Some(
                    crate::domain::EmailAddress::parse(address)
                        .map_err(|e| key_error("notify.audit_checkpoint_to", e.to_string()))?,
                ),
            },
            max_attempts: positive("notify.max_attempts", n.max_attempts.into())? as u32,
            first_retry: Duration::from_secs(positive("notify.first_retry_seconds", n.first_retry_seconds)?),
        };

        let format = match raw.log.format.as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => return Err(key_error("log.format", format!("{other:?}: allowed: \"pretty\", \"json\""))),
        };

        Ok(Self {
            data_dir,
            layout,
            server,
            database,
            storage,
            ingest,
            notify,
            expiry_reminder_days: i64::from(raw.access.expiry_reminder_days),
            audit_key,
            quota: QuotaSettings {
                organisation_bytes: positive("quota.organisation_bytes", raw.quota.organisation_bytes)?,
                user_daily_bytes: positive("quota.user_daily_bytes", raw.quota.user_daily_bytes)?,
            },
            retention: RetentionSettings {
                rejected_days: positive("retention.rejected_days", raw.retention.rejected_days.into())? as u32,
                accepted_days: positive("retention.accepted_days", raw.retention.accepted_days.into())? as u32,
            },
            defender: {
                let d = raw.defender;
                let mut allow = Vec::with_capacity(d.allow.len());
                for network in &d.allow {
                    allow.push(
                        crate::auth::defender::Network::parse(network)
                            .map_err(|e| key_error("defender.allow", e.to_string()))?,
                    );
                }
                crate::auth::defender::DefenderSettings {
                    enabled: d.enabled,
                    window: Duration::from_secs(positive(
                        "defender.observation_window_seconds",
                        d.observation_window_seconds,
                    )?),
                    address_threshold: positive("defender.address_threshold", d.address_threshold.into())? as u32,
                    login_threshold: positive("defender.login_threshold", d.login_threshold.into())? as u32,
                    wrong_password_weight: d.wrong_password_weight,
                    unknown_login_weight: d.unknown_login_weight,
                    over_limit_weight: d.over_limit_weight,
                    first_ban: Duration::from_secs(positive("defender.first_ban_minutes", d.first_ban_minutes)? * 60),
                    longest_ban: Duration::from_secs(
                        positive("defender.longest_ban_hours", d.longest_ban_hours)? * 3600,
                    ),
                    slowdown_step: Duration::from_millis(d.slowdown_step_ms),
                    slowest_answer: Duration::from_millis(d.slowest_answer_ms),
                    allow,
                }
            },
            http,
            log: LogSettings { format, level: raw.log.level },
        })
    }
}

/// Reads a secret from a file that only its owner may read.
fn read_secret_file(path: &Path, key: &str) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError::Key { key: key.to_string(), message };
    let metadata = std::fs::metadata(path).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(error(format!("{} is readable by group or others: run chmod 600 on it", path.display())));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim().to_string())
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax { origin: origin.to_string(), message: e.message().to_string() })
}

/// Overlays `overlay` onto `base`, table by table. Keys unknown to `base` are kept so that
/// deserialisation can name them.
fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_sub)), toml::Value::Table(overlay_sub)) => {
                merge_tables(base_sub, overlay_sub);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value, origin: &str) -> Result<(), ConfigError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(ConfigError::Environment { variable: origin.to_string(), message: "names no key".into() });
    };
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Key {
                    key: path[..=depth].join("."),
                    message: format!("is a value, not a section (set by {origin})"),
                })
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// `PENSION_GATEWAY__SERVER__LISTEN=0.0.0.0:22` sets `server.listen`. A value that parses as a
/// TOML number, boolean or array is taken as such; anything else is a string.
fn apply_environment(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let overrides: BTreeMap<String, String> =
        env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
    for (name, raw_value) in overrides {
        let path: Vec<String> = name[ENV_PREFIX.len()..].split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Environment {
                variable: name,
                message: "expected PENSION_GATEWAY__SECTION__KEY or PENSION_GATEWAY__KEY".into(),
            });
        }
        let value = format!("v = {raw_value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !matches!(v, toml::Value::Table(_) | toml::Value::Datetime(_)))
            .unwrap_or(toml::Value::String(raw_value));
        insert_at(table, &path, value, &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_embedded_defaults_keep_everything_under_the_data_dir() {
        let settings = Settings::load(None, env(&[])).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("data"));
        assert_eq!(settings.server.host_key, PathBuf::from("data/host_ed25519"));
        assert_eq!(settings.database.url, "sqlite://data/gateway.db");
        let BackendSettings::LocalDisk { path, fsync } = &settings.storage.backend else { panic!("local by default") };
        assert!(*fsync);
        assert_eq!(path, &PathBuf::from("data/objects"));
        assert!(settings.storage.encryption.enabled);
        assert_eq!(settings.storage.encryption.identity_files, vec![PathBuf::from("data/storage-identity.txt")]);
    }

    #[test]
    fn environment_variables_override_keys_in_sections_and_at_the_top() {
        let settings = Settings::load(
            None,
            env(&[
                ("PENSION_GATEWAY__DATA_DIR", "/srv/gw"),
                ("PENSION_GATEWAY__SERVER__LISTEN", "0.0.0.0:22"),
                ("PENSION_GATEWAY__SERVER__MAX_CONNECTIONS", "10"),
                ("PENSION_GATEWAY_CONFIG", "ignored.toml"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.listen, "0.0.0.0:22".parse().unwrap());
        assert_eq!(settings.server.max_connections, 10);
        assert_eq!(settings.server.host_key, PathBuf::from("/srv/gw/host_ed25519"));
    }

    #[test]
    fn an_unknown_key_names_itself_and_what_is_allowed() {
        let err = Settings::load(None, env(&[("PENSION_GATEWAY__SERVER__LISSEN", "x")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("server.lissen"), "{message}");
        assert!(message.contains("listen"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gw.toml");
        std::fs::write(&file, "[databse]\nurl = \"x\"\n").unwrap();
        let message = Settings::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(message.contains("databse"), "{message}");
    }

    #[test]
    fn an_invalid_value_names_the_key_and_the_expected_form() {
        let message =
            Settings::load(None, env(&[("PENSION_GATEWAY__SERVER__LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(message.contains("server.listen") && message.contains("127.0.0.1:2222"), "{message}");
        let message =
            Settings::load(None, env(&[("PENSION_GATEWAY__SERVER__MAX_CONNECTIONS", "many")])).unwrap_err().to_string();
        assert!(message.contains("server.max_connections"), "{message}");
        let message =
            Settings::load(None, env(&[("PENSION_GATEWAY__STORAGE__BACKEND", "ftp")])).unwrap_err().to_string();
        assert!(message.contains("storage.backend") && message.contains("local"), "{message}");
    }

    #[test]
    fn a_file_overrides_only_the_keys_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gw.toml");
        std::fs::write(&file, "data_dir = \"/tmp/x\"\n[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        let settings = Settings::load(Some(&file), env(&[])).unwrap();
        assert_eq!(settings.server.listen.port(), 0);
        assert_eq!(settings.server.max_sessions_per_user, 8);
        assert_eq!(settings.database.url, "sqlite:///tmp/x/gateway.db");
    }

    #[test]
    fn a_database_url_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("url");
        std::fs::write(&secret, "postgres://gw:secret@localhost/gw\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let var = ("PENSION_GATEWAY__DATABASE__URL_FILE".to_string(), secret.display().to_string());
        let message = Settings::load(None, vec![var.clone()]).unwrap_err().to_string();
        assert!(message.contains("chmod 600"), "{message}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let settings = Settings::load(None, vec![var]).unwrap();
        assert_eq!(settings.database.url, "postgres://gw:secret@localhost/gw");
        assert!(!format!("{settings:?}").contains("secret"));
    }
}
