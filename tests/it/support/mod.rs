//! `TestGateway`: the real gateway on port 0 with a temporary data folder, on SQLite or on the
//! PostgreSQL server that `scripts/test` starts, seeded with a small organisation
//! (`fixtures`), with its objects on disk or in S3 (`backends`), driven by real clients
//! (`clients`), its mail read back (`mail`).

mod backends;
mod clients;
mod fixtures;
mod mail;

pub use backends::*;
pub use clients::*;
pub use fixtures::*;
pub use mail::*;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pension_gateway::admin::Admin;
use pension_gateway::config::Settings;
use pension_gateway::domain::ContractNumber;
use pension_gateway::gateway::{Clock, Gateway};
use pension_gateway::registry::Registry;
use pension_gateway::startup::Application;
use time::Date;
use tokio::sync::oneshot;

pub struct TestGateway {
    pub address: std::net::SocketAddr,
    /// The operations listener, when `http.listen` was set.
    pub http_address: Option<std::net::SocketAddr>,
    pub gateway: Arc<Gateway>,
    pub ingestor: Arc<pension_gateway::ingest::worker::Ingestor>,
    pub admin: Admin,
    pub data_dir: tempfile::TempDir,
    pub key_dir: tempfile::TempDir,
    pub settings: Settings,
    pub today: Arc<Mutex<Date>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL database made for this gateway, dropped with it.
    postgres_database: Option<String>,
}

impl TestGateway {
    pub async fn spawn(database: Database) -> Self {
        Self::spawn_with(database, &[]).await
    }

    /// Starts a gateway with some settings changed (keys as in the TOML, e.g. "server.max_sessions_per_user").
    pub async fn spawn_with(database: Database, overrides: &[(&str, toml::Value)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        make_private(data_dir.path());
        let key_dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres_database) = if database.is_postgres() {
            let (url, name) = postgres_database().await;
            (url, Some(name))
        } else {
            (format!("sqlite://{}/gateway.db", data_dir.path().display()), None)
        };
        let data = data_dir.path().display().to_string();
        let mut all: Vec<(&str, toml::Value)> = vec![
            ("data_dir", toml::Value::String(data.clone())),
            ("server.listen", toml::Value::String("127.0.0.1:0".into())),
            ("server.host_key", toml::Value::String(format!("{data}/host_ed25519"))),
            ("server.auth_rejection_delay_ms", toml::Value::Integer(50)),
            ("server.shutdown_grace_seconds", toml::Value::Integer(10)),
            // Scenarios connect often from one address; the edge's own tests set real rates.
            ("server.connections_per_minute_per_address", toml::Value::Integer(100_000)),
            ("server.connection_burst_per_address", toml::Value::Integer(10_000)),
            // Wrong passwords are answered at once; the edge's own tests set the slowdown.
            ("defender.slowdown_step_ms", toml::Value::Integer(0)),
            ("database.url", toml::Value::String(url)),
            ("database.max_connections", toml::Value::Integer(4)),
            ("storage.path", toml::Value::String(format!("{data}/objects"))),
            // Tests drive ingestion step by step through `ingestor`.
            ("ingest.workers", toml::Value::Integer(0)),
            // The gateway runs in this test process: its reading child is the real binary.
            ("ingest.reader_program", toml::Value::String(env!("CARGO_BIN_EXE_pension-gateway").into())),
        ];
        if database.objects_in_s3() && !overrides.iter().any(|(key, _)| *key == "storage.backend") {
            all.extend(s3_overrides(&s3_server().endpoint));
        }
        all.extend(overrides.iter().cloned());
        let settings = Settings::with_overrides(&all).expect("test settings");
        let today = Arc::new(Mutex::new(date("2026-06-15")));
        let clock_today = Arc::clone(&today);
        let clock = Clock::from_fn(move || *clock_today.lock().expect("clock"));
        let application = Application::build_with_clock(&settings, clock).await.expect("gateway starts");
        let address = application.local_addr();
        let http_address = application.http_addr();
        let gateway = application.gateway();
        let ingestor = application.ingestor();
        let admin = application.admin("test");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stop.await;
        }));
        let test_gateway = Self {
            address,
            http_address,
            gateway,
            ingestor,
            admin,
            data_dir,
            key_dir,
            settings,
            today,
            shutdown: Some(shutdown),
            server: Some(server),
            postgres_database,
        };
        test_gateway.seed().await;
        test_gateway
    }

    /// The audit events of one action, in order.
    pub async fn events(
        &self,
        action: pension_gateway::domain::AuditAction,
    ) -> Vec<pension_gateway::registry::NewAuditEvent> {
        self.audit_events().await.into_iter().map(|record| record.event).filter(|e| e.action == action).collect()
    }

    /// Uploads `bytes` to `path` as `login` (password), over SSH with the russh-sftp client.
    pub async fn upload(&self, login: &str, path: &str, bytes: &[u8]) -> Result<(), String> {
        let sftp = self.sftp(login, password(PASSWORD)).await?;
        put(&sftp, path, bytes).await
    }

    pub fn registry(&self) -> &Registry {
        self.gateway.registry()
    }

    pub fn set_today(&self, text: &str) {
        *self.today.lock().unwrap() = date(text);
    }

    /// What the object store holds, half-written objects included: files under the objects
    /// folder (staging too), or objects and unfinished multipart uploads under the S3 prefix.
    pub async fn stored_files(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path.display().to_string());
                }
            }
        }
        let mut files = Vec::new();
        match &self.settings.storage.backend {
            pension_gateway::config::BackendSettings::LocalDisk { path, .. } => walk(path, &mut files),
            pension_gateway::config::BackendSettings::S3(s3) => {
                let client = s3_client(s3.endpoint.as_deref().unwrap_or_default()).await;
                let listed = client.list_objects_v2().bucket(&s3.bucket).prefix(&s3.prefix).send().await.unwrap();
                files.extend(listed.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                let uploads =
                    client.list_multipart_uploads().bucket(&s3.bucket).prefix(&s3.prefix).send().await.unwrap();
                files.extend(uploads.uploads().iter().filter_map(|u| u.key().map(|k| format!("{k} (unfinished)"))));
            }
        }
        files
    }

    /// Runs the real CLI binary on this gateway's data folder, registry and object store, with
    /// extra `PENSION_GATEWAY__...` variables.
    pub fn cli(&self, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
        let mut command = self.cli_command(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    }

    /// The real CLI binary on this gateway's data folder, registry and object store, to run.
    pub fn cli_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pension-gateway"));
        command
            .args(args)
            .env_remove("PENSION_GATEWAY_CONFIG")
            .env("PENSION_GATEWAY__DATA_DIR", self.data_dir.path())
            .env("PENSION_GATEWAY__DATABASE__URL", &self.settings.database.url)
            .env("PENSION_GATEWAY__LOG__LEVEL", "warn");
        if let pension_gateway::config::BackendSettings::S3(s3) = &self.settings.storage.backend {
            command
                .env("PENSION_GATEWAY__STORAGE__BACKEND", "s3")
                .env("PENSION_GATEWAY__STORAGE__S3__BUCKET", &s3.bucket)
                .env("PENSION_GATEWAY__STORAGE__S3__ENDPOINT", s3.endpoint.as_deref().unwrap_or_default())
                .env("PENSION_GATEWAY__STORAGE__S3__REGION", &s3.region)
                .env("PENSION_GATEWAY__STORAGE__S3__FORCE_PATH_STYLE", s3.force_path_style.to_string())
                .env("PENSION_GATEWAY__STORAGE__S3__PREFIX", &s3.prefix);
        }
        command
    }

    /// Waits until every audit event queued so far is written.
    pub async fn audit_events(&self) -> Vec<pension_gateway::registry::AuditRecord> {
        self.gateway.audit().flush().await;
        self.registry().audit_events(i64::MIN).await.unwrap()
    }

    /// Publishes a document through the CLI's service, as staff would.
    pub async fn publish(&self, contract: &str, kind: &str, year: Option<u16>, name: &str, content: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        self.admin
            .publish(
                &ContractNumber::parse(contract).unwrap(),
                &pension_gateway::domain::KindName::parse(kind).unwrap(),
                year.map(|y| pension_gateway::domain::Year::from_number(y.into()).unwrap()),
                &file,
            )
            .await
            .unwrap();
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }

    /// Stops the server and starts it again on the same data folder and registry, with
    /// `workers` ingestion workers running in the background (tests otherwise drive them).
    pub async fn restart_with_workers(&mut self, workers: usize) {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.ingest.workers = workers;
        let clock_today = Arc::clone(&self.today);
        let clock = Clock::from_fn(move || *clock_today.lock().expect("clock"));
        let application = Application::build_with_clock(&settings, clock).await.expect("gateway starts again");
        self.address = application.local_addr();
        self.http_address = application.http_addr();
        self.gateway = application.gateway();
        self.ingestor = application.ingestor();
        let (shutdown, stop) = oneshot::channel::<()>();
        self.server = Some(tokio::spawn(application.run_until(async move {
            let _ = stop.await;
        })));
        self.shutdown = Some(shutdown);
        self.settings = settings;
    }

    /// Starts stopping without waiting.
    pub fn begin_stop(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(name) = self.postgres_database.take() {
            drop_postgres_database(name);
        }
    }
}
